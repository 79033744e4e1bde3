"""The in-process cache of public read responses: expiry, writes, races and sharing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.read_cache import CacheRegistry, ReadCache


class Timer:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Builds:
    """A build function that answers its call number, so a test sees which call served."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return f"answer {self.calls}".encode()


def test_an_entry_is_served_until_it_expires() -> None:
    timer = Timer()
    cache = ReadCache(30, timer=timer)
    build = Builds()

    assert cache.get_or_build("page", build) == b"answer 1"
    timer.now += 29
    assert cache.get_or_build("page", build) == b"answer 1"
    timer.now += 2
    assert cache.get_or_build("page", build) == b"answer 2"
    assert build.calls == 2


def test_keys_are_kept_apart() -> None:
    cache = ReadCache(30)
    assert cache.get_or_build(("phones", 24), lambda: b"phones") == b"phones"
    assert cache.get_or_build(("phones", 12), lambda: b"fewer") == b"fewer"
    assert cache.get_or_build(("phones", 24), lambda: b"again") == b"phones"


def test_a_change_drops_every_entry() -> None:
    cache = ReadCache(30)
    cache.get_or_build("a", lambda: b"old a")
    cache.get_or_build("b", lambda: b"old b")

    cache.changed()

    assert cache.get_or_build("a", lambda: b"new a") == b"new a"
    assert cache.get_or_build("b", lambda: b"new b") == b"new b"


def test_a_read_that_raced_a_write_is_not_kept() -> None:
    cache = ReadCache(30)

    def read_then_write_lands() -> bytes:
        body = b"read before the write"
        cache.changed()  # the write becomes visible while this response is being built
        return body

    assert cache.get_or_build("page", read_then_write_lands) == b"read before the write"
    assert cache.get_or_build("page", lambda: b"after the write") == b"after the write"


def test_a_failed_build_caches_nothing() -> None:
    cache = ReadCache(30)

    def fails() -> bytes:
        raise LookupError("unknown category")

    with pytest.raises(LookupError):
        cache.get_or_build("page", fails)
    assert cache.get_or_build("page", lambda: b"now it exists") == b"now it exists"


def test_zero_seconds_turns_the_cache_off() -> None:
    cache = ReadCache(0)
    build = Builds()
    cache.get_or_build("page", build)
    cache.get_or_build("page", build)
    assert build.calls == 2


def test_the_least_recently_used_entries_go_first_when_full() -> None:
    cache = ReadCache(30, entries=2)
    cache.get_or_build("a", lambda: b"a")
    cache.get_or_build("b", lambda: b"b")
    cache.get_or_build("a", lambda: b"a again")  # a is now the most recently used
    cache.get_or_build("c", lambda: b"c")

    assert cache.get_or_build("a", lambda: b"rebuilt") == b"a"
    assert cache.get_or_build("b", lambda: b"rebuilt") == b"rebuilt"


def test_stores_on_the_same_data_share_a_cache(tmp_path: Path) -> None:
    registry = CacheRegistry()
    first = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    second = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    other = SqliteDocumentStore(tmp_path / "other" / "documents.sqlite3")
    try:
        registry.of(first).get_or_build("page", lambda: b"before")
        assert registry.of(second).get_or_build("page", lambda: b"x") == b"before"
        assert registry.of(other).get_or_build("page", lambda: b"elsewhere") == b"elsewhere"

        registry.changed(second)  # a write through the other object on the same data

        assert registry.of(first).get_or_build("page", lambda: b"after") == b"after"
        assert registry.of(other).get_or_build("page", lambda: b"x") == b"elsewhere"
    finally:
        for store in (first, second, other):
            store.close()


def test_a_source_without_a_location_has_a_cache_of_its_own() -> None:
    class Source:
        pass

    registry = CacheRegistry()
    one, two = Source(), Source()
    registry.of(one).get_or_build("page", lambda: b"one")

    assert registry.of(two).get_or_build("page", lambda: b"two") == b"two"
    registry.changed(two)
    assert registry.of(one).get_or_build("page", lambda: b"x") == b"one"
    registry.changed(one)
    assert registry.of(one).get_or_build("page", lambda: b"fresh") == b"fresh"


def test_compositions_keeping_entries_for_different_times_do_not_share_entries(
    tmp_path: Path,
) -> None:
    registry = CacheRegistry()
    store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    try:
        registry.of(store, 0).get_or_build("page", lambda: b"uncached")
        build = Builds()
        registry.of(store, 30).get_or_build("page", build)
        registry.of(store, 30).get_or_build("page", build)
        assert build.calls == 1, "the cache that keeps entries kept it"
        registry.of(store, 10).get_or_build("page", lambda: b"ten")

        registry.changed(store)

        assert registry.of(store, 30).get_or_build("page", build) == b"answer 2"
        assert registry.of(store, 10).get_or_build("page", lambda: b"fresh") == b"fresh"
    finally:
        store.close()


def test_get_answers_only_a_current_entry() -> None:
    cache = ReadCache(30)
    assert cache.get("page") is None
    cache.get_or_build("page", lambda: b"kept")
    assert cache.get("page") == b"kept"
    cache.changed()
    assert cache.get("page") is None
    assert ReadCache(0).get("page") is None
