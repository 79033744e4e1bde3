"""The local trigger host drives a Functions app's Service Bus, change-feed and timer
functions from the embedded adapters, with real `azure.functions` objects."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from cloudcart.api.logging import correlation_id
from cloudcart.composition import Services
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import Queue, Subscription, Topic, Topology
from cloudcart.core.ports.messages import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    InvalidMessage,
    OutboundMessage,
)
from cloudcart.core.settings import Settings
from cloudcart.local import trigger_host
from cloudcart.local.trigger_host import (
    HostConfig,
    TriggerHost,
    TriggerHostError,
    ncrontab_next_occurrence,
    parse_timespan,
)

TOPIC = "test-orders"
SUBSCRIPTION = "handler"
QUEUE = "test-jobs"
MAX_DELIVERIES = 3

TOPOLOGY = Topology(
    topics=(
        Topic(
            TOPIC,
            subscriptions=(
                Subscription(
                    SUBSCRIPTION,
                    max_delivery_count=MAX_DELIVERIES,
                    lock_duration=timedelta(seconds=1),
                ),
            ),
        ),
        Topic("ops", subscriptions=(Subscription("alerts"),)),
    ),
    queues=(Queue(QUEUE, max_delivery_count=MAX_DELIVERIES, lock_duration=timedelta(seconds=1)),),
)

Handler = Callable[[Any], None]


def _ignore(_: Any) -> None:
    return None


@dataclass
class Behaviour:
    """What each test function of the app does; tests swap in their own handlers."""

    topic: Handler = _ignore
    queue: Handler = _ignore
    change_feed: Handler = _ignore
    timer: Handler = _ignore
    queue_calls: list[ServiceBusMessage] = field(default_factory=list)


def build_app(behaviour: Behaviour) -> func.FunctionApp:
    """A Functions app like Cloudcart's: names come from app settings (`%...%`)."""
    app = func.FunctionApp()

    @app.function_name("on_test_order")
    @app.service_bus_topic_trigger(
        arg_name="message",
        topic_name="%TEST_TOPIC%",
        subscription_name="%TEST_SUBSCRIPTION%",
        connection="ServiceBus",
    )
    def on_test_order(message: func.ServiceBusMessage) -> None:
        behaviour.topic(message)

    @app.function_name("on_test_job")
    @app.service_bus_queue_trigger(
        arg_name="job", queue_name="%TEST_QUEUE%", connection="ServiceBus"
    )
    async def on_test_job(job: ServiceBusMessage) -> None:
        behaviour.queue_calls.append(job)
        behaviour.queue(job)

    @app.function_name("relay_orders")
    @app.cosmos_db_trigger(
        arg_name="documents",
        container_name="%TEST_CONTAINER%",
        database_name="%COSMOS_DATABASE%",
        connection="CosmosDB",
        lease_container_name="leases",
        lease_container_prefix="test-",
        # The library annotates this `time | None`; the binding takes a bool.
        start_from_beginning=True,  # type: ignore[arg-type]
    )
    def relay_orders(documents: func.DocumentList) -> None:
        behaviour.change_feed(documents)

    @app.function_name("every_second")
    @app.timer_trigger(arg_name="timer", schedule="%TEST_SCHEDULE%")
    def every_second(timer: TimerRequest) -> None:
        behaviour.timer(timer)

    @app.route(route="ping")
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")

    return app


