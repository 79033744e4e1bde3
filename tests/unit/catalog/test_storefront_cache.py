"""List pages and searches are served from memory while fresh, and never after a write.

Each test reads, writes in one of the ways the shop writes (the admin API, the service of
another composition on the same data, the media flow, the search indexer), then reads again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog import media
from cloudcart.catalog.models import CategoryIn
from cloudcart.catalog.routes import admin_router, public_router
from cloudcart.catalog.search import indexer
from cloudcart.catalog.search.routes import router as search_router
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from tests.fakes.counting import CountingStore
from tests.unit.catalog.conftest import product_body, product_in

LIST = "/api/catalog/products"


class CountingSearch:
    """The search index, counting the searches that reach it."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.searches = 0

    def search(self, query: object) -> object:
        self.searches += 1
        return self._inner.search(query)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def shop(settings: Settings) -> tuple[TestClient, Services, CountingStore, CountingSearch]:
    """An app whose documents store and search index count what reaches them."""
    base = Services(settings)
    base.documents.ensure_containers()
    counting = CountingStore(base.documents)
    search = CountingSearch(base.search)
    services = Services(settings, adapters={"documents": counting, "search": search})
    app = create_app(settings)
    for router in (admin_router, public_router, search_router):
        app.include_router(router)
    app.state.services = services
    return TestClient(app), services, counting, search


@pytest.fixture
def counted(
    settings: Settings, catalog: CatalogService
) -> Iterator[tuple[TestClient, Services, CountingStore, CountingSearch]]:
    client, services, counting, search = shop(settings)
    with client:
        yield client, services, counting, search
    services.close()


def _titles(client: TestClient, **params: object) -> list[str]:
    answer = client.get(LIST, params=params)
    assert answer.status_code == 200, answer.text
    return [item["title"] for item in answer.json()["items"]]


def test_a_repeated_list_page_makes_no_store_call(counted, catalog: CatalogService) -> None:
    client, _, counting, _ = counted
    catalog.create_product(product_in(title="OPPO A92"))
    first = client.get(LIST, params={"category": "electronics"})

    counting.counts.clear()
    again = client.get(LIST, params={"category": "electronics"})

    assert again.content == first.content
    assert again.headers["cache-control"] == first.headers["cache-control"]
    assert sum(counting.counts.values()) == 0
    client.get(LIST, params={"category": "electronics", "limit": 5})
    assert sum(counting.counts.values()) > 0, "another query is another page"


def test_an_admin_edit_shows_on_the_next_list_page(
    counted, catalog: CatalogService, admin_headers: dict[str, str]
) -> None:
    client, _, _, _ = counted
    product = catalog.create_product(product_in(title="OPPO A92"))
    assert _titles(client, category="phones") == ["OPPO A92"]

    answer = client.put(
        f"/api/admin/products/{product.document['id']}",
        json=product_body(title="OPPO A92 Aurora"),
        headers={**admin_headers, "If-Match": f'"{product.etag}"'},
    )

    assert answer.status_code == 200, answer.text
    assert _titles(client, category="phones") == ["OPPO A92 Aurora"]


def test_a_write_through_another_composition_on_the_same_data_shows(
    counted, settings: Settings
) -> None:
    client, _, _, _ = counted
    assert _titles(client, category="kitchen") == []
    other = Services(settings)  # a CLI run, a trigger host with its own adapters
    try:
        CatalogService(other.documents).create_product(
            product_in(title="Kettle", sku="KETTLE-1", category="kitchen", brand="Prestige")
        )
    finally:
        other.close()

    assert _titles(client, category="kitchen") == ["Kettle"]


def test_archiving_and_new_categories_show_at_once(counted, catalog: CatalogService) -> None:
    client, _, _, _ = counted
    product = catalog.create_product(product_in(title="OPPO A92"))
    assert client.get(LIST, params={"category": "tablets"}).status_code == 422
    assert _titles(client) == ["OPPO A92"]

    catalog.create_category(CategoryIn(id="tablets", name="Tablets", parent_id="electronics"))
    catalog.archive_product(product.document["id"])

    assert _titles(client, category="tablets") == []
    assert _titles(client) == []


def test_a_finished_media_upload_shows_on_the_next_list_page(
    counted, catalog: CatalogService
) -> None:
    client, services, _, _ = counted
    product_id = catalog.create_product(product_in(title="OPPO A92")).document["id"]
    assert client.get(LIST).json()["items"][0]["media"] == []

    ticket = media.request_upload(
        services, product_id, kind="video", content_type="video/mp4", size=4, file_name="a.mp4"
    )
    blob = media.original_blob_name(product_id, ticket.media_id)
    services.blobs.put(media.MEDIA_CONTAINER, blob, b"mp4!", content_type="video/mp4")
    media.complete_upload(services, product_id, ticket.media_id)

    listed = client.get(LIST).json()["items"][0]["media"]
    assert [item["id"] for item in listed] == [ticket.media_id]


def test_the_cache_can_be_turned_off(settings: Settings, catalog: CatalogService) -> None:
    client, services, counting, _ = shop(
        settings.model_copy(update={"storefront_cache_seconds": 0})
    )
    with client:
        client.get(LIST)
        counting.counts.clear()
        client.get(LIST)
        assert sum(counting.counts.values()) > 0
    services.close()


def test_a_repeated_search_reaches_the_index_once_until_the_index_changes(
    counted, catalog: CatalogService
) -> None:
    client, services, _, search = counted
    product = catalog.create_product(product_in(title="OPPO A92"))
    indexer.reindex_all(services)
    first = client.get("/api/search", params={"q": "oppo"})
    assert [item["title"] for item in first.json()["items"]] == ["OPPO A92"]
    again = client.get("/api/search", params={"q": "oppo"})
    assert again.content == first.content and search.searches == 1

    catalog.update_product(
        product.document["id"], product_in(title="OPPO A92 Aurora"), if_match=product.etag
    )
    indexer.sync_product(services, product.document["id"])

    after = client.get("/api/search", params={"q": "oppo"}).json()
    assert [item["title"] for item in after["items"]] == ["OPPO A92 Aurora"]
    assert search.searches == 2


def test_a_refused_search_is_not_remembered(counted) -> None:
    client, _, _, _ = counted
    for _ in range(2):
        answer = client.get("/api/search", params={"q": "oppo", "cursor": "bm9wZQ"})
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("application/problem+json")
