"""Dependencies shared by every router."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from cloudcart.composition import Services
from cloudcart.core.read_cache import ReadCache
from cloudcart.core.settings import Settings


async def get_services(request: Request) -> Services:
    """The app's adapters (built by the app factory, stored on `app.state.services`)."""
    # One turn of the event loop per request: a route whose reads run inline (embedded
    # adapters, cached pages) would otherwise never yield, and under load one connection's
    # requests would starve the others. A thread hop gave that turn too, at far more cost.
    await asyncio.sleep(0)
    services: Services = request.app.state.services
    return services


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    services: Services = request.app.state.services
    return services.settings


_T = TypeVar("_T")


async def run_read(services: Services, read: Callable[[], _T]) -> _T:
    """Run a route's read-only work: on the event loop when the adapters read in process
    (`Services.reads_in_process`: a thread hop would cost more than the read), else in the
    thread pool, so a network call never blocks the loop."""
    if services.reads_in_process:
        return read()
    return await run_in_threadpool(read)


async def cached_read(
    services: Services, cache: ReadCache, key: Hashable, read: Callable[[], bytes]
) -> bytes:
    """`read()`'s answer through `cache`: a hit is answered here, without the thread hop a
    network adapter's read takes; a miss runs as `run_read` does."""
    hit = cache.get(key)
    if hit is not None:
        return hit
    return await run_read(services, lambda: cache.get_or_build(key, read))


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
