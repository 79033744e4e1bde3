"""A wall clock tests move by hand, for code that takes a `clock: Callable[[], datetime]`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Returns `now` until a test calls `advance(...)`; starts at a fixed UTC instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by `timedelta(**delta)`."""
        self.now += timedelta(**delta)
