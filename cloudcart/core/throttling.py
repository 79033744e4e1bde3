"""How long a throttling backing service may hold up the work in hand.

A throttled request (HTTP 429) was not carried out, so retrying it after the wait the
service asks for is always safe; the question is only how long to keep trying. Someone
waits on an HTTP request: it gets a short budget and then fails fast with `Throttled`,
which the API answers 503 with `Retry-After`, so the client can back off instead of
holding a connection (and a Functions worker) for half a minute. Background work
(triggers, timers, the CLI) has nobody waiting and takes the long budget, so a burst of
429s delays it instead of failing it into a retry or a dead letter.

The budget is a context variable: the API's middleware (`cloudcart.api.app`) runs every
request under `INTERACTIVE`, and everything else gets the default, `BACKGROUND`. The
Cosmos adapter (`cloudcart.core.documents.cosmos`) reads `current()` on every call.
`retry_after_seconds` reads the wait an HTTP service asks for (partner APIs, SendGrid,
Twilio).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class ThrottleBudget:
    """At most `retries` retries of one throttled call, waiting at most `max_wait_seconds`
    in all; a retry whose wait would pass that is not attempted."""

    retries: int
    max_wait_seconds: float


INTERACTIVE = ThrottleBudget(retries=2, max_wait_seconds=1.0)
"""For a request someone waits on: absorbs a brief burst, then answers 503."""

BACKGROUND = ThrottleBudget(retries=9, max_wait_seconds=30.0)
"""For work nobody waits on: the SDK's own defaults (9 retries, 30 s)."""

_budget: ContextVar[ThrottleBudget] = ContextVar("cloudcart_throttle_budget", default=BACKGROUND)


def current() -> ThrottleBudget:
    """The budget of the work running now (`BACKGROUND` unless something set another)."""
    return _budget.get()


def enter(budget: ThrottleBudget) -> Token[ThrottleBudget]:
    """Put the current context under `budget` until `leave(token)`; for code a `with`
    block does not fit, such as an ASGI middleware."""
    return _budget.set(budget)


def leave(token: Token[ThrottleBudget]) -> None:
    """Restore the budget `enter` replaced."""
    _budget.reset(token)


@contextmanager
def throttle_budget(budget: ThrottleBudget) -> Iterator[None]:
    """Run the block (and what it calls, threads started with its context included) under
    `budget`."""
    token = enter(budget)
    try:
        yield
    finally:
        leave(token)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP-date), or None
    when it is absent or unreadable. A date in the past means no wait."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
