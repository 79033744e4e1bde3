"""The Azure adapter's requests, as the loopback fake records them, match the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.credentials import AzureKeyCredential

from cloudcart.catalog.search.indexer import init_index
from cloudcart.composition import Services
from cloudcart.core.errors import Unavailable
from cloudcart.core.ports.search import SearchQuery
from cloudcart.core.search import azure as az
from cloudcart.core.search.azure import AzureSearchIndex, SearchError, SearchIndexMissing
from cloudcart.core.search.spec import (
    ANALYZER,
    FIELDS,
    PRICE_BANDS,
    SCORING_PROFILE,
    STEM_OVERRIDE_FILTER,
    STEM_OVERRIDES,
    STEM_RULES,
    SUGGESTER,
    SYNONYM_GROUPS,
    field_weights,
    suggester_fields,
)
from cloudcart.core.settings import Adapter, Settings
from tests.contract.search.conftest import azure_index
from tests.fakes.search_server import FakeSearchService
from tests.unit.search.catalog_fixture import search_documents


def last_search(fake: FakeSearchService) -> dict[str, object]:
    body = fake.requests_to("/docs/search.post.search")[-1].body
    assert isinstance(body, dict)
    return body


def test_index_definition_matches_the_spec(fake: FakeSearchService) -> None:
    index = azure_index(fake)
    index.ensure_index()
    (synonyms,) = fake.requests_to("/synonymmaps('cloudcart-synonyms')")
    assert synonyms.method == "PUT" and synonyms.api_version
    assert synonyms.body["format"] == "solr"
    lines = synonyms.body["synonyms"].splitlines()
    assert lines == [", ".join(group) for group in SYNONYM_GROUPS]
    # The alias `products` serves the spec's versioned index; the definition goes there.
    assert fake.state.aliases == {"products": [az.versioned_index_name("products")]}
    (put,) = fake.requests_to(f"/indexes('{az.versioned_index_name('products')}')")
    assert put.method == "PUT"
    definition = put.body
    fields = {f["name"]: f for f in definition["fields"]}
    for spec in FIELDS:
        sent = fields[spec.name]
        flags = ("key", "searchable", "filterable", "facetable", "sortable", "retrievable")
        assert {k: sent[k] for k in flags} == {k: getattr(spec, k) for k in flags}, spec.name
        if spec.searchable:
            assert sent["analyzer"] == ANALYZER
            assert sent["synonymMaps"] == ["cloudcart-synonyms"]
        else:
            assert "analyzer" not in sent
    assert fields["attributes"]["type"] == "Collection(Edm.String)"
    assert fields["price"]["type"] == "Edm.Int64"
    assert fields["inStock"]["type"] == "Edm.Boolean"
    assert fields["createdAt"]["type"] == "Edm.DateTimeOffset"
    # The derived, hidden fields are the only extras.
    extras = set(fields) - {f.name for f in FIELDS}
    assert extras == {"brandKey", *(f"{n}Suggest" for n in suggester_fields())}
    assert all(fields[name]["retrievable"] is False for name in extras)

    (analyzer,) = definition["analyzers"]
    assert analyzer["name"] == ANALYZER
    assert analyzer["@odata.type"] == "#Microsoft.Azure.Search.CustomAnalyzer"
    assert analyzer["tokenizer"] == "standard_v2"
    # The spec's plural stemmer, not Lucene's kstem (which stems differently).
    assert analyzer["tokenFilters"] == [
        "lowercase",
        "asciifolding",
        STEM_OVERRIDE_FILTER,
        *(rule.name for rule in STEM_RULES),
    ]
    token_filters = {t["name"]: t for t in definition["tokenFilters"]}
    assert token_filters[STEM_OVERRIDE_FILTER]["rules"] == [
        f"{word} => {stem}" for word, stem in STEM_OVERRIDES.items()
    ]
    for rule in STEM_RULES:
        sent_rule = token_filters[rule.name]
        assert sent_rule["@odata.type"] == "#Microsoft.Azure.Search.PatternReplaceTokenFilter"
        assert (sent_rule["pattern"], sent_rule["replacement"]) == (rule.pattern, rule.replacement)
    char_filters = {c["name"]: c for c in definition["charFilters"]}
    assert analyzer["charFilters"] == list(char_filters)
    assert (
        char_filters["units"]["@odata.type"] == "#Microsoft.Azure.Search.PatternReplaceCharFilter"
    )
    assert char_filters["units"]["replacement"] == "$1$2"
    assert char_filters["units"]["pattern"].startswith("(?i)")

    (profile,) = definition["scoringProfiles"]
    assert profile["name"] == SCORING_PROFILE == definition["defaultScoringProfile"]
    assert profile["text"]["weights"] == field_weights()
    assert profile["text"]["weights"]["title"] > profile["text"]["weights"]["brand"]
    (suggester,) = definition["suggesters"]
    assert suggester["name"] == SUGGESTER
    assert suggester["searchMode"] == "analyzingInfixMatching"
    assert suggester["sourceFields"] == [f"{n}Suggest" for n in suggester_fields()]


def test_search_request_matches_the_query(azure: AzureSearchIndex, fake: FakeSearchService) -> None:
    azure.search(
        SearchQuery(
            text="Oppo's phones",
            category="kids' phones",
            brand="One Plus",
            min_price=1000,
            max_price=90000,
            in_stock=True,
            sort="price_desc",
            limit=7,
        )
    )
    body = last_search(fake)
    assert body["filter"] == (
        "categoryId eq 'kids'' phones' and brandKey eq 'oneplus' and price ge 1000 "
        "and price le 90000 and inStock eq true"
    )
    assert body["facets"] == [
        "brand,count:20",
        "categoryId,count:20",
        "price,values:" + "|".join(str(b.low) for b in PRICE_BANDS[1:]),
        "storage,count:10",
        "os,count:10",
    ]
    assert body["searchFields"] == ",".join(field_weights())
    assert body["scoringProfile"] == SCORING_PROFILE
    assert body["orderby"] == "price desc"
    assert body["top"] == 7 and body["skip"] == 0 and body["count"] is True
    assert body["queryType"] == "full" and body["searchMode"] == "all"
    # Words analysed like the embedded engine (plural stemmed), fuzzy in the name fields.
    assert "(phone OR title:phone~1 OR model:phone~1 OR brand:phone~1)" in str(body["search"])
    assert "brandKey" not in str(body["select"]) and "variants" in str(body["select"])


def test_relevance_reranks_a_window_and_later_pages_skip(fake: FakeSearchService) -> None:
    index = azure_index(fake, rerank_window=4)
    index.ensure_index()
    index.upsert(search_documents())
    first = index.search(SearchQuery(text="phone", limit=3))
    body = last_search(fake)
    assert body["top"] == 4 and body["skip"] == 0 and "orderby" not in body
    second = index.search(SearchQuery(text="phone", limit=3, cursor=first.next_cursor))
    third = index.search(SearchQuery(text="phone", limit=3, cursor=second.next_cursor))
    body = last_search(fake)
    assert body["top"] == 3 and body["skip"] == 6
    assert third.items and first.total == third.total
    browse = index.search(SearchQuery(limit=5))
    body = last_search(fake)
    assert (
        body["search"] == "*" and body["orderby"] == "createdAt desc" and "searchFields" not in body
    )
    assert browse.total == len(search_documents())


def test_suggest_calls_the_suggester(azure: AzureSearchIndex, fake: FakeSearchService) -> None:
    assert "OPPO A92" in azure.suggest("oppo a9", 3)
    (call,) = fake.requests_to("/docs/search.post.suggest")
    assert call.body["suggesterName"] == SUGGESTER
    assert call.body["fuzzy"] is True and call.body["search"] == "oppo a9"
    assert call.body["top"] == 6


def test_upsert_batches_and_delete(fake: FakeSearchService) -> None:
    index = azure_index(fake)
    index.ensure_index()
    base = search_documents()[0]
    docs = [dict(base, id=f"p{i}", createdAt="") for i in range(2500)]
    index.upsert(docs)
    batches = fake.requests_to("/docs/search.index")
    assert [len(b.body["value"]) for b in batches] == [1000, 1000, 500]
    sent = batches[0].body["value"][0]
    assert sent["@search.action"] == "mergeOrUpload"
    assert sent["createdAt"] is None and sent["brandKey"] == "oppo"
    assert sent["titleSuggest"] == base["title"]
    live = fake.resolve("products")
    assert len(fake.state.documents[live]) == 2500
    index.delete(["p1", "p2", "unknown"])
    (delete,) = fake.requests_to("/docs/search.index")[3:]
    assert {a["@search.action"] for a in delete.body["value"]} == {"delete"}
    assert len(fake.state.documents[live]) == 2498
    assert index.replace_all(docs[:10]) == 10
    assert sorted(fake.state.documents[live]) == sorted(d["id"] for d in docs[:10])


def test_errors_map_to_port_errors(fake: FakeSearchService) -> None:
    index = azure_index(fake)
    with pytest.raises(SearchIndexMissing, match="cloudcart search init"):
        index.check()
    index.ensure_index()
    index.check()
    for status in (429, 503):
        fake.state.fail_next.append((status, {"error": {"code": "Busy", "message": "slow down"}}))
        with pytest.raises(Unavailable):
            index.search(SearchQuery(text="x"))
    fake.state.fail_next.append((400, {"error": {"code": "InvalidRequest", "message": "bad"}}))
    with pytest.raises(SearchError) as raised:
        index.search(SearchQuery(text="x"))
    assert not isinstance(raised.value, Unavailable)
    fake.state.fail_next.append(
        (207, {"value": [{"key": "a", "status": False, "statusCode": 422, "errorMessage": "no"}]})
    )
    with pytest.raises(SearchError, match="a: 422"):
        index.upsert([dict(search_documents()[0], id="a")])


def test_unreachable_service_is_unavailable() -> None:
    with FakeSearchService() as gone:
        endpoint = gone.endpoint
    index = AzureSearchIndex(endpoint, "products", az_key(), retry_total=0)
    with pytest.raises(Unavailable):
        index.check()


def az_key() -> AzureKeyCredential:
    return AzureKeyCredential("k")


def test_from_settings_and_init_index(fake: FakeSearchService, tmp_path: Path) -> None:
    settings = Settings(
        search_adapter=Adapter.azure,
        search_endpoint="https://example.search.windows.net",
        search_index_name="catalog",
        data_dir=tmp_path,
    )
    built = az.from_settings(settings)
    assert built.index_name == "catalog" and built.endpoint.startswith("https://")
    built.close()
    services = Services(settings, adapters={"search": azure_index(fake)})
    assert "up to date" in init_index(services)
    assert "products" in fake.state.aliases and fake.state.synonym_maps
    embedded = Services(Settings(data_dir=tmp_path))
    assert "nothing to initialise" in init_index(embedded)


def test_cli_init_creates_the_index(
    fake: FakeSearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cloudcart.catalog.search import cli

    monkeypatch.setattr(
        cli, "Services", lambda settings: Services(settings, adapters={"search": azure_index(fake)})
    )
    result = CliRunner().invoke(cli.search_app, ["init"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output and "products" in fake.state.aliases
    result = CliRunner().invoke(cli.search_app, ["init", "--reindex"])
    assert result.exit_code == 0, result.output
    assert "products indexed from the catalog" in result.output
