"""CRUD, ETags, upsert, conflicts and container creation, on both adapters."""

from __future__ import annotations

import pytest

from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.errors import Conflict, NotFound, PreconditionFailed
from cloudcart.core.ports.documents import DocumentStore


def test_create_read_replace_delete(store: DocumentStore) -> None:
    carts = store.container("carts")
    created = carts.create({"id": "cart-1", "customerId": "c1", "lines": [{"sku": "a", "qty": 2}]})
    assert created["lines"] == [{"sku": "a", "qty": 2}]
    assert isinstance(created["_etag"], str) and created["_etag"]
    assert isinstance(created["_ts"], int) and created["_ts"] > 1_600_000_000

    read = carts.read("cart-1", "c1")
    assert read["lines"] == [{"sku": "a", "qty": 2}]
    assert read["_etag"] == created["_etag"]

    replaced = carts.replace({**read, "lines": []})
    assert replaced["lines"] == []
    assert replaced["_etag"] != created["_etag"]
    assert carts.read("cart-1", "c1")["lines"] == []

    carts.delete("cart-1", "c1")
    with pytest.raises(NotFound):
        carts.read("cart-1", "c1")
    with pytest.raises(NotFound):
        carts.delete("cart-1", "c1")


def test_read_is_scoped_to_the_partition(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create({"id": "same", "customerId": "c1", "who": 1})
    carts.create({"id": "same", "customerId": "c2", "who": 2})
    assert carts.read("same", "c1")["who"] == 1
    assert carts.read("same", "c2")["who"] == 2
    with pytest.raises(NotFound):
        carts.read("same", "c3")


def test_replace_of_a_missing_document_is_not_found(store: DocumentStore) -> None:
    with pytest.raises(NotFound):
        store.container("carts").replace({"id": "nope", "customerId": "c1"})


def test_create_conflicts_on_an_existing_id(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create({"id": "cart-1", "customerId": "c1", "n": 1})
    with pytest.raises(Conflict):
        carts.create({"id": "cart-1", "customerId": "c1", "n": 2})
    assert carts.read("cart-1", "c1")["n"] == 1


def test_etag_guards_replace_and_delete(store: DocumentStore) -> None:
    carts = store.container("carts")
    first = carts.create({"id": "cart-1", "customerId": "c1", "n": 1})
    second = carts.replace({**first, "n": 2}, if_match=first["_etag"])

    with pytest.raises(PreconditionFailed):
        carts.replace({**first, "n": 3}, if_match=first["_etag"])
    with pytest.raises(PreconditionFailed):
        carts.delete("cart-1", "c1", if_match=first["_etag"])
    assert carts.read("cart-1", "c1")["n"] == 2

    carts.delete("cart-1", "c1", if_match=second["_etag"])
    with pytest.raises(NotFound):
        carts.read("cart-1", "c1")


def test_upsert_creates_then_replaces(store: DocumentStore) -> None:
    carts = store.container("carts")
    first = carts.upsert({"id": "cart-1", "customerId": "c1", "n": 1})
    second = carts.upsert({"id": "cart-1", "customerId": "c1", "n": 2})
    assert second["_etag"] != first["_etag"]
    assert carts.read("cart-1", "c1")["n"] == 2


def test_system_properties_from_callers_are_ignored(store: DocumentStore) -> None:
    carts = store.container("carts")
    created = carts.create({"id": "cart-1", "customerId": "c1", "_etag": '"forged"', "_ts": 1})
    assert created["_etag"] != '"forged"'
    assert created["_ts"] != 1


def test_a_document_needs_its_partition_key(store: DocumentStore) -> None:
    with pytest.raises(ValueError, match="customerId"):
        store.container("carts").create({"id": "cart-1"})


def test_unknown_container_is_rejected(store: DocumentStore) -> None:
    with pytest.raises(KeyError, match="nope"):
        store.container("nope")


def test_registry_containers_exist_after_ensure_containers(bare_store: DocumentStore) -> None:
    with pytest.raises(NotFound):
        bare_store.container("catalog").read("x", "y")

    bare_store.ensure_containers()
    bare_store.ensure_containers()  # idempotent
    bare_store.check()
    for spec in CONTAINERS:
        container = bare_store.container(spec.name)
        doc: dict[str, object] = {"id": "probe"}
        # Build the partition key field (a dotted path) into the probe document.
        node = doc
        *parents, leaf = spec.partition_key_field.split(".")
        for part in parents:
            child: dict[str, object] = {}
            node[part] = child
            node = child
        node[leaf] = "probe"  # for `/id` containers the key is the id itself
        container.create(doc)
        assert container.read("probe", "probe")["id"] == "probe"
