"""The local trigger host: runs a Functions app's non-HTTP triggers on the embedded adapters.

Azure Functions drives Service Bus, Cosmos DB change-feed and timer functions from the
real services. On a laptop `cloudcart serve` runs the very same app object: uvicorn serves
its HTTP function and this host reads `app.get_functions()` and drives the rest:

- Service Bus topic and queue triggers receive with peek-lock from the embedded
  `SqliteBroker`, at most `maxConcurrentCalls` at a time per function (host.json), with the
  lock renewed while the handler runs (up to `maxAutoLockRenewalDuration`). Success
  completes the message; an exception abandons it, so the broker redelivers it and
  dead-letters it after the subscription's max delivery count. Every dead letter raises an
  alert: an ERROR log and an `ops.dead_lettered` event on the ops topic.
- Cosmos DB triggers poll the documents port's change feed and keep their checkpoint in
  the `leases` container, so a restart continues where the last run stopped; a failing
  function gets the same documents again after a backoff.
- Timer triggers follow their six-field NCRONTAB schedule (`{second} {minute} {hour}
  {day} {month} {day-of-week}`, UTC), optionally running once at startup.

User functions get real `azure.functions` objects (`ServiceBusMessage`, `DocumentList`,
`TimerRequest`), so the decorators stay the single source of truth for topics,
subscriptions, containers and schedules. `%NAME%` binding expressions resolve from the
Cloudcart settings (by environment variable name) and then from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest
from pydantic import SecretStr

from cloudcart.api.logging import correlation_id
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import CloudcartError, NotFound
from cloudcart.core.messages.port import (
    DeadLetter,
    InvalidMessage,
    LockLost,
    OutboundMessage,
    ReceivedMessage,
    UnknownEntity,
)
from cloudcart.core.messages.topology import Topic
from cloudcart.core.settings import Adapter, Settings

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from cloudcart.core.documents.port import Container
    from cloudcart.core.messages.embedded import SqliteBroker
    from cloudcart.core.services import Services

logger = logging.getLogger(__name__)

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
"""The Functions app's host.json (repo root): the same file Azure reads."""

SERVICE_BUS_TRIGGER = "serviceBusTrigger"
COSMOS_DB_TRIGGER = "cosmosDBTrigger"
TIMER_TRIGGER = "timerTrigger"
HTTP_TRIGGER = "httpTrigger"

DEAD_LETTERED_EVENT = "ops.dead_lettered"
"""Subject (event type) of the alert published when a message is dead-lettered."""

DEFAULT_LEASE_CONTAINER = "leases"
DEFAULT_MAX_ITEMS_PER_INVOCATION = 100
MAX_RETRY_BACKOFF_SECONDS = 5.0
PAST_DUE_TOLERANCE = timedelta(seconds=1)
"""A timer invocation that starts later than this after its schedule is marked past due."""

_EXPRESSION = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


class TriggerHostError(CloudcartError):
    """The trigger host cannot run the app as declared (a missing setting, an unsupported
    binding, a non-embedded broker, an unknown topic...)."""


# --- host.json ------------------------------------------------------------------------------


