"""Time, in one place, so tests and TTL logic agree on what "now" is."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def epoch_seconds() -> int:
    """Whole seconds since the epoch, the unit of Cosmos `_ts` and `ttl`."""
    return int(time.time())
