"""Time, in one place, so tests and TTL logic agree on what "now" is."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


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