@dataclass
class Env:
    settings: Settings
    services: Services
    broker: SqliteBroker
    documents: SqliteDocumentStore
    behaviour: Behaviour
    records: list[logging.LogRecord]
    hosts: list[TriggerHost] = field(default_factory=list)

    def host(
        self,
        *names: str,
        max_concurrent_calls: int = 4,
        renewal: timedelta = timedelta(seconds=30),
    ) -> TriggerHost:
        functions = [
            f
            for f in build_app(self.behaviour).get_functions()
            if not names or f.get_function_name() in names
        ]
        host = TriggerHost(
            functions,
            self.settings,
            self.services,
            host_config=HostConfig(
                max_concurrent_calls=max_concurrent_calls, max_auto_lock_renewal_duration=renewal
            ),
            poll_interval=0.02,
        )
        self.hosts.append(host)
        return host

    def publish(self, entity: str, message_id: str, **kwargs: Any) -> None:
        body = kwargs.pop("body", {"n": message_id})
        self.broker.publish(entity, [OutboundMessage(body=body, message_id=message_id, **kwargs)])


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("TEST_TOPIC", TOPIC)
    monkeypatch.setenv("TEST_SUBSCRIPTION", SUBSCRIPTION)
    monkeypatch.setenv("TEST_QUEUE", QUEUE)
    monkeypatch.setenv("TEST_CONTAINER", "orders")
    monkeypatch.setenv("TEST_SCHEDULE", "*/1 * * * * *")
    settings = Settings()
    broker = SqliteBroker(tmp_path / "messages.sqlite3", TOPOLOGY)
    documents = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    documents.ensure_containers()
    services = Services(settings, adapters={"messages": broker, "documents": documents})
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    logger = logging.getLogger(trigger_host.__name__)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    environment = Env(settings, services, broker, documents, Behaviour(), records)
    try:
        yield environment
    finally:
        for host in environment.hosts:
            host.stop(timeout=2)
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        services.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def queue_is_empty(broker: SqliteBroker, entity: str, subscription: str | None) -> bool:
    """Whether the queue or subscription holds no message at all, locked ones included.

    Reads the broker's file directly: a receive would count a delivery and cannot see
    messages under another receiver's lock.
    """
    with sqlite3.connect(broker.path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM messages WHERE entity = ? AND subscription = ?",
            (entity, subscription or ""),
        ).fetchone()
    return bool(count == 0)


# --- Service Bus ----------------------------------------------------------------------------


def test_topic_message_arrives_as_a_real_service_bus_message(env: Env) -> None:
    seen: list[tuple[ServiceBusMessage, str | None]] = []
    env.behaviour.topic = lambda m: seen.append((m, correlation_id.get()))
    env.publish(
        TOPIC,
        "order-1",
        body={"orderId": "o-1"},
        subject="order.placed",
        correlation_id="corr-1",
        application_properties={"tier": "gold", "lines": 3},
    )
    with env.host("on_test_order"):
        wait_until(lambda: len(seen) == 1)
        wait_until(lambda: queue_is_empty(env.broker, TOPIC, SUBSCRIPTION))
    message, cid = seen[0]
    assert type(message) is ServiceBusMessage
    assert message.message_id == "order-1"
    assert message.subject == "order.placed"
    assert message.label == "order.placed"
    assert json.loads(message.get_body()) == {"orderId": "o-1"}
    assert message.application_properties == {"tier": "gold", "lines": 3}
    assert message.user_properties == {"tier": "gold", "lines": 3}
    assert message.delivery_count == 1
    assert message.correlation_id == "corr-1"
    assert message.content_type == "application/json"
    assert message.lock_token
    assert message.sequence_number is not None
    assert message.enqueued_time_utc is not None and message.locked_until is not None
    assert message.metadata is not None and message.metadata["MessageId"] == "order-1"
    assert message.metadata["DeliveryCount"] == 1
    assert cid == "corr-1"  # logs written by the handler carry the message's correlation id
    assert env.broker.list_dead_letters(TOPIC, SUBSCRIPTION) == []


def test_async_queue_function_is_called_and_its_message_completed(env: Env) -> None:
    env.publish(QUEUE, "job-1", subject="job.run")
    with env.host("on_test_job"):
        wait_until(lambda: len(env.behaviour.queue_calls) == 1)
        wait_until(lambda: queue_is_empty(env.broker, QUEUE, None))
    assert env.behaviour.queue_calls[0].message_id == "job-1"
    assert env.broker.list_dead_letters(QUEUE) == []


