"""Index changes: the fake refuses what Azure AI Search refuses, and `cloudcart search init`
builds each new shape of the index beside the live one, fills it from the catalog and then
switches the `products` alias to it."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import AnalyzeTextOptions, SearchAlias

from cloudcart.catalog.search.indexer import init_index
from cloudcart.composition import Services
from cloudcart.core.errors import CloudcartError
from cloudcart.core.ports.search import SearchQuery
from cloudcart.core.search import azure as az
from cloudcart.core.settings import Settings
from tests.contract.search.conftest import azure_index
from tests.fakes.search_server import FakeSearchService
from tests.unit.search.catalog_fixture import catalog, search_documents

ACTIVE_PRODUCTS = len(search_documents())
VERSIONED = re.compile(r"^products-v[0-9a-f]{10}$")


def _definition(name: str) -> dict[str, Any]:
    """The current spec's index definition, as the REST API carries it."""
    definition: dict[str, Any] = az.build_index_definition(name).as_dict()
    return definition


def _old_definition(name: str) -> dict[str, Any]:
    """An index made by an earlier spec: prices as Int32 and Lucene's kstem analyzer."""
    old = copy.deepcopy(_definition(name))
    for field in old["fields"]:
        if field["name"] == "price":
            field["type"] = "Edm.Int32"
    for analyzer in old["analyzers"]:
        analyzer["tokenFilters"] = ["lowercase", "asciifolding", "kstem"]
    old.pop("tokenFilters", None)
    return old


def _put_old_index(fake: FakeSearchService, name: str, doc_ids: list[str]) -> None:
    fake.state.indexes[name] = _old_definition(name)
    fake.state.documents[name] = {
        i: {"id": i, "title": f"stale {i}", "price": 1, "inStock": True} for i in doc_ids
    }


@pytest.fixture
def services(fake: FakeSearchService, tmp_path: Path) -> Iterator[Services]:
    """Services whose catalog (embedded documents) holds the fixture catalog and whose search
    is the Azure adapter on the fake, as the deploy hook has them."""
    built = Services(Settings(data_dir=tmp_path), adapters={"search": azure_index(fake)})
    built.documents.ensure_containers()
    categories, products, inventory = catalog()
    for doc in categories + products:
        built.documents.container("catalog").upsert(doc)
    for doc in inventory:
        built.documents.container("inventory").upsert(doc)
    yield built
    built.close()


def _client(fake: FakeSearchService) -> SearchIndexClient:
    return SearchIndexClient(fake.endpoint, AzureKeyCredential("k"), retry_total=0)


def _titles(services: Services, text: str) -> list[str]:
    return [str(i["title"]) for i in services.search.search(SearchQuery(text=text)).items]


# --- the fake is as strict as the service ------------------------------------------------------


def test_the_fake_refuses_incompatible_changes_to_an_existing_index(
    fake: FakeSearchService,
) -> None:
    client = _client(fake)
    client.create_or_update_synonym_map(az.build_synonym_map())
    client.create_or_update_index(az.build_index_definition("shop"))

    def put(definition: dict[str, Any], **options: Any) -> None:
        client.create_or_update_index(definition, **options)

    for attribute, value in (("filterable", False), ("type", "Edm.Int32"), ("sortable", False)):
        changed = _definition("shop")
        next(f for f in changed["fields"] if f["name"] == "price")[attribute] = value
        with pytest.raises(HttpResponseError) as refused:
            put(changed)
        assert refused.value.status_code == 400
        assert f"Existing field 'price' cannot be changed: its '{attribute}'" in str(refused.value)
    dropped = _definition("shop")
    dropped["fields"] = [f for f in dropped["fields"] if f["name"] != "slug"]
    with pytest.raises(HttpResponseError, match="'slug' cannot be deleted"):
        put(dropped)
    reanalysed = _definition("shop")
    next(f for f in reanalysed["fields"] if f["name"] == "title")["analyzer"] = "en.lucene"
    with pytest.raises(HttpResponseError, match="'analyzer'"):
        put(reanalysed)
    # Analysis components change only with the index offline, as on the service.
    restemmed = _definition("shop")
    restemmed["analyzers"][0]["tokenFilters"] = ["lowercase"]
    with pytest.raises(HttpResponseError, match="allowIndexDowntime"):
        put(restemmed)
    put(restemmed, allow_index_downtime=True)
    # What the service allows in place: new fields and scoring profile weights.
    grown = _definition("shop")
    grown["analyzers"] = restemmed["analyzers"]
    grown["fields"].append({"name": "colour", "type": "Edm.String", "filterable": True})
    grown["scoringProfiles"][0]["text"]["weights"]["title"] = 9.0
    put(grown)
    assert fake.state.indexes["shop"]["fields"][-1]["name"] == "colour"
    client.close()


