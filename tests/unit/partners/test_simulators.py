"""The HTTP adapters against the real partner simulators (loopback, SQLite state)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudcart.core.ports.messages import OutboundMessage
from cloudcart.core.ports.partners import (
    CancelOutcome,
    FulfilmentRequest,
    PartnerLine,
    PartnerRejected,
    PartnerUnavailable,
    StockFigure,
    StockMove,
    StockMoveKind,
)
from cloudcart.integrations.partners.http import (
    ApiKeyAuth,
    HttpFulfilmentPartner,
    HttpInventoryPartner,
    PartnerAuth,
    PartnerHttpClient,
)
from cloudcart.integrations.partners.messages import (
    FULFILMENT_MESSAGES,
    INVENTORY_MESSAGES,
    ShipmentAccepted,
    ShipmentDelivered,
    ShipmentShipped,
)
from cloudcart.integrations.partners.simulators import (
    FulfilmentSimulator,
    WarehouseSimulator,
    publisher_sender,
)

REPO = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 5.0


def _request(order_id: str = "ord-1", quantity: int = 2) -> FulfilmentRequest:
    return FulfilmentRequest(
        order_id=order_id,
        lines=(PartnerLine("SKU-1", quantity), PartnerLine("SKU-2", 1)),
        shipping_address={"name": "Ada", "line1": "1 Loop St", "city": "Pune", "country": "IN"},
        shipping_method="standard",
        currency="INR",
        placed_at="2030-01-01T12:00:00Z",
    )


class Outbox:
    """Records what the simulators send; tests wait for a number of messages."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str]] = []
        self._changed = threading.Condition()

    def send(self, queue: str, body: dict[str, Any], message_id: str) -> None:
        with self._changed:
            self.sent.append((queue, body, message_id))
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[dict[str, Any]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.sent) >= count, timeout):
                raise AssertionError(f"expected {count} message(s), got {self.types()}")
            return [body for _, body, _ in self.sent]

    def types(self) -> list[str]:
        with self._changed:
            return [body["type"] for _, body, _ in self.sent]


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def started() -> Iterator[list[Any]]:
    simulators: list[Any] = []
    yield simulators
    for simulator in simulators:
        simulator.stop()


@pytest.fixture
def fulfilment(
    tmp_path: Path, outbox: Outbox, started: list[Any]
) -> Callable[..., FulfilmentSimulator]:
    def make(**options: Any) -> FulfilmentSimulator:
        options.setdefault("ship_seconds", 60)
        options.setdefault("deliver_seconds", 120)
        simulator = FulfilmentSimulator(tmp_path, outbox.send, "fulfilment-updates", **options)
        started.append(simulator.start())
        return simulator

    return make


@pytest.fixture
def warehouse(
    tmp_path: Path, outbox: Outbox, started: list[Any]
) -> Callable[..., WarehouseSimulator]:
    def make(**options: Any) -> WarehouseSimulator:
        simulator = WarehouseSimulator(tmp_path, outbox.send, "inventory-updates", **options)
        started.append(simulator.start())
        return simulator

    return make


