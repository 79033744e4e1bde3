"""A short-lived, in-process cache of encoded public read responses.

Storefront list pages and searches are the same few requests over and over (the first page
of each category, the popular queries), and each costs a store or index query plus the
encoding of two dozen products. Their responses are public and already allowed to be up to
`max-age` old in any shared cache, so this process may serve them from memory too, on two
conditions that a CDN cannot offer:

- **A write in this process drops them at once.** The owner of the data calls `changed()`
  after a write is visible to readers; an admin who edits a product sees the edit on the
  next request, not after `max-age`.
- **A read never caches what a write it raced with made stale.** Each entry carries the
  generation it was read under; `changed()` starts a new one, so a response built from data
  read before the write is never served after it.

Writes made by other processes (another instance of the Functions app, a CLI run) are seen
when entries expire, as they would be behind a CDN.

cachetools' `TTLCache` keeps the expiry and the size bound; this class adds the generation
check, which no cache library offers, and the lock (`TTLCache` is not thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from weakref import WeakKeyDictionary

from cachetools import LRUCache, TTLCache

DEFAULT_SECONDS = 30.0
"""How long an entry lives: the list page's advertised `max-age`."""
DEFAULT_ENTRIES = 512
"""Entries kept before the least recently used go: a few MiB of encoded pages."""


class ReadCache:
    """Encoded responses by key, each kept at most `seconds`, all dropped by `changed()`.

    `seconds <= 0` turns the cache off: `get_or_build` always builds.
    """

    def __init__(
        self,
        seconds: float = DEFAULT_SECONDS,
        *,
        entries: int = DEFAULT_ENTRIES,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self._entries: TTLCache[Hashable, tuple[int, bytes]] = TTLCache(
            maxsize=entries, ttl=max(seconds, 0.001), timer=timer
        )
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        """The cached response for `key`, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == self._generation:
                return entry[1]
        return None

    def get_or_build(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The cached response for `key`, else `build()`'s, kept unless a write raced it.

        Exceptions from `build` propagate and nothing is cached.
        """
        if self.seconds <= 0:
            return build()
        with self._lock:
            generation = self._generation
            entry = self._entries.get(key)
        if entry is not None and entry[0] == generation:
            return entry[1]
        body = build()
        with self._lock:
            if self._generation == generation:
                self._entries[key] = (generation, body)
        return body

    def changed(self) -> None:
        """The data behind the entries changed: none of them is served again."""
        with self._lock:
            self._generation += 1
            self._entries.clear()


class CacheRegistry:
    """The `ReadCache`s of each data source (a documents store, a search index).

    A source that names where its data lives (`location`: the embedded adapters' folders,
    the Azure endpoints) shares its caches with every object on the same data in this
    process, so a write through one composition is seen by the reads of another (the CLI's
    and the app's, a tool's and a test's). A source without one has caches of its own.
    Compositions that keep entries for different times get different caches, all dropped
    together by a write.
    """

    def __init__(self, *, locations: int = 64) -> None:
        self._by_location: LRUCache[str, dict[float, ReadCache]] = LRUCache(maxsize=locations)
        self._by_object: WeakKeyDictionary[object, dict[float, ReadCache]] = WeakKeyDictionary()
        self._lock = threading.Lock()

    def _caches(self, source: object) -> dict[float, ReadCache]:
        location = getattr(source, "location", None)
        if isinstance(location, str):
            caches = self._by_location.get(location)
            if caches is None:
                caches = self._by_location[location] = {}
            return caches
        caches = self._by_object.get(source)
        if caches is None:
            caches = self._by_object[source] = {}
        return caches

    def of(self, source: object, seconds: float = DEFAULT_SECONDS) -> ReadCache:
        """The cache of `source` whose entries live `seconds`, made on first use."""
        with self._lock:
            caches = self._caches(source)
            cache = caches.get(seconds)
            if cache is None:
                cache = caches[seconds] = ReadCache(seconds)
            return cache

    def changed(self, source: object) -> None:
        """`source` was written to in this process: drop its caches' entries."""
        with self._lock:
            caches = list(self._caches(source).values())
        for cache in caches:
            cache.changed()