def test_the_fake_keeps_the_alias_rules(fake: FakeSearchService) -> None:
    client = _client(fake)
    client.create_or_update_synonym_map(az.build_synonym_map())
    for name in ("shop-v1", "shop-v2"):
        client.create_or_update_index(az.build_index_definition(name))
    client.create_or_update_alias(SearchAlias(name="shop", indexes=["shop-v1"]))
    with pytest.raises(HttpResponseError, match="exactly one index"):
        client.create_or_update_alias(SearchAlias(name="shop", indexes=["shop-v1", "shop-v2"]))
    with pytest.raises(HttpResponseError, match="already the name of an index"):
        client.create_or_update_alias(SearchAlias(name="shop-v2", indexes=["shop-v1"]))
    with pytest.raises(HttpResponseError, match="alias"):
        client.delete_index("shop-v1")
    client.delete_index("shop")  # 404, which the SDK takes as done: an alias deletes nothing
    assert "shop-v1" in fake.state.indexes
    with pytest.raises(ResourceNotFoundError):
        client.analyze_text("shop", AnalyzeTextOptions(text="x", analyzer_name="standard.lucene"))
    assert client.get_index("shop").name == "shop-v1"
    client.create_or_update_alias(SearchAlias(name="shop", indexes=["shop-v2"]))
    client.delete_index("shop-v1")
    assert sorted(fake.state.indexes) == ["shop-v2"]
    client.close()


# --- versioned create, reindex, switch --------------------------------------------------------


def test_the_first_init_builds_a_versioned_index_behind_the_alias(
    services: Services, fake: FakeSearchService
) -> None:
    sentence = init_index(services)
    (alias_target,) = fake.state.aliases["products"]
    assert VERSIONED.match(alias_target) and alias_target == az.versioned_index_name("products")
    assert list(fake.state.indexes) == [alias_target]
    assert len(fake.state.documents[alias_target]) == ACTIVE_PRODUCTS
    assert "up to date" in sentence and alias_target in sentence
    # The app reads and writes through the alias.
    assert _titles(services, "oppo a92")[0] == "OPPO A92"


def test_init_again_changes_nothing(services: Services, fake: FakeSearchService) -> None:
    init_index(services)
    target = fake.state.aliases["products"][0]
    fake.state.requests.clear()
    sentence = init_index(services)
    assert fake.state.aliases == {"products": [target]}
    assert list(fake.state.indexes) == [target]
    assert not fake.requests_to("/docs/search.index"), "nothing is reindexed"
    assert not [r for r in fake.state.requests if r.method == "DELETE"]
    assert "already" in sentence


def test_a_spec_change_is_built_beside_the_live_index_then_switched(
    services: Services, fake: FakeSearchService
) -> None:
    fake.state.synonym_maps[az.SYNONYM_MAP] = {"name": az.SYNONYM_MAP, "synonyms": ""}
    _put_old_index(fake, "products-v0000000000", ["stale-1", "oppo-a92"])
    fake.state.aliases["products"] = ["products-v0000000000"]

    sentence = init_index(services)

    target = az.versioned_index_name("products")
    assert target != "products-v0000000000"
    assert fake.state.aliases == {"products": [target]}
    assert sorted(fake.state.documents[target]) == sorted(d["id"] for d in search_documents())
    # The old version stays, untouched, for a rollback; the app now reads the new one.
    assert sorted(fake.state.indexes) == sorted(["products-v0000000000", target])
    assert sorted(fake.state.documents["products-v0000000000"]) == ["oppo-a92", "stale-1"]
    assert _titles(services, "stale") == []
    assert _titles(services, "oppo a92")[0] == "OPPO A92"
    # No request tried to change the old index in place (the service would refuse it).
    assert not fake.requests_to("/indexes('products-v0000000000')")
    assert "products-v0000000000" in sentence


