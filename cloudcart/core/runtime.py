"""The process-wide `Services`: one set of adapters per process, shared by every trigger.

Azure Functions calls trigger functions (change feed, timers, Service Bus) without the
FastAPI app around them, so they reach the adapters through here; `create_app` uses the
same instance so HTTP and triggers share connections.
"""

from __future__ import annotations

import threading

from cloudcart.core.services import Services
from cloudcart.core.settings import get_settings

_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process's `Services`, built on first use from `get_settings()` (thread-safe)."""
    global _services
    current = _services
    if current is None:
        with _lock:
            if _services is None:
                _services = Services(get_settings())
            current = _services
    return current


def reset() -> None:
    """Close and forget the process's `Services` (tests; the next call builds anew)."""
    global _services
    with _lock:
        old, _services = _services, None
    if old is not None:
        old.close()
