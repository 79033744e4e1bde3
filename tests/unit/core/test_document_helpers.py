"""The port's paging and document helpers (`pages`, `each`, `every`, `strip_system`,
`set_field`), on the embedded store and on one that answers short and empty pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.ports.documents import (
    Container,
    Document,
    Filter,
    Page,
    Query,
    each,
    every,
    pages,
    set_field,
    strip_system,
)
from tests.fakes.short_pages import ShortPagesStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteDocumentStore:
    store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    store.ensure_containers()
    for n in range(5):
        store.container("catalog").create({"id": f"p{n}", "pk": "all", "type": "product"})
    store.container("catalog").create({"id": "c1", "pk": "all", "type": "category"})
    return store


PRODUCTS = Query(filters=(Filter("type", "eq", "product"),), limit=2)


def test_pages_are_query_sized_and_end_without_a_continuation(store: SqliteDocumentStore) -> None:
    found = list(pages(store.container("catalog"), PRODUCTS, partition_key="all"))
    assert [len(p.items) for p in found] == [2, 2, 1]
    assert [p.continuation is None for p in found] == [False, False, True]


def test_each_and_every_follow_short_and_empty_pages(store: SqliteDocumentStore) -> None:
    short = ShortPagesStore(store).container("catalog")
    expected = {f"p{n}" for n in range(5)}
    assert {d["id"] for d in each(short, PRODUCTS)} == expected
    assert {d["id"] for d in every(short, PRODUCTS, partition_key="all")} == expected


def test_each_reads_a_page_only_when_asked_for(store: SqliteDocumentStore) -> None:
    container = _Counting(store.container("catalog"))
    items = each(container, PRODUCTS)
    assert container.queries == 0
    next(items)
    next(items)
    assert container.queries == 1
    next(items)
    assert container.queries == 2


def test_every_of_nothing_is_empty(store: SqliteDocumentStore) -> None:
    query = Query(filters=(Filter("type", "eq", "nothing"),))
    assert every(store.container("catalog"), query) == []


def test_strip_system_drops_every_underscore_property_and_copies() -> None:
    stored: Document = {
        "id": "a",
        "nested": {"_keep": 1},
        "_etag": '"1"',
        "_ts": 1,
        "_rid": "r",
        "_self": "s",
        "_attachments": "at",
        "_lsn": 3,
    }
    clean = strip_system(stored)
    assert clean == {"id": "a", "nested": {"_keep": 1}}
    clean["id"] = "b"
    assert stored["id"] == "a"


def test_strip_system_of_a_stored_document_is_what_was_written(
    store: SqliteDocumentStore,
) -> None:
    stored = store.container("catalog").read("p1", "all")
    assert "_etag" in stored
    assert strip_system(stored) == {"id": "p1", "pk": "all", "type": "product"}


def test_set_field_sets_dotted_paths_creating_objects() -> None:
    document: Document = {"id": "a", "address": {"city": "Oslo"}}
    set_field(document, "customerId", "c1")
    set_field(document, "address.country", "NO")
    set_field(document, "owner.key", "k")
    assert document == {
        "id": "a",
        "customerId": "c1",
        "address": {"city": "Oslo", "country": "NO"},
        "owner": {"key": "k"},
    }


class _Counting:
    """A container that counts its queries."""

    def __init__(self, inner: Container) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.queries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query(
        self,
        query: Query,
        *,
        partition_key: str | None = None,
        continuation: str | None = None,
    ) -> Page:
        """The inner container's page, counted."""
        self.queries += 1
        return self.inner.query(query, partition_key=partition_key, continuation=continuation)
