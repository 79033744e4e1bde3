"""Partner integration over real HTTP against `cloudcart serve` and its simulators: a paid
order travels to the fulfilment centre and back, survives a partner outage and a SIGKILL
mid-call with exactly one request at the partner; inbound messages apply once and in order,
invalid ones dead-letter with their reason; the WMS's counts are applied in sequence, a
shortfall raises its alert, and search stops offering the last unit within 2 s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serving import ServeProcess
from tests.e2e.shop import ShopClient, wait_for

pytestmark = pytest.mark.e2e

ENV = {
    "CLOUDCART_LOG_LEVEL": "INFO",
    "SIM_FULFILMENT_SHIP_SECONDS": "1",
    "SIM_FULFILMENT_DELIVER_SECONDS": "2",
    # Short waits between attempts keep an outage test quick; the shape of retrying is
    # the same as with the defaults.
    "PARTNER_MAX_RETRY_WAIT_SECONDS": "1",
}


class Shop(ShopClient):
    """The shared client, with the partner simulators' dev routes."""

    def wait_status(self, sub: str, order_id: str, status: str, timeout: float = 30) -> Any:
        return wait_for(
            f"order {order_id} to be {status}",
            lambda: (o := self.order(sub, order_id))["status"] == status and o,
            timeout,
        )

    def requests(self, order_id: str) -> list[dict[str, Any]]:
        r = self.http.get(
            "/dev/partners/fulfilment/requests", params={"orderId": order_id}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def send(self, queue: str, body: dict[str, Any], message_id: str | None = None) -> None:
        headers = {**self.admin, **({"X-Message-Id": message_id} if message_id else {})}
        r = self.http.post(f"/dev/partners/queues/{queue}/messages", json=body, headers=headers)
        assert r.status_code == 202, r.text

    def stock(self, sku: str) -> dict[str, Any]:
        r = self.http.get(f"/api/admin/inventory/{sku}", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _start(tmp: Path, name: str) -> ServeProcess:
    server = ServeProcess(data_dir=tmp / name, log_path=tmp / f"{name}.log", env=dict(ENV))
    return server.start()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    server = _start(tmp_path_factory.mktemp("partners-e2e"), "main")
    try:
        client = Shop(server)
        yield client
        client.close()
    finally:
        server.stop()


def _statuses(order: dict[str, Any]) -> list[str]:
    return [step["status"] for step in order["timeline"]]


def _message(type_: str, order_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "schemaVersion": 1,
        "eventId": event_id,
        "occurredAt": "2030-01-01T12:00:00Z",
        "orderId": order_id,
        **fields,
    }


def _count(sku: str, event_id: str, on_hand: int, sequence: int) -> dict[str, Any]:
    return {
        "type": "stock.adjusted",
        "schemaVersion": 1,
        "eventId": event_id,
        "occurredAt": "2030-01-01T12:00:00Z",
        "sku": sku,
        "onHand": on_hand,
        "sequence": sequence,
        "reason": "cycle count",
    }


def test_paid_order_travels_to_delivery_with_tracking(shop: Shop) -> None:
    shop.product("TRAVEL-1", 5)
    placed = shop.buy("traveller", "TRAVEL-1", 2)
    oid = placed["orderId"]
    shop.pay(placed)
    order = shop.wait_status("traveller", oid, "delivered")
    assert _statuses(order) == ["pending_payment", "paid", "fulfilling", "shipped", "delivered"]
    (parcel,) = order["fulfilments"]
    assert parcel["status"] == "delivered" and parcel["carrier"]
    assert parcel["trackingNumber"] and parcel["trackingUrl"].startswith("http")
    assert parcel["lines"] == [{"sku": "TRAVEL-1", "quantity": 2}]
    (request,) = shop.requests(oid)
    assert request["idempotencyKey"] == f"fulfilment-request:{oid}"
    admin_view = shop.http.get(f"/api/admin/orders/{oid}", headers=shop.admin).json()
    assert admin_view["fulfilments"] == order["fulfilments"]
    assert admin_view["timeline"] == order["timeline"]


def test_outage_during_payment_still_ends_in_one_request(shop: Shop) -> None:
    shop.product("OUTAGE-1", 3)
    placed = shop.buy("patient", "OUTAGE-1")
    oid = placed["orderId"]
    r = shop.http.post("/dev/partners/fulfilment/outage", json={"seconds": 6}, headers=shop.admin)
    assert r.status_code == 200, r.text
    shop.pay(placed)
    assert shop.wait_status("patient", oid, "paid")["status"] == "paid"
    links = shop.http.get("/api/admin/integrations", headers=shop.admin).json()["items"]
    failure = wait_for(
        "the outage to show in the link status",
        lambda: next(
            (
                link["lastFailure"]
                for link in shop.http.get("/api/admin/integrations", headers=shop.admin).json()[
                    "items"
                ]
                if link["partner"] == "fulfilment" and link["lastFailure"]
            ),
            None,
        ),
    )
    assert "503" in failure["reason"] and links
    shop.wait_status("patient", oid, "fulfilling", timeout=60)
    assert len(shop.requests(oid)) == 1
    assert shop.dead_letters("events") == [] or all(
        d["subscription"] != "fulfilment" for d in shop.dead_letters("events")
    )


def test_duplicate_and_out_of_order_updates_end_right(shop: Shop) -> None:
    r = shop.http.put("/dev/partners/fulfilment/auto", json={"ship": False}, headers=shop.admin)
    assert r.status_code == 200, r.text
    try:
        shop.product("ORDERLY-1", 4)
        placed = shop.buy("orderly", "ORDERLY-1", 2)
        oid = placed["orderId"]
        shop.pay(placed)
        shop.wait_status("orderly", oid, "fulfilling")
        request_id = shop.requests(oid)[0]["requestId"]
        queue = "fulfilment-updates"
        delivered = _message(
            "shipment.delivered", oid, "ext-d1", requestId=request_id, shipmentId="P1"
        )
        shipped = _message(
            "shipment.shipped",
            oid,
            "ext-s1",
            requestId=request_id,
            shipmentId="P1",
            carrier="BlueDart",
            trackingNumber="BD123",
            trackingUrl="https://track.example/BD123",
            lines=[{"sku": "ORDERLY-1", "quantity": 2}],
        )
        shop.send(queue, delivered, "m-d1")
        shop.send(queue, shipped, "m-s1")
        shop.send(queue, shipped, "m-s1-again")  # the partner resent the same event
        shop.send(queue, delivered, "m-d1")  # a repeated message id
        order = shop.wait_status("orderly", oid, "delivered")
        time.sleep(1.0)  # let the repeats arrive too
        order = shop.order("orderly", oid)
        assert _statuses(order) == [
            "pending_payment",
            "paid",
            "fulfilling",
            "shipped",
            "delivered",
        ]
        assert [(f["id"], f["trackingNumber"]) for f in order["fulfilments"]] == [("P1", "BD123")]
    finally:
        shop.http.put("/dev/partners/fulfilment/auto", json={"ship": True}, headers=shop.admin)


def test_invalid_update_dead_letters_with_its_reason_and_changes_nothing(shop: Shop) -> None:
    shop.product("BAD-1", 2)
    placed = shop.buy("bad-sender", "BAD-1")
    oid = placed["orderId"]
    before = shop.order("bad-sender", oid)
    bad = _message("shipment.shipped", oid, "bad-1", requestId="r", shipmentId="P9", carrier="X")
    bad["trackingNumber"] = "T1"
    bad["lines"] = [{"sku": "BAD-1", "quantity": -1}]
    shop.send("fulfilment-updates", bad, "bad-message-1")
    letter = wait_for(
        "the dead letter",
        lambda: next(
            (
                d
                for d in shop.dead_letters("fulfilment-updates")
                if d["messageId"] == "bad-message-1"
            ),
            None,
        ),
    )
    assert letter["reason"] == "SchemaValidationFailed"
    assert "lines.0.quantity" in letter["description"]
    assert letter["deliveryCount"] == 1
    assert shop.order("bad-sender", oid) == before


def test_stock_counts_apply_in_sequence_and_a_shortfall_alerts(shop: Shop) -> None:
    shop.product("COUNT-1", 5)
    queue = "inventory-updates"
    shop.send(queue, _count("COUNT-1", "cnt-10", 7, 10_000))
    wait_for("the count", lambda: shop.stock("COUNT-1")["onHand"] == 7)
    shop.send(queue, _count("COUNT-1", "cnt-9", 100, 9_999))  # older, arrived late
    shop.send(queue, _count("COUNT-1", "cnt-10", 7, 10_000))  # repeated
    time.sleep(1.5)
    assert shop.stock("COUNT-1")["onHand"] == 7
    placed = shop.buy("short", "COUNT-1", 3)
    shop.send(queue, _count("COUNT-1", "cnt-11", 1, 10_001))
    stock = wait_for("the shortfall", lambda: (s := shop.stock("COUNT-1"))["shortfall"] and s)
    assert (stock["onHand"], stock["reserved"], stock["available"], stock["shortfall"]) == (
        1,
        3,
        0,
        2,
    )
    wait_for(
        "the shortfall alert",
        lambda: "operational alert: ops.stock_shortfall about COUNT-1" in shop.server.log(),
    )
    # The unpaid order keeps its reservation: nothing is cancelled by a count.
    assert shop.order("short", placed["orderId"])["status"] == "pending_payment"


def test_search_stops_offering_the_last_unit_within_two_seconds(shop: Shop) -> None:
    pid = shop.product("LAST-1", 1)

    def in_stock() -> bool | None:
        items = shop.http.get("/api/search", params={"q": "zephyr LAST-1"}).json()["items"]
        found = [i for i in items if i["productId"] == pid]
        return bool(found[0]["inStock"]) if found else None

    wait_for("the product in search", lambda: in_stock() is True)
    placed = shop.buy("last-buyer", "LAST-1")
    shop.pay(placed)
    wait_for(
        "the payment",
        lambda: shop.order("last-buyer", placed["orderId"])["status"] != "pending_payment",
    )
    sold = time.monotonic()
    wait_for("search to say out of stock", lambda: in_stock() is False, timeout=2.0)
    assert time.monotonic() - sold <= 2.0
    detail = shop.http.get(f"/api/catalog/products/{pid}").json()
    assert detail["variants"][0]["available"] == 0


def test_sigkill_mid_call_leaves_exactly_one_request(tmp_path: Path) -> None:
    server = _start(tmp_path, "killed")
    shop = Shop(server)
    try:
        shop.product("KILL-1", 2)
        placed = shop.buy("survivor", "KILL-1")
        oid = placed["orderId"]
        r = shop.http.post(
            "/dev/partners/fulfilment/latency", json={"seconds": 30}, headers=shop.admin
        )
        assert r.status_code == 200, r.text
        shop.pay(placed)
        # The partner has stored the request; its answer is still on the way.
        wait_for("the partner to receive the request", lambda: shop.requests(oid))
        server.kill()
        server.start()
        shop.close()
        shop = Shop(server)
        # The partner's own messages (accepted, shipped, delivered) may move it on first.
        wait_for(
            "the order to reach the partner",
            lambda: shop.order("survivor", oid)["status"] in ("fulfilling", "shipped", "delivered"),
            timeout=60,
        )
        # Once the crashed delivery's lock has run out, the connector sees it again.
        wait_for(
            "the redelivered order.paid to be handled",
            lambda: "fulfilment connector: order.paid" in server.log(),
            timeout=60,
        )
        assert len(shop.requests(oid)) == 1
    finally:
        shop.close()
        server.stop()