def test_handler_failing_twice_then_succeeding_is_called_three_times(env: Env) -> None:
    counts: list[int] = []

    def flaky(message: ServiceBusMessage) -> None:
        assert message.delivery_count is not None
        counts.append(message.delivery_count)
        if len(counts) < 3:
            raise RuntimeError("partner unavailable")

    env.behaviour.topic = flaky
    env.publish(TOPIC, "order-2", subject="order.placed")
    with env.host("on_test_order"):
        wait_until(lambda: len(counts) == 3)
        wait_until(lambda: queue_is_empty(env.broker, TOPIC, SUBSCRIPTION))
        time.sleep(0.1)  # room for a wrong fourth delivery
    assert counts == [1, 2, 3]
    assert env.broker.list_dead_letters(TOPIC, SUBSCRIPTION) == []
    failures = [r for r in env.records if r.getMessage() == "function failed; message abandoned"]
    assert len(failures) == 2
    assert failures[0].levelno == logging.ERROR
    assert vars(failures[0])["function"] == "on_test_order"
    assert vars(failures[0])["messageId"] == "order-2"
    assert [vars(r)["deliveryCount"] for r in failures] == [1, 2]


def test_poison_message_is_dead_lettered_with_an_alert(env: Env) -> None:
    calls: list[int] = []

    def poison(message: ServiceBusMessage) -> None:
        calls.append(1)
        raise ValueError("cannot parse")

    env.behaviour.topic = poison
    env.publish(TOPIC, "order-3", subject="order.placed", correlation_id="corr-3")
    with env.host("on_test_order"):
        wait_until(lambda: len(env.broker.list_dead_letters(TOPIC, SUBSCRIPTION)) == 1)
        time.sleep(0.1)
    assert len(calls) == MAX_DELIVERIES
    letter = env.broker.list_dead_letters(TOPIC, SUBSCRIPTION)[0]
    assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED

    alerts = [r for r in env.records if r.getMessage() == "message dead-lettered"]
    assert len(alerts) == 1
    assert alerts[0].levelno == logging.ERROR
    fields = vars(alerts[0])
    assert (fields["entity"], fields["subscription"], fields["messageId"]) == (
        TOPIC,
        SUBSCRIPTION,
        "order-3",
    )
    assert fields["reason"] == MAX_DELIVERY_COUNT_EXCEEDED

    [event] = env.broker.receive("ops", "alerts")
    assert event.message_id == f"dlq-{letter.id}"
    assert event.subject == "ops.dead_lettered"
    assert event.correlation_id == "corr-3"
    body = event.json()
    assert body["id"] == f"dlq-{letter.id}"
    assert body["type"] == "ops.dead_lettered"
    assert body["version"] == 1
    assert body["subject"] == "order-3"
    assert body["correlationId"] == "corr-3"
    assert datetime.fromisoformat(body["time"]).tzinfo is not None
    assert body["data"] == {
        "entity": TOPIC,
        "subscription": SUBSCRIPTION,
        "messageId": "order-3",
        "subject": "order.placed",
        "reason": MAX_DELIVERY_COUNT_EXCEEDED,
        "description": letter.description,
        "deliveryCount": MAX_DELIVERIES,
    }


def test_invalid_message_is_dead_lettered_at_once_with_the_handlers_reason(env: Env) -> None:
    calls: list[int] = []

    def reject(message: ServiceBusMessage) -> None:
        calls.append(1)
        raise InvalidMessage("SchemaInvalid", "missing orderId")

    env.behaviour.topic = reject
    env.publish(TOPIC, "order-bad", subject="order.placed", correlation_id="corr-bad")
    with env.host("on_test_order"):
        wait_until(lambda: len(env.broker.list_dead_letters(TOPIC, SUBSCRIPTION)) == 1)
        time.sleep(0.1)  # room for a wrong retry
    assert len(calls) == 1  # no retries
    [letter] = env.broker.list_dead_letters(TOPIC, SUBSCRIPTION)
    assert (letter.reason, letter.description, letter.delivery_count) == (
        "SchemaInvalid",
        "missing orderId",
        1,
    )
    assert queue_is_empty(env.broker, TOPIC, SUBSCRIPTION)
    rejected = [r for r in env.records if "rejected the message as invalid" in r.getMessage()]
    assert len(rejected) == 1 and vars(rejected[0])["reason"] == "SchemaInvalid"
    # The same alert as any other dead letter.
    [alert] = env.broker.receive("ops", "alerts")
    assert alert.json()["data"]["reason"] == "SchemaInvalid"


