"""`GET /api/search` and `/api/search/suggest` over HTTP (TestClient)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.search.routes import router
from cloudcart.core.settings import Settings
from tests.unit.search.catalog_fixture import search_documents


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    app = create_app(Settings(data_dir=Path(tmp_path_factory.mktemp("routes"))))
    app.include_router(router)
    app.state.services.search.replace_all(search_documents())
    with TestClient(app) as c:
        yield c


def test_search_contract(client):
    r = client.get("/api/search", params={"q": "oppo a92"})
    assert r.status_code == 200
    body = r.json()
    first = body["items"][0]
    assert first["productId"] == "oppo-a92" and first["title"] == "OPPO A92"
    assert first["price"] == {"amount": 24990, "currency": "INR"}
    assert first["inStock"] is True and first["categoryId"] == "phones"
    assert body["total"] >= 2
    assert set(body["facets"]) == {"brand", "category", "price", "storage", "os"}
    assert body["facets"]["brand"][0]["value"] == "OPPO"
    assert "nextCursor" in body


def test_search_paging_and_filters_over_http(client):
    r = client.get("/api/search", params={"q": "phone", "limit": 2, "brand": "OnePlus"})
    body = r.json()
    assert body["total"] == 3 and len(body["items"]) == 2
    r2 = client.get(
        "/api/search",
        params={"q": "phone", "limit": 2, "brand": "OnePlus", "cursor": body["nextCursor"]},
    )
    assert len(r2.json()["items"]) == 1 and r2.json()["nextCursor"] is None
    r3 = client.get("/api/search", params={"minPrice": 70000, "inStock": "true"})
    assert {i["productId"] for i in r3.json()["items"]} == {
        "galaxy-s23",
        "iphone-15",
        "macbook-air",
    }


def test_bad_input_is_a_problem(client):
    r = client.get("/api/search", params={"q": "phone", "cursor": "nope"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/search", params={"sort": "cheapest"}).status_code == 422
    assert client.get("/api/search", params={"limit": 0}).status_code == 422


def test_suggest(client):
    r = client.get("/api/search/suggest", params={"q": "onep"})
    assert r.status_code == 200
    assert r.json()["suggestions"][0] == "OnePlus"
