"""Fixtures: the Azure adapter against the loopback fake, and the embedded engine, both
holding the unit tests' fixture catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential

from cloudcart.core.ports.search import SearchIndex
from cloudcart.core.search.azure import AzureSearchIndex
from cloudcart.core.search.embedded import TantivySearchIndex
from tests.fakes.search_server import FakeSearchService
from tests.unit.search.catalog_fixture import search_documents


def azure_index(fake: FakeSearchService, **options: Any) -> AzureSearchIndex:
    """An adapter on the fake. A key credential because the SDK sends bearer tokens only over
    https; no retries so error-mapping tests stay fast."""
    return AzureSearchIndex(
        fake.endpoint, "products", AzureKeyCredential("test-key"), retry_total=0, **options
    )


@pytest.fixture
def fake() -> Iterator[FakeSearchService]:
    with FakeSearchService() as service:
        yield service


@pytest.fixture
def azure(fake: FakeSearchService) -> Iterator[AzureSearchIndex]:
    index = azure_index(fake)
    index.ensure_index()
    index.upsert(search_documents())
    fake.state.requests.clear()
    yield index
    index.close()


@contextmanager
def loaded_engine(
    kind: str, folder: Path, documents: list[dict[str, Any]]
) -> Iterator[SearchIndex]:
    """The `embedded` or `azure` engine holding `documents` (Azure against the fake)."""
    if kind == "embedded":
        embedded = TantivySearchIndex(folder / "products")
        embedded.replace_all(documents)
        try:
            yield embedded
        finally:
            embedded.close()
        return
    with FakeSearchService() as service:
        index = azure_index(service)
        index.ensure_index()
        index.replace_all(documents)
        try:
            yield index
        finally:
            index.close()


@pytest.fixture(scope="module", params=["embedded", "azure"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchIndex]:
    """Each engine with the fixture catalog, for the shared behavioural contract."""
    with loaded_engine(request.param, tmp_path_factory.mktemp("search"), search_documents()) as e:
        yield e
