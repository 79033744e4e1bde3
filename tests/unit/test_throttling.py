"""The 429 retry loop of the Cosmos adapter under each budget, by attempts and waits (no
clock): background work waits out what the service asks for, an HTTP request gives up
once another wait would not fit in its second."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudcart.core.documents.cosmos import with_throttle_retries
from cloudcart.core.errors import Throttled
from cloudcart.core.throttling import (
    BACKGROUND,
    INTERACTIVE,
    ThrottleBudget,
    current,
    throttle_budget,
)


class FakeHttpError(Exception):
    def __init__(self, status_code: int, retry_after_ms: int | None = None) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code
        self.headers = (
            {} if retry_after_ms is None else {"x-ms-retry-after-ms": str(retry_after_ms)}
        )


def flaky(failures: list[Exception]) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return fn, calls


def run(fn: Callable[[], str]) -> tuple[str, list[float]]:
    waits: list[float] = []
    result = with_throttle_retries(fn, (FakeHttpError,), "test", sleep=waits.append)
    return result, waits


def test_background_is_the_default_and_waits_what_the_service_asks() -> None:
    assert current() == BACKGROUND
    fn, calls = flaky([FakeHttpError(429, 300) for _ in range(5)])
    assert run(fn) == ("done", [0.3] * 5)
    assert len(calls) == 6


def test_background_gives_up_after_its_retries() -> None:
    fn, calls = flaky([FakeHttpError(429, 10) for _ in range(BACKGROUND.retries + 1)])
    with pytest.raises(Throttled) as raised:
        run(fn)
    assert len(calls) == BACKGROUND.retries + 1
    assert raised.value.retry_after == pytest.approx(0.01)


def test_interactive_retries_briefly_then_is_throttled() -> None:
    fn, calls = flaky([FakeHttpError(429, 300) for _ in range(4)])
    waits: list[float] = []
    with throttle_budget(INTERACTIVE), pytest.raises(Throttled) as raised:
        with_throttle_retries(fn, (FakeHttpError,), "test", sleep=waits.append)
    assert len(calls) == INTERACTIVE.retries + 1
    assert waits == [0.3, 0.3]
    assert raised.value.retry_after == pytest.approx(0.3)
    assert current() == BACKGROUND  # the block's budget ended with it


def test_a_wait_that_does_not_fit_the_budget_is_not_attempted() -> None:
    fn, calls = flaky([FakeHttpError(429, 5000)])
    with throttle_budget(INTERACTIVE), pytest.raises(Throttled) as raised:
        run(fn)
    assert len(calls) == 1
    assert raised.value.retry_after == 5.0


def test_a_missing_retry_after_waits_a_little() -> None:
    with throttle_budget(ThrottleBudget(retries=1, max_wait_seconds=1.0)):
        fn, calls = flaky([FakeHttpError(429)])
        result, waits = run(fn)
    assert result == "done" and len(calls) == 2 and 0 < waits[0] <= 0.5


def test_other_errors_are_not_retried() -> None:
    fn, calls = flaky([FakeHttpError(503)])
    with pytest.raises(FakeHttpError):
        run(fn)
    assert len(calls) == 1
