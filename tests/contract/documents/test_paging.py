"""Short and empty pages: a page may hold fewer items than asked for while a continuation
remains (Cosmos serves cross-partition queries a physical partition at a time; the fake
does the same), and `fill_page` / `first` read on until they have what was asked for."""

from __future__ import annotations

import pytest

from cloudcart.core.ports.documents import (
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    Query,
    fill_page,
    first,
)


@pytest.fixture
def events(store: DocumentStore) -> DocumentStore:
    container = store.container("events")
    for n in range(23):
        container.create({"id": f"e{n:02d}", "customerId": "c1" if n % 2 else "c2", "n": n})
    return store


@pytest.mark.parametrize(
    ("order_by", "partition_key"),
    [
        ((Order("n", descending=True),), None),
        ((), None),
        ((Order("n", descending=True),), "c1"),
    ],
)
def test_fill_page_gives_full_pages_and_resumes_exactly(
    events: DocumentStore, order_by: tuple[Order, ...], partition_key: str | None
) -> None:
    container = events.container("events")
    query = Query([Filter("n", "ge", 0)], order_by, limit=5)
    expected = [d["n"] for d in _walk(container, query, partition_key)]
    assert len(expected) == (23 if partition_key is None else 11)

    seen: list[int] = []
    sizes: list[int] = []
    page = fill_page(container, query, partition_key=partition_key)
    while True:
        seen.extend(d["n"] for d in page.items)
        sizes.append(len(page.items))
        if page.continuation is None:
            break
        page = fill_page(
            container, query, partition_key=partition_key, continuation=page.continuation
        )
    assert seen == expected
    assert all(size == 5 for size in sizes[:-1])
    assert sizes[-1] <= 5


def _walk(container: Container, query: Query, partition_key: str | None) -> list[Document]:
    """Every item of the query, however it is paged."""
    found: list[Document] = []
    continuation: str | None = None
    while True:
        page = container.query(query, partition_key=partition_key, continuation=continuation)
        found.extend(page.items)
        continuation = page.continuation
        if continuation is None:
            return found


def test_first_finds_a_match_in_any_partition(events: DocumentStore) -> None:
    container = events.container("events")
    for n in (0, 7, 22):
        found = first(container, Query([Filter("n", "eq", n)]))
        assert found is not None and found["id"] == f"e{n:02d}"
    assert first(container, Query([Filter("n", "eq", 99)])) is None
    newest = first(container, Query(order_by=[Order("n", descending=True)]), partition_key="c1")
    assert newest is not None and newest["n"] == 21
