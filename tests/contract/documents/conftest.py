"""Fixtures of the documents contract suite: every test runs against both adapters.

- embedded: `SqliteDocumentStore` on a file in `tmp_path`;
- cosmos: `CosmosDocumentStore` (the real azure-cosmos SDK) against the REST fake in
  tests/fakes/cosmos_server.py, one fake per session and a fresh database per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudcart.core.documents.cosmos import CosmosDocumentStore
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.ports.documents import ContainerSpec, DocumentStore
from tests.fakes.cosmos_server import CosmosFakeServer

# Test-only containers, so the suite does not depend on how the registry's containers are
# configured today: the registry's TTLs are days long, SHORT_TTL expires in a second.
SHORT_TTL = ContainerSpec("short_ttl", "/pk", 1, "Default TTL of one second.")
NO_TTL = ContainerSpec("no_ttl", "/pk", None, "TTL off: a document's own ttl is ignored.")
ITEMS = ContainerSpec("items", "/categoryId", None, "Query tests, partitioned by category.")
BY_ID = ContainerSpec("by_id", "/id", None, "Partitioned by its own id (a SKU's stock, say).")
TEST_CONTAINERS = (*CONTAINERS, SHORT_TTL, NO_TTL, ITEMS, BY_ID)


@pytest.fixture(scope="session")
def cosmos_fake() -> Iterator[CosmosFakeServer]:
    with CosmosFakeServer() as server:
        yield server


def make_store(kind: str, tmp_path: Path, fake: CosmosFakeServer) -> DocumentStore:
    """A store of that kind on fresh storage, containers NOT yet created."""
    if kind == "embedded":
        return SqliteDocumentStore(tmp_path / "documents.sqlite3", containers=TEST_CONTAINERS)
    return CosmosDocumentStore(
        fake.url, f"db-{uuid.uuid4().hex[:12]}", fake.key, containers=TEST_CONTAINERS
    )


@pytest.fixture(params=["embedded", "cosmos"])
def bare_store(
    request: pytest.FixtureRequest, tmp_path: Path, cosmos_fake: CosmosFakeServer
) -> Iterator[DocumentStore]:
    """A store whose containers have not been created."""
    store = make_store(request.param, tmp_path, cosmos_fake)
    yield store
    store.close()


@pytest.fixture
def store(bare_store: DocumentStore) -> DocumentStore:
    """A store with every container created."""
    bare_store.ensure_containers()
    return bare_store
