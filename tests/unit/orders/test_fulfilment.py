"""An order's way through the fulfilment partner: the connector's request and cancellation,
and the partner's updates applied once, in order, whatever order they arrive in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.core.ports.partners import PartnerUnavailable
from cloudcart.core.settings import Settings
from cloudcart.integrations.partners import connectors, inbound
from cloudcart.orders import lifecycle, routes
from cloudcart.orders.payments import apply_payment_event
from tests.fakes.partners import FakeFulfilmentPartner, FakeInventoryPartner
from tests.fakes.payments import FakeGateway
from tests.unit.orders.conftest import Shop

T0 = "2030-01-01T12:00:00Z"


@pytest.fixture
def partner() -> FakeFulfilmentPartner:
    return FakeFulfilmentPartner()


@pytest.fixture
def wms() -> FakeInventoryPartner:
    return FakeInventoryPartner()


@pytest.fixture
def shop(
    tmp_path: Path, partner: FakeFulfilmentPartner, wms: FakeInventoryPartner
) -> Iterator[Shop]:
    settings = Settings(data_dir=tmp_path / "data", fulfilment_partner_url="http://partner")
    app = create_app(settings)
    gateway = FakeGateway()
    services = Services(
        settings,
        adapters={"payments": gateway, "fulfilment_partner": partner, "inventory_partner": wms},
    )
    app.state.services = services
    for router in (routes.cart_router, routes.router, routes.admin_router):
        app.include_router(router)
    services.documents.ensure_containers()
    with TestClient(app) as client:
        yield Shop(app, client, services, gateway, settings)
    services.close()


def _events(shop: Shop, partition: str, type_: str, container: str = "orders") -> list[Event]:
    docs = (
        shop.services.documents.container(container)
        .query(Query(filters=[Filter("kind", "eq", "outbox")]), partition_key=partition)
        .items
    )
    ordered = sorted(docs, key=lambda d: (d["createdAt"], d["position"]))
    return [Event.model_validate(d["event"]) for d in ordered if d["event"]["type"] == type_]


def _paid(
    shop: Shop, sub: str = "asha", qty: int = 2, sku: str = "SKU-1", *, stock: bool = True
) -> str:
    if stock:
        shop.stock(sku, 10, price=11800)
    shop.add_to_cart(sub, sku, qty)
    status, body = shop.checkout(sub, f"key-{sub}-{sku}")
    assert status == 201, body
    event = shop.gateway.settle(body["payment"]["paymentId"], "succeeded", f"evt-{sub}-{sku}")
    apply_payment_event(shop.services, event)
    return str(body["orderId"])


def _order(shop: Shop, sub: str, order_id: str) -> dict[str, Any]:
    r = shop.client.get(f"/api/orders/{order_id}", headers=shop.headers(sub))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _request(shop: Shop, sub: str, order_id: str) -> str:
    (paid,) = [e for e in _events(shop, sub, "order.paid") if e.subject == order_id]
    return connectors.handle_fulfilment_event(shop.services, paid)


def _send(shop: Shop, body: dict[str, Any], message_id: str | None = None) -> str:
    raw = json.dumps(body).encode()
    return inbound.handle_fulfilment_message(shop.services, raw, message_id or body["eventId"])


def _message(type_: str, order_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "schemaVersion": 1,
        "eventId": event_id,
        "occurredAt": T0,
        "orderId": order_id,
        **fields,
    }


def _shipped(order_id: str, event_id: str, shipment: str, qty: int) -> dict[str, Any]:
    return _message(
        "shipment.shipped",
        order_id,
        event_id,
        requestId="fr-1",
        shipmentId=shipment,
        carrier="BlueDart",
        trackingNumber=f"TN-{shipment}",
        trackingUrl=f"https://track.example/{shipment}",
        lines=[{"sku": "SKU-1", "quantity": qty}],
    )


def _delivered(order_id: str, event_id: str, shipment: str) -> dict[str, Any]:
    return _message("shipment.delivered", order_id, event_id, requestId="fr-1", shipmentId=shipment)


def _statuses(order: dict[str, Any]) -> list[str]:
    return [step["status"] for step in order["timeline"]]


# --- outbound ------------------------------------------------------------------------------


def test_paid_order_is_requested_once_and_becomes_fulfilling(
    shop: Shop, partner: FakeFulfilmentPartner
) -> None:
    order_id = _paid(shop)
    assert _request(shop, "asha", order_id) == "requested"
    assert _request(shop, "asha", order_id) == "skipped"  # a redelivered order.paid
    assert list(partner.requests) == [f"fulfilment-request:{order_id}"]
    _, sent = partner.requests[f"fulfilment-request:{order_id}"]
    assert [(ln.sku, ln.quantity) for ln in sent.lines] == [("SKU-1", 2)]
    assert sent.shipping_address["city"] == "Bengaluru"
    order = _order(shop, "asha", order_id)
    assert order["status"] == "fulfilling"
    assert _statuses(order) == ["pending_payment", "paid", "fulfilling"]
    assert order["fulfilments"] == [
        {
            "id": "fr-1",
            "status": "accepted",
            "carrier": None,
            "trackingNumber": None,
            "trackingUrl": None,
            "lines": [{"sku": "SKU-1", "quantity": 2}],
            "updatedAt": order["fulfilments"][0]["updatedAt"],
        }
    ]


def test_a_partner_that_is_down_leaves_the_order_paid_and_a_retry_requests_once(
    shop: Shop, partner: FakeFulfilmentPartner
) -> None:
    order_id = _paid(shop)
    partner.down = 2
    for _ in range(2):
        with pytest.raises(PartnerUnavailable):
            _request(shop, "asha", order_id)
        assert _order(shop, "asha", order_id)["status"] == "paid"
    assert _request(shop, "asha", order_id) == "requested"
    assert len(partner.requests) == 1
    r = shop.client.get("/api/admin/integrations", headers=shop.headers("ops", admin=True))
    assert r.status_code == 200, r.text
    link = next(i for i in r.json()["items"] if i["partner"] == "fulfilment")
    assert link["enabled"] is True
    assert "503" in link["lastFailure"]["reason"]
    assert link["lastSuccess"]["direction"] == "outbound"


def test_a_refusal_dead_letters_at_once(shop: Shop, partner: FakeFulfilmentPartner) -> None:
    order_id = _paid(shop)
    partner.reject = True
    with pytest.raises(InvalidMessage) as caught:
        _request(shop, "asha", order_id)
    assert caught.value.reason == "PartnerRejected" and "unknown SKU" in caught.value.description
    assert _order(shop, "asha", order_id)["status"] == "paid"


def test_held_order_waits_and_goes_when_released(
    shop: Shop, partner: FakeFulfilmentPartner
) -> None:
    order_id = _paid(shop)
    lifecycle.set_status(shop.services, "asha", order_id, "on_hold")
    assert _request(shop, "asha", order_id) == "skipped"
    lifecycle.set_status(shop.services, "asha", order_id, "paid")
    released = [e for e in _events(shop, "asha", "order.status_changed") if e.data["to"] == "paid"]
    assert connectors.handle_fulfilment_event(shop.services, released[-1]) == "requested"
    assert len(partner.requests) == 1
    assert _order(shop, "asha", order_id)["status"] == "fulfilling"


def test_cancelled_order_is_withdrawn_unless_shipped(
    shop: Shop, partner: FakeFulfilmentPartner
) -> None:
    first = _paid(shop, "asha")
    second = _paid(shop, "ravi")
    for sub, order_id in (("asha", first), ("ravi", second)):
        _request(shop, sub, order_id)
    partner.shipped.add(partner.requests[f"fulfilment-request:{second}"][0])
    for sub, order_id in (("asha", first), ("ravi", second)):
        lifecycle.cancel_order(shop.services, sub, order_id, reason="changed my mind")
        (cancelled,) = _events(shop, sub, "order.cancelled")
        assert connectors.handle_fulfilment_event(shop.services, cancelled) == "cancelled"
        assert connectors.handle_fulfilment_event(shop.services, cancelled) == "skipped"
    assert list(partner.cancels) == [f"fulfilment-cancel:{first}"]
    assert _order(shop, "asha", first)["fulfilments"][0]["status"] == "cancelled"
    assert _order(shop, "ravi", second)["fulfilments"][0]["status"] == "cancel_refused"


def test_no_partner_configured_leaves_paid_orders_to_the_shop(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    services = Services(settings)
    event = Event(type="order.paid", subject="ord_1", data={"orderId": "ord_1"})
    assert connectors.handle_fulfilment_event(services, event) == "disabled"
    services.close()


# --- inbound -------------------------------------------------------------------------------


def test_partial_shipments_then_delivery_walk_the_timeline_once(shop: Shop) -> None:
    order_id = _paid(shop)
    _request(shop, "asha", order_id)
    _send(shop, _message("shipment.accepted", order_id, "e1", requestId="fr-1"))
    _send(shop, _shipped(order_id, "e2", "P1", 1))
    order = _order(shop, "asha", order_id)
    assert order["status"] == "fulfilling" and order["partiallyShipped"] is True
    assert [(f["id"], f["status"], f["lines"]) for f in order["fulfilments"]] == [
        ("P1", "shipped", [{"sku": "SKU-1", "quantity": 1}]),
        ("fr-1", "accepted", [{"sku": "SKU-1", "quantity": 1}]),
    ]
    assert order["fulfilments"][0]["trackingUrl"] == "https://track.example/P1"
    _send(shop, _shipped(order_id, "e3", "P2", 1))
    order = _order(shop, "asha", order_id)
    assert order["status"] == "shipped" and order["partiallyShipped"] is False
    _send(shop, _delivered(order_id, "e4", "P1"))
    assert _order(shop, "asha", order_id)["status"] == "shipped"
    _send(shop, _delivered(order_id, "e5", "P2"))
    order = _order(shop, "asha", order_id)
    assert _statuses(order) == ["pending_payment", "paid", "fulfilling", "shipped", "delivered"]
    dispatched = _events(shop, "asha", "shipment.dispatched")
    assert [e.data["partial"] for e in dispatched] == [True, False]


def test_delivered_before_shipped_ends_delivered_in_order(shop: Shop) -> None:
    order_id = _paid(shop)
    _send(shop, _delivered(order_id, "late-1", "P1"))
    order = _order(shop, "asha", order_id)
    assert order["status"] == "paid"
    _send(shop, _shipped(order_id, "late-2", "P1", 2))
    order = _order(shop, "asha", order_id)
    assert order["status"] == "delivered"
    assert _statuses(order) == ["pending_payment", "paid", "fulfilling", "shipped", "delivered"]
    assert order["fulfilments"][0]["status"] == "delivered"
    # An acceptance that arrives last changes nothing.
    _send(shop, _message("shipment.accepted", order_id, "late-3", requestId="fr-1"))
    assert _statuses(_order(shop, "asha", order_id))[-1] == "delivered"


def test_duplicates_by_event_id_or_message_id_apply_once(shop: Shop) -> None:
    order_id = _paid(shop)
    body = _shipped(order_id, "dup-1", "P1", 2)
    _send(shop, body, "m-1")
    _send(shop, body, "m-2")  # the partner sent the same event again
    _send(shop, {**body, "eventId": "dup-2"}, "m-1")  # a redelivered message
    assert len(_events(shop, "asha", "shipment.dispatched")) == 1
    assert _statuses(_order(shop, "asha", order_id)).count("shipped") == 1


def test_invalid_message_names_the_field_and_changes_nothing(shop: Shop) -> None:
    order_id = _paid(shop)
    before = _order(shop, "asha", order_id)
    bad = _shipped(order_id, "bad-1", "P1", 2)
    bad["lines"][0]["quantity"] = 0
    with pytest.raises(InvalidMessage) as caught:
        _send(shop, bad)
    assert caught.value.reason == "SchemaValidationFailed"
    assert "lines.0.quantity" in caught.value.description
    with pytest.raises(InvalidMessage) as caught:
        _send(shop, {**_delivered(order_id, "bad-2", "P1"), "schemaVersion": 2})
    assert "schemaVersion" in caught.value.description
    with pytest.raises(InvalidMessage) as caught:
        _send(shop, _delivered("ord_nope", "bad-3", "P1"))
    assert caught.value.reason == "UnknownOrder"
    with pytest.raises(InvalidMessage) as caught:
        _send(
            shop, {**_shipped(order_id, "bad-4", "P1", 1), "lines": [{"sku": "X", "quantity": 1}]}
        )
    assert caught.value.reason == "UnknownOrderLine"
    after = _order(shop, "asha", order_id)
    assert after == before


def test_shipment_failure_is_recorded_and_announced(shop: Shop) -> None:
    order_id = _paid(shop)
    _request(shop, "asha", order_id)
    _send(shop, _message("shipment.failed", order_id, "f1", requestId="fr-1", reason="no stock"))
    order = _order(shop, "asha", order_id)
    assert order["status"] == "fulfilling"
    assert order["fulfilments"][0]["status"] == "failed"
    (failed,) = _events(shop, "asha", "shipment.delivery_failed")
    assert failed.data["reason"] == "no stock" and failed.data["shipmentId"] is None


@pytest.mark.parametrize(("condition", "restocked"), [("resellable", 1), ("damaged", 0)])
def test_return_received_refunds_once_and_restocks_resellable_units(
    shop: Shop, condition: str, restocked: int
) -> None:
    order_id = _paid(shop)
    _send(shop, _shipped(order_id, "r1", "P1", 2))
    _send(shop, _delivered(order_id, "r2", "P1"))
    on_hand = shop.services.documents.container("inventory").read("SKU-1", "SKU-1")["onHand"]
    body = _message(
        "return.received",
        order_id,
        "r3",
        lines=[{"sku": "SKU-1", "quantity": 1}],
        condition=condition,
    )
    _send(shop, body)
    _send(shop, body, "another-message-id")
    order = _order(shop, "asha", order_id)
    assert order["status"] == "refunded"
    assert _statuses(order)[-3:] == ["return_requested", "returned", "refunded"]
    assert order["refunded"]["amount"] == 11800
    assert len(shop.gateway.refunds) == 1
    stock = shop.services.documents.container("inventory").read("SKU-1", "SKU-1")
    assert stock["onHand"] == on_hand + restocked


def test_stock_counts_from_the_wms(shop: Shop) -> None:
    shop.stock("SKU-9", 5)

    def count(event_id: str, on_hand: int, sequence: int) -> str:
        body = {
            "type": "stock.adjusted",
            "schemaVersion": 1,
            "eventId": event_id,
            "occurredAt": T0,
            "sku": "SKU-9",
            "onHand": on_hand,
            "sequence": sequence,
            "reason": "cycle count",
        }
        return inbound.handle_inventory_message(shop.services, json.dumps(body).encode(), None)

    assert count("c1", 8, 2) == "applied"
    assert count("c0", 3, 1) == "stale"  # older, arrived late
    assert count("c1", 8, 2) == "duplicate"
    stock = shop.services.documents.container("inventory").read("SKU-9", "SKU-9")
    assert (stock["onHand"], stock["available"]) == (8, 8)
    with pytest.raises(InvalidMessage) as caught:
        inbound.handle_inventory_message(shop.services, b'{"type": "stock.adjusted"}', None)
    assert "sku" in caught.value.description


def test_inventory_connector_tells_the_wms_each_move_once(
    shop: Shop, wms: FakeInventoryPartner
) -> None:
    shop.stock("SKU-1", 10, price=11800)
    r = shop.client.put(
        "/api/admin/inventory/SKU-1", json={"onHand": 4}, headers=shop.headers("a", admin=True)
    )
    assert r.status_code == 200, r.text
    _paid(shop, qty=1, stock=False)
    moves = _events(shop, "SKU-1", "inventory.changed", container="inventory")
    outcomes = [connectors.handle_inventory_event(shop.services, e) for e in moves]
    outcomes += [connectors.handle_inventory_event(shop.services, e) for e in moves]
    assert [m.kind for m in wms.moves.values()] == ["set", "reserve", "sale"]
    assert set(wms.moves) == {f"stock-move:{e.id}" for e in moves}
    assert outcomes == ["sent"] * 6
    stock = shop.services.documents.container("inventory").read("SKU-1", "SKU-1")
    assert stock["partner"]["onHand"] == wms.on_hand["SKU-1"] == stock["onHand"] == 3


def test_last_delivery_dead_letters_with_the_partners_answer() -> None:
    from azure.functions.servicebus import ServiceBusMessage

    from cloudcart.integrations.partners import functions

    def down() -> str:
        raise PartnerUnavailable("fulfilment partner answered 503 (attempt 4 of 4)")

    def message(deliveries: int) -> ServiceBusMessage:
        return ServiceBusMessage(
            body=b"{}",
            delivery_count=deliveries,
            message_id="m1",
            application_properties={},
            user_properties={},
        )

    early = message(3)
    with pytest.raises(PartnerUnavailable):
        functions._call(early, functions.FULFILMENT_SUBSCRIPTION, down)
    last = message(10)
    with pytest.raises(InvalidMessage) as caught:
        functions._call(last, functions.FULFILMENT_SUBSCRIPTION, down)
    assert caught.value.reason == "PartnerUnavailable" and "503" in caught.value.description


def test_an_order_with_a_parcel_on_its_way_cannot_be_cancelled(shop: Shop) -> None:
    order_id = _paid(shop)
    _send(shop, _shipped(order_id, "c1", "P1", 1))
    r = shop.client.post(f"/api/orders/{order_id}/cancel", headers=shop.headers("asha"))
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/already-shipped")
    assert _order(shop, "asha", order_id)["status"] == "fulfilling"