def test_a_legacy_index_named_like_the_alias_is_replaced(
    services: Services, fake: FakeSearchService
) -> None:
    # Deployments before versioning have a plain index called `products`, with an older
    # shape: updating it in place is what the service refuses.
    fake.state.synonym_maps[az.SYNONYM_MAP] = {"name": az.SYNONYM_MAP, "synonyms": ""}
    _put_old_index(fake, "products", ["stale-1"])

    init_index(services)

    target = az.versioned_index_name("products")
    assert fake.state.aliases == {"products": [target]}
    assert list(fake.state.indexes) == [target]  # the alias needs the name
    assert len(fake.state.documents[target]) == ACTIVE_PRODUCTS
    assert not [r for r in fake.requests_to("/indexes('products')") if r.method == "PUT"]
    assert _titles(services, "oppo a92")[0] == "OPPO A92"


def test_versions_older_than_the_previous_one_are_deleted(
    services: Services, fake: FakeSearchService
) -> None:
    fake.state.synonym_maps[az.SYNONYM_MAP] = {"name": az.SYNONYM_MAP, "synonyms": ""}
    _put_old_index(fake, "products-v1111111111", ["a"])
    _put_old_index(fake, "products-v2222222222", ["b"])
    _put_old_index(fake, "orders-v3333333333", ["c"])  # another alias's index stays
    fake.state.aliases["products"] = ["products-v2222222222"]

    init_index(services)

    target = az.versioned_index_name("products")
    assert sorted(fake.state.indexes) == sorted(
        ["orders-v3333333333", "products-v2222222222", target]
    )


def test_an_interrupted_init_is_finished_by_the_next(
    services: Services, fake: FakeSearchService
) -> None:
    fake.state.synonym_maps[az.SYNONYM_MAP] = {"name": az.SYNONYM_MAP, "synonyms": ""}
    _put_old_index(fake, "products-v0000000000", ["stale-1"])
    fake.state.aliases["products"] = ["products-v0000000000"]
    target = az.versioned_index_name("products")
    # The new version exists, half filled, and the alias was never switched.
    fake.state.indexes[target] = {**_definition(target)}
    fake.state.documents[target] = {"oppo-a92": dict(search_documents()[0])}

    init_index(services)

    assert fake.state.aliases == {"products": [target]}
    assert len(fake.state.documents[target]) == ACTIVE_PRODUCTS


def test_init_refuses_to_switch_to_an_emptier_index(
    fake: FakeSearchService, tmp_path: Path
) -> None:
    # A deploy that reads the wrong catalog (an empty local one) must not empty the shop.
    empty_catalog = Services(Settings(data_dir=tmp_path), adapters={"search": azure_index(fake)})
    empty_catalog.documents.ensure_containers()
    fake.state.synonym_maps[az.SYNONYM_MAP] = {"name": az.SYNONYM_MAP, "synonyms": ""}
    _put_old_index(fake, "products-v0000000000", ["a", "b", "c"])
    fake.state.aliases["products"] = ["products-v0000000000"]
    with pytest.raises(CloudcartError, match="0 products"):
        init_index(empty_catalog)
    assert fake.state.aliases == {"products": ["products-v0000000000"]}
    empty_catalog.close()


def test_the_version_follows_the_shape_not_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    before = az.index_version()
    # Scoring profiles can change in place, so they do not make a new index...
    monkeypatch.setattr(az, "field_weights", lambda: {"title": 1.0})
    assert az.index_version() == before
    # ...but anything the service cannot change in place does.
    monkeypatch.setattr(az, "_EDM", {**az._EDM, "int": "Edm.Int32"})
    assert az.index_version() != before
