"""What every runner shares: calling user functions and the threads they run on."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, Protocol, TypeVar

from cloudcart.api.logging import correlation_id
from cloudcart.local.triggers import logger
from cloudcart.local.triggers.bindings import FunctionPlan, LocalContext


def daemon_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Start `target` on a thread named `trigger-<name>`.

    Daemon: a handler stuck past the stop timeout must not keep the process alive; its
    message is abandoned (or its lock expires) and comes back.
    """
    thread = threading.Thread(target=target, name=f"trigger-{name}", daemon=True)
    thread.start()
    return thread


async def _with_correlation_id(
    call: Callable[..., Coroutine[Any, Any, Any]], kwargs: dict[str, Any], cid: str | None
) -> Any:
    # Set inside the task: it runs in a copy of the loop thread's context, not the caller's.
    correlation_id.set(cid)
    return await call(**kwargs)


class Invoker:
    """Calls user functions as the Functions Python worker does.

    A sync function runs on the calling thread; every async function runs on one event
    loop shared by the whole host, on its own thread, while the caller waits for it. Either
    way the logs the function writes carry the correlation id of what triggered it, and
    each invocation is logged with its duration and outcome. An exception from the
    function reaches the caller, which decides what it means for its trigger.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def start(self, *, needs_loop: bool) -> None:
        """Start the event loop when some function is async."""
        if needs_loop:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._loop_thread = daemon_thread(loop.run_forever, "host-asyncio")

    def stop(self) -> None:
        """Stop the event loop, if it was started."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(1.0)

    def invoke(
        self, plan: FunctionPlan, argument: Any, cid: str | None, fields: dict[str, Any]
    ) -> None:
        """Call the function with `argument` (and `context` if it asks for one); `fields`
        are added to the invocation log."""
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


class KindPlan(Protocol):
    """A trigger kind's plan: whatever it adds, it says which function it runs."""

    @property
    def function(self) -> FunctionPlan:
        """The function the plan runs."""
        ...


PlanT = TypeVar("PlanT", bound=KindPlan)


class Runner(ABC, Generic[PlanT]):
    """Runs the functions of one trigger kind until the host's `stopping` event is set.

    `start()` starts one or more loop threads (`loops`); each must return soon after
    `stopping` is set, except while it waits for a running invocation. The host joins
    them on stop and reports those still alive at its deadline.
    """

    def __init__(self, plans: Sequence[PlanT], invoker: Invoker, stopping: threading.Event) -> None:
        self.plans = list(plans)
        self.invoker = invoker
        self.stopping = stopping
        self.loops: list[threading.Thread] = []

    @property
    def functions(self) -> list[FunctionPlan]:
        """The functions this runner runs, in declaration order."""
        return [plan.function for plan in self.plans]

    @abstractmethod
    def start(self) -> None:
        """Start the runner's threads. Returns at once."""

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        self.loops.append(daemon_thread(target, name))
