"""Orders over real HTTP against `cloudcart serve`: idempotent checkout under 100 concurrent
retries, 50 buyers racing for 5 units, every test card through the embedded gateway and its
(duplicated) signed webhooks, cancel/return refunds, expiry, and tenant isolation.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serving import REPO, ServeProcess, clean_env

pytestmark = pytest.mark.e2e

ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}
CHECKOUT = {"shippingAddress": ADDRESS, "shippingMethod": "standard"}


def checkout_for(buyer: str) -> dict[str, Any]:
    """A checkout body with the buyer's own address: many customers shipping to one address
    within the hour is what the fraud rules' address velocity holds for review."""
    return {
        "shippingAddress": {**ADDRESS, "line1": f"{buyer}, 12 MG Road"},
        "shippingMethod": "standard",
    }


def _start(tmp_path: Path, name: str, extra_env: dict[str, str]) -> ServeProcess:
    # Every webhook is delivered twice, so each test also proves duplicates change nothing.
    env = {"CLOUDCART_LOG_LEVEL": "WARNING", "TEST_GATEWAY_DUPLICATE_WEBHOOKS": "1"}
    # A shop without a fulfilment partner: admins move paid orders along by hand (the
    # partner flow has its own suite, test_partners_e2e).
    server = ServeProcess(
        data_dir=tmp_path / name,
        log_path=tmp_path / f"{name}.log",
        env={**env, **extra_env},
        partners=False,
    )
    return server.start()