def test_concurrency_per_function_is_limited_by_max_concurrent_calls(env: Env) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0
    done: list[str] = []

    def slow(message: ServiceBusMessage) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.15)
        with lock:
            running -= 1
            done.append(message.message_id)

    env.behaviour.topic = slow
    for index in range(12):
        env.publish(TOPIC, f"order-c{index}", subject="order.placed")
    with env.host("on_test_order", max_concurrent_calls=3):
        wait_until(lambda: len(done) == 12)
    assert peak == 3
    assert sorted(done) == sorted(f"order-c{index}" for index in range(12))


def test_lock_is_renewed_while_a_slow_handler_runs(env: Env) -> None:
    calls: list[int] = []

    finished: list[int] = []

    def slow(message: ServiceBusMessage) -> None:
        assert message.delivery_count is not None
        calls.append(message.delivery_count)
        time.sleep(2.2)  # more than twice the 1 s lock
        finished.append(1)

    env.behaviour.topic = slow
    env.publish(TOPIC, "order-slow", subject="order.placed")
    with env.host("on_test_order"):
        wait_until(lambda: len(finished) >= 1, timeout=8)
        wait_until(lambda: queue_is_empty(env.broker, TOPIC, SUBSCRIPTION))
    assert calls == [1]
    assert not any("lock lost" in r.getMessage() for r in env.records)


def test_lock_renewal_stops_at_max_auto_lock_renewal_duration(env: Env) -> None:
    calls: list[int] = []
    release = threading.Event()

    def stuck(message: ServiceBusMessage) -> None:
        assert message.delivery_count is not None
        calls.append(message.delivery_count)
        if len(calls) == 1:
            release.wait(5)

    env.behaviour.topic = stuck
    env.publish(TOPIC, "order-stuck", subject="order.placed")
    try:
        with env.host("on_test_order", renewal=timedelta(milliseconds=1200)):
            # No renewal after 1.2 s: the 1 s lock runs out and the message comes again.
            wait_until(lambda: len(calls) == 2, timeout=6)
    finally:
        release.set()
    assert calls == [1, 2]


def test_graceful_stop_waits_for_the_running_handler(env: Env) -> None:
    started = threading.Event()
    finished: list[str] = []

    def slow(message: ServiceBusMessage) -> None:
        started.set()
        time.sleep(0.5)
        finished.append(message.message_id)

    env.behaviour.topic = slow
    env.publish(TOPIC, "order-4", subject="order.placed")
    host = env.host("on_test_order")
    host.start()
    assert started.wait(5)
    host.stop(timeout=5)
    assert finished == ["order-4"]
    assert queue_is_empty(env.broker, TOPIC, SUBSCRIPTION)


def test_stop_abandons_a_handler_that_outlives_the_timeout(env: Env) -> None:
    started = threading.Event()
    release = threading.Event()

    def stuck(message: ServiceBusMessage) -> None:
        started.set()
        release.wait(5)

    env.behaviour.topic = stuck
    env.publish(TOPIC, "order-5", subject="order.placed")
    host = env.host("on_test_order")
    host.start()
    try:
        assert started.wait(5)
        begun = time.monotonic()
        host.stop(timeout=0.3)
        assert time.monotonic() - begun < 3
        # Back on the subscription at once, not only after the lock expires.
        [again] = env.broker.receive(TOPIC, SUBSCRIPTION)
        assert again.message_id == "order-5"
        assert again.delivery_count == 2
    finally:
        release.set()
    abandoned = [r for r in env.records if "did not finish before shutdown" in r.getMessage()]
    assert len(abandoned) == 1


