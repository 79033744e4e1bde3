"""The portable `Query`: every filter op, ordering, limits, continuation and scope."""

from __future__ import annotations

from typing import Any

import pytest

from cloudcart.core.ports.documents import Container, DocumentStore, Filter, Order, Query

PRODUCTS: list[dict[str, Any]] = [
    {
        "id": "p1",
        "categoryId": "fruit",
        "name": "Apple",
        "price": 10,
        "tags": ["red", "sweet"],
        "stock": {"available": 5},
        "active": True,
    },
    {
        "id": "p2",
        "categoryId": "fruit",
        "name": "Avocado",
        "price": 20,
        "tags": ["green"],
        "stock": {"available": 0},
        "active": False,
    },
    {
        "id": "p3",
        "categoryId": "fruit",
        "name": "Banana",
        "price": 5,
        "tags": ["yellow", "sweet"],
        "active": True,
        "discontinued": None,
    },
    {
        "id": "p4",
        "categoryId": "veg",
        "name": "Carrot",
        "price": 3.5,
        "tags": ["orange"],
        "stock": {"available": 12},
        "active": True,
    },
    {"id": "p5", "categoryId": "veg", "name": "10 beans", "price": "n/a", "tags": "sweet"},
]

CASES: list[tuple[list[Filter], set[str]]] = [
    ([Filter("name", "eq", "Apple")], {"p1"}),
    ([Filter("price", "ne", 10)], {"p2", "p3", "p4"}),
    ([Filter("price", "lt", 10)], {"p3", "p4"}),
    ([Filter("price", "le", 10)], {"p1", "p3", "p4"}),
    ([Filter("price", "gt", 10)], {"p2"}),
    ([Filter("price", "ge", 10)], {"p1", "p2"}),
    ([Filter("name", "gt", "B")], {"p3", "p4"}),
    ([Filter("name", "in", ["Apple", "Carrot", "Durian"])], {"p1", "p4"}),
    ([Filter("name", "in", [])], set()),
    ([Filter("tags", "contains", "sweet")], {"p1", "p3"}),
    ([Filter("name", "startswith", "A")], {"p1", "p2"}),
    ([Filter("name", "startswith", "%")], set()),
    ([Filter("stock.available", "exists", True)], {"p1", "p2", "p4"}),
    ([Filter("stock", "exists", False)], {"p3", "p5"}),
    ([Filter("stock.available", "eq", 0)], {"p2"}),
    ([Filter("stock.available", "ge", 5)], {"p1", "p4"}),
    ([Filter("active", "eq", True)], {"p1", "p3", "p4"}),
    ([Filter("active", "eq", False)], {"p2"}),
    ([Filter("discontinued", "eq", None)], {"p3"}),
    ([Filter("categoryId", "eq", "fruit"), Filter("price", "lt", 20)], {"p1", "p3"}),
    ([Filter("name", "eq", "x' OR 1=1 --")], set()),
]


@pytest.fixture
def items(store: DocumentStore) -> Container:
    container = store.container("items")
    for product in PRODUCTS:
        container.create(product)
    return container


def _ids(container: Container, query: Query, partition_key: str | None = None) -> list[str]:
    return [d["id"] for d in container.query(query, partition_key=partition_key).items]


def test_each_filter_op(items: Container) -> None:
    for filters, expected in CASES:
        got = set(_ids(items, Query(filters=filters)))
        assert got == expected, filters


def test_order_by_ascending_and_descending(items: Container) -> None:
    numeric = [Filter("price", "ge", 0)]
    assert _ids(items, Query(numeric, [Order("price")])) == ["p4", "p3", "p1", "p2"]
    assert _ids(items, Query(numeric, [Order("price", descending=True)])) == [
        "p2",
        "p1",
        "p3",
        "p4",
    ]
    assert _ids(items, Query([Filter("active", "exists", True)], [Order("name")])) == [
        "p1",
        "p2",
        "p3",
        "p4",
    ]


def test_partition_scoped_and_cross_partition(items: Container) -> None:
    assert set(_ids(items, Query(), partition_key="veg")) == {"p4", "p5"}
    assert set(_ids(items, Query())) == {"p1", "p2", "p3", "p4", "p5"}
    assert _ids(items, Query(), partition_key="nothing-here") == []


def test_limit_and_continuation_walk_every_page(store: DocumentStore) -> None:
    events = store.container("events")
    for n in range(23):
        events.create({"id": f"e{n:02d}", "customerId": "c1" if n % 2 else "c2", "n": n})

    for partition_key, expected in [
        (None, list(range(22, -1, -1))),
        ("c1", list(range(21, -1, -2))),
    ]:
        query = Query([Filter("n", "ge", 0)], [Order("n", descending=True)], limit=5)
        seen: list[int] = []
        sizes: list[int] = []
        page = events.query(query, partition_key=partition_key)
        while True:
            seen.extend(d["n"] for d in page.items)
            sizes.append(len(page.items))
            if page.continuation is None:
                break
            page = events.query(query, partition_key=partition_key, continuation=page.continuation)
        assert seen == expected
        # Never over the limit, but possibly short: Cosmos serves a cross-partition query a
        # physical partition at a time (tests/contract/documents/test_paging.py fills them).
        assert all(size <= 5 for size in sizes)


def test_invalid_field_paths_are_rejected(items: Container) -> None:
    with pytest.raises(ValueError, match="field path"):
        items.query(Query([Filter("name) OR (1", "eq", 1)]))
