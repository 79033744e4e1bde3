"""Back in stock: subscribing over HTTP, and a restock that notifies each subscriber once
and ends the subscriptions, whatever is redelivered or replayed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloudcart.core.events import Event
from cloudcart.core.ports.channels import ProviderBusy
from cloudcart.marketing import back_in_stock
from cloudcart.notifications.service import NotificationsPending
from tests.unit.marketing.conftest import Shop, assert_problem


def _subscribe(shop: Shop, sub: str, product: str = "p1", sku: str = "KURTA-M") -> int:
    r = shop.client.post(
        f"/api/catalog/products/{product}/notify-me", json={"sku": sku}, headers=shop.auth(sub)
    )
    assert r.status_code in (200, 201), r.text
    assert r.json()["sku"] == sku and r.json()["productId"] == product
    status: int = r.status_code
    return status


def _mine(shop: Shop, sub: str) -> list[str]:
    r = shop.client.get("/api/me/notify-me", headers=shop.auth(sub))
    assert r.status_code == 200, r.text
    return [i["sku"] for i in r.json()["items"]]


@pytest.fixture
def sold_out(shop: Shop) -> Shop:
    shop.product("p1", {"KURTA-M": 129900, "KURTA-L": 139900}, stock=0)
    for sub in ("asha", "ravi", "meera"):
        shop.customer(sub)
    shop.deliver()
    return shop


def test_subscribe_list_and_unsubscribe(sold_out: Shop) -> None:
    shop = sold_out
    assert _subscribe(shop, "asha") == 201
    assert _subscribe(shop, "asha") == 200  # idempotent
    assert _subscribe(shop, "asha", sku="KURTA-L") == 201
    assert _mine(shop, "asha") == ["KURTA-L", "KURTA-M"]
    assert _mine(shop, "ravi") == []
    # Another customer cannot end it: it is not theirs to see.
    r = shop.client.delete("/api/me/notify-me/KURTA-M", headers=shop.auth("ravi"))
    assert_problem(r, 404, "notify-me-not-found")
    r = shop.client.delete("/api/me/notify-me/KURTA-M", headers=shop.auth("asha"))
    assert r.status_code == 204
    assert _mine(shop, "asha") == ["KURTA-L"]
    r = shop.client.delete("/api/me/notify-me/KURTA-M", headers=shop.auth("asha"))
    assert_problem(r, 404, "notify-me-not-found")


def test_unknown_products_and_skus_are_404_and_change_nothing(sold_out: Shop) -> None:
    shop = sold_out
    headers = shop.auth("asha")
    r = shop.client.post("/api/catalog/products/nope/notify-me", json={"sku": "X"}, headers=headers)
    assert_problem(r, 404, "product-not-found")
    r = shop.client.post(
        "/api/catalog/products/p1/notify-me", json={"sku": "SHIRT-S"}, headers=headers
    )
    assert_problem(r, 404, "unknown-sku")
    r = shop.client.post("/api/catalog/products/p1/notify-me", json={}, headers=headers)
    assert r.status_code == 422
    r = shop.client.post("/api/catalog/products/p1/notify-me", json={"sku": "KURTA-M"})
    assert r.status_code == 401
    assert _mine(shop, "asha") == []
    assert shop.records() == []


def test_a_restock_notifies_each_subscriber_once_and_ends_the_subscriptions(
    sold_out: Shop,
) -> None:
    shop = sold_out
    for sub in ("asha", "ravi"):
        _subscribe(shop, sub)
    _subscribe(shop, "meera", sku="KURTA-L")
    shop.stock("KURTA-M", 3)
    events = shop.deliver()
    for sub in ("asha", "ravi"):
        assert shop.sent(sub, "back-in-stock") == 1
        assert _mine(shop, sub) == []
    # Another SKU's subscriber waits for their own SKU.
    assert shop.sent("meera", "back-in-stock") == 0
    assert _mine(shop, "meera") == ["KURTA-L"]
    [mail] = shop.email.to("asha@example.com")
    assert "Kurta p1" in mail.text and "/products/p1" in mail.text
    # The inventory.changed redelivered or replayed sends nothing more.
    restock = [e for e in events if e.type == "inventory.changed"]
    shop.replay(restock)
    for event in restock:
        assert back_in_stock.handle_restock(shop.services, event) == 0
    # More stock (3 -> 5) is not a restock.
    shop.stock("KURTA-M", 5)
    shop.deliver()
    assert sorted(m.to for m in shop.email.sent) == ["asha@example.com", "ravi@example.com"]


def test_a_restock_interrupted_after_the_claim_finishes_once(sold_out: Shop) -> None:
    shop = sold_out
    for sub in ("asha", "ravi"):
        _subscribe(shop, sub)
    restock = Event(
        type="inventory.changed",
        subject="KURTA-M",
        data={"sku": "KURTA-M", "productId": "p1", "available": 2, "availableBefore": 0},
    )
    # The provider is busy for the whole first delivery: claimed, recorded, not sent.
    shop.email.failures = [ProviderBusy("busy", retry_after=0), ProviderBusy("busy", retry_after=0)]
    before = len(shop.email.sent)
    with pytest.raises(NotificationsPending):
        back_in_stock.handle_restock(shop.services, restock)
    assert len(shop.email.sent) == before
    # The redelivery sends what is left, once.
    assert back_in_stock.handle_restock(shop.services, restock) == 2
    assert back_in_stock.handle_restock(shop.services, restock) == 0
    assert shop.sent("asha", "back-in-stock") == 1
    assert shop.sent("ravi", "back-in-stock") == 1


def test_a_subscription_made_after_the_restock_waits_for_the_next_one(sold_out: Shop) -> None:
    shop = sold_out
    _subscribe(shop, "asha")
    early = Event(
        type="inventory.changed",
        subject="KURTA-M",
        data={"sku": "KURTA-M", "productId": "p1", "available": 2, "availableBefore": 0},
    )
    late_copy = early.model_copy(update={"time": early.time - timedelta(hours=1)})
    assert back_in_stock.handle_restock(shop.services, late_copy) == 0
    assert back_in_stock.handle_restock(shop.services, early) == 1
    assert _mine(shop, "asha") == []


def test_two_restocks_racing_notify_once(sold_out: Shop) -> None:
    shop = sold_out
    _subscribe(shop, "asha")
    one, two = (
        Event(
            type="inventory.changed",
            subject="KURTA-M",
            data={"sku": "KURTA-M", "productId": "p1", "available": 1, "availableBefore": 0},
        )
        for _ in range(2)
    )
    assert back_in_stock.handle_restock(shop.services, one) == 1
    assert back_in_stock.handle_restock(shop.services, two) == 0
    assert shop.sent("asha", "back-in-stock") == 1