# --- change feed ----------------------------------------------------------------------------


def _order(id_: str) -> dict[str, Any]:
    return {"id": id_, "customerId": "c-1", "total": 10}


def test_change_feed_is_delivered_as_a_document_list_and_checkpointed(env: Env) -> None:
    batches: list[func.DocumentList] = []
    env.behaviour.change_feed = batches.append
    orders = env.documents.container("orders")
    orders.create(_order("o-1"))
    orders.create(_order("o-2"))
    with env.host("relay_orders"):
        wait_until(lambda: sum(len(b) for b in batches) == 2)
        wait_until(lambda: _lease_exists(env))
    assert type(batches[0]) is func.DocumentList
    assert all(type(d) is func.Document for batch in batches for d in batch)
    assert [d["id"] for batch in batches for d in batch] == ["o-1", "o-2"]
    assert batches[0][0]["total"] == 10

    # A restart continues after the stored checkpoint: old documents do not come again.
    orders.create(_order("o-3"))
    later: list[func.DocumentList] = []
    env.behaviour.change_feed = later.append
    with env.host("relay_orders"):
        wait_until(lambda: sum(len(b) for b in later) >= 1)
        time.sleep(0.2)
    assert [d["id"] for batch in later for d in batch] == ["o-3"]


def _lease_exists(env: Env) -> bool:
    try:
        lease = env.documents.container("leases").read("test-orders", "test-orders")
    except Exception:
        return False
    return lease.get("checkpoint") is not None and lease["function"] == "relay_orders"


def test_failing_change_feed_function_gets_the_same_documents_again(env: Env) -> None:
    attempts: list[list[str]] = []

    def flaky(documents: func.DocumentList) -> None:
        attempts.append([d["id"] for d in documents])
        if len(attempts) < 3:
            raise RuntimeError("topic unavailable")

    env.behaviour.change_feed = flaky
    env.documents.container("orders").create(_order("o-9"))
    with env.host("relay_orders"):
        wait_until(lambda: len(attempts) >= 3)
        time.sleep(0.2)
    assert attempts == [["o-9"], ["o-9"], ["o-9"]]
    failures = [r for r in env.records if "will be retried" in r.getMessage()]
    assert len(failures) == 2


def test_without_start_from_beginning_only_new_changes_are_delivered(env: Env) -> None:
    app = func.FunctionApp()
    seen: list[str] = []

    @app.cosmos_db_trigger(
        arg_name="documents", container_name="orders", database_name="cloudcart", connection="C"
    )
    def relay(documents: func.DocumentList) -> None:
        seen.extend(d["id"] for d in documents)

    orders = env.documents.container("orders")
    orders.create(_order("before"))
    host = TriggerHost(app.get_functions(), env.settings, env.services, poll_interval=0.02)
    env.hosts.append(host)
    with host:
        time.sleep(0.2)
        orders.create(_order("after"))
        wait_until(lambda: seen == ["after"])


# --- timers ---------------------------------------------------------------------------------


def test_timer_fires_every_second_and_survives_an_exception(env: Env) -> None:
    requests: list[TimerRequest] = []

    def tick(request: TimerRequest) -> None:
        requests.append(request)
        if len(requests) == 1:
            raise RuntimeError("first tick fails")

    env.behaviour.timer = tick
    with env.host("every_second"):
        wait_until(lambda: len(requests) >= 2, timeout=5)
    assert all(type(r) is TimerRequest for r in requests)
    assert isinstance(requests[0].past_due, bool)
    assert datetime.fromisoformat(requests[1].schedule_status["Next"]) > datetime.fromisoformat(
        requests[1].schedule_status["Last"]
    )
    assert any(r.getMessage() == "timer function failed" for r in env.records)


