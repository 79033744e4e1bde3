"""Catalog, search indexing, the ledger and the demo seed read every page they need when
the store answers short or empty pages with a continuation (as Cosmos DB may;
tests/fakes/short_pages.py). The orders area has its own in tests/unit/orders."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudcart.catalog.search import indexer
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.ports.documents import ContainerSpec, DocumentStore
from cloudcart.core.settings import Settings
from cloudcart.ledger import journal
from cloudcart.local import demo_data
from tests.fakes.short_pages import ShortPagesStore


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    store.ensure_containers()
    return store


def _product(n: int) -> dict[str, object]:
    return {
        "id": f"p{n}",
        "pk": f"p{n}",
        "type": "product",
        "status": "active",
        "createdAt": f"2030-01-0{n}T00:00:00Z",
    }


def test_product_listing_fills_each_page(store: DocumentStore) -> None:
    for n in (1, 2, 3):
        store.container("catalog").create(_product(n))
    catalog = CatalogService(ShortPagesStore(store))

    first, cursor = catalog.list_products(limit=2)
    assert [p["id"] for p in first] == ["p3", "p2"] and cursor is not None
    rest, _ = catalog.list_products(limit=2, cursor=cursor)
    assert [p["id"] for p in rest] == ["p1"]


def test_ledger_entries_fill_each_page(store: DocumentStore) -> None:
    ledger = store.container("ledger")
    for n, period in ((1, "2030-01"), (2, "2030-02"), (3, "2030-01")):
        ledger.create(
            {
                "id": f"e{n}",
                "period": period,
                "type": journal.ENTRY_TYPE,
                "at": f"{period}-0{n}T00:00:00Z",
                "sourceEvent": f"evt{n}",
                "rule": "capture",
                "lines": [],
            }
        )
    stingy = ShortPagesStore(store)

    first, cursor = journal.entries(stingy, limit=2)
    assert [e["id"] for e in first] == ["e1", "e3"] and cursor is not None
    rest, _ = journal.entries(stingy, limit=2, cursor=cursor)
    assert [e["id"] for e in rest] == ["e2"]


def test_the_demo_seed_sees_a_catalog_that_is_not_empty(
    store: DocumentStore, tmp_path: Path
) -> None:
    store.container("catalog").create(_product(1))
    services = Services(
        Settings(data_dir=tmp_path / "data"), adapters={"documents": ShortPagesStore(store)}
    )
    assert not demo_data._catalog_is_empty(services)


def test_the_indexer_finds_products_in_a_catalog_partitioned_otherwise(tmp_path: Path) -> None:
    # A deployment whose catalog is still partitioned by category: a point read cannot
    # find a product by id alone, so the indexer queries for it.
    by_category = ContainerSpec("catalog", "/categoryId")
    others = tuple(spec for spec in CONTAINERS if spec.name != "catalog")
    store = SqliteDocumentStore(tmp_path / "old.sqlite3", containers=(by_category, *others))
    store.ensure_containers()
    catalog = store.container("catalog")
    for n in (1, 2, 3):
        catalog.create({**_product(n), "categoryId": f"cat{n}"})
    catalog.create({"id": "cat2", "type": "category", "categoryId": "cat2", "name": "Phones"})
    stingy = ShortPagesStore(store).container("catalog")

    found = indexer._read_product(stingy, "p3")
    assert found is not None and found["id"] == "p3"
    category = indexer._read_category(stingy, "cat2")
    assert category is not None and category["name"] == "Phones"
    assert indexer._read_product(stingy, "nope") is None
