"""The transactional outbox on the embedded store and broker: write, relay, sweep, functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from cloudcart import composition
from cloudcart.composition import Services
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.documents.registry import CONTAINERS, container_spec
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, Unavailable
from cloudcart.core.events import Event, new_event
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import Subscription, Topic, Topology
from cloudcart.core.outbox import (
    OUTBOX_CONTAINERS,
    RELAYED_EVENT_TTL_SECONDS,
    outbox_ops,
    relay,
    sweep,
    write_with_events,
)
from cloudcart.core.ports.documents import BatchOp, Container, Document, PatchOp
from cloudcart.core.ports.messages import ReceivedMessage
from tests.fakes.clock import ManualClock
from tests.fakes.publishers import FlakyPublisher

TOPIC = "events"
SUBSCRIPTION = "all"
TEST_TOPOLOGY = Topology(
    topics=(
        Topic(TOPIC, subscriptions=(Subscription(SUBSCRIPTION),)),
        Topic("ops", subscriptions=(Subscription(SUBSCRIPTION),)),
    )
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    s.ensure_containers()
    yield s
    s.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SqliteBroker]:
    b = SqliteBroker(tmp_path / "messages.sqlite3", TEST_TOPOLOGY)
    yield b
    b.close()


@pytest.fixture
def orders(store: SqliteDocumentStore) -> Container:
    return store.container("orders")


def _order(customer: str, order_id: str, **extra: Any) -> Document:
    return {"id": order_id, "kind": "order", "customerId": customer, "status": "placed", **extra}


def _place_order(orders: Container, customer: str, order_id: str) -> list[Event]:
    events = [
        new_event("order.placed", order_id, {"customerId": customer}, correlation_id="req_1"),
        new_event("payment.requested", order_id, {"amount": 4200}),
    ]
    write_with_events(orders, customer, [BatchOp("create", _order(customer, order_id))], events)
    return events


def _receive_all(broker: SqliteBroker) -> list[ReceivedMessage]:
    received: list[ReceivedMessage] = []
    while batch := broker.receive(TOPIC, SUBSCRIPTION, max_messages=50):
        received.extend(batch)
        for message in batch:
            broker.complete(message.lock_token)
    return received


def _feed(container: Container) -> list[Document]:
    return container.change_feed(None, max_items=1000).items


# --- writing -------------------------------------------------------------------------------


def test_state_and_events_are_written_in_one_batch(orders: Container) -> None:
    events = _place_order(orders, "cus_1", "ord_1")

    assert orders.read("ord_1", "cus_1")["status"] == "placed"
    for event in events:
        doc = orders.read(event.id, "cus_1")
        assert doc["kind"] == "outbox"
        assert doc["container"] == "orders"
        assert doc["customerId"] == "cus_1"
        assert doc["ttl"] == -1
        assert "relayedAt" not in doc
        assert Event.model_validate(doc["event"]) == event
        assert datetime.fromisoformat(doc["createdAt"]) <= datetime.now(UTC)


def test_a_failing_operation_writes_neither_state_nor_events(orders: Container) -> None:
    orders.create(_order("cus_1", "ord_dup"))
    event = new_event("order.placed", "ord_new", {})
    with pytest.raises(BatchFailed) as failure:
        write_with_events(
            orders,
            "cus_1",
            [
                BatchOp("create", _order("cus_1", "ord_new")),
                BatchOp("create", _order("cus_1", "ord_dup")),
            ],
            [event],
        )
    assert failure.value.index == 1 and isinstance(failure.value.cause, Conflict)
    with pytest.raises(NotFound):
        orders.read("ord_new", "cus_1")
    with pytest.raises(NotFound):
        orders.read(event.id, "cus_1")


def test_an_event_with_a_taken_id_fails_the_whole_batch(orders: Container) -> None:
    event = new_event("order.placed", "ord_1", {})
    write_with_events(orders, "cus_1", [BatchOp("create", _order("cus_1", "ord_1"))], [event])
    with pytest.raises(BatchFailed) as failure:
        write_with_events(orders, "cus_1", [BatchOp("create", _order("cus_1", "ord_2"))], [event])
    assert failure.value.index == 1
    with pytest.raises(NotFound):
        orders.read("ord_2", "cus_1")


def test_more_than_100_operations_are_rejected_before_the_store(orders: Container) -> None:
    ops = [BatchOp("create", _order("cus_1", f"ord_{i}")) for i in range(99)]
    events = [new_event("order.placed", "x", {}), new_event("order.placed", "y", {})]
    with pytest.raises(ValueError, match="at most 100"):
        write_with_events(orders, "cus_1", ops, events)
    assert orders.change_feed(None).items == []
    # Exactly 100 is fine.
    assert len(write_with_events(orders, "cus_1", ops, events[:1])) == 100


def test_outbox_ops_refuse_a_container_nobody_relays() -> None:
    with pytest.raises(ValueError, match="outbox"):
        outbox_ops(container_spec("sessions"), "s_1", [new_event("session.started", "s", {})])


def test_outbox_containers_come_from_the_registry() -> None:
    assert set(OUTBOX_CONTAINERS) == {
        "catalog",
        "inventory",
        "carts",
        "orders",
        "customers",
        "notifications",
        "insights",
        "ledger",
    }
    assert [s.name for s in CONTAINERS if s.outbox] == list(OUTBOX_CONTAINERS)


def test_outbox_documents_use_the_container_partition_key(store: SqliteDocumentStore) -> None:
    inventory = store.container("inventory")
    event = new_event("stock.reserved", "sku_1", {"qty": 2})
    write_with_events(
        inventory, "sku_1", [BatchOp("create", {"id": "sku_1", "sku": "sku_1"})], [event]
    )
    assert inventory.read(event.id, "sku_1")["sku"] == "sku_1"


# --- relaying ------------------------------------------------------------------------------


def test_change_feed_relay_delivers_each_event_once(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")

    count = relay(_feed(orders), publisher=broker, documents_store=store, topic=TOPIC)

    assert count == 2
    received = _receive_all(broker)
    assert [m.message_id for m in received] == [e.id for e in events]  # order preserved
    first = received[0]
    assert first.subject == "order.placed"
    assert first.correlation_id == "req_1"
    assert first.application_properties == {"eventVersion": 1, "subjectId": "ord_1"}
    assert Event.from_message_body(first.body) == events[0]
    for event in events:
        doc = orders.read(event.id, "cus_1")
        assert doc["ttl"] == RELAYED_EVENT_TTL_SECONDS == 7 * 86_400
        assert datetime.fromisoformat(doc["relayedAt"]) <= datetime.now(UTC)


def test_relaying_the_same_page_twice_delivers_once(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")
    page = _feed(orders)

    relay(page, publisher=broker, documents_store=store, topic=TOPIC)
    marked = {e.id: orders.read(e.id, "cus_1")["relayedAt"] for e in events}
    # The change-feed trigger retries a page after a crash: the stale copies still look
    # unrelayed, so they are published again and the topic drops them as duplicates.
    assert relay(page, publisher=broker, documents_store=store, topic=TOPIC) == 2

    assert [m.message_id for m in _receive_all(broker)] == [e.id for e in events]
    # The first mark stands (the second patch's condition no longer held).
    assert {e.id: orders.read(e.id, "cus_1")["relayedAt"] for e in events} == marked


def test_relay_ignores_relayed_and_other_documents(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    _place_order(orders, "cus_1", "ord_1")
    first = orders.change_feed(None, max_items=1000)
    relay(first.items, publisher=broker, documents_store=store, topic=TOPIC)
    _receive_all(broker)

    # The marks themselves show up in the change feed: already relayed, nothing to do.
    later = orders.change_feed(first.checkpoint, max_items=1000).items
    assert {d["kind"] for d in later} == {"outbox"}
    assert relay(later, publisher=broker, documents_store=store, topic=TOPIC) == 0
    orders.create(_order("cus_1", "ord_2"))
    assert (
        relay([orders.read("ord_2", "cus_1")], publisher=broker, documents_store=store, topic=TOPIC)
        == 0
    )
    assert _receive_all(broker) == []


def test_relay_accepts_functions_documents(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")
    documents = func.DocumentList(func.Document.from_dict(d) for d in _feed(orders))
    assert (
        relay(documents, publisher=broker, documents_store=store, topic=TOPIC, container="orders")
        == 2
    )
    assert [m.message_id for m in _receive_all(broker)] == [e.id for e in events]
    assert "relayedAt" in orders.read(events[0].id, "cus_1")


def test_failed_publish_raises_and_the_sweep_relays_later(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")
    flaky = FlakyPublisher(broker, failures=1)
    clock = ManualClock(datetime.now(UTC))

    with pytest.raises(Unavailable):
        relay(_feed(orders), publisher=flaky, documents_store=store, topic=TOPIC)
    assert all("relayedAt" not in orders.read(e.id, "cus_1") for e in events)
    assert _receive_all(broker) == []

    # Too recent: the change feed may still be on it.
    assert sweep(store, flaky, TOPIC, clock=clock) == 0
    clock.advance(seconds=61)
    assert sweep(store, flaky, TOPIC, clock=clock) == 2
    assert [m.message_id for m in _receive_all(broker)] == [e.id for e in events]
    assert all("relayedAt" in orders.read(e.id, "cus_1") for e in events)
    assert sweep(store, flaky, TOPIC, clock=clock) == 0
    assert flaky.calls == [(TOPIC, [e.id for e in events])] * 2


def test_sweep_covers_every_outbox_container_up_to_its_limit(
    store: SqliteDocumentStore, broker: SqliteBroker
) -> None:
    for customer in ("cus_1", "cus_2"):
        _place_order(store.container("orders"), customer, f"ord_{customer}")
    sku_event = new_event("stock.reserved", "sku_1", {})
    write_with_events(store.container("inventory"), "sku_1", [], [sku_event])
    clock = ManualClock(datetime.now(UTC))
    clock.advance(minutes=5)

    assert sweep(store, broker, TOPIC, limit=3, clock=clock) == 3
    assert sweep(store, broker, TOPIC, limit=3, clock=clock) == 2
    assert sweep(store, broker, TOPIC, limit=3, clock=clock) == 0
    received = _receive_all(broker)
    assert len(received) == len({m.message_id for m in received}) == 5
    assert sku_event.id in {m.message_id for m in received}


def test_sweep_raises_when_publishing_fails(
    store: SqliteDocumentStore, broker: SqliteBroker
) -> None:
    _place_order(store.container("orders"), "cus_1", "ord_1")
    clock = ManualClock(datetime.now(UTC))
    clock.advance(minutes=5)
    with pytest.raises(Unavailable):
        sweep(store, FlakyPublisher(broker, failures=5), TOPIC, clock=clock)
    assert sweep(store, broker, TOPIC, clock=clock) == 2


def test_a_hand_written_null_relayed_at_is_relayed_and_marked(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")
    orders.patch(events[0].id, "cus_1", [PatchOp("set", "relayedAt", None)])
    doc = orders.read(events[0].id, "cus_1")
    assert relay([doc], publisher=broker, documents_store=store, topic=TOPIC) == 1
    assert orders.read(events[0].id, "cus_1")["relayedAt"] is not None


# --- the functions -------------------------------------------------------------------------


def _blueprint_functions() -> dict[str, Any]:
    from cloudcart.ops.outbox_relay import bp

    app = func.FunctionApp()
    app.register_blueprint(bp)
    return {str(f.get_function_name()): f for f in app.get_functions()}


def test_blueprint_declares_one_change_feed_relay_per_outbox_container() -> None:
    functions = _blueprint_functions()
    relays = {n: f for n, f in functions.items() if n.startswith("outbox_relay_")}
    assert set(relays) == {f"outbox_relay_{c}" for c in OUTBOX_CONTAINERS}
    containers = []
    for name, function in relays.items():
        trigger = function.get_trigger().get_dict_repr()
        assert trigger["type"] == "cosmosDBTrigger"
        assert trigger["name"] == "documents"
        assert trigger["connection"] == "CosmosDB"
        assert trigger["databaseName"] == "%COSMOS_DATABASE%"
        assert trigger["leaseContainerName"] == "leases"
        assert trigger["leaseContainerPrefix"] == f"outbox-{trigger['containerName']}-"
        assert trigger["createLeaseContainerIfNotExists"] is False
        assert name == f"outbox_relay_{trigger['containerName']}"
        assert function.get_user_function().__name__ == name
        containers.append(trigger["containerName"])
    assert sorted(containers) == sorted(OUTBOX_CONTAINERS)
    assert len({id(f.get_user_function()) for f in relays.values()}) == len(relays)


def test_blueprint_declares_the_sweep_timer() -> None:
    sweep_function = _blueprint_functions()["outbox_sweep"]
    trigger = sweep_function.get_trigger().get_dict_repr()
    assert trigger["type"] == "timerTrigger"
    assert trigger["name"] == "timer"
    assert trigger["schedule"] == "%OUTBOX_SWEEP_SCHEDULE%"
    assert trigger["runOnStartup"] is False


def test_settings_default_the_topics_and_a_six_field_schedule() -> None:
    from cloudcart.core.settings import Settings

    settings = Settings()
    assert (settings.events_topic, settings.ops_topic) == ("events", "ops")
    assert len(settings.outbox_sweep_schedule.split()) == 6
    names = Settings.env_names()
    assert names["events_topic"] == "EVENTS_TOPIC"
    assert names["ops_topic"] == "OPS_TOPIC"
    assert names["outbox_sweep_schedule"] == "OUTBOX_SWEEP_SCHEDULE"


@pytest.fixture
def process_services() -> Iterator[Services]:
    composition.reset()
    yield composition.services()
    composition.reset()


def test_relay_function_relays_with_the_process_services(
    process_services: Services,
) -> None:
    orders = process_services.documents.container("orders")
    events = _place_order(orders, "cus_1", "ord_1")
    relay_orders = _blueprint_functions()["outbox_relay_orders"].get_user_function()

    relay_orders(func.DocumentList(func.Document.from_dict(d) for d in _feed(orders)))

    assert all("relayedAt" in orders.read(e.id, "cus_1") for e in events)
    assert composition.services() is process_services


def test_runtime_builds_one_services_and_reset_replaces_it(
    process_services: Services,
) -> None:
    assert composition.services() is process_services
    composition.reset()
    assert composition.services() is not process_services


def test_body_of_a_relayed_event_is_the_envelope_json(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")
    relay(_feed(orders), publisher=broker, documents_store=store, topic=TOPIC)
    body = json.loads(_receive_all(broker)[0].body)
    assert body == events[0].to_document()


def test_a_malformed_outbox_document_does_not_block_the_page(
    store: SqliteDocumentStore, orders: Container, broker: SqliteBroker
) -> None:
    events = _place_order(orders, "cus_1", "ord_1")
    orders.create({"id": "evt_bad", "kind": "outbox", "customerId": "cus_1", "event": {"x": 1}})
    assert relay(_feed(orders), publisher=broker, documents_store=store, topic=TOPIC) == 2
    assert [m.message_id for m in _receive_all(broker)] == [e.id for e in events]
    assert "relayedAt" not in orders.read("evt_bad", "cus_1")


def test_every_outbox_container_lets_relayed_events_expire() -> None:
    # Cosmos ignores a document's own `ttl` when its container has no default TTL at all, so
    # relayed events would pile up forever in such a container.
    from cloudcart.core.documents.registry import CONTAINERS

    for spec in CONTAINERS:
        if spec.outbox:
            assert spec.default_ttl is not None, (
                f"{spec.name} carries outbox events but has TTL off"
            )
