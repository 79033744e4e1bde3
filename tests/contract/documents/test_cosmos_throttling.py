"""Cosmos adapter only: throttled (429) requests are retried and applied exactly once, for
as long as the work's budget allows: briefly for an HTTP request, long for background work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cloudcart.api.app import create_app
from cloudcart.catalog.service import CatalogService
from cloudcart.core.documents.cosmos import THROTTLE_RETRIES, CosmosDocumentStore
from cloudcart.core.errors import Unavailable
from cloudcart.core.ports.documents import Filter, PatchOp, Query
from cloudcart.core.settings import Adapter, Settings
from cloudcart.core.throttling import INTERACTIVE
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


def test_throttled_read_many_is_retried(
    cosmos: CosmosDocumentStore, cosmos_fake: CosmosFakeServer
) -> None:
    carts = cosmos.container("carts")
    carts.create({"id": "a", "customerId": "c1"})
    carts.create({"id": "b", "customerId": "c2"})
    throttled_before = cosmos_fake.count("query", 429)
    cosmos_fake.throttle("query", 2)
    found = carts.read_many([("b", "c2"), ("a", "c1")])
    assert [d["id"] for d in found] == ["b", "a"]
    assert cosmos_fake.count("query", 429) - throttled_before == 2


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


# --- interactive (HTTP) versus background budgets -------------------------------------


@pytest.fixture
def app_on_cosmos(cosmos_fake: CosmosFakeServer, tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path / "data",
        documents_adapter=Adapter.azure,
        cosmos_endpoint=cosmos_fake.url,
        cosmos_key=SecretStr(cosmos_fake.key),
        cosmos_database=f"db-{uuid.uuid4().hex[:12]}",
    )
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    yield app
    app.state.services.close()


def test_an_http_request_answers_503_soon_while_background_work_waits_it_out(
    app_on_cosmos: FastAPI, cosmos_fake: CosmosFakeServer
) -> None:
    # GET /api/catalog/categories is one query of the catalog's categories partition.
    cosmos_fake.throttle("query", 4, retry_after_ms=300)
    before = cosmos_fake.count("query")
    with TestClient(app_on_cosmos) as client:
        started = time.monotonic()
        response = client.get("/api/catalog/categories")
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    # The first attempt and INTERACTIVE's two retries, 0.6 s of waiting in all.
    assert cosmos_fake.count("query") - before == INTERACTIVE.retries + 1
    assert elapsed < 10  # generous: the point is "not the 30 s background budget"

    # The same throttling met by background work (a trigger, a timer): it waits and succeeds.
    cosmos_fake.throttle("query", 3, retry_after_ms=300)  # 4 in a row with the one left
    before = cosmos_fake.count("query")
    categories = CatalogService(app_on_cosmos.state.services.documents).categories()
    assert categories == []
    assert cosmos_fake.count("query") - before == 5
    assert cosmos_fake.count("query", 429) >= 7


def test_an_http_request_does_not_wait_longer_than_its_budget_for_one_retry(
    app_on_cosmos: FastAPI, cosmos_fake: CosmosFakeServer
) -> None:
    cosmos_fake.throttle("query", 1, retry_after_ms=5000)
    before = cosmos_fake.count("query")
    with TestClient(app_on_cosmos) as client:
        started = time.monotonic()
        response = client.get("/api/catalog/categories")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"  # what the service asked for
    assert cosmos_fake.count("query") - before == 1  # no retry: 5 s is over the budget
    assert elapsed < 4  # generous; waiting would have taken 5 s
    # Afterwards the service answers again and so does the API.
    with TestClient(app_on_cosmos) as client:
        assert client.get("/api/catalog/categories").status_code == 200
