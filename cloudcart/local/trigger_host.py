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

Each trigger kind has its own runner in `cloudcart.local.triggers` (`ServiceBusRunner`,
`ChangeFeedRunner`, `TimerRunner`), which documents the guarantees it keeps; this module
plans the functions, owns the runners and starts and stops them together. Every public
name of those modules that callers use is importable from here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cloudcart.core.settings import Settings
from cloudcart.local.triggers import logger
from cloudcart.local.triggers.bindings import (
    COSMOS_DB_TRIGGER,
    HTTP_TRIGGER,
    SERVICE_BUS_TRIGGER,
    TIMER_TRIGGER,
    FunctionPlan,
    LocalContext,
    read_trigger,
    to_service_bus_message,
)
from cloudcart.local.triggers.changefeed import (
    DEFAULT_LEASE_CONTAINER,
    DEFAULT_MAX_ITEMS_PER_INVOCATION,
    MAX_RETRY_BACKOFF_SECONDS,
    ChangeFeedPlan,
    ChangeFeedRunner,
)
from cloudcart.local.triggers.config import (
    HOST_JSON,
    HostConfig,
    TriggerHostError,
    parse_timespan,
    resolve_app_setting,
    resolve_binding_expressions,
)
from cloudcart.local.triggers.dead_letters import DEAD_LETTERED_EVENT
from cloudcart.local.triggers.runtime import Invoker, Runner
from cloudcart.local.triggers.servicebus import ServiceBusPlan, ServiceBusRunner
from cloudcart.local.triggers.timers import (
    PAST_DUE_TOLERANCE,
    TimerPlan,
    TimerRunner,
    ncrontab_next_occurrence,
)

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from cloudcart.composition import Services

__all__ = [
    "COSMOS_DB_TRIGGER",
    "DEAD_LETTERED_EVENT",
    "DEFAULT_LEASE_CONTAINER",
    "DEFAULT_MAX_ITEMS_PER_INVOCATION",
    "HOST_JSON",
    "HTTP_TRIGGER",
    "MAX_RETRY_BACKOFF_SECONDS",
    "PAST_DUE_TOLERANCE",
    "SERVICE_BUS_TRIGGER",
    "TIMER_TRIGGER",
    "HostConfig",
    "LocalContext",
    "TriggerHost",
    "TriggerHostError",
    "logger",
    "ncrontab_next_occurrence",
    "parse_timespan",
    "resolve_app_setting",
    "resolve_binding_expressions",
    "to_service_bus_message",
]


def _plan(
    functions: Sequence[Function], settings: Settings
) -> tuple[list[ServiceBusPlan], list[ChangeFeedPlan], list[TimerPlan]]:
    service_bus: list[ServiceBusPlan] = []
    change_feed: list[ChangeFeedPlan] = []
    timers: list[TimerPlan] = []
    for function in functions:
        binding = read_trigger(function, settings)
        if binding is None:
            continue
        kind = binding.function.trigger_type
        if kind == SERVICE_BUS_TRIGGER:
            service_bus.append(ServiceBusPlan.from_binding(binding))
        elif kind == COSMOS_DB_TRIGGER:
            change_feed.append(ChangeFeedPlan.from_binding(binding))
        else:
            timers.append(TimerPlan.from_binding(binding))
    return service_bus, change_feed, timers


class TriggerHost:
    """Runs the Service Bus, Cosmos DB change-feed and timer functions of a Functions app
    against the embedded adapters.

    `functions` is `app.get_functions()`, read once by the caller (a second call on the
    same app raises). HTTP functions are skipped (uvicorn serves them) and other trigger
    types are skipped with a warning. Everything is resolved and checked here, so a
    misconfiguration fails before anything runs: raises TriggerHostError.

    `poll_interval` is how long an idle receiver or change-feed poller waits before asking
    again (seconds); while nothing comes, the wait doubles up to `max_idle`. Messages
    published and documents written in this process end the wait at once, so the longer
    waits only delay what another process sends. Use as a context manager, or call
    `start()` and `stop()`.
    """

    def __init__(
        self,
        functions: Sequence[Function],
        settings: Settings,
        services: Services,
        *,
        host_config: HostConfig | None = None,
        poll_interval: float = 0.05,
        max_idle: float = 0.5,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.settings = settings
        self.services = services
        self.host_config = host_config if host_config is not None else HostConfig.from_host_json()
        self.poll_interval = poll_interval
        service_bus, change_feed, timers = _plan(functions, settings)
        # One event stops every runner's loops, so stop() reaches them all at once.
        self._stopping = threading.Event()
        self._invoker = Invoker()
        # Built only when needed: it refuses to run without the embedded broker.
        self._service_bus = (
            ServiceBusRunner(
                service_bus,
                settings,
                services,
                self.host_config,
                self._invoker,
                self._stopping,
                poll_interval,
                max_idle,
            )
            if service_bus
            else None
        )
        self._change_feed = ChangeFeedRunner(
            change_feed, services, self._invoker, self._stopping, poll_interval, max_idle
        )
        self._timers = TimerRunner(timers, self._invoker, self._stopping)
        self._started = False
        self._stopped = False

    @property
    def _runners(self) -> list[Runner[Any]]:
        runners: list[Runner[Any]] = [self._change_feed, self._timers]
        return runners if self._service_bus is None else [self._service_bus, *runners]

    @property
    def _functions(self) -> list[FunctionPlan]:
        return [function for runner in self._runners for function in runner.functions]

    @property
    def function_names(self) -> list[str]:
        """Names of the functions this host runs."""
        return [function.name for function in self._functions]

    def start(self) -> None:
        """Start receiving, polling and scheduling. Returns at once."""
        if self._started:
            raise RuntimeError("the trigger host was already started")
        self._started = True
        # One loop for every async function, as in the Functions Python worker.
        self._invoker.start(needs_loop=any(function.is_async for function in self._functions))
        for runner in self._runners:
            runner.start()
        logger.info(
            "trigger host started",
            extra={
                "functions": self.function_names,
                "maxConcurrentCalls": self.host_config.max_concurrent_calls,
            },
        )

    def stop(self, timeout: float = 30) -> None:
        """Stop gracefully: stop receiving, polling and scheduling, let running invocations
        finish for up to `timeout` seconds, then abandon the messages still unfinished so
        they return to their queue. Idempotent."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._change_feed.wake()
        loops = [thread for runner in self._runners for thread in runner.loops]
        workers: list[threading.Thread] = []
        if self._service_bus is not None:
            self._service_bus.wake_workers()
            workers = self._service_bus.workers
        for thread in [*loops, *workers]:
            thread.join(max(0.0, deadline - time.monotonic()))
        unfinished = [thread.name for thread in loops if thread.is_alive()]
        if self._service_bus is not None:
            self._service_bus.abandon_unfinished()
        if unfinished:
            logger.warning("invocations still running at shutdown", extra={"threads": unfinished})
        if self._service_bus is not None:
            self._service_bus.close()
        self._invoker.stop()
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
