"""`OrderDocument` and `CartDocument` describe what the orders area really stores.

The real flows run through the public API (HTTP, the webhook and partner-update handlers,
the expiry timer, the import and erasure routes) so that every shape an order or a cart
can have gets written: carts anonymous, signed-in and merged; orders placed, paid, failed,
held by the fraud rules and reviewed, expired, cancelled, shipped in parcels (one
delivered before it was reported shipped, one lost), returned by the customer and through
the warehouse, refunded in part and in full, imported, and anonymised by an erasure. Then
every order and cart in the store is validated strictly against its type, undeclared
members forbidden.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from cloudcart.core.ports.documents import Document, Filter, Query, every
from cloudcart.orders.documents import CartDocument, OrderDocument
from cloudcart.orders.expiry import expire_orders
from cloudcart.orders.fulfilment import PartnerUpdate, apply_update
from cloudcart.orders.payments import apply_payment_event
from tests.unit.orders.conftest import ADDRESS, Shop

ORDERS = TypeAdapter(OrderDocument)
CARTS = TypeAdapter(CartDocument)

NEVER_WRITTEN = {"ttl"}
"""Members the type allows (the store's per-document expiry) that no order or cart has."""


@pytest.fixture
def shop(created_shop: Shop) -> Shop:
    return created_shop


def _address(n: int) -> dict[str, Any]:
    # One address per order: the fraud rules hold a fourth order to one address in an hour.
    return {**ADDRESS, "line1": f"{n} MG Road"}


def _place(shop: Shop, sub: str, sku: str, qty: int, n: int, **address: Any) -> dict[str, Any]:
    shop.add_to_cart(sub, sku, qty)
    body = {"shippingAddress": {**_address(n), **address}, "shippingMethod": "express"}
    status, placed = shop.checkout(sub, f"key-{sub}-{n}", body)
    assert status == 201, placed
    return placed


def _pay(shop: Shop, placed: dict[str, Any], **card: Any) -> None:
    event = shop.gateway.settle(placed["payment"]["paymentId"], "succeeded", **card)
    apply_payment_event(shop.services, replace(event, fee=236))


def _ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _orders(shop: Shop) -> list[Document]:
    container = shop.services.documents.container("orders")
    return every(container, Query(filters=[Filter("type", "eq", "order")], limit=100))


def _carts(shop: Shop) -> list[Document]:
    container = shop.services.documents.container("carts")
    return every(container, Query(filters=[Filter("id", "eq", "cart")], limit=100))


def _drive_every_flow(shop: Shop) -> None:
    shop.stock("SKU-1", 100, price=11800)
    shop.stock("SKU-2", 100, price=5900, product="p2")
    shop.stock("BIG", 50, price=2_000_000, product="p-big")
    admin = shop.headers("boss", admin=True)

    # carts: anonymous (kept), signed-in (kept), an anonymous one merged into a signed-in one
    _ok(shop.client.post("/api/cart/items", json={"sku": "SKU-1", "quantity": 1}))
    r = shop.client.post("/api/cart/items", json={"sku": "SKU-2", "quantity": 2})
    _ok(r)
    merged_id = r.headers["X-Cart-Id"]
    shop.add_to_cart("carla", "SKU-1", 3)
    shop.add_to_cart("mona", "SKU-2", 1)
    _ok(shop.client.get("/api/cart", headers={**shop.headers("mona"), "X-Cart-Id": merged_id}))

    # expired: unpaid past its payment window, cancelled by the timer
    window = shop.services.settings.payment_window_minutes
    shop.services.settings.payment_window_minutes = 0.0001
    _place(shop, "eve", "SKU-1", 1, 1)
    time.sleep(0.05)
    assert expire_orders(shop.services) == 1
    shop.services.settings.payment_window_minutes = window

    # placed and left unpaid; a failed payment; a paid one cancelled (refunded)
    _place(shop, "pia", "SKU-2", 1, 2, line2="Flat 4", region="KA", phone="+91 80 1234")
    failed = _place(shop, "fay", "SKU-1", 1, 3)
    event = shop.gateway.settle(failed["payment"]["paymentId"], "failed")
    apply_payment_event(shop.services, event)
    cancelled = _place(shop, "cal", "SKU-1", 2, 4)
    _pay(shop, cancelled)
    r = shop.client.post(
        f"/api/orders/{cancelled['orderId']}/cancel",
        json={"reason": "changed my mind"},
        headers=shop.headers("cal"),
    )
    assert _ok(r)["status"] == "cancelled"

    # held by the fraud rules: one approved while unpaid, one paid (with its card) rejected
    held = _place(shop, "ravi", "BIG", 3, 5)
    assert held["status"] == "on_hold"
    r = shop.client.post(
        f"/api/admin/orders/{held['orderId']}/review", json={"decision": "approve"}, headers=admin
    )
    assert _ok(r)["status"] == "pending_payment"
    rejected = _place(shop, "meera", "BIG", 3, 6)
    _pay(shop, rejected, card_country="US", card_fingerprint="fp-1")
    r = shop.client.post(
        f"/api/admin/orders/{rejected['orderId']}/review",
        json={"decision": "reject"},
        headers=admin,
    )
    assert _ok(r)["status"] == "cancelled"

    # through the partner: parcels (one reported delivered before it was shipped),
    # delivered, a return the customer asked for, returned by an admin, refunded by lines
    # and then the rest by amount
    shipped = _place(shop, "asha", "SKU-1", 2, 7)
    oid = shipped["orderId"]
    shop.add_to_cart("asha", "SKU-2", 1)
    _pay(shop, shipped)
    for update in (
        PartnerUpdate(kind="accepted", order_id=oid, event_id="a1", request_id="fr-1"),
        PartnerUpdate(kind="delivered", order_id=oid, event_id="a2", shipment_id="P1"),
        PartnerUpdate(
            kind="shipped",
            order_id=oid,
            event_id="a3",
            request_id="fr-1",
            shipment_id="P1",
            carrier="BlueDart",
            tracking_number="TN-1",
            tracking_url="https://track.example/P1",
            lines=(("SKU-1", 1),),
        ),
        PartnerUpdate(
            kind="shipped",
            order_id=oid,
            event_id="a5",
            shipment_id="P2",
            carrier="BlueDart",
            tracking_number="TN-2",
            lines=(("SKU-1", 1),),
        ),
        PartnerUpdate(kind="delivered", order_id=oid, event_id="a6", shipment_id="P2"),
    ):
        apply_update(shop.services, update)
    r = shop.client.post(
        f"/api/orders/{oid}/returns",
        json={"lines": [{"sku": "SKU-1", "quantity": 1}], "reason": "too small"},
        headers=shop.headers("asha"),
    )
    assert _ok(r)["status"] == "return_requested"
    r = shop.client.post(
        f"/api/admin/orders/{oid}/status", json={"status": "returned"}, headers=admin
    )
    _ok(r)
    r = shop.client.post(
        f"/api/admin/orders/{oid}/refunds",
        json={"lines": [{"sku": "SKU-1", "quantity": 1}]},
        headers=admin,
    )
    assert _ok(r)["status"] == "refunded"
    rest = _ok(r)["captured"]["amount"] - _ok(r)["refunded"]["amount"]
    r = shop.client.post(f"/api/admin/orders/{oid}/refunds", json={"amount": rest}, headers=admin)
    assert _ok(r)["refunded"]["amount"] == shipped["total"]["amount"]

    # an admin walks an order along (on hold while fulfilling), delivered; the warehouse
    # receives goods back without a return request and the order is refunded for them
    walked = _place(shop, "dev", "SKU-2", 2, 8)
    _pay(shop, walked)
    wid = walked["orderId"]
    for step in ("fulfilling", "on_hold", "fulfilling", "shipped", "delivered"):
        r = shop.client.post(
            f"/api/admin/orders/{wid}/status", json={"status": step}, headers=admin
        )
        assert _ok(r)["status"] == step
    apply_update(
        shop.services,
        PartnerUpdate(
            kind="return_received",
            order_id=wid,
            event_id="w1",
            lines=(("SKU-2", 1),),
            condition="resellable",
        ),
    )
    # a fulfilment request the order never recorded reported failed, and a lost parcel
    lost = _place(shop, "lou", "SKU-2", 1, 9)
    _pay(shop, lost)
    apply_update(
        shop.services,
        PartnerUpdate(kind="failed", order_id=lost["orderId"], event_id="l1", reason="no stock"),
    )
    apply_update(
        shop.services,
        PartnerUpdate(
            kind="failed", order_id=lost["orderId"], event_id="l2", shipment_id="P0", reason="lost"
        ),
    )

    # an imported order, one line without a price
    shop.import_history_order()

    # an erased customer: orders anonymised (address, free-text reasons), cart deleted
    assert shop.client.delete("/api/me", headers=shop.headers("cal")).status_code == 204


def test_every_stored_order_and_cart_matches_its_type(shop: Shop) -> None:
    _drive_every_flow(shop)
    orders, carts = _orders(shop), _carts(shop)
    for document in orders:
        ORDERS.validate_python(document, strict=True)
    for document in carts:
        CARTS.validate_python(document, strict=True)

    # Every shape was written: each member of the types is on some stored document, and
    # each status the flows reach is there.
    order_members = set().union(*(d.keys() for d in orders))
    assert set(OrderDocument.__annotations__) - order_members == NEVER_WRITTEN
    cart_members = set().union(*(d.keys() for d in carts))
    assert set(CartDocument.__annotations__) - cart_members == NEVER_WRITTEN
    assert {d["status"] for d in orders} == {
        "pending_payment",
        "payment_failed",
        "cancelled",
        "delivered",
        "refunded",
        "paid",
    }
    assert {d["customerId"].startswith("anon:") for d in carts} == {True, False}
    shipments = [s for d in orders for s in d.get("shipments", [])]
    assert {s["status"] for s in shipments} == {"delivered", "failed"}
    assert any("shippedAt" not in s for s in shipments)
    assert any(d.get("fulfilment", {}).get("requestId", "") is None for d in orders)
    refunds = [r for d in orders for r in d["refunds"]]
    assert {r.get("kind") for r in refunds} == {"refund", "cancellation"}
    assert any(
        d.get("shippingAddress", {}) == {"country": "IN", "anonymized": True} for d in orders
    )
    assert any("cardCountry" in d.get("risk", {}) for d in orders)


def test_an_undeclared_or_mistyped_member_is_rejected(shop: Shop) -> None:
    shop.stock("SKU-1", 10, price=11800)
    shop.add_to_cart("asha", "SKU-1", 1)
    status, placed = shop.checkout("asha", "k1")
    assert status == 201, placed
    [order] = _orders(shop)
    ORDERS.validate_python(order, strict=True)
    line = order["lines"][0]
    for wrong in (
        {**order, "placedBy": "asha"},  # undeclared
        {**order, "lines": [{**line, "note": "gift"}]},  # undeclared, nested
        {**order, "capturedAmount": "0"},  # mistyped
        {**order, "status": "shipping"},  # not a status
        {**order, "stock": "lost"},  # not a stock state
        {k: v for k, v in order.items() if k != "totals"},  # a required member missing
        {**order, "history": [{**order["history"][0], "reason": None}]},  # left out, never null
    ):
        with pytest.raises(ValidationError):
            ORDERS.validate_python(wrong, strict=True)
    shop.add_to_cart("bo", "SKU-1", 1)
    [cart] = _carts(shop)
    CARTS.validate_python(cart, strict=True)
    for wrong in (
        {**cart, "total": 11800},
        {**cart, "items": [{**cart["items"][0], "quantity": "1"}]},
        {**cart, "id": "basket"},
    ):
        with pytest.raises(ValidationError):
            CARTS.validate_python(wrong, strict=True)
