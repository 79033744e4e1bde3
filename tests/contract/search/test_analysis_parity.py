"""Both engines analyse text the same way.

The embedded engine indexes `spec.analyze`'s tokens; the Azure index analyses documents with
the custom analyzer of the definition the adapter sends. The fake service runs that
definition as the service would (char filters, standard tokenizer, token filters) and
refuses filters it cannot emulate, so these tests prove that the definition encodes the
spec's analysis: the shared table gives the same tokens, and plural queries find singular
titles on both engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import AnalyzeTextOptions

from cloudcart.core.ports.search import SearchIndex, SearchQuery
from cloudcart.core.search.spec import ANALYZER, index_tokens
from tests.contract.search.conftest import azure_index, loaded_engine
from tests.fakes.search_server import FakeSearchService
from tests.unit.search.analysis_cases import ANALYSIS_CASES
from tests.unit.search.catalog_fixture import search_documents


def _live_index(fake: FakeSearchService, alias: str = "products") -> str:
    """The concrete index behind the alias (the Analyze API takes no alias)."""
    return fake.state.aliases.get(alias, [alias])[0]


def test_the_azure_analyzer_gives_the_tables_tokens(fake: FakeSearchService) -> None:
    index = azure_index(fake)
    index.ensure_index()
    client = SearchIndexClient(fake.endpoint, AzureKeyCredential("k"), retry_total=0)
    target = _live_index(fake)
    try:
        for text, tokens in ANALYSIS_CASES:
            result = client.analyze_text(
                target, AnalyzeTextOptions(text=text, analyzer_name=ANALYZER)
            )
            azure_tokens = tuple(t.token for t in result.tokens)
            assert azure_tokens == tokens == index_tokens(text), text
    finally:
        client.close()
        index.close()


_PLURAL_DOCS: tuple[tuple[str, str], ...] = (
    ("tempered-glass", "Tempered Glass Screen Protector"),
    ("linen-dress", "Linen Summer Dress"),
    ("lunch-box", "Steel Lunch Box"),
    ("sport-watch", "Sport Watch 2"),
    ("aa-battery", "AA Battery"),
    ("hoodie", "Fleece Hoodie"),
    ("camera-lens", "50 mm Camera Lens"),
)


def _plural_documents() -> list[dict[str, Any]]:
    base = search_documents()[0]
    return [
        dict(base, id=pid, productId=pid, title=title, model=title, description="")
        for pid, title in _PLURAL_DOCS
    ]


@pytest.fixture(scope="module", params=["embedded", "azure"])
def plural_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchIndex]:
    folder = tmp_path_factory.mktemp("plurals")
    with loaded_engine(request.param, folder, _plural_documents()) as engine:
        yield engine


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("glasses", "tempered-glass"),
        ("dresses", "linen-dress"),
        ("boxes", "lunch-box"),
        ("watches", "sport-watch"),
        ("batteries", "aa-battery"),
        ("hoodies", "hoodie"),
        ("lenses", "camera-lens"),
    ],
)
def test_plural_queries_find_singular_titles(
    plural_engine: SearchIndex, query: str, expected: str
) -> None:
    found = [i["productId"] for i in plural_engine.search(SearchQuery(text=query)).items]
    assert found and found[0] == expected, (query, found)