def test_timer_runs_on_startup_when_asked(env: Env) -> None:
    app = func.FunctionApp()
    calls: list[TimerRequest] = []

    @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
    def yearly(timer: TimerRequest) -> None:
        calls.append(timer)

    with TriggerHost(app.get_functions(), env.settings, env.services, poll_interval=0.02):
        wait_until(lambda: len(calls) == 1, timeout=3)


def test_ncrontab_schedules_put_seconds_first() -> None:
    start = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)  # a Monday
    assert ncrontab_next_occurrence("*/1 * * * * *", start) == start + timedelta(seconds=1)
    assert ncrontab_next_occurrence("0 */5 * * * *", start) == start + timedelta(minutes=5)
    assert ncrontab_next_occurrence("30 15 9 * * 2", start) == datetime(
        2024, 1, 2, 9, 15, 30, tzinfo=UTC
    )


# --- configuration --------------------------------------------------------------------------


def test_an_unresolved_binding_expression_names_the_missing_setting(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_TOPIC")
    with pytest.raises(TriggerHostError, match="TEST_TOPIC"):
        env.host("on_test_order")


def test_binding_expressions_resolve_from_settings_first(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSMOS_DATABASE", "shop")
    settings = Settings()
    assert trigger_host.resolve_binding_expressions(
        "%cosmos_database%/%TEST_QUEUE%", settings, where="test"
    ) == ("shop/" + QUEUE)


def test_a_trigger_on_an_undeclared_subscription_is_refused(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SUBSCRIPTION", "nobody")
    with pytest.raises(TriggerHostError, match="nobody"):
        env.host("on_test_order")


def test_service_bus_triggers_need_the_embedded_broker(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDCART_MESSAGES_ADAPTER", "azure")
    functions = build_app(env.behaviour).get_functions()
    with pytest.raises(TriggerHostError, match="embedded"):
        TriggerHost(functions, Settings(), env.services)


def test_batches_are_refused_with_a_clear_error(env: Env) -> None:
    app = func.FunctionApp()

    @app.service_bus_queue_trigger(
        arg_name="jobs", queue_name=QUEUE, connection="ServiceBus", cardinality="many"
    )
    def batch(jobs: list[func.ServiceBusMessage]) -> None:
        return None

    with pytest.raises(TriggerHostError, match="cardinality"):
        TriggerHost(app.get_functions(), env.settings, env.services)


def test_host_config_reads_the_repository_host_json() -> None:
    config = HostConfig.from_host_json()
    assert config == HostConfig(
        max_concurrent_calls=16,
        max_auto_lock_renewal_duration=timedelta(minutes=5),
        prefetch_count=0,
        auto_complete_messages=True,
    )
    assert parse_timespan("1.02:03:04.5") == timedelta(
        days=1, hours=2, minutes=3, seconds=4, milliseconds=500
    )
    with pytest.raises(ValueError, match="TimeSpan"):
        parse_timespan("5 minutes")


def test_http_functions_are_left_to_uvicorn(env: Env) -> None:
    host = env.host()
    assert sorted(host.function_names) == [
        "every_second",
        "on_test_job",
        "on_test_order",
        "relay_orders",
    ]


# --- cloudcart serve ------------------------------------------------------------------------


def test_serve_runs_the_host_inside_the_app_lifespan_before_the_adapters_close(
    env: Env,
) -> None:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from cloudcart.local.cli import _run_trigger_host_with

    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(_: FastAPI) -> Any:
        events.append("app started")
        yield
        events.append("adapters closed")

    host = env.host("on_test_order")
    original_stop = host.stop

    def recording_stop(timeout: float = 30) -> None:
        events.append("host stopping")
        original_stop(timeout)

    host.stop = recording_stop  # type: ignore[method-assign]
    handled: list[str] = []
    env.behaviour.topic = lambda m: handled.append(m.message_id)
    app = FastAPI(lifespan=app_lifespan)
    _run_trigger_host_with(app, host)
    with TestClient(app):
        env.publish(TOPIC, "order-serve", subject="order.placed")
        wait_until(lambda: handled == ["order-serve"])
    assert events == ["app started", "host stopping", "adapters closed"]