def _client(
    base_url: str,
    *,
    auth: PartnerAuth | None = None,
    max_attempts: int = 3,
    max_retry_wait: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> PartnerHttpClient:
    return PartnerHttpClient(
        base_url,
        auth=auth,
        timeout=5.0,
        max_attempts=max_attempts,
        max_retry_wait=max_retry_wait,
        sleep=sleep,
    )


# --- fulfilment ----------------------------------------------------------------------------


def test_one_key_makes_one_request_with_identical_answers(fulfilment) -> None:
    simulator = fulfilment()
    partner = HttpFulfilmentPartner(_client(simulator.base_url))

    first = partner.create_request(_request(), idempotency_key="ord-1:fulfil")
    again = partner.create_request(_request(), idempotency_key="ord-1:fulfil")

    assert first == again
    assert first.status == "accepted"
    [stored] = simulator.requests("ord-1")
    assert stored["requestId"] == first.request_id
    assert stored["idempotencyKey"] == "ord-1:fulfil"
    assert stored["lines"] == [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]
    assert stored["status"] == "accepted"


def test_replay_answers_200_with_the_same_body_and_reuse_with_another_body_422(fulfilment):
    simulator = fulfilment()
    body = {
        "orderId": "ord-1",
        "lines": [{"sku": "A", "quantity": 1}],
        "shippingAddress": {"city": "Pune"},
        "shippingMethod": "standard",
        "currency": "INR",
        "placedAt": "2030-01-01T12:00:00Z",
    }
    with httpx.Client(base_url=simulator.base_url) as http:
        first = http.post("/v1/fulfilment-requests", json=body, headers={"Idempotency-Key": "k"})
        again = http.post("/v1/fulfilment-requests", json=body, headers={"Idempotency-Key": "k"})
        other = http.post(
            "/v1/fulfilment-requests",
            json={**body, "shippingMethod": "express"},
            headers={"Idempotency-Key": "k"},
        )
        keyless = http.post("/v1/fulfilment-requests", json=body)
        listed = http.get("/v1/fulfilment-requests", params={"orderId": "ord-1"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["orderId"] == "ord-1"
    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"
    assert keyless.status_code == 400
    [item] = listed.json()["items"]
    assert item["requestId"] == first.json()["requestId"]
    assert set(item) == {"orderId", "requestId", "idempotencyKey", "lines", "receivedAt", "status"}


def test_another_key_makes_a_second_request(fulfilment) -> None:
    simulator = fulfilment()
    partner = HttpFulfilmentPartner(_client(simulator.base_url))

    first = partner.create_request(_request(), idempotency_key="k-1")
    second = partner.create_request(_request(), idempotency_key="k-2")

    assert first.request_id != second.request_id
    assert [r["idempotencyKey"] for r in simulator.requests("ord-1")] == ["k-1", "k-2"]


def test_a_key_reused_for_another_order_is_rejected(fulfilment) -> None:
    simulator = fulfilment()
    partner = HttpFulfilmentPartner(_client(simulator.base_url))
    partner.create_request(_request("ord-1"), idempotency_key="k")

    with pytest.raises(PartnerRejected) as caught:
        partner.create_request(_request("ord-2"), idempotency_key="k")

    assert caught.value.status == 422
    assert "different request" in caught.value.detail
    assert simulator.requests("ord-2") == []


def test_messages_are_valid_and_in_order(fulfilment, outbox: Outbox) -> None:
    simulator = fulfilment(ship_seconds=0.1, deliver_seconds=0.2)
    partner = HttpFulfilmentPartner(_client(simulator.base_url))

    accepted = partner.create_request(_request(), idempotency_key="k")
    bodies = outbox.wait_for(3)

    assert outbox.types() == ["shipment.accepted", "shipment.shipped", "shipment.delivered"]
    messages = [FULFILMENT_MESSAGES.validate_python(body) for body in bodies]
    assert all(
        isinstance(m, ShipmentAccepted | ShipmentShipped | ShipmentDelivered) for m in messages
    )
    assert {body["requestId"] for body in bodies} == {accepted.request_id}
    assert {m.order_id for m in messages} == {"ord-1"}
    assert [queue for queue, _, _ in outbox.sent] == ["fulfilment-updates"] * 3
    assert [mid for _, _, mid in outbox.sent] == [body["eventId"] for body in bodies]
    assert len({body["eventId"] for body in bodies}) == 3
    assert all(body["schemaVersion"] == 1 for body in bodies)
    assert all(body["occurredAt"].endswith("Z") for body in bodies)
    shipped, delivered = bodies[1], bodies[2]
    assert shipped["lines"] == [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}]
    assert shipped["carrier"] and shipped["trackingNumber"]
    assert shipped["trackingUrl"].startswith("https://")
    assert delivered["shipmentId"] == shipped["shipmentId"]
    assert simulator.requests("ord-1")[0]["status"] == "delivered"


def test_cancel_before_shipping_stops_the_shipment(fulfilment, outbox: Outbox) -> None:
    # Shipping held, so the cancellation is certain to come first.
    simulator = fulfilment(ship_seconds=0.1, deliver_seconds=0.2, auto_ship=False)
    partner = HttpFulfilmentPartner(_client(simulator.base_url))
    accepted = partner.create_request(_request(), idempotency_key="k")
    outbox.wait_for(1)

    outcome = partner.cancel_request(accepted.request_id, idempotency_key="k:cancel")
    again = partner.cancel_request(accepted.request_id, idempotency_key="k:cancel")
    simulator.set_auto_ship(True)
    time.sleep(0.4)  # past both due times: nothing may follow

    assert outcome == again == CancelOutcome(cancelled=True, status="cancelled")
    assert outbox.types() == ["shipment.accepted"]
    assert simulator.requests("ord-1")[0]["status"] == "cancelled"
    assert simulator.pending_messages() == []


def test_cancel_after_shipping_is_refused_with_the_status(fulfilment, outbox: Outbox) -> None:
    simulator = fulfilment(ship_seconds=0.1, deliver_seconds=60)
    partner = HttpFulfilmentPartner(_client(simulator.base_url))
    accepted = partner.create_request(_request(), idempotency_key="k")
    outbox.wait_for(2)

    outcome = partner.cancel_request(accepted.request_id, idempotency_key="k:cancel")

    assert outcome == CancelOutcome(cancelled=False, status="shipped")
    assert simulator.requests("ord-1")[0]["status"] == "shipped"
    assert [m["type"] for m in simulator.pending_messages()] == ["shipment.delivered"]


def test_cancel_of_an_unknown_request_is_rejected(fulfilment) -> None:
    simulator = fulfilment()
    partner = HttpFulfilmentPartner(_client(simulator.base_url))

    with pytest.raises(PartnerRejected) as caught:
        partner.cancel_request("fr-unknown", idempotency_key="c")

    assert caught.value.status == 404


def test_auto_shipping_can_be_held_and_resumed_over_http(fulfilment, outbox: Outbox) -> None:
    simulator = fulfilment(ship_seconds=0.1, deliver_seconds=0.15)
    with httpx.Client(base_url=simulator.base_url) as http:
        assert http.put("/sim/auto", json={"ship": False}).json() == {"ship": False}
        HttpFulfilmentPartner(_client(simulator.base_url)).create_request(
            _request(), idempotency_key="k"
        )
        outbox.wait_for(1)
        time.sleep(0.3)
        assert outbox.types() == ["shipment.accepted"]

        http.put("/sim/auto", json={"ship": True})
        bodies = outbox.wait_for(3)

    assert outbox.types() == ["shipment.accepted", "shipment.shipped", "shipment.delivered"]
    # Held shipments are stamped with the moment they went out, not when they were due.
    stamps = [datetime.fromisoformat(body["occurredAt"]) for body in bodies]
    assert stamps == sorted(stamps)
    assert (stamps[1] - stamps[0]).total_seconds() >= 0.3


def test_the_adapter_retries_through_a_short_outage(fulfilment) -> None:
    simulator = fulfilment()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    partner = HttpFulfilmentPartner(
        _client(simulator.base_url, max_attempts=50, max_retry_wait=0.02, sleep=sleep)
    )
    with httpx.Client(base_url=simulator.base_url) as http:
        assert http.post("/sim/outage", json={"seconds": 0.2}).status_code == 200
        refused = http.get("/v1/fulfilment-requests")

    accepted = partner.create_request(_request(), idempotency_key="k")

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert accepted.status == "accepted"
    assert waits and all(wait == 0.02 for wait in waits)  # Retry-After: 1, capped
    assert len(simulator.requests()) == 1


def test_a_long_outage_runs_the_attempts_out(fulfilment) -> None:
    simulator = fulfilment()
    waits: list[float] = []
    partner = HttpFulfilmentPartner(
        _client(simulator.base_url, max_attempts=3, max_retry_wait=10, sleep=waits.append)
    )
    simulator.outage(60)

    with pytest.raises(PartnerUnavailable, match="503"):
        partner.create_request(_request(), idempotency_key="k")

    assert waits == [1.0, 1.0]
    simulator.outage(0)
    assert partner.create_request(_request(), idempotency_key="k").status == "accepted"


def test_a_restart_keeps_requests_keys_and_schedules(tmp_path: Path, outbox: Outbox) -> None:
    first = FulfilmentSimulator(
        tmp_path, outbox.send, ship_seconds=0.3, deliver_seconds=0.4
    ).start()
    port = first.port
    partner = HttpFulfilmentPartner(_client(f"http://127.0.0.1:{port}"))
    try:
        accepted = partner.create_request(_request(), idempotency_key="k")
        outbox.wait_for(1)
    finally:
        first.stop()

    second = FulfilmentSimulator(
        tmp_path, outbox.send, ship_seconds=0.3, deliver_seconds=0.4, port=port
    ).start()
    try:
        again = partner.create_request(_request(), idempotency_key="k")
        outbox.wait_for(3)
        assert again == accepted
        assert len(second.requests()) == 1
        assert outbox.types() == ["shipment.accepted", "shipment.shipped", "shipment.delivered"]
    finally:
        second.stop()


def test_a_killed_simulator_still_knows_its_keys(tmp_path: Path, outbox: Outbox) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cloudcart.integrations.partners.simulators import FulfilmentSimulator\n"
        "sim = FulfilmentSimulator(Path(sys.argv[1]), lambda q, b, m: None,\n"
        "                          ship_seconds=3600, deliver_seconds=3600).start()\n"
        "print(sim.base_url, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        partner = HttpFulfilmentPartner(_client(base_url))
        accepted = partner.create_request(_request(), idempotency_key="k")
    finally:
        process.kill()  # SIGKILL: no shutdown code runs
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    restarted = FulfilmentSimulator(
        tmp_path, outbox.send, ship_seconds=3600, deliver_seconds=3600
    ).start()
    try:
        partner = HttpFulfilmentPartner(_client(restarted.base_url))
        assert partner.create_request(_request(), idempotency_key="k") == accepted
        assert len(restarted.requests()) == 1
        assert [m["type"] for m in restarted.pending_messages()] == [
            "shipment.shipped",
            "shipment.delivered",
        ]
    finally:
        restarted.stop()


# --- warehouse -----------------------------------------------------------------------------


def _move(kind: StockMoveKind, quantity: int = 0, on_hand: int | None = None) -> StockMove:
    return StockMove(
        sku="SKU-1",
        kind=kind,
        quantity=quantity,
        reference="ord-1",
        occurred_at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
        on_hand=on_hand,
    )


def test_stock_moves_change_the_figures(warehouse) -> None:
    simulator = warehouse()
    partner = HttpInventoryPartner(_client(simulator.base_url))
    moves = [
        (_move("set", on_hand=10), (10, 0)),
        (_move("reserve", 3), (10, 3)),
        (_move("sale", 2), (8, 1)),
        (_move("release", 5), (8, 0)),  # never below 0
        (_move("return", 1), (9, 0)),
        (_move("reserve", 4), (9, 4)),
        (_move("adjust", on_hand=7), (7, 4)),
    ]

    figures = [
        partner.record_move(move, idempotency_key=f"m-{n}") for n, (move, _) in enumerate(moves)
    ]

    expected = [
        StockFigure(sku="SKU-1", on_hand=on_hand, sequence=n + 1, extra={"reserved": reserved})
        for n, (_, (on_hand, reserved)) in enumerate(moves)
    ]
    assert figures == expected
    assert partner.stock("SKU-1") == expected[-1]
    assert partner.stock("SKU-unknown") is None


def test_a_repeated_key_is_applied_once(warehouse) -> None:
    simulator = warehouse()
    partner = HttpInventoryPartner(_client(simulator.base_url))
    partner.record_move(_move("set", on_hand=10), idempotency_key="set")

    first = partner.record_move(_move("reserve", 3), idempotency_key="ord-1:reserve")
    again = partner.record_move(_move("reserve", 3), idempotency_key="ord-1:reserve")

    assert first == again
    assert first.extra["reserved"] == 3
    assert len(simulator.movements("SKU-1")) == 2
    with pytest.raises(PartnerRejected) as caught:
        partner.record_move(_move("reserve", 4), idempotency_key="ord-1:reserve")
    assert caught.value.status == 422


def test_an_absolute_move_needs_on_hand(warehouse) -> None:
    simulator = warehouse()
    partner = HttpInventoryPartner(_client(simulator.base_url))

    with pytest.raises(PartnerRejected) as caught:
        partner.record_move(_move("set"), idempotency_key="k")

    assert caught.value.status == 422
    assert "onHand" in caught.value.detail


def test_a_count_at_the_warehouse_sends_stock_adjusted(warehouse, outbox: Outbox) -> None:
    simulator = warehouse()
    partner = HttpInventoryPartner(_client(simulator.base_url))
    before = partner.record_move(_move("set", on_hand=10), idempotency_key="k")

    with httpx.Client(base_url=simulator.base_url) as http:
        answer = http.post("/sim/stock/SKU-1", json={"onHand": 4, "reason": "cycle count"})
    [body] = outbox.wait_for(1)

    message = INVENTORY_MESSAGES.validate_python(body)
    assert answer.status_code == 200
    assert message.sku == "SKU-1"
    assert message.on_hand == 4
    assert message.sequence > before.sequence
    assert message.reason == "cycle count"
    assert outbox.sent[0][0] == "inventory-updates"
    assert outbox.sent[0][2] == body["eventId"]
    assert partner.stock("SKU-1") == StockFigure(
        sku="SKU-1", on_hand=4, sequence=message.sequence, extra={"reserved": 0}
    )


def test_the_warehouse_keeps_figures_and_keys_across_a_restart(
    tmp_path: Path, outbox: Outbox
) -> None:
    first = WarehouseSimulator(tmp_path, outbox.send).start()
    try:
        partner = HttpInventoryPartner(_client(first.base_url))
        figure = partner.record_move(_move("set", on_hand=5), idempotency_key="k")
    finally:
        first.stop()
    second = WarehouseSimulator(tmp_path, outbox.send).start()
    try:
        partner = HttpInventoryPartner(_client(second.base_url))
        assert partner.record_move(_move("set", on_hand=5), idempotency_key="k") == figure
        assert partner.stock("SKU-1") == figure
    finally:
        second.stop()


# --- authentication and wiring -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fulfilment", "warehouse"])
def test_the_api_key_is_enforced(fulfilment, warehouse, kind: str) -> None:
    simulator = (fulfilment if kind == "fulfilment" else warehouse)(api_key="sim-key")
    keyless = HttpInventoryPartner(_client(simulator.base_url))
    wrong = HttpInventoryPartner(_client(simulator.base_url, auth=ApiKeyAuth("nope")))
    right = HttpInventoryPartner(_client(simulator.base_url, auth=ApiKeyAuth("sim-key")))

    for partner in (keyless, wrong):
        with pytest.raises(PartnerRejected) as caught:
            partner.stock("SKU-1")
        assert caught.value.status == 401

    if kind == "warehouse":
        assert right.stock("SKU-1") is None
    else:
        fulfilment_partner = HttpFulfilmentPartner(right.client)
        assert fulfilment_partner.create_request(_request(), idempotency_key="k").status
    with httpx.Client(base_url=simulator.base_url) as http:
        assert http.post("/sim/outage", json={"seconds": 0}).status_code == 200


def test_publisher_sender_publishes_as_the_partner_would() -> None:
    published: list[tuple[str, Sequence[OutboundMessage]]] = []

    class Recorder:
        def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
            published.append((entity, messages))

        def check(self) -> None:
            pass

        def close(self) -> None:
            pass

    send = publisher_sender(Recorder())
    body = {"type": "stock.adjusted", "eventId": "evt-1"}

    send("inventory-updates", body, "evt-1")

    [(entity, [message])] = published
    assert entity == "inventory-updates"
    assert message == OutboundMessage(
        body=body, message_id="evt-1", subject="stock.adjusted", content_type="application/json"
    )


def test_a_failed_send_is_retried_and_nothing_overtakes_it(tmp_path: Path, outbox: Outbox) -> None:
    failures = [RuntimeError("the broker is down (test)")]

    def flaky(queue: str, body: dict[str, Any], message_id: str) -> None:
        if failures:
            raise failures.pop()
        outbox.send(queue, body, message_id)

    simulator = WarehouseSimulator(tmp_path, flaky).start()
    try:
        simulator.set_stock("SKU-1", 5, "receipt")
        simulator.set_stock("SKU-1", 4, "damage")
        bodies = outbox.wait_for(2)
    finally:
        simulator.stop()

    assert [(b["onHand"], b["sequence"], b["reason"]) for b in bodies] == [
        (5, 1, "receipt"),
        (4, 2, "damage"),
    ]