def parse_timespan(value: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it (`00:05:00`, `1.02:00:00`, `00:00:01.5`)."""
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a TimeSpan ([d.]hh:mm:ss[.fffffff])")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(6, "0")[:6]),
    )


@dataclass(frozen=True)
class HostConfig:
    """The host.json settings the local host honours (`extensions.serviceBus`).

    Defaults are the values Cloudcart's host.json sets (see docs/architecture.md,
    "Messaging"), used when a key is missing.
    """

    max_concurrent_calls: int = 16
    max_auto_lock_renewal_duration: timedelta = timedelta(minutes=5)
    prefetch_count: int = 0
    auto_complete_messages: bool = True

    def __post_init__(self) -> None:
        if self.max_concurrent_calls < 1:
            raise ValueError("maxConcurrentCalls must be at least 1")
        if self.prefetch_count < 0:
            raise ValueError("prefetchCount must not be negative")

    @classmethod
    def from_host_json(cls, path: Path = HOST_JSON) -> HostConfig:
        """Read `extensions.serviceBus` of a host.json file."""
        document = json.loads(path.read_text(encoding="utf-8"))
        section: Mapping[str, Any] = document.get("extensions", {}).get("serviceBus", {})
        defaults = cls()
        renewal = section.get("maxAutoLockRenewalDuration")
        return cls(
            max_concurrent_calls=int(
                section.get("maxConcurrentCalls", defaults.max_concurrent_calls)
            ),
            max_auto_lock_renewal_duration=(
                defaults.max_auto_lock_renewal_duration
                if renewal is None
                else parse_timespan(str(renewal))
            ),
            prefetch_count=int(section.get("prefetchCount", defaults.prefetch_count)),
            auto_complete_messages=bool(
                section.get("autoCompleteMessages", defaults.auto_complete_messages)
            ),
        )


# --- binding expressions --------------------------------------------------------------------


def _setting_text(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def resolve_app_setting(name: str, settings: Settings) -> str | None:
    """The value of an app setting: a Cloudcart setting by its environment variable name
    (case-insensitive, as on Azure), else the environment; None when neither has it."""
    by_env = {env.lower(): fld for fld, env in Settings.env_names().items()}
    fld = by_env.get(name.lower())
    if fld is not None:
        value = getattr(settings, fld)
        if value is not None:
            return _setting_text(value)
    if name in os.environ:
        return os.environ[name]
    for key, value in os.environ.items():
        if key.lower() == name.lower():
            return value
    return None


def resolve_binding_expressions(value: str, settings: Settings, *, where: str) -> str:
    """Replace every `%NAME%` in a binding value by its app setting.

    `where` names the function and field for the error. Raises TriggerHostError naming
    the missing setting.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        resolved = resolve_app_setting(name, settings)
        if resolved is None:
            raise TriggerHostError(
                f"{where}: binding expression %{name}% needs the app setting {name!r}, which "
                "is neither a Cloudcart setting with a value nor an environment variable"
            )
        return resolved

    return _EXPRESSION.sub(replace, value)


# --- functions objects ----------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def to_service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
    """The `azure.functions.servicebus.ServiceBusMessage` the Functions worker would build
    for a message, metadata included."""
    properties: dict[str, Any] = dict(message.application_properties)
    metadata: dict[str, meta.Datum] = {
        "MessageId": meta.Datum(message.message_id, "string"),
        "DeliveryCount": meta.Datum(message.delivery_count, "int"),
        "SequenceNumber": meta.Datum(message.sequence_number, "int"),
        "EnqueuedTimeUtc": meta.Datum(_iso(message.enqueued_time), "string"),
        "LockedUntil": meta.Datum(_iso(message.locked_until), "string"),
        "LockToken": meta.Datum(message.lock_token, "string"),
        "ApplicationProperties": meta.Datum(json.dumps(properties), "json"),
        "UserProperties": meta.Datum(json.dumps(properties), "json"),
    }
    optional = {
        "Subject": message.subject,
        "Label": message.subject,
        "CorrelationId": message.correlation_id,
        "ContentType": message.content_type,
        "SessionId": message.session_id,
        "ExpiresAtUtc": None if message.expires_at is None else _iso(message.expires_at),
    }
    for key, text in optional.items():
        if text is not None:
            metadata[key] = meta.Datum(text, "string")
    return ServiceBusMessage(
        body=message.body,
        trigger_metadata=metadata,
        application_properties=properties,
        user_properties=dict(properties),
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_count=message.delivery_count,
        enqueued_sequence_number=message.sequence_number,
        enqueued_time_utc=message.enqueued_time,
        expires_at_utc=message.expires_at,
        label=message.subject,
        subject=message.subject,
        locked_until=message.locked_until,
        lock_token=message.lock_token,
        message_id=message.message_id,
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        state=0,  # Active
        time_to_live=(
            None if message.expires_at is None else message.expires_at - message.enqueued_time
        ),
    )


class LocalContext(func.Context):
    """The `context` argument for functions that declare one."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        """A fresh id per invocation."""
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        """Storage local to the invocation's thread."""
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        """The function's name."""
        return self._function_name

    @property
    def function_directory(self) -> str:
        """The folder of the function's script."""
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        """No distributed trace context locally."""
        return None

    @property
    def retry_context(self) -> Any:
        """No retry policy context locally."""
        return None


# --- plans: what to run, resolved once at construction ----------------------------------------


@dataclass
class _Plan:
    name: str
    trigger_type: str
    arg_name: str
    call: Callable[..., Any]
    is_async: bool
    wants_context: bool
    directory: str


