"""Recommendations over real HTTP against `cloudcart serve`: a paid order shows in "also
bought" and "order again" within 2 s; an imported order feeds them without a payment,
a notification or a stock move."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.serving import ServeProcess
from tests.e2e.shop import ADDRESS, ShopClient, wait_for

pytestmark = pytest.mark.e2e


class Shop(ShopClient):
    """The shared client with the recommendation reads."""

    def buy_together(self, sub: str, skus: list[str]) -> dict[str, Any]:
        h = self.headers(sub, email=f"{sub}@example.com")
        for sku in skus:
            r = self.http.post("/api/cart/items", json={"sku": sku, "quantity": 1}, headers=h)
            assert r.status_code == 200, r.text
        r = self.http.post(
            "/api/checkout",
            json={"shippingAddress": ADDRESS, "shippingMethod": "standard"},
            headers={**h, "Idempotency-Key": f"k-{sub}-{'-'.join(skus)}"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def also_bought(self, product_id: str) -> list[str]:
        r = self.http.get(f"/api/catalog/products/{product_id}/also-bought")
        assert r.status_code == 200, r.text
        return [i["productId"] for i in r.json()["items"]]

    def for_customer(self, sub: str, kind: str) -> list[str]:
        r = self.http.get(
            "/api/me/recommendations", params={"kind": kind}, headers=self.headers(sub)
        )
        assert r.status_code == 200, r.text
        return [i["productId"] for i in r.json()["items"]]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("recommendations-e2e")
    server = ServeProcess(
        data_dir=tmp / "main",
        log_path=tmp / "main.log",
        env={"TEST_GATEWAY_DUPLICATE_WEBHOOKS": "1"},
        partners=False,
    ).start()
    try:
        client = Shop(server)
        yield client
        client.close()
    finally:
        server.stop()


def test_a_paid_order_shows_in_recommendations_within_two_seconds(shop: Shop) -> None:
    phone = shop.product("REC-PHONE", 50, title="Oppo A92 phone")
    case = shop.product("REC-CASE", 50, title="Oppo A92 case")
    placed = shop.buy_together("rhea", ["REC-PHONE", "REC-CASE"])
    shop.pay(placed)
    paid_at = time.monotonic()
    wait_for("the case to be bought with the phone", lambda: case in shop.also_bought(phone), 2)
    wait_for(
        "order again", lambda: {phone, case} <= set(shop.for_customer("rhea", "order-again")), 2
    )
    assert time.monotonic() - paid_at < 2.5
    assert phone not in shop.also_bought(phone)
    assert shop.http.get("/api/me/recommendations").status_code == 401


def test_imported_orders_feed_recommendations_and_nothing_else(shop: Shop) -> None:
    charger = shop.product("REC-CHARGER", 5, title="Fast charger")
    cable = shop.product("REC-CABLE", 5, title="USB-C cable")
    lines = [
        {
            "orderId": f"HIST-{n}",
            "customerId": "old-timer",
            "placedAt": f"2024-01-0{n + 1}T10:00:00Z",
            "lines": [{"sku": "REC-CHARGER", "quantity": 1}, {"sku": "REC-CABLE", "quantity": 2}],
        }
        for n in range(3)
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines) + "not json\n"
    r = shop.http.post(
        "/api/admin/import/orders",
        content=body.encode(),
        headers={**shop.admin, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 3
    assert [x["line"] for x in r.json()["rejected"]] == [4]
    wait_for("imported orders in also bought", lambda: cable in shop.also_bought(charger), 5)
    stock = shop.http.get("/api/admin/inventory/REC-CHARGER", headers=shop.admin).json()
    assert stock["onHand"] == 5 and stock["reserved"] == 0
    sent = shop.http.get(
        "/dev/notifications/sent", params={"to": "old-timer@example.com"}, headers=shop.admin
    )
    assert sent.status_code == 200 and sent.json()["items"] == []
