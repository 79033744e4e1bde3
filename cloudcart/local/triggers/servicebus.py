"""Service Bus topic and queue triggers on the embedded broker."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from cloudcart.core.messages.topology import Topic
from cloudcart.core.ports.messages import InvalidMessage, LockLost, ReceivedMessage, UnknownEntity
from cloudcart.core.settings import Adapter, Settings
from cloudcart.local.triggers import logger
from cloudcart.local.triggers.bindings import (
    FunctionPlan,
    TriggerBinding,
    to_service_bus_message,
)
from cloudcart.local.triggers.config import HostConfig, TriggerHostError
from cloudcart.local.triggers.dead_letters import DeadLetterAlert
from cloudcart.local.triggers.runtime import Invoker, Runner, daemon_thread

if TYPE_CHECKING:
    from cloudcart.composition import Services
    from cloudcart.core.messages.embedded import SqliteBroker


@dataclass
class ServiceBusPlan:
    """A Service Bus trigger: the queue, or the topic and subscription, it receives from."""

    function: FunctionPlan
    entity: str
    subscription: str | None = None
    lock_seconds: float = 60.0  # the entity's lock duration, set from the topology

    @classmethod
    def from_binding(cls, binding: TriggerBinding) -> ServiceBusPlan:
        """Read a `serviceBusTrigger`. Raises TriggerHostError for batches and sessions."""
        name = binding.function.name
        if str(binding.values.get("cardinality", "one")).lower() == "many":
            raise TriggerHostError(
                f"function {name!r}: cardinality='many' (batches) is not supported by the "
                "local trigger host; use the default cardinality 'one'"
            )
        if binding.values.get("isSessionsEnabled"):
            raise TriggerHostError(
                f"function {name!r}: session-enabled triggers are not supported locally"
            )
        queue_name = binding.text("queueName", required=False)
        if queue_name is not None:
            return cls(binding.function, entity=queue_name, subscription=None)
        entity = binding.text("topicName") or ""
        return cls(binding.function, entity=entity, subscription=binding.text("subscriptionName"))


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


def _message_fields(message: ReceivedMessage) -> dict[str, Any]:
    return {
        "entity": message.entity,
        "subscription": message.subscription,
        "messageId": message.message_id,
        "deliveryCount": message.delivery_count,
    }


def _embedded_broker(settings: Settings, services: Services, config: HostConfig) -> SqliteBroker:
    from cloudcart.core.messages.embedded import SqliteBroker

    if settings.messages_adapter != Adapter.embedded:
        raise TriggerHostError(
            "the local trigger host runs Service Bus triggers only on the embedded broker; "
            "set CLOUDCART_MESSAGES_ADAPTER=embedded (on Azure the Functions host runs them)"
        )
    broker = services.messages
    if not isinstance(broker, SqliteBroker):
        raise TriggerHostError(
            f"the messages adapter is {type(broker).__name__}, not the embedded SqliteBroker"
        )
    if not config.auto_complete_messages:
        raise TriggerHostError(
            "host.json sets autoCompleteMessages to false, which needs SDK-type message "
            "actions the local host does not provide"
        )
    return broker


def _lock_seconds(broker: SqliteBroker, plan: ServiceBusPlan) -> float:
    try:
        declared = broker.topology.entity(plan.entity)
        if isinstance(declared, Topic):
            if plan.subscription is None:
                raise UnknownEntity(f"{plan.entity!r} is a topic, not a queue")
            return declared.subscription(plan.subscription).lock_duration.total_seconds()
        if plan.subscription is not None:
            raise UnknownEntity(f"{plan.entity!r} is a queue, not a topic")
        return declared.lock_duration.total_seconds()
    except UnknownEntity as exc:
        raise TriggerHostError(
            f"function {plan.function.name!r}: {exc} (declare it in "
            "cloudcart/core/messages/topology.py)"
        ) from exc


class ServiceBusRunner(Runner[ServiceBusPlan]):
    """Runs Service Bus trigger functions on the embedded `SqliteBroker`, with the delivery
    guarantees of the Functions Service Bus extension under host.json `extensions.serviceBus`.

    - At least once: a message is received under a peek-lock and completed only when the
      function returns. An exception abandons it, so the broker delivers it again, and the
      broker dead-letters it after the entity's max delivery count. `InvalidMessage`
      dead-letters it at once. Every dead letter raises a `DeadLetterAlert`.
    - Concurrency: at most `maxConcurrentCalls` invocations per function, and a receive
      asks only for as many messages as there are free handlers (prefetch 0), so no message
      waits locked in memory while its lock runs down.
    - Lock renewal: while a message waits or runs, its lock is renewed at half its
      duration, for up to `maxAutoLockRenewalDuration`; after that the lock lapses and the
      message comes again, so a stuck handler does not hold it forever.
    - Shutdown: every received message is tracked until settled; those still unsettled
      when the host gives up waiting are abandoned (`abandon_unfinished`), so they return
      to their queue at once instead of when their lock expires. A lost lock only means a
      later delivery, never a lost message.

    Built only for apps with Service Bus triggers: raises TriggerHostError unless the
    messages adapter is the embedded broker, host.json keeps `autoCompleteMessages`, and
    every trigger's queue, or topic and subscription, is declared in the topology.
    """

    def __init__(
        self,
        plans: Sequence[ServiceBusPlan],
        settings: Settings,
        services: Services,
        host_config: HostConfig,
        invoker: Invoker,
        stopping: threading.Event,
        poll_interval: float,
        max_idle: float,
    ) -> None:
        super().__init__(plans, invoker, stopping)
        self.host_config = host_config
        self.poll_interval = poll_interval
        self.max_idle = max_idle
        self._broker = _embedded_broker(settings, services, host_config)
        for plan in self.plans:
            plan.lock_seconds = _lock_seconds(self._broker, plan)
        self._alert = DeadLetterAlert(self._broker, settings.ops_topic)
        self._workers: list[tuple[threading.Thread, queue.Queue[_InFlight | None]]] = []
        self._in_flight: dict[str, _InFlight] = {}
        self._in_flight_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._renewer_stop = threading.Event()

    @property
    def workers(self) -> list[threading.Thread]:
        """The handler threads, `maxConcurrentCalls` per function."""
        return [thread for thread, _ in self._workers]

    def start(self) -> None:
        """Raise dead-letter alerts, renew locks, and receive for every function."""
        self._alert.install()
        self._renewer = daemon_thread(self._renew_locks, "trigger-host-lock-renewer")
        for plan in self.plans:
            self._start_function(plan)

    def wake_workers(self) -> None:
        """Let every idle handler thread and receiver return; called once `stopping` is
        set."""
        self._broker.wake()
        for _, work in self._workers:
            work.put(None)

    def abandon_unfinished(self) -> None:
        """Abandon every received message not yet settled, so it returns to its queue now
        rather than when its lock runs out. Its handler may still be running: whatever it
        does later is ignored."""
        with self._in_flight_lock:
            leftovers = list(self._in_flight.values())
        for entry in leftovers:
            with entry.lock:
                if entry.state in ("settled", "abandoned_by_host"):
                    continue
                entry.state = "abandoned_by_host"
            self._forget(entry)
            with contextlib.suppress(LockLost):
                self._broker.abandon(entry.message.lock_token)
            logger.warning(
                "handler did not finish before shutdown; message abandoned",
                extra=_message_fields(entry.message),
            )

    def close(self) -> None:
        """Stop renewing locks and give the broker its dead-letter callback back."""
        self._renewer_stop.set()
        if self._renewer is not None:
            self._renewer.join(1.0)
        self._alert.uninstall()

    def _start_function(self, plan: ServiceBusPlan) -> None:
        slots = threading.Semaphore(self.host_config.max_concurrent_calls)
        work: queue.Queue[_InFlight | None] = queue.Queue()
        name = plan.function.name
        for index in range(self.host_config.max_concurrent_calls):
            worker = daemon_thread(partial(self._work, plan, work, slots), f"{name}-{index}")
            self._workers.append((worker, work))
        self._spawn(partial(self._receive, plan, work, slots), f"{name}-receiver")

    def _receive(
        self, plan: ServiceBusPlan, work: queue.Queue[_InFlight | None], slots: threading.Semaphore
    ) -> None:
        limit = self.host_config.max_concurrent_calls
        renewal = self.host_config.max_auto_lock_renewal_duration.total_seconds()
        idle = self.poll_interval
        while not self.stopping.is_set():
            seen = self._broker.arrivals
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
                logger.exception("receive failed", extra={"function": plan.function.name})
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
            if messages:
                idle = self.poll_interval
            else:
                # Messages published in this process wake the wait at once; the poll only
                # catches what no publish announces (another process, a schedule or a lock
                # running out), so it backs off while the subscription stays empty.
                self._broker.wait_for_arrival(seen, idle)
                idle = min(max(self.poll_interval, self.max_idle), idle * 2)

    def _work(
        self, plan: ServiceBusPlan, work: queue.Queue[_InFlight | None], slots: threading.Semaphore
    ) -> None:
        while True:
            entry = work.get()
            if entry is None:
                return
            try:
                self._handle(plan, entry)
            except Exception:  # a bug here must not kill the worker
                logger.exception("trigger host error", extra={"function": plan.function.name})
            finally:
                slots.release()

    def _handle(self, plan: ServiceBusPlan, entry: _InFlight) -> None:
        with entry.lock:
            if entry.state != "waiting":
                return
            entry.state = "running"
        message = entry.message
        fields = _message_fields(message)
        try:
            self.invoker.invoke(
                plan.function, to_service_bus_message(message), message.correlation_id, fields
            )
        except InvalidMessage as invalid:
            # The handler says no retry can succeed: dead-letter now rather than burn the
            # remaining deliveries (Service Bus's DeadLetterAsync from a handler).
            logger.error(
                "function rejected the message as invalid; dead-lettered",
                extra={
                    "function": plan.function.name,
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
                extra={"function": plan.function.name, **fields},
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
                extra=_message_fields(entry.message),
            )

    def _forget(self, entry: _InFlight) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(entry.message.lock_token, None)

    def _renew_locks(self) -> None:
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
                    logger.exception("lock renewal failed", extra=_message_fields(entry.message))