@dataclass
class _ServiceBusPlan(_Plan):
    entity: str = ""
    subscription: str | None = None
    lock_seconds: float = 60.0


@dataclass
class _CosmosPlan(_Plan):
    container: str = ""
    lease_container: str = DEFAULT_LEASE_CONTAINER
    lease_id: str = ""
    max_items: int = DEFAULT_MAX_ITEMS_PER_INVOCATION
    start_from_beginning: bool = False
    poll_seconds: float | None = None


@dataclass
class _TimerPlan(_Plan):
    schedule: str = ""
    interval: timedelta | None = None
    run_on_startup: bool = False


@dataclass
class _InFlight:
    """A received message from receive until it is settled."""

    message: ReceivedMessage
    lock_seconds: float
    locked_until: float  # time.monotonic()
    renew_until: float  # time.monotonic()
    state: str = "waiting"  # waiting, running, settled, abandoned_by_host
    lock_lost: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class TriggerHost:
    """Runs the Service Bus, Cosmos DB change-feed and timer functions of a Functions app
    against the embedded adapters.

    `functions` is `app.get_functions()`, read once by the caller (a second call on the
    same app raises). HTTP functions are skipped (uvicorn serves them) and other trigger
    types are skipped with a warning. Everything is resolved and checked here, so a
    misconfiguration fails before anything runs: raises TriggerHostError.

    `poll_interval` is how long an idle receiver or change-feed poller waits before asking
    again (seconds). Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        functions: Sequence[Function],
        settings: Settings,
        services: Services,
        *,
        host_config: HostConfig | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.settings = settings
        self.services = services
        self.host_config = host_config if host_config is not None else HostConfig.from_host_json()
        self.poll_interval = poll_interval
        self._service_bus: list[_ServiceBusPlan] = []
        self._cosmos: list[_CosmosPlan] = []
        self._timers: list[_TimerPlan] = []
        for function in functions:
            self._plan(function)
        self._broker: SqliteBroker | None = None
        if self._service_bus:
            self._broker = self._embedded_broker()
            for plan in self._service_bus:
                plan.lock_seconds = self._lock_seconds(plan)
        leases: dict[tuple[str, str], str] = {}
        for cosmos in self._cosmos:
            key = (cosmos.lease_container, cosmos.lease_id)
            if key in leases:
                raise TriggerHostError(
                    f"functions {leases[key]!r} and {cosmos.name!r} share the lease "
                    f"{cosmos.lease_id!r} in {cosmos.lease_container!r}; give one of them a "
                    "lease_container_prefix"
                )
            leases[key] = cosmos.name

        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers: list[tuple[threading.Thread, queue.Queue[_InFlight | None]]] = []
        self._in_flight: dict[str, _InFlight] = {}
        self._in_flight_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._renewer_stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._previous_dead_letter_callback: Callable[[DeadLetter], None] | None = None
        self._started = False
        self._stopped = False

    # --- planning ------------------------------------------------------------------------

    @property
    def function_names(self) -> list[str]:
        """Names of the functions this host runs."""
        plans: list[_Plan] = [*self._service_bus, *self._cosmos, *self._timers]
        return [plan.name for plan in plans]

    def _plan(self, function: Function) -> None:
        trigger = function.get_trigger()
        name = function.get_function_name() or function.get_user_function().__name__
        if trigger is None:
            logger.warning("function %s has no trigger; skipped", name)
            return
        binding: dict[str, Any] = {k: _plain(v) for k, v in trigger.get_dict_repr().items()}
        kind = str(binding.get("type"))
        if kind == HTTP_TRIGGER:
            return
        if kind not in (SERVICE_BUS_TRIGGER, COSMOS_DB_TRIGGER, TIMER_TRIGGER):
            logger.warning(
                "function %s: the local trigger host does not run %s triggers; skipped",
                name,
                kind,
                extra={"function": name, "trigger": kind},
            )
            return
        others = [
            str(_plain(b.get_dict_repr().get("type")))
            for b in function.get_bindings()
            if b is not trigger
        ]
        if others:
            raise TriggerHostError(
                f"function {name!r}: the local trigger host passes only the trigger (and "
                f"`context`); it cannot serve the extra bindings {others}"
            )
        user_function = function.get_user_function()
        parameters = inspect.signature(user_function).parameters
        arg_name = str(binding["name"])
        if arg_name not in parameters:
            raise TriggerHostError(f"function {name!r} has no parameter {arg_name!r}")
        common: dict[str, Any] = {
            "name": name,
            "trigger_type": kind,
            "arg_name": arg_name,
            "call": user_function,
            "is_async": inspect.iscoroutinefunction(user_function),
            "wants_context": "context" in parameters,
            "directory": str(Path(function.function_script_file or ".").parent),
        }

        def text(key: str, *aliases: str, required: bool = True) -> str | None:
            for candidate in (key, *aliases):
                value = binding.get(candidate)
                if value is not None:
                    return resolve_binding_expressions(
                        str(value), self.settings, where=f"function {name!r}, {candidate}"
                    )
            if required:
                raise TriggerHostError(f"function {name!r}: its trigger has no {key!r}")
            return None

        if kind == SERVICE_BUS_TRIGGER:
            if str(binding.get("cardinality", "one")).lower() == "many":
                raise TriggerHostError(
                    f"function {name!r}: cardinality='many' (batches) is not supported by the "
                    "local trigger host; use the default cardinality 'one'"
                )
            if binding.get("isSessionsEnabled"):
                raise TriggerHostError(
                    f"function {name!r}: session-enabled triggers are not supported locally"
                )
            queue_name = text("queueName", required=False)
            if queue_name is not None:
                entity, subscription = queue_name, None
            else:
                entity = text("topicName") or ""
                subscription = text("subscriptionName")
            self._service_bus.append(
                _ServiceBusPlan(**common, entity=entity, subscription=subscription)
            )
        elif kind == COSMOS_DB_TRIGGER:
            container = text("containerName", "collectionName") or ""
            text("databaseName", required=False)  # resolved only to report a missing setting
            lease_container = (
                text("leaseContainerName", "leaseCollectionName", required=False)
                or DEFAULT_LEASE_CONTAINER
            )
            prefix = text("leaseContainerPrefix", "leaseCollectionPrefix", required=False) or ""
            max_items = binding.get("maxItemsPerInvocation") or DEFAULT_MAX_ITEMS_PER_INVOCATION
            delay = binding.get("feedPollDelay")
            self._cosmos.append(
                _CosmosPlan(
                    **common,
                    container=container,
                    lease_container=lease_container,
                    lease_id=f"{prefix}{container}",
                    max_items=int(max_items),
                    start_from_beginning=bool(binding.get("startFromBeginning", False)),
                    poll_seconds=None if delay is None else int(delay) / 1000,
                )
            )
        else:
            schedule = text("schedule") or ""
            interval: timedelta | None = None
            if ":" in schedule:
                # The TimeSpan form (`00:05:00`) Functions accepts on App Service plans.
                interval = parse_timespan(schedule)
                if interval <= timedelta(0):
                    raise TriggerHostError(f"function {name!r}: the interval must be positive")
            else:
                _check_ncrontab(schedule, name)
            self._timers.append(
                _TimerPlan(
                    **common,
                    schedule=schedule,
                    interval=interval,
                    run_on_startup=bool(binding.get("runOnStartup", False)),
                )
            )

    def _embedded_broker(self) -> SqliteBroker:
        from cloudcart.core.messages.embedded import SqliteBroker

        if self.settings.messages_adapter != Adapter.embedded:
            raise TriggerHostError(
                "the local trigger host runs Service Bus triggers only on the embedded broker; "
                "set CLOUDCART_MESSAGES_ADAPTER=embedded (on Azure the Functions host runs them)"
            )
        broker = self.services.messages
        if not isinstance(broker, SqliteBroker):
            raise TriggerHostError(
                f"the messages adapter is {type(broker).__name__}, not the embedded SqliteBroker"
            )
        if not self.host_config.auto_complete_messages:
            raise TriggerHostError(
                "host.json sets autoCompleteMessages to false, which needs SDK-type message "
                "actions the local host does not provide"
            )
        return broker

    def _lock_seconds(self, plan: _ServiceBusPlan) -> float:
        assert self._broker is not None
        try:
            declared = self._broker.topology.entity(plan.entity)
            if isinstance(declared, Topic):
                if plan.subscription is None:
                    raise UnknownEntity(f"{plan.entity!r} is a topic, not a queue")
                return declared.subscription(plan.subscription).lock_duration.total_seconds()
            if plan.subscription is not None:
                raise UnknownEntity(f"{plan.entity!r} is a queue, not a topic")
            return declared.lock_duration.total_seconds()
        except UnknownEntity as exc:
            raise TriggerHostError(
                f"function {plan.name!r}: {exc} (declare it in cloudcart/core/messages/topology.py)"
            ) from exc

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start receiving, polling and scheduling. Returns at once."""
        if self._started:
            raise RuntimeError("the trigger host was already started")
        self._started = True
        if any(plan.is_async for plan in [*self._service_bus, *self._cosmos, *self._timers]):
            # One loop for every async function, as in the Functions Python worker.
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._loop_thread = threading.Thread(
                target=loop.run_forever, name="trigger-host-asyncio", daemon=True
            )
            self._loop_thread.start()
        if self._broker is not None:
            self._previous_dead_letter_callback = self._broker.on_dead_letter
            self._broker.on_dead_letter = self._on_dead_letter
            self._renewer = self._thread(self._renew_locks, "trigger-host-lock-renewer")
        for sb_plan in self._service_bus:
            self._start_service_bus(sb_plan)
        for cosmos_plan in self._cosmos:
            self._threads.append(
                self._thread(partial(self._poll_change_feed, cosmos_plan), cosmos_plan.name)
            )
        for timer_plan in self._timers:
            self._threads.append(
                self._thread(partial(self._run_timer, timer_plan), timer_plan.name)
            )
        logger.info(
            "trigger host started",
            extra={
                "functions": self.function_names,
                "maxConcurrentCalls": self.host_config.max_concurrent_calls,
            },
        )

    @staticmethod
    def _thread(target: Callable[[], None], name: str) -> threading.Thread:
        # Daemon: a handler stuck past the stop timeout must not keep the process alive;
        # its message is abandoned (or its lock expires) and comes back.
        thread = threading.Thread(target=target, name=f"trigger-{name}", daemon=True)
        thread.start()
        return thread

    def stop(self, timeout: float = 30) -> None:
        """Stop gracefully: stop receiving, polling and scheduling, let running invocations
        finish for up to `timeout` seconds, then abandon the messages still unfinished so
        they return to their queue. Idempotent."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout
        self._stopping.set()
        for _, work in self._workers:
            work.put(None)
        for thread in [*self._threads, *(t for t, _ in self._workers)]:
            thread.join(max(0.0, deadline - time.monotonic()))
        unfinished = [t.name for t in self._threads if t.is_alive()]
        with self._in_flight_lock:
            leftovers = list(self._in_flight.values())
        for entry in leftovers:
            with entry.lock:
                if entry.state in ("settled", "abandoned_by_host"):
                    continue
                entry.state = "abandoned_by_host"
            self._forget(entry)
            assert self._broker is not None
            with contextlib.suppress(LockLost):
                self._broker.abandon(entry.message.lock_token)
            logger.warning(
                "handler did not finish before shutdown; message abandoned",
                extra=self._message_fields(entry.message),
            )
        if unfinished:
            logger.warning("invocations still running at shutdown", extra={"threads": unfinished})
        self._renewer_stop.set()
        if self._renewer is not None:
            self._renewer.join(1.0)
        if self._broker is not None:
            self._broker.on_dead_letter = self._previous_dead_letter_callback
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(1.0)
        logger.info("trigger host stopped")

    def __enter__(self) -> TriggerHost:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- invoking --------------------------------------------------------------------------

    def _invoke(self, plan: _Plan, argument: Any, cid: str | None, fields: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {plan.arg_name: argument}
        if plan.wants_context:
            kwargs["context"] = LocalContext(plan.name, plan.directory)
        started = time.perf_counter()
        outcome = "failed"
        try:
            if plan.is_async:
                assert self._loop is not None
                future = asyncio.run_coroutine_threadsafe(
                    _with_correlation_id(plan.call, kwargs, cid), self._loop
                )
                future.result()
            else:
                token = correlation_id.set(cid)
                try:
                    plan.call(**kwargs)
                finally:
                    correlation_id.reset(token)
            outcome = "succeeded"
        finally:
            logger.log(
                logging.DEBUG if outcome == "succeeded" else logging.INFO,
                "function invocation %s",
                outcome,
                extra={
                    "function": plan.name,
                    "trigger": plan.trigger_type,
                    "durationMs": round((time.perf_counter() - started) * 1000, 2),
                    "outcome": outcome,
                    **fields,
                },
            )

    # --- Service Bus -----------------------------------------------------------------------

    def _start_service_bus(self, plan: _ServiceBusPlan) -> None:
        slots = threading.Semaphore(self.host_config.max_concurrent_calls)
        work: queue.Queue[_InFlight | None] = queue.Queue()
        for index in range(self.host_config.max_concurrent_calls):
            worker = threading.Thread(
                target=self._work,
                args=(plan, work, slots),
                name=f"trigger-{plan.name}-{index}",
                daemon=True,
            )
            worker.start()
            self._workers.append((worker, work))
        self._threads.append(
            self._thread(partial(self._receive, plan, work, slots), f"{plan.name}-receiver")
        )

    def _receive(
        self, plan: _ServiceBusPlan, work: queue.Queue[_InFlight | None], slots: threading.Semaphore
    ) -> None:
        assert self._broker is not None
        limit = self.host_config.max_concurrent_calls
        renewal = self.host_config.max_auto_lock_renewal_duration.total_seconds()
        while not self._stopping.is_set():
            # Receive only as many as there are free handler slots (prefetch 0): a message
            # never sits locked in memory while its lock runs down.
            if not slots.acquire(timeout=self.poll_interval):
                continue
            free = 1
            while free < limit and slots.acquire(blocking=False):
                free += 1
            try:
                messages = self._broker.receive(plan.entity, plan.subscription, max_messages=free)
            except Exception:
                logger.exception("receive failed", extra={"function": plan.name})
                messages = []
            for _ in range(free - len(messages)):
                slots.release()
            now = time.monotonic()
            for message in messages:
                entry = _InFlight(
                    message=message,
                    lock_seconds=plan.lock_seconds,
                    locked_until=now + plan.lock_seconds,
                    renew_until=now + renewal,
                )
                with self._in_flight_lock:
                    self._in_flight[message.lock_token] = entry
                work.put(entry)
            if not messages:
                self._stopping.wait(self.poll_interval)

    def _work(
        self, plan: _ServiceBusPlan, work: queue.Queue[_InFlight | None], slots: threading.Semaphore
    ) -> None:
        while True:
            entry = work.get()
            if entry is None:
                return
            try:
                self._handle(plan, entry)
            except Exception:  # a bug here must not kill the worker
                logger.exception("trigger host error", extra={"function": plan.name})
            finally:
                slots.release()

    @staticmethod
    def _message_fields(message: ReceivedMessage) -> dict[str, Any]:
        return {
            "entity": message.entity,
            "subscription": message.subscription,
            "messageId": message.message_id,
            "deliveryCount": message.delivery_count,
        }

    def _handle(self, plan: _ServiceBusPlan, entry: _InFlight) -> None:
        with entry.lock:
            if entry.state != "waiting":
                return
            entry.state = "running"
        message = entry.message
        fields = self._message_fields(message)
        try:
            self._invoke(plan, to_service_bus_message(message), message.correlation_id, fields)
        except InvalidMessage as invalid:
            # The handler says no retry can succeed: dead-letter now rather than burn the
            # remaining deliveries (Service Bus's DeadLetterAsync from a handler).
            logger.error(
                "function rejected the message as invalid; dead-lettered",
                extra={
                    "function": plan.name,
                    "reason": invalid.reason,
                    "description": invalid.description,
                    **fields,
                },
            )
            self._settle(entry, complete=False, invalid=invalid)
        except Exception:
            logger.error(
                "function failed; message abandoned",
                exc_info=True,
                extra={"function": plan.name, **fields},
            )
            self._settle(entry, complete=False)
        else:
            self._settle(entry, complete=True)

    def _settle(
        self, entry: _InFlight, *, complete: bool, invalid: InvalidMessage | None = None
    ) -> None:
        with entry.lock:
            if entry.state == "abandoned_by_host":
                return  # shutdown gave up on it; it is back on the queue already
            entry.state = "settled"
        self._forget(entry)
        assert self._broker is not None
        token = entry.message.lock_token
        try:
            if complete:
                self._broker.complete(token)
            elif invalid is not None:
                self._broker.dead_letter(token, invalid.reason, invalid.description)
            else:
                self._broker.abandon(token)
        except LockLost:
            logger.warning(
                "lock lost before the message was settled; it will be delivered again",
                extra=self._message_fields(entry.message),
            )

    def _forget(self, entry: _InFlight) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(entry.message.lock_token, None)

    def _renew_locks(self) -> None:
        assert self._broker is not None
        while not self._renewer_stop.wait(self.poll_interval):
            now = time.monotonic()
            with self._in_flight_lock:
                entries = list(self._in_flight.values())
            for entry in entries:
                # Renew at half the lock duration, as the Service Bus SDK's renewer does.
                if entry.lock_lost or now < entry.locked_until - entry.lock_seconds / 2:
                    continue
                if now >= entry.renew_until:
                    continue  # maxAutoLockRenewalDuration reached: let the lock run out
                with entry.lock:
                    if entry.state not in ("waiting", "running"):
                        continue
                try:
                    self._broker.renew_lock(entry.message.lock_token)
                    entry.locked_until = now + entry.lock_seconds
                except LockLost:
                    entry.lock_lost = True
                except Exception:
                    logger.exception(
                        "lock renewal failed", extra=self._message_fields(entry.message)
                    )

    # --- dead-letter alert ----------------------------------------------------------------

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        fields = {
            "entity": letter.entity,
            "subscription": letter.subscription,
            "messageId": letter.message_id,
            "subject": letter.subject,
            "reason": letter.reason,
            "description": letter.description,
            "deliveryCount": letter.delivery_count,
            "deadLetterId": letter.id,
        }
        logger.error("message dead-lettered", extra=fields)
        ops_topic = self.settings.ops_topic
        if letter.entity == ops_topic:
            # An alert about an alert could loop forever; the log above is the alert.
            return
        assert self._broker is not None
        try:
            self._broker.topology.entity(ops_topic)
        except UnknownEntity:
            logger.warning("no %r topic declared; dead-letter event not published", ops_topic)
            return
        event_id = f"dlq-{letter.id}"
        event = {
            "id": event_id,
            "type": DEAD_LETTERED_EVENT,
            "version": 1,
            "time": utcnow().isoformat(),
            "subject": letter.message_id,
            "correlationId": letter.correlation_id,
            "data": {
                "entity": letter.entity,
                "subscription": letter.subscription,
                "messageId": letter.message_id,
                "subject": letter.subject,
                "reason": letter.reason,
                "description": letter.description,
                "deliveryCount": letter.delivery_count,
            },
        }
        self._broker.publish(
            ops_topic,
            [
                OutboundMessage(
                    body=event,
                    message_id=event_id,
                    subject=DEAD_LETTERED_EVENT,
                    correlation_id=letter.correlation_id,
                )
            ],
        )

    # --- Cosmos DB change feed --------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        return float(min(MAX_RETRY_BACKOFF_SECONDS, self.poll_interval * 2**failures))

    def _load_checkpoint(self, plan: _CosmosPlan, container: Container) -> str | None:
        leases = self.services.documents.container(plan.lease_container)
        try:
            lease = leases.read(plan.lease_id, plan.lease_id)
        except NotFound:
            pass
        else:
            checkpoint = lease.get("checkpoint")
            return None if checkpoint is None else str(checkpoint)
        if plan.start_from_beginning:
            return None
        # As in Azure: with no lease and no startFromBeginning, only changes made from now
        # on are delivered; the lease is stored at once so a restart keeps that point.
        latest: str | None = None
        while True:
            page = container.change_feed(latest, max_items=1000)
            latest = page.checkpoint
            if not page.items:
                break
        self._store_checkpoint(plan, latest)
        return latest

    def _store_checkpoint(self, plan: _CosmosPlan, checkpoint: str | None) -> None:
        self.services.documents.container(plan.lease_container).upsert(
            {
                "id": plan.lease_id,
                "checkpoint": checkpoint,
                "function": plan.name,
                "container": plan.container,
                "updatedAt": utcnow().isoformat(),
            }
        )

    def _poll_change_feed(self, plan: _CosmosPlan) -> None:
        idle = plan.poll_seconds if plan.poll_seconds is not None else self.poll_interval
        failures = 0
        checkpoint: str | None = None
        loaded = False
        while not self._stopping.is_set():
            try:
                container = self.services.documents.container(plan.container)
                if not loaded:
                    checkpoint = self._load_checkpoint(plan, container)
                    loaded = True
                page = container.change_feed(checkpoint, max_items=plan.max_items)
            except Exception:
                failures += 1
                logger.exception("change feed read failed", extra={"function": plan.name})
                self._stopping.wait(self._backoff(failures))
                continue
            if not page.items:
                self._stopping.wait(idle)
                continue
            documents = func.DocumentList([func.Document.from_dict(d) for d in page.items])
            fields = {"container": plan.container, "documentCount": len(page.items)}
            try:
                self._invoke(plan, documents, None, fields)
            except Exception:
                failures += 1
                # The checkpoint stays: the same documents come again after the backoff.
                logger.error(
                    "function failed; change-feed batch will be retried",
                    exc_info=True,
                    extra={"function": plan.name, "attempt": failures, **fields},
                )
                self._stopping.wait(self._backoff(failures))
                continue
            failures = 0
            checkpoint = page.checkpoint
            try:
                self._store_checkpoint(plan, checkpoint)
            except Exception:
                # Delivery is at least once: a restart before the next store replays this.
                logger.exception("storing the change-feed lease failed", extra=fields)

    # --- timers ----------------------------------------------------------------------------

    def _next_occurrence(self, plan: _TimerPlan, after: datetime) -> datetime:
        if plan.interval is not None:
            return after + plan.interval
        return ncrontab_next_occurrence(plan.schedule, after)

    def _run_timer(self, plan: _TimerPlan) -> None:
        last: datetime | None = None
        if plan.run_on_startup:
            now = utcnow()
            self._fire(plan, now, last, self._next_occurrence(plan, now))
            last = now
        due = self._next_occurrence(plan, utcnow())
        while not self._stopping.wait(max(0.0, (due - utcnow()).total_seconds())):
            # Missed occurrences (a long run, a sleeping laptop) collapse into this one,
            # flagged past due, as the Functions timer does.
            following = self._next_occurrence(plan, max(utcnow(), due))
            self._fire(plan, due, last, following)
            last = due
            due = self._next_occurrence(plan, max(utcnow(), due))

    def _fire(
        self, plan: _TimerPlan, scheduled: datetime, last: datetime | None, following: datetime
    ) -> None:
        now = utcnow()
        request = TimerRequest(
            past_due=now - scheduled > PAST_DUE_TOLERANCE,
            schedule_status={
                "Last": None if last is None else last.isoformat(),
                "Next": following.isoformat(),
                "LastUpdated": now.isoformat(),
            },
            schedule={"AdjustForDST": True},
        )
        try:
            self._invoke(plan, request, None, {"scheduledAt": scheduled.isoformat()})
        except Exception:
            # The next occurrence still runs.
            logger.error(
                "timer function failed",
                exc_info=True,
                extra={"function": plan.name, "scheduledAt": scheduled.isoformat()},
            )


async def _with_correlation_id(
    call: Callable[..., Coroutine[Any, Any, Any]], kwargs: dict[str, Any], cid: str | None
) -> Any:
    # Set inside the task: it runs in a copy of the loop thread's context, not the caller's.
    correlation_id.set(cid)
    return await call(**kwargs)


# --- NCRONTAB ---------------------------------------------------------------------------------


def _check_ncrontab(schedule: str, function_name: str) -> None:
    from croniter import croniter  # type: ignore[import-untyped]

    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        raise TriggerHostError(
            f"function {function_name!r}: schedule {schedule!r} is not a six-field NCRONTAB "
            "expression ({second} {minute} {hour} {day} {month} {day-of-week})"
        )


def ncrontab_next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first occurrence of a six-field NCRONTAB schedule strictly after `after` (UTC).

    croniter reads a sixth field as seconds *last* by default; `second_at_beginning` makes
    it read NCRONTAB's seconds-first order. `day_or=False`: like NCrontab, a schedule that
    restricts both day of month and day of week needs both to match.
    """
    from croniter import croniter

    result = croniter(
        schedule, after.astimezone(UTC), second_at_beginning=True, day_or=False
    ).get_next(datetime)
    assert isinstance(result, datetime)
    return result
