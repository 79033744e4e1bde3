"""The orders area's export and erasure contributors: orders and cart exported, orders
anonymised (not deleted) for accounting, idempotency records and outbox copies scrubbed,
idempotent, safe against a concurrent webhook, and the state machine still works after."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    PatchOp,
    Query,
)
from cloudcart.customers import privacy as customers_privacy
from cloudcart.orders import privacy
from cloudcart.orders.payments import apply_payment_event
from cloudcart.orders.reconcile import reconcile
from tests.unit.orders.conftest import ADDRESS, Shop

CANCEL_REASON = "Moving to Pune, call me on +91 98765 43210"
PERSONAL = ("Asha", "MG Road", "560001", "Bengaluru", "98765", "Pune")


def _place(shop: Shop, sub: str, key: str, sku: str = "SKU-1", qty: int = 1) -> dict[str, Any]:
    shop.add_to_cart(sub, sku, qty)
    status, body = shop.checkout(sub, key)
    assert status == 201, body
    return body


def _partition(shop: Shop, container: str, partition_key: str) -> list[Document]:
    page = shop.services.documents.container(container).query(
        Query(limit=1000), partition_key=partition_key
    )
    return list(page.items)


def _ctx(shop: Shop, sub: str, store: DocumentStore | None = None) -> Any:
    return customers_privacy.PrivacyContext(
        sub, store or shop.services.documents, shop.services.settings
    )


def _erase(shop: Shop, sub: str) -> None:
    r = shop.client.delete("/api/me", headers=shop.headers(sub))
    assert r.status_code == 204, r.text


def test_create_app_registers_the_orders_contributors(shop: Shop) -> None:
    assert {"orders", "cart"} <= set(customers_privacy.export_contributors())
    assert {"orders", "cart"} <= set(customers_privacy.erasure_contributors())


def test_export_includes_orders_and_cart(shop: Shop) -> None:
    shop.stock("SKU-1", 10)
    shop.stock("SKU-2", 10, product="p2")
    placed = _place(shop, "alice", "k1")
    _place(shop, "bob", "kb")
    shop.add_to_cart("alice", "SKU-2", 3)
    r = shop.client.get("/api/me/export", headers=shop.headers("alice"))
    assert r.status_code == 200, r.text
    sections = r.json()["sections"]
    assert [o["id"] for o in sections["orders"]] == [placed["orderId"]]
    order = sections["orders"][0]
    assert order["shippingAddress"]["name"] == ADDRESS["name"]
    assert order["totals"]["total"] == placed["total"]["amount"]
    assert not any(k.startswith("_") for k in order)
    assert [(i["sku"], i["quantity"]) for i in sections["cart"]["items"]] == [("SKU-2", 3)]


def test_erasure_anonymises_every_order_of_that_customer_only(shop: Shop) -> None:
    shop.stock("SKU-1", 10, price=11800)
    paid = _place(shop, "alice", "k1", qty=2)
    pending = _place(shop, "alice", "k2")
    bobs = _place(shop, "bob", "kb")
    apply_payment_event(
        shop.services, shop.gateway.settle(paid["payment"]["paymentId"], "succeeded")
    )
    # A free-text cancel reason ends up in the history, the refund, the refund's guard
    # record and the order.cancelled event: all personal, all must go.
    r = shop.client.post(
        f"/api/orders/{paid['orderId']}/cancel",
        json={"reason": CANCEL_REASON},
        headers=shop.headers("alice"),
    )
    assert r.status_code == 200, r.text
    shop.add_to_cart("alice", "SKU-1", 1)
    before = {d["id"]: d for d in _partition(shop, "orders", "alice") if d.get("type") == "order"}

    _erase(shop, "alice")

    docs = _partition(shop, "orders", "alice")
    orders = {d["id"]: d for d in docs if d.get("type") == "order"}
    assert set(orders) == {paid["orderId"], pending["orderId"]}  # kept, not deleted
    for oid, order in orders.items():
        assert order["shippingAddress"] == {"country": "IN", "anonymized": True}
        assert order["anonymizedAt"]
        assert order["customerId"] == "alice"
        for kept in ("totals", "lines", "status", "payment", "capturedAmount", "createdAt"):
            assert order[kept] == before[oid][kept], kept
        assert [r["refundId"] for r in order["refunds"]] == [
            r["refundId"] for r in before[oid]["refunds"]
        ]
    assert orders[paid["orderId"]]["history"][-1]["reason"] == privacy.REDACTED
    records = [d for d in docs if d.get("type") == "idempotency"]
    assert len(records) == 2
    assert all("requestHash" not in d and d["anonymized"] for d in records)
    refund_records = _partition(shop, "processed", "orders-refunds")
    assert refund_records and all(d["result"]["reason"] == privacy.REDACTED for d in refund_records)
    leftovers = json.dumps(docs) + json.dumps(refund_records)
    assert not [p for p in PERSONAL if p in leftovers]
    assert _partition(shop, "carts", "alice") == []

    # Bob is untouched.
    bob_docs = _partition(shop, "orders", "bob")
    bob_order = next(d for d in bob_docs if d["id"] == bobs["orderId"])
    assert bob_order["shippingAddress"]["name"] == ADDRESS["name"]
    assert "anonymizedAt" not in bob_order
    assert all("requestHash" in d for d in bob_docs if d.get("type") == "idempotency")
    assert reconcile(shop.services).ok


def test_running_erasure_twice_writes_nothing_the_second_time(shop: Shop) -> None:
    shop.stock("SKU-1", 10)
    _place(shop, "alice", "k1")
    _erase(shop, "alice")
    etags = {d["id"]: d["_etag"] for d in _partition(shop, "orders", "alice")}
    _erase(shop, "alice")  # the route's retry
    privacy.anonymise_orders(_ctx(shop, "alice"))  # and the contributor on its own
    assert {d["id"]: d["_etag"] for d in _partition(shop, "orders", "alice")} == etags


def test_state_machine_and_refunds_still_work_after_anonymisation(shop: Shop) -> None:
    shop.stock("SKU-1", 10, price=11800)
    placed = _place(shop, "alice", "k1", qty=2)
    oid = placed["orderId"]
    _erase(shop, "alice")
    # A late webhook finds the order by id and moves it on.
    apply_payment_event(
        shop.services, shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    )
    admin = shop.headers("admin", admin=True)
    r = shop.client.post(
        f"/api/admin/orders/{oid}/status", json={"status": "fulfilling"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "fulfilling", r.text
    r = shop.client.post(f"/api/admin/orders/{oid}/refunds", json={"amount": 1000}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refunded"]["amount"] == 1000
    assert body["shippingAddress"] == {"country": "IN", "anonymized": True}
    assert reconcile(shop.services).ok


class _RacingContainer:
    """An `orders` container that lets another writer in just before the first batch or
    replace: the If-Match write of the erasure then meets a 412."""

    def __init__(self, inner: Container, before_first_write: Callable[[], None]) -> None:
        self._inner = inner
        self._hook: Callable[[], None] | None = before_first_write

    def _race(self) -> None:
        if self._hook is not None:
            hook, self._hook = self._hook, None
            hook()

    def batch(self, partition_key: str, operations: Sequence[BatchOp]) -> list[Document]:
        self._race()
        return self._inner.batch(partition_key, operations)

    def replace(self, document: Document, *, if_match: str | None = None) -> Document:
        self._race()
        return self._inner.replace(document, if_match=if_match)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RacingStore:
    def __init__(self, inner: DocumentStore, orders: _RacingContainer) -> None:
        self._inner = inner
        self._orders = orders

    def container(self, name: str) -> Any:
        return self._orders if name == "orders" else self._inner.container(name)


def test_a_webhook_racing_the_erasure_is_not_lost(shop: Shop) -> None:
    shop.stock("SKU-1", 10, price=11800)
    placed = _place(shop, "alice", "k1")
    event = shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    real = shop.services.documents
    racing = _RacingContainer(
        real.container("orders"), lambda: apply_payment_event(shop.services, event)
    )
    privacy.anonymise_orders(_ctx(shop, "alice", _RacingStore(real, racing)))  # type: ignore[arg-type]
    order = real.container("orders").read(placed["orderId"], "alice")
    assert order["status"] == "paid" and order["capturedAmount"] == placed["total"]["amount"]
    assert order["shippingAddress"] == {"country": "IN", "anonymized": True}


def test_a_write_racing_the_scrub_of_an_idempotency_record_is_kept(shop: Shop) -> None:
    shop.stock("SKU-1", 10)
    _place(shop, "alice", "k1")
    real = shop.services.documents
    record = next(d for d in _partition(shop, "orders", "alice") if d.get("type") == "idempotency")

    def concurrent_write() -> None:
        real.container("orders").patch(
            record["id"], "alice", [PatchOp("set", "leaseUntil", "concurrent")]
        )

    racing = _RacingContainer(real.container("orders"), concurrent_write)
    privacy.anonymise_orders(_ctx(shop, "alice", _RacingStore(real, racing)))  # type: ignore[arg-type]
    after = real.container("orders").read(record["id"], "alice")
    assert after["leaseUntil"] == "concurrent" and "requestHash" not in after


def test_redact_reasons_keeps_codes_and_drops_free_text() -> None:
    doc: dict[str, Any] = {
        "history": [{"reason": "payment_expired"}, {"reason": "Please call Asha"}],
        "refunds": [{"reason": "requested_by_admin"}],
        "note": {"reason": 3},
    }
    assert privacy.redact_reasons(doc)
    assert doc["history"] == [{"reason": "payment_expired"}, {"reason": privacy.REDACTED}]
    assert doc["refunds"] == [{"reason": "requested_by_admin"}]
    assert not privacy.redact_reasons(doc)
