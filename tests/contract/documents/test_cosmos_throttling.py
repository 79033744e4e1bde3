"""Cosmos adapter only: throttled (429) requests are retried and applied exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from cloudcart.core.documents.cosmos import THROTTLE_RETRIES, CosmosDocumentStore
from cloudcart.core.documents.port import Filter, PatchOp, Query
from cloudcart.core.errors import Unavailable
from tests.fakes.cosmos_server import CosmosFakeServer


@pytest.fixture
def cosmos(cosmos_fake: CosmosFakeServer) -> Iterator[CosmosDocumentStore]:
    store = CosmosDocumentStore(cosmos_fake.url, f"db-{uuid.uuid4().hex[:12]}", cosmos_fake.key)
    store.ensure_containers()
    yield store
    store.close()


def test_throttled_create_is_retried_and_happens_once(
    cosmos: CosmosDocumentStore, cosmos_fake: CosmosFakeServer
) -> None:
    carts = cosmos.container("carts")
    throttled_before = cosmos_fake.count("create", 429)
    applied_before = cosmos_fake.applied_writes.get("create", 0)

    cosmos_fake.throttle("create", 2)
    created = carts.create({"id": "cart-1", "customerId": "c1"})

    assert created["id"] == "cart-1"
    assert cosmos_fake.count("create", 429) - throttled_before == 2
    assert cosmos_fake.applied_writes.get("create", 0) - applied_before == 1
    found = carts.query(Query([Filter("id", "eq", "cart-1")]))
    assert len(found.items) == 1


def test_throttled_increment_is_applied_once(
    cosmos: CosmosDocumentStore, cosmos_fake: CosmosFakeServer
) -> None:
    inventory = cosmos.container("inventory")
    inventory.create({"id": "sku-1", "sku": "sku-1", "available": 10})
    cosmos_fake.throttle("patch", 3)
    after = inventory.patch("sku-1", "sku-1", [PatchOp("incr", "available", -1)])
    assert after["available"] == 9
    assert inventory.read("sku-1", "sku-1")["available"] == 9


def test_endless_throttling_becomes_unavailable(
    cosmos: CosmosDocumentStore, cosmos_fake: CosmosFakeServer
) -> None:
    cosmos_fake.throttle("read", THROTTLE_RETRIES + 1)
    with pytest.raises(Unavailable):
        cosmos.container("carts").read("x", "c1")


def test_unreachable_account_is_unavailable() -> None:
    with CosmosFakeServer() as server:
        url = server.url
    # The port is closed now; nothing listens there.
    with pytest.raises(Unavailable):
        store = CosmosDocumentStore(url, "db", server.key, retry_total=0)
        store.check()
