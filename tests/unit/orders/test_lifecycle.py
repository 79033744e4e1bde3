"""After checkout: webhooks in any order, cancel, returns, refunds, expiry, reconciliation."""

from __future__ import annotations

import time
from typing import Any

from cloudcart.core.ports.documents import Filter, Query
from cloudcart.orders.expiry import expire_orders
from cloudcart.orders.payments import apply_payment_event
from cloudcart.orders.reconcile import reconcile
from tests.unit.orders.conftest import Shop


def _placed(shop: Shop, sub: str = "alice", qty: int = 2) -> dict[str, Any]:
    shop.stock("SKU-1", 10, price=11800)
    shop.add_to_cart(sub, "SKU-1", qty)
    status, body = shop.checkout(sub, f"key-{sub}")
    assert status == 201, body
    return body


def _order(shop: Shop, sub: str, order_id: object) -> dict[str, Any]:
    r = shop.client.get(f"/api/orders/{order_id}", headers=shop.headers(sub))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_paid_then_duplicate_and_late_failure_change_nothing(shop: Shop) -> None:
    placed = _placed(shop)
    pay_id = placed["payment"]["paymentId"]
    event = shop.gateway.settle(pay_id, "succeeded", "evt_ok")
    apply_payment_event(shop.services, event)
    after = _order(shop, "alice", placed["orderId"])
    assert after["status"] == "paid" and after["captured"]["amount"] == 23600
    assert shop.inventory("SKU-1") == {"available": 8, "reserved": 0, "sold": 2, "received": 10}
    apply_payment_event(shop.services, event)  # duplicate webhook
    failed = shop.gateway.settle(pay_id, "failed", "evt_late_fail")
    shop.gateway.settle(pay_id, "succeeded", "x")  # the gateway still says succeeded
    apply_payment_event(shop.services, failed)  # out of order
    again = _order(shop, "alice", placed["orderId"])
    assert again["status"] == "paid" and len(again["history"]) == 2
    assert shop.inventory("SKU-1")["sold"] == 2
    assert reconcile(shop.services).ok


def test_failed_payment_releases_stock(shop: Shop) -> None:
    placed = _placed(shop)
    event = shop.gateway.settle(placed["payment"]["paymentId"], "failed")
    apply_payment_event(shop.services, event)
    assert _order(shop, "alice", placed["orderId"])["status"] == "payment_failed"
    assert shop.inventory("SKU-1") == {"available": 10, "reserved": 0, "sold": 0, "received": 10}
    assert reconcile(shop.services).ok


