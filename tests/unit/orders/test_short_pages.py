"""The orders area reads every page it needs when the store answers short or empty pages
with a continuation (as Cosmos DB may; tests/fakes/short_pages.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from cloudcart.composition import Services
from cloudcart.orders import checkout as checkout_module
from cloudcart.orders.checkout import record_id, recover_abandoned_checkouts
from cloudcart.orders.expiry import expire_orders
from cloudcart.orders.service import list_orders
from tests.fakes.short_pages import ShortPagesStore
from tests.unit.orders.conftest import Shop
from tests.unit.orders.test_checkout_recovery import _crash, _later, _record

CUSTOMERS = ("ann", "bob", "cat")


def _stingy(shop: Shop) -> Services:
    return Services(
        shop.settings,
        adapters={"documents": ShortPagesStore(shop.services.documents), "payments": shop.gateway},
    )


def _place(shop: Shop, customer: str) -> str:
    shop.add_to_cart(customer, "SKU-1")
    status, body = shop.checkout(customer, f"key-{customer}")
    assert status == 201, body
    return str(body["orderId"])


def test_expiry_cancels_every_expired_order_behind_short_pages(shop: Shop) -> None:
    shop.stock("SKU-1", 10)
    shop.services.settings.payment_window_minutes = 0.0001
    for customer in CUSTOMERS:
        _place(shop, customer)
    time.sleep(0.05)

    assert expire_orders(_stingy(shop), limit=2) == 2
    assert expire_orders(_stingy(shop), limit=2) == 1
    assert shop.inventory("SKU-1")["available"] == 10


def test_recovery_finds_crashed_checkouts_behind_short_pages(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.stock("A", 5)
    for customer in CUSTOMERS:
        shop.add_to_cart(customer, "A", 1)
        _crash(shop, customer, "k", name="orders", method="batch", nth=1)
    assert shop.inventory("A")["reserved"] == 3

    _later(monkeypatch, timedelta(minutes=2))
    assert recover_abandoned_checkouts(_stingy(shop)) == 3
    assert shop.inventory("A")["reserved"] == 0


def test_a_checkout_with_an_order_is_not_taken_for_abandoned_behind_short_pages(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.stock("SKU-1", 10)
    _place(shop, "ann")
    rid = record_id("key-ann")
    # A record still marked in progress although its order exists (the case recovery
    # must recognise and leave alone).
    record = _record(shop, "ann", "key-ann")
    shop.services.documents.container("orders").replace(
        {k: v for k, v in record.items() if not k.startswith("_")} | {"status": "in_progress"}
    )
    services = _stingy(shop)
    assert checkout_module._has_order(services, "ann", rid)

    _later(monkeypatch, timedelta(hours=1))
    assert recover_abandoned_checkouts(services) == 0
    assert shop.inventory("SKU-1")["reserved"] == 1


def test_order_lists_fill_each_page_behind_short_pages(shop: Shop) -> None:
    shop.stock("SKU-1", 10)
    placed = [_place(shop, customer) for customer in CUSTOMERS]
    store = _stingy(shop).documents

    first, cursor = list_orders(store, customer_id=None, limit=2)
    assert len(first) == 2 and cursor is not None
    rest, last = list_orders(store, customer_id=None, limit=2, cursor=cursor)
    assert [o["id"] for o in first + rest] == placed[::-1]  # newest first
    assert last is None or list_orders(store, customer_id=None, cursor=last)[0] == []
