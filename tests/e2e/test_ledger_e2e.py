"""The journal, the accounting system and the CRM over real HTTP against `cloudcart serve`
and its simulators: captures, partial and full refunds and a payout post balanced entries
that the accounting system's books match; the books and the CRM agree after an outage
and a resubmission; consent decides what the CRM may market with; erasure reaches it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
ENV = {
    "CLOUDCART_LOG_LEVEL": "INFO",
    "TEST_GATEWAY_DUPLICATE_WEBHOOKS": "1",
    # One attempt per delivery: a partner that is down dead-letters within a second, which
    # is what the outage tests want to see.
    "PARTNER_MAX_ATTEMPTS": "1",
    "SIM_FULFILMENT_SHIP_SECONDS": "600",
}


def _wait(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Shop:
    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=60.0)
        self._tokens: dict[str, str] = {}
        self.admin = self.headers("e2e-admin", admin=True)

    def headers(self, sub: str, *, admin: bool = False, email: str | None = None) -> dict[str, str]:
        if sub not in self._tokens:
            form = {"sub": sub, **({"roles": "Admin"} if admin else {})}
            if email:
                form["email"] = email
            r = self.http.post("/dev/idp/token", data=form)
            assert r.status_code == 200, r.text
            self._tokens[sub] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[sub]}"}

    def product(self, sku: str, units: int, price: int) -> None:
        for body in (
            {"id": "electronics", "name": "Electronics", "parentId": None},
            {"id": "phones", "name": "Phones", "parentId": "electronics"},
        ):
            self.http.post("/api/admin/categories", json=body, headers=self.admin)
        r = self.http.post(
            "/api/admin/products",
            headers=self.admin,
            json={
                "title": f"Ledger {sku}",
                "brand": "Zephyr",
                "categoryId": "phones",
                "description": "A phone",
                "attributes": {},
                "variants": [
                    {"sku": sku, "attributes": {}, "price": {"amount": price, "currency": "INR"}}
                ],
                "status": "active",
            },
        )
        assert r.status_code == 201, r.text
        r = self.http.put(f"/api/admin/inventory/{sku}", json={"onHand": units}, headers=self.admin)
        assert r.status_code == 200, r.text

    def paid_order(self, sub: str, sku: str, qty: int) -> dict[str, Any]:
        h = self.headers(sub)
        assert self.http.post("/api/cart/items", json={"sku": sku, "quantity": qty}, headers=h)
        r = self.http.post(
            "/api/checkout",
            json={"shippingAddress": ADDRESS, "shippingMethod": "express"},
            headers={**h, "Idempotency-Key": f"k-{sub}-{sku}"},
        )
        assert r.status_code == 201, r.text
        placed = dict(r.json())
        r = self.http.post(
            f"/dev/payments/{placed['payment']['paymentId']}/confirm",
            json={"card": "4242424242424242"},
        )
        assert r.status_code == 200, r.text
        _wait("the capture entry", lambda: self.entries_of(placed["orderId"]))
        return placed

    def entries_of(self, order_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.http.get("/api/admin/ledger/entries", params=params, headers=self.admin)
            assert page.status_code == 200, page.text
            items += [e for e in page.json()["items"] if e["sourceEvent"]["subject"] == order_id]
            cursor = page.json()["cursor"]
            if cursor is None:
                return items

    def ours(self) -> dict[str, Any]:
        r = self.http.get("/api/admin/ledger/trial-balance", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def theirs(self) -> dict[str, Any]:
        r = self.http.get(
            "/dev/partners/accounting/trial-balance", params={"currency": "INR"}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def books_agree(self) -> bool:
        return bool(self.ours()["accounts"] == self.theirs()["accounts"])

    def dead_letters(self, subscription: str) -> list[dict[str, Any]]:
        r = self.http.get(
            "/api/admin/dead-letters",
            params={"entity": "events", "subscription": subscription},
            headers=self.admin,
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def resubmit_all(self, subscription: str) -> None:
        for letter in self.dead_letters(subscription):
            r = self.http.post(
                f"/api/admin/dead-letters/{letter['id']}/resubmit", headers=self.admin
            )
            assert r.status_code == 202, r.text


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("ledger-e2e")
    server = ServeProcess(data_dir=tmp / "main", log_path=tmp / "main.log", env=dict(ENV)).start()
    try:
        client = Shop(server)
        yield client
        client.http.close()
    finally:
        server.stop()


def _balances(balance: dict[str, Any]) -> dict[str, int]:
    return {a["account"]: a["balance"] for a in balance["accounts"]}


def test_capture_partial_and_full_refund_and_payout_balance_everywhere(shop: Shop) -> None:
    shop.product("LEDGER-1", 10, price=11800)
    placed = shop.paid_order("payer", "LEDGER-1", 2)
    oid = placed["orderId"]
    total = placed["total"]["amount"]
    (capture,) = shop.entries_of(oid)
    assert capture["rule"] == "capture"
    assert sum(x["debit"] for x in capture["lines"]) == total
    r = shop.http.post(
        f"/api/admin/orders/{oid}/refunds",
        json={"lines": [{"sku": "LEDGER-1", "quantity": 1}], "reason": "one broke"},
        headers=shop.admin,
    )
    assert r.status_code == 200, r.text
    r = shop.http.post(f"/api/orders/{oid}/cancel", headers=shop.headers("payer"))
    assert r.status_code == 200, r.text
    entries = _wait("three entries", lambda: len(e := shop.entries_of(oid)) == 3 and e)
    assert sorted(e["rule"] for e in entries) == ["cancellation", "capture", "refund"]
    refund = next(e for e in entries if e["rule"] == "refund")
    assert {x["account"]: x["debit"] for x in refund["lines"] if x["debit"]} == {
        "4900 Refunds": 10000,
        "2100 Tax payable": 1800,
    }
    balance = shop.ours()
    assert balance["totalDebit"] == balance["totalCredit"]
    books = _balances(balance)
    # Everything was refunded: revenue + tax + shipping - refunds = captured - refunded = 0.
    assert (
        -books.get("4000 Sales revenue", 0)
        - books.get("2100 Tax payable", 0)
        - books.get("4100 Shipping revenue", 0)
        - books.get("4900 Refunds", 0)
        == 0
    )
    assert books["6100 Payment fees"] > 0  # the test gateway reports its fee
    r = shop.http.post("/dev/payments/payouts", json={"currency": "INR"})
    assert r.status_code == 200, r.text
    payout = r.json()["payout"]
    assert payout is None or payout["amount"] > 0
    _wait("the books to agree", shop.books_agree)


def test_books_agree_after_an_accounting_outage_and_a_resubmit(shop: Shop) -> None:
    shop.product("LEDGER-2", 5, price=50000)
    r = shop.http.post("/dev/partners/accounting/outage", json={"seconds": 4}, headers=shop.admin)
    assert r.status_code == 200, r.text
    shop.paid_order("outage-payer", "LEDGER-2", 1)
    letters = _wait("the entry to dead-letter", lambda: shop.dead_letters("accounting"))
    assert letters[0]["reason"] == "PartnerUnavailable"
    assert "503" in letters[0]["description"]
    assert not shop.books_agree()
    time.sleep(4)
    shop.resubmit_all("accounting")
    _wait("the books to agree", shop.books_agree)
    assert shop.dead_letters("accounting") == []


def test_crm_gets_consented_marketing_only_and_erasure_reaches_it(shop: Shop) -> None:
    client = shop.headers("crm-customer", email="crm@example.com")
    assert shop.http.get("/api/me/profile", headers=client).status_code == 200

    def contact() -> dict[str, Any] | None:
        r = shop.http.get("/dev/partners/crm/contacts/crm-customer", headers=shop.admin)
        return dict(r.json()) if r.status_code == 200 else None

    found = _wait("the CRM contact", contact)
    assert found["email"] == "crm@example.com"
    assert found["marketing"] == {"email": False, "sms": False, "whatsapp": False}
    assert "marketingEmail" not in found["attributes"]
    r = shop.http.post("/dev/partners/crm/outage", json={"seconds": 3}, headers=shop.admin)
    assert r.status_code == 200, r.text
    r = shop.http.put(
        "/api/me/preferences",
        json={"channels": {"email": {"marketing": True}}, "source": "web"},
        headers=client,
    )
    assert r.status_code == 200, r.text
    _wait("the CRM update to dead-letter", lambda: shop.dead_letters("crm"))
    time.sleep(3)
    shop.resubmit_all("crm")
    found = _wait(
        "consent to reach the CRM",
        lambda: (c := contact()) is not None and c["marketing"]["email"] and c,
    )
    assert found["marketing"]["sms"] is False
    assert found["attributes"]["marketingEmail"] == "crm@example.com"
    shop.product("LEDGER-3", 3, price=20000)
    shop.paid_order("crm-customer", "LEDGER-3", 1)
    found = _wait("order figures in the CRM", lambda: (c := contact()) and c.get("orders") and c)
    assert found["orders"]["orderCount"] == 1
    exported = shop.http.get("/api/me/export", headers=client).json()["sections"]
    systems = {r["system"] for r in exported["partnerSystems"]}
    assert {"crm", "fulfilment"} <= systems
    assert shop.http.delete("/api/me", headers=client).status_code == 204
    _wait("the erasure to reach the CRM", lambda: contact() is None)
    exported = shop.http.get("/api/me/export", headers=client).json()["sections"]
    crm = next(r for r in exported["partnerSystems"] if r["system"] == "crm")
    assert crm["erasedAt"] is not None


def test_zz_reconcile_sees_everything_add_up(shop: Shop) -> None:
    _wait("the books to agree", shop.books_agree)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudcart.local.cli",
            "reconcile",
            "--data-dir",
            str(shop.server.data_dir),
        ],
        cwd=REPO,
        env=clean_env({"CLOUDCART_PUBLIC_BASE_URL": shop.server.base_url}),
        capture_output=True,
        timeout=120,
    )
    report = out.stdout.decode()
    # Orders paid in this run are younger than the 5 minute grace, so only the checks that
    # apply to them at once can complain: stock, money, the WMS and the books.
    assert out.returncode == 0, report + out.stderr.decode()