def test_cancel_after_payment_refunds_and_restocks(shop: Shop) -> None:
    placed = _placed(shop)
    apply_payment_event(
        shop.services, shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    )
    r = shop.client.post(f"/api/orders/{placed['orderId']}/cancel", headers=shop.headers("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled" and body["refunded"]["amount"] == 23600
    assert shop.gateway.captured_total() == 0
    assert shop.inventory("SKU-1") == {"available": 10, "reserved": 0, "sold": 0, "received": 10}
    again = shop.client.post(
        f"/api/orders/{placed['orderId']}/cancel", headers=shop.headers("alice")
    )
    assert again.status_code == 200 and len(shop.gateway.refunds) == 1
    assert reconcile(shop.services).ok


def test_the_shop_cancels_a_paid_order_once_with_a_refund_and_an_audit_record(
    shop: Shop,
) -> None:
    placed = _placed(shop)
    oid = placed["orderId"]
    apply_payment_event(
        shop.services, shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    )
    path = f"/api/admin/orders/{oid}/cancel"
    assert shop.client.post(path, headers=shop.headers("alice")).status_code == 403
    assert (
        shop.client.post(
            path, json={"reason": ""}, headers=shop.headers("boss", admin=True)
        ).status_code
        == 422
    )
    assert (
        shop.client.get(f"/api/orders/{oid}", headers=shop.headers("alice")).json()["status"]
        == "paid"
    )
    for _ in range(2):
        r = shop.client.post(
            path, json={"reason": "address unreachable"}, headers=shop.headers("boss", admin=True)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "cancelled" and body["customerId"] == "alice"
        assert body["refunded"]["amount"] == 23600
    assert len(shop.gateway.refunds) == 1
    assert shop.inventory("SKU-1") == {"available": 10, "reserved": 0, "sold": 0, "received": 10}
    audit = shop.services.documents.container("audit").query(
        Query(filters=[Filter("actorId", "eq", "boss")]), partition_key="boss"
    )
    cancels = [r["target"]["orderId"] for r in audit.items if r["action"] == "order.cancel"]
    assert cancels == [oid, oid]
    assert reconcile(shop.services).ok


def test_other_customers_cannot_see_cancel_or_return(shop: Shop) -> None:
    placed = _placed(shop)
    mallory = shop.headers("mallory")
    oid = placed["orderId"]
    assert shop.client.get(f"/api/orders/{oid}", headers=mallory).status_code == 404
    assert shop.client.post(f"/api/orders/{oid}/cancel", headers=mallory).status_code == 404
    ret = {"lines": [{"sku": "SKU-1", "quantity": 1}], "reason": "x"}
    assert (
        shop.client.post(f"/api/orders/{oid}/returns", json=ret, headers=mallory).status_code == 404
    )
    assert shop.client.get("/api/orders", headers=mallory).json()["items"] == []


def test_return_then_refund_of_chosen_lines(shop: Shop) -> None:
    placed = _placed(shop)
    oid = placed["orderId"]
    apply_payment_event(
        shop.services, shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    )
    admin = shop.headers("boss", admin=True)
    early = shop.client.post(
        f"/api/orders/{oid}/returns",
        headers=shop.headers("alice"),
        json={"lines": [{"sku": "SKU-1", "quantity": 1}], "reason": "x"},
    )
    assert early.status_code == 409 and early.json()["to"] == "return_requested"
    for status in ("fulfilling", "shipped", "delivered"):
        r = shop.client.post(
            f"/api/admin/orders/{oid}/status", json={"status": status}, headers=admin
        )
        assert r.status_code == 200, r.text
    bad = shop.client.post(
        f"/api/admin/orders/{oid}/status", json={"status": "fulfilling"}, headers=admin
    )
    assert bad.status_code == 409
    r = shop.client.post(
        f"/api/orders/{oid}/returns",
        headers=shop.headers("alice"),
        json={"lines": [{"sku": "SKU-1", "quantity": 1}], "reason": "too big"},
    )
    assert r.status_code == 200 and r.json()["status"] == "return_requested"
    r = shop.client.post(
        f"/api/admin/orders/{oid}/status", json={"status": "returned"}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = shop.client.post(
        f"/api/admin/orders/{oid}/refunds",
        json={"lines": [{"sku": "SKU-1", "quantity": 1}]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refunded" and r.json()["refunded"]["amount"] == 11800
    too_much = shop.client.post(
        f"/api/admin/orders/{oid}/refunds",
        json={"lines": [{"sku": "SKU-1", "quantity": 2}]},
        headers=admin,
    )
    assert too_much.status_code == 409
    assert shop.inventory("SKU-1") == {"available": 9, "reserved": 0, "sold": 1, "received": 10}
    listed = shop.client.get("/api/admin/orders?status=refunded", headers=admin).json()
    assert [o["orderId"] for o in listed["items"]] == [oid]
    assert reconcile(shop.services).ok


def test_expiry_cancels_unpaid_orders_and_late_payment_is_refunded(shop: Shop) -> None:
    shop.services.settings.payment_window_minutes = 0.0001
    placed = _placed(shop)
    time.sleep(0.05)
    assert expire_orders(shop.services) == 1
    assert expire_orders(shop.services) == 0
    order = _order(shop, "alice", placed["orderId"])
    assert order["status"] == "cancelled" and order["history"][-1]["reason"] == "payment_expired"
    assert shop.inventory("SKU-1")["available"] == 10
    pay_id = placed["payment"]["paymentId"]
    assert shop.gateway.payments[pay_id].status == "cancelled"
    # the customer paid anyway (gateway raced the cancel): refunded automatically
    apply_payment_event(shop.services, shop.gateway.settle(pay_id, "succeeded"))
    order = _order(shop, "alice", placed["orderId"])
    assert order["status"] == "cancelled" and order["refunded"]["amount"] == 23600
    assert reconcile(shop.services).ok


def test_reconcile_reports_drift(shop: Shop) -> None:
    _placed(shop)
    inv = shop.services.documents.container("inventory")
    from cloudcart.core.ports.documents import PatchOp

    inv.patch("SKU-1", "SKU-1", [PatchOp("incr", "onHand", 1)])
    report = reconcile(shop.services)
    assert not report.ok and any("received" in p for p in report.problems)


def test_reconcile_waits_for_the_wms_answer_to_a_fresh_move_only(shop: Shop) -> None:
    from datetime import timedelta

    from cloudcart.core.clock import utcnow
    from cloudcart.inventory import record_partner_figure

    placed = _placed(shop)
    record_partner_figure(shop.services.documents, "SKU-1", 10, 1)  # before the sale
    apply_payment_event(
        shop.services, shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    )

    def wms_problems(minutes: int) -> list[str]:
        report = reconcile(shop.services, now=utcnow() + timedelta(minutes=minutes))
        return [p for p in report.problems if "WMS" in p]

    # Our on-hand fell to 8 after the WMS said 10: its answer may still be on its way.
    assert wms_problems(0) == []
    assert wms_problems(6) == ["SKU-1: on hand 8 but the WMS last said 10"]
    record_partner_figure(shop.services.documents, "SKU-1", 8, 2)
    assert wms_problems(6) == []
    # The WMS spoke after our last move and disagrees: no grace.
    record_partner_figure(shop.services.documents, "SKU-1", 7, 3)
    assert wms_problems(0) == ["SKU-1: on hand 8 but the WMS last said 7"]


def test_orders_list_is_newest_first_with_a_cursor(shop: Shop) -> None:
    shop.stock("SKU-1", 10)
    ids = []
    for i in range(3):
        shop.add_to_cart("zed", "SKU-1", 1)
        ids.append(shop.checkout("zed", f"k{i}")[1]["orderId"])
    h = shop.headers("zed")
    first = shop.client.get("/api/orders?limit=2", headers=h).json()
    rest = shop.client.get(f"/api/orders?limit=2&cursor={first['nextCursor']}", headers=h).json()
    got = [o["orderId"] for o in first["items"] + rest["items"]]
    assert got == list(reversed(ids)) and rest["nextCursor"] is None


def test_anonymous_cart_merges_on_sign_in(shop: Shop) -> None:
    shop.stock("A", 3, price=500)
    r = shop.client.post("/api/cart/items", json={"sku": "A", "quantity": 2})
    cart_id = r.headers["X-Cart-Id"]
    assert r.json()["subtotal"] == {"amount": 1000, "currency": "INR"}
    assert (
        shop.client.post(
            "/api/cart/items", json={"sku": "nope", "quantity": 1}, headers={"X-Cart-Id": cart_id}
        ).status_code
        == 404
    )
    shop.add_to_cart("amy", "A", 2)
    merged = shop.client.get("/api/cart", headers={**shop.headers("amy"), "X-Cart-Id": cart_id})
    assert merged.json()["items"][0]["quantity"] == 3  # 2 + 2 capped at the 3 available
    anon = shop.client.get("/api/cart", headers={"X-Cart-Id": cart_id}).json()
    assert anon["items"] == []
    assert (
        shop.client.post(
            "/api/cart/items", json={"sku": "A", "quantity": 100}, headers=shop.headers("amy")
        ).status_code
        == 422
    )


def test_every_outbox_event_matches_its_documented_schema(shop: Shop) -> None:
    import json
    from pathlib import Path

    import jsonschema_rs

    from cloudcart.core.ports.documents import Filter, Query

    docs = Path(__file__).resolve().parents[3] / "docs" / "events"
    envelope = json.loads((docs / "event.schema.json").read_text())
    registry = jsonschema_rs.Registry([(envelope["$id"], envelope)])
    placed = _placed(shop)
    apply_payment_event(
        shop.services, shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    )
    shop.client.post(f"/api/orders/{placed['orderId']}/cancel", headers=shop.headers("alice"))
    events = (
        shop.services.documents.container("orders")
        .query(Query(filters=[Filter("kind", "eq", "outbox")], limit=100))
        .items
    )
    types = {e["event"]["type"] for e in events}
    assert {
        "order.placed",
        "inventory.reserved",
        "order.paid",
        "order.cancelled",
        "inventory.released",
        "refund.issued",
    } <= types
    for doc in events:
        event = doc["event"]
        schema = json.loads((docs / f"{event['type']}.schema.json").read_text())
        validator = jsonschema_rs.validator_for(schema, registry=registry)
        assert validator.is_valid(event), (event["type"], list(validator.iter_errors(event)))
