"""Time, in one place, so tests and TTL logic agree on what "now" is."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def timestamp(value: datetime) -> str:
    """`value` in UTC as RFC 3339 with microseconds and `Z`, always the same width
    (`2026-05-01T09:30:00.000000Z`): how every stored time is written.

    Fixed width makes string order equal time order, so a `createdAt < cutoff` filter
    compares correctly in both Cosmos and SQLite.
    """
    # Formatted by hand: strftime costs several times more, and this runs for every
    # document and fact written.
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def now_timestamp() -> str:
    """Now as a `timestamp` (fixed-width UTC, microseconds, `Z`)."""
    return timestamp(utcnow())


def epoch_seconds() -> int:
    """Whole seconds since the epoch, the unit of Cosmos `_ts` and `ttl`."""
    return int(time.time())


def parse_utc(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a time without an offset is read as UTC,
    which is what every stored and announced time is), or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