class Shop:
    """A storefront/admin client of one server."""

    def __init__(self, server: ServeProcess, data_dir: Path) -> None:
        self.server = server
        self.data_dir = data_dir
        self.http = httpx.Client(base_url=server.base_url, timeout=60.0)
        self._tokens: dict[str, str] = {}
        self.admin = self.headers("e2e-admin", admin=True)

    def headers(self, sub: str, *, admin: bool = False) -> dict[str, str]:
        if sub not in self._tokens:
            form = {"sub": sub}
            if admin:
                form["roles"] = "Admin"
            r = self.http.post("/dev/idp/token", data=form)
            assert r.status_code == 200, r.text
            self._tokens[sub] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[sub]}"}

    def product(self, sku: str, units: int, price: int = 24990) -> str:
        for body in (
            {"id": "electronics", "name": "Electronics", "parentId": None},
            {"id": "phones", "name": "Phones", "parentId": "electronics"},
        ):
            self.http.post("/api/admin/categories", json=body, headers=self.admin)
        created = self.http.post(
            "/api/admin/products",
            headers=self.admin,
            json={
                "title": f"Phone {sku}",
                "brand": "OPPO",
                "categoryId": "phones",
                "description": "A phone",
                "attributes": {},
                "variants": [
                    {"sku": sku, "attributes": {}, "price": {"amount": price, "currency": "INR"}}
                ],
                "status": "active",
            },
        )
        assert created.status_code == 201, created.text
        stock = self.http.put(
            f"/api/admin/inventory/{sku}", json={"available": units}, headers=self.admin
        )
        assert stock.status_code == 200, stock.text
        return str(created.json()["id"])

    def available(self, product_id: str) -> int:
        r = self.http.get(f"/api/catalog/products/{product_id}")
        return int(r.json()["variants"][0]["available"])

    def buy(self, sub: str, sku: str, qty: int = 1, key: str | None = None) -> dict[str, Any]:
        r = self.http.post(
            "/api/cart/items", json={"sku": sku, "quantity": qty}, headers=self.headers(sub)
        )
        assert r.status_code == 200, r.text
        r = self.http.post(
            "/api/checkout",
            json=checkout_for(sub),
            headers={**self.headers(sub), "Idempotency-Key": key or f"k-{sub}"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def order(self, sub: str, order_id: str) -> dict[str, Any]:
        r = self.http.get(f"/api/orders/{order_id}", headers=self.headers(sub))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_status(
        self, sub: str, order_id: str, status: str, timeout: float = 20
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order = self.order(sub, order_id)
            if order["status"] == status or time.monotonic() > deadline:
                assert order["status"] == status, order
                return order
            time.sleep(0.1)

    def pay(self, payment: dict[str, Any], card: str) -> None:
        r = self.http.post(f"/dev/payments/{payment['paymentId']}/confirm", json={"card": card})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("orders-e2e")
    server = _start(tmp, "main", {})
    try:
        client = Shop(server, tmp / "main")
        yield client
        client.http.close()
    finally:
        server.stop()


def _parallel(
    n: int, call: Callable[[int], httpx.Response], workers: int = 25
) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, range(n)))


def test_100_concurrent_checkouts_with_one_key_make_one_order(shop: Shop) -> None:
    shop.product("IDEM-1", 10)
    headers = {**shop.headers("idem-buyer"), "Idempotency-Key": "one-key"}
    r = shop.http.post(
        "/api/cart/items", json={"sku": "IDEM-1", "quantity": 2}, headers=shop.headers("idem-buyer")
    )
    assert r.status_code == 200
    with httpx.Client(
        base_url=shop.server.base_url, timeout=60.0, limits=httpx.Limits(max_connections=50)
    ) as client:
        responses = _parallel(
            100, lambda _: client.post("/api/checkout", json=CHECKOUT, headers=headers)
        )
    assert {r.status_code for r in responses} == {201}, {r.status_code for r in responses}
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    orders = shop.http.get("/api/orders", headers=shop.headers("idem-buyer")).json()["items"]
    assert len(orders) == 1 and orders[0]["orderId"] == bodies[0]["orderId"]
    assert orders[0]["payment"]["paymentId"] == bodies[0]["payment"]["paymentId"]


def test_50_buyers_race_for_5_units(shop: Shop) -> None:
    pid = shop.product("HOT-5", 5)
    buyers = [f"racer-{i}" for i in range(50)]
    for buyer in buyers:
        r = shop.http.post(
            "/api/cart/items", json={"sku": "HOT-5", "quantity": 1}, headers=shop.headers(buyer)
        )
        assert r.status_code == 200, r.text
    with httpx.Client(base_url=shop.server.base_url, timeout=60.0) as client:
        responses = _parallel(
            50,
            lambda i: client.post(
                "/api/checkout",
                json=checkout_for(buyers[i]),
                headers={**shop.headers(buyers[i]), "Idempotency-Key": f"race-{i}"},
            ),
        )
    won = [r for r in responses if r.status_code == 201]
    lost = [r for r in responses if r.status_code != 201]
    assert len(won) == 5
    assert all(
        r.status_code == 409
        and r.json()["type"].endswith("/out-of-stock")
        and r.headers["content-type"].startswith("application/problem+json")
        for r in lost
    )
    assert shop.available(pid) == 0
    placed = shop.http.get(
        "/api/admin/orders?limit=100&status=pending_payment", headers=shop.admin
    ).json()["items"]
    assert sum(1 for o in placed if o["lines"][0]["sku"] == "HOT-5") == 5


@pytest.mark.parametrize(
    ("card", "status"),
    [
        ("4242424242424242", "paid"),
        ("4000000000000002", "payment_failed"),
        ("4000000000009995", "payment_failed"),
    ],
)
def test_each_test_card_and_duplicate_webhooks(shop: Shop, card: str, status: str) -> None:
    sku = f"CARD-{card[-4:]}"
    pid = shop.product(sku, 4)
    buyer = f"card-{card[-4:]}"
    placed = shop.buy(buyer, sku, 2)
    assert shop.available(pid) == 2
    shop.pay(placed["payment"], card)
    order = shop.wait_status(buyer, placed["orderId"], status)
    time.sleep(1.0)  # every webhook is delivered twice (TEST_GATEWAY_DUPLICATE_WEBHOOKS=1)
    order = shop.order(buyer, placed["orderId"])
    assert [h["status"] for h in order["history"]] == ["pending_payment", status]
    assert shop.available(pid) == (2 if status == "paid" else 4)
    if status == "paid":
        assert order["captured"]["amount"] == placed["total"]["amount"]


def test_cancel_after_payment_refunds_and_releases(shop: Shop) -> None:
    pid = shop.product("CANCEL-1", 3)
    placed = shop.buy("canceller", "CANCEL-1", 2)
    shop.pay(placed["payment"], "4242424242424242")
    shop.wait_status("canceller", placed["orderId"], "paid")
    r = shop.http.post(f"/api/orders/{placed['orderId']}/cancel", headers=shop.headers("canceller"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["refunded"]["amount"] == placed["total"]["amount"]
    assert shop.available(pid) == 3


def test_return_on_delivered_order_refunds_chosen_lines(shop: Shop) -> None:
    shop.product("RET-1", 5, price=10000)
    placed = shop.buy("returner", "RET-1", 3)
    oid = placed["orderId"]
    shop.pay(placed["payment"], "4242424242424242")
    shop.wait_status("returner", oid, "paid")
    for status in ("fulfilling", "shipped", "delivered"):
        r = shop.http.post(
            f"/api/admin/orders/{oid}/status", json={"status": status}, headers=shop.admin
        )
        assert r.status_code == 200, r.text
    body = {"lines": [{"sku": "RET-1", "quantity": 1}], "reason": "does not fit"}
    r = shop.http.post(f"/api/orders/{oid}/returns", json=body, headers=shop.headers("returner"))
    assert r.status_code == 200 and r.json()["status"] == "return_requested", r.text
    r = shop.http.post(
        f"/api/admin/orders/{oid}/status", json={"status": "returned"}, headers=shop.admin
    )
    assert r.status_code == 200, r.text
    r = shop.http.post(
        f"/api/admin/orders/{oid}/refunds",
        json={"lines": [{"sku": "RET-1", "quantity": 1}]},
        headers=shop.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded" and r.json()["refunded"]["amount"] == 10000
    bad = shop.http.post(
        f"/api/admin/orders/{oid}/status", json={"status": "shipped"}, headers=shop.admin
    )
    assert bad.status_code == 409 and bad.json()["from"] == "refunded"


def test_customers_cannot_touch_each_others_orders(shop: Shop) -> None:
    shop.product("PRIV-1", 2)
    placed = shop.buy("alice-e2e", "PRIV-1", 1)
    bob = shop.headers("bob-e2e")
    oid = placed["orderId"]
    assert shop.http.get(f"/api/orders/{oid}", headers=bob).status_code == 404
    assert shop.http.post(f"/api/orders/{oid}/cancel", headers=bob).status_code == 404
    assert (
        shop.http.post(
            f"/api/orders/{oid}/returns",
            headers=bob,
            json={"lines": [{"sku": "PRIV-1", "quantity": 1}], "reason": "x"},
        ).status_code
        == 404
    )
    assert shop.order("alice-e2e", oid)["status"] == "pending_payment"


def test_erasure_keeps_the_order_for_accounting_without_the_address(shop: Shop) -> None:
    shop.product("ERASE-1", 2)
    placed = shop.buy("erased-e2e", "ERASE-1", 1)
    r = shop.http.delete("/api/me", headers=shop.headers("erased-e2e"))
    assert r.status_code == 204, r.text
    found: dict[str, Any] | None = None
    cursor: str | None = None
    while found is None:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = shop.http.get("/api/admin/orders", params=params, headers=shop.admin).json()
        found = next((o for o in page["items"] if o["orderId"] == placed["orderId"]), None)
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert found is not None, "the anonymised order must be kept"
    assert found["total"] == placed["total"]
    assert found["lines"][0]["sku"] == "ERASE-1"
    assert found["shippingAddress"] == {"country": "IN", "anonymized": True}


def test_zz_reconciliation_adds_up(shop: Shop) -> None:
    time.sleep(1.0)  # let the last duplicated webhooks land
    # The real command line, on the server's data folder.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudcart.local.cli",
            "reconcile",
            "--data-dir",
            str(shop.data_dir),
        ],
        cwd=REPO,
        env=clean_env({"CLOUDCART_PUBLIC_BASE_URL": shop.server.base_url}),
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    assert b'"ok": true' in out.stdout


def test_unpaid_order_expires_and_frees_its_stock(tmp_path: Path) -> None:
    server = _start(
        tmp_path,
        "expiry",
        {"PAYMENT_WINDOW_MINUTES": "0.02", "ORDER_EXPIRY_SCHEDULE": "* * * * * *"},
    )
    try:
        shop = Shop(server, tmp_path / "expiry")
        pid = shop.product("EXP-1", 2)
        placed = shop.buy("slowpoke", "EXP-1", 2)
        assert shop.available(pid) == 0
        order = shop.wait_status("slowpoke", placed["orderId"], "cancelled", timeout=20)
        assert order["history"][-1]["reason"] == "payment_expired"
        assert shop.available(pid) == 2
        shop.http.close()
    finally:
        server.stop()
