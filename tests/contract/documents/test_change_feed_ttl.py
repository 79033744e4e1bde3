"""Change feed from a checkpoint, and Cosmos TTL semantics, on both adapters."""

from __future__ import annotations

import time

import pytest

from cloudcart.core.errors import NotFound
from cloudcart.core.ports.documents import Container, DocumentStore, Filter, Query


def _drain(container: Container, checkpoint: str | None) -> tuple[list[str], str]:
    ids: list[str] = []
    while True:
        page = container.change_feed(checkpoint, max_items=2)
        checkpoint = page.checkpoint
        if not page.items:
            return ids, checkpoint
        ids.extend(d["id"] for d in page.items)


def test_change_feed_from_checkpoint(store: DocumentStore) -> None:
    orders = store.container("orders")
    for n in range(3):
        orders.create({"id": f"o{n}", "customerId": f"c{n}", "n": n})

    ids, checkpoint = _drain(orders, None)
    assert ids == ["o0", "o1", "o2"]

    again, checkpoint = _drain(orders, checkpoint)
    assert again == []

    orders.create({"id": "o3", "customerId": "c3"})
    first = orders.read("o0", "c0")
    orders.replace({**first, "n": 100})
    ids, checkpoint = _drain(orders, checkpoint)
    assert ids == ["o3", "o0"]

    page = orders.change_feed(None, max_items=100)
    assert [d["id"] for d in page.items] == ["o1", "o2", "o3", "o0"]
    assert page.items[-1]["n"] == 100
    assert "_etag" in page.items[-1]


def test_change_feed_is_per_container(store: DocumentStore) -> None:
    store.container("orders").create({"id": "o1", "customerId": "c1"})
    store.container("carts").create({"id": "k1", "customerId": "c1"})
    assert [d["id"] for d in store.container("carts").change_feed().items] == ["k1"]


def test_ttl(store: DocumentStore) -> None:
    orders = store.container("orders")  # default -1: only documents with a ttl expire
    short = store.container("short_ttl")  # default 1 second
    no_ttl = store.container("no_ttl")  # no default: document ttl is ignored

    orders.create({"id": "event", "customerId": "c1", "ttl": 1})
    orders.create({"id": "order", "customerId": "c1"})
    short.create({"id": "default", "pk": "p"})
    short.create({"id": "forever", "pk": "p", "ttl": -1})
    short.create({"id": "longer", "pk": "p", "ttl": 600})
    no_ttl.create({"id": "product", "pk": "x", "ttl": 1})
    assert orders.read("event", "c1")["ttl"] == 1

    time.sleep(2.2)

    for container, doc_id, pk in [(orders, "event", "c1"), (short, "default", "p")]:
        with pytest.raises(NotFound):
            container.read(doc_id, pk)
    assert [d["id"] for d in orders.query(Query()).items] == ["order"]
    assert {d["id"] for d in short.query(Query([Filter("pk", "eq", "p")])).items} == {
        "forever",
        "longer",
    }
    assert no_ttl.read("product", "x")["id"] == "product"
    assert "event" not in [d["id"] for d in orders.change_feed().items]

    # An expired id is free again.
    orders.create({"id": "event", "customerId": "c1"})
    assert orders.read("event", "c1")["id"] == "event"


def test_invalid_ttl_is_rejected(store: DocumentStore) -> None:
    with pytest.raises(ValueError, match="ttl"):
        store.container("orders").create({"id": "o", "customerId": "c1", "ttl": 0})
