"""The catalog HTTP API through TestClient: auth, validation problems, caching, paging."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.core.ports.documents import Filter, Query
from tests.unit.catalog.conftest import product_body

Headers = dict[str, str]


def _categories(client: TestClient, headers: Headers) -> None:
    for body in (
        {"id": "electronics", "name": "Electronics", "parentId": None},
        {"id": "phones", "name": "Phones", "parentId": "electronics"},
        {"id": "kitchen", "name": "Kitchen", "parentId": None},
    ):
        assert client.post("/api/admin/categories", json=body, headers=headers).status_code == 201


def _create(client: TestClient, headers: Headers, **kwargs: Any) -> dict[str, Any]:
    response = client.post("/api/admin/products", json=product_body(**kwargs), headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"/api/admin/products/{created['id']}"
    return created


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/admin/products"),
        ("PUT", "/api/admin/products/p1"),
        ("DELETE", "/api/admin/products/p1"),
        ("GET", "/api/admin/products/p1"),
        ("POST", "/api/admin/categories"),
        ("PUT", "/api/admin/inventory/SKU-1"),
    ],
)
def test_admin_routes_need_an_admin(
    client: TestClient, customer_headers: Headers, method: str, path: str
) -> None:
    body = {"available": 1} if "inventory" in path else product_body()
    assert client.request(method, path, json=body).status_code == 401
    forbidden = client.request(method, path, json=body, headers=customer_headers)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"


def test_contract_example_and_public_reads(client: TestClient, admin_headers: Headers) -> None:
    _categories(client, admin_headers)
    created = _create(client, admin_headers)
    assert created["title"] == "OPPO A92" and created["status"] == "active"
    pid = created["id"]

    put = client.put(
        "/api/admin/inventory/OPPO-A92-128-BLK", json={"available": 5}, headers=admin_headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["available"] == 5 and put.json()["productId"] == pid

    page = client.get(f"/api/catalog/products/{pid}")
    assert page.status_code == 200
    assert page.headers["cache-control"].startswith("public, max-age=")
    etag = page.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    variant = page.json()["variants"][0]
    assert (variant["available"], variant["inStock"]) == (5, True)
    assert page.json()["productId"] == pid

    again = client.get(f"/api/catalog/products/{pid}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag

    # A stock change changes the body, so the ETag and a 200 follow.
    client.put(
        "/api/admin/inventory/OPPO-A92-128-BLK", json={"available": 0}, headers=admin_headers
    )
    changed = client.get(f"/api/catalog/products/{pid}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["variants"][0]["inStock"] is False

    tree = client.get("/api/catalog/categories").json()["items"]
    assert [n["id"] for n in tree] == ["electronics", "kitchen"]
    assert tree[0]["children"][0]["id"] == "phones"


def test_stale_if_match_is_412_and_archive_hides_the_product(
    client: TestClient, admin_headers: Headers
) -> None:
    _categories(client, admin_headers)
    pid = _create(client, admin_headers)["id"]
    etag = client.get(f"/api/admin/products/{pid}", headers=admin_headers).headers["etag"]

    first = client.put(
        f"/api/admin/products/{pid}",
        json=product_body(title="OPPO A92 2020"),
        headers={**admin_headers, "If-Match": etag},
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] != etag
    stale = client.put(
        f"/api/admin/products/{pid}",
        json=product_body(title="Lost update"),
        headers={**admin_headers, "If-Match": etag},
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/catalog/products/{pid}").json()["title"] == "OPPO A92 2020"

    archived = client.delete(f"/api/admin/products/{pid}", headers=admin_headers)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert client.get(f"/api/catalog/products/{pid}").status_code == 404
    assert client.get("/api/catalog/products").json()["items"] == []


def test_validation_problems(client: TestClient, admin_headers: Headers) -> None:
    _categories(client, admin_headers)
    _create(client, admin_headers)
    taken = client.post(
        "/api/admin/products", json=product_body(title="Copy"), headers=admin_headers
    )
    assert taken.status_code == 409
    assert taken.json()["type"].endswith("/sku-taken") and taken.json()["sku"] == "OPPO-A92-128-BLK"

    unknown = client.post(
        "/api/admin/products", json=product_body(sku="X-1", category="toys"), headers=admin_headers
    )
    assert unknown.status_code == 422 and "toys" in unknown.json()["detail"]

    bad = client.post(
        "/api/admin/products", json=product_body(sku="X-2", title=""), headers=admin_headers
    )
    assert bad.status_code == 422
    assert any(e["location"] == "body.title" for e in bad.json()["errors"])

    dup = client.post(
        "/api/admin/categories", json={"id": "phones", "name": "P"}, headers=admin_headers
    )
    assert dup.status_code == 409
    orphan = client.post(
        "/api/admin/categories",
        json={"id": "x", "name": "X", "parentId": "nope"},
        headers=admin_headers,
    )
    assert orphan.status_code == 422

    negative = client.put(
        "/api/admin/inventory/OPPO-A92-128-BLK", json={"available": -1}, headers=admin_headers
    )
    assert negative.status_code == 422
    missing = client.put("/api/admin/inventory/NOPE", json={"available": 1}, headers=admin_headers)
    assert missing.status_code == 404

    assert client.get("/api/catalog/products?sort=cheapest").status_code == 422
    assert client.get("/api/catalog/products?limit=0").status_code == 422
    assert client.get("/api/catalog/products?limit=101").status_code == 422
    assert client.get("/api/catalog/products?cursor=garbage").status_code == 400


def test_cursor_pagination_and_sort_orders(client: TestClient, admin_headers: Headers) -> None:
    _categories(client, admin_headers)
    titles = ["Delta", "alpha", "Charlie", "Bravo", "Echo"]
    prices = [400, 100, 500, 300, 200]
    for index, (title, price) in enumerate(zip(titles, prices, strict=True)):
        _create(client, admin_headers, title=title, sku=f"S-{index}", amount=price)
    _create(client, admin_headers, title="Pan", sku="PAN", category="kitchen", brand="Lodge")
    _create(client, admin_headers, title="Hidden", sku="H", status="draft")

    def walk(sort: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"sort": sort, "limit": 2, **params}
            if cursor:
                query["cursor"] = cursor
            response = client.get("/api/catalog/products", params=query)
            assert response.status_code == 200, response.text
            items.extend(response.json()["items"])
            cursor = response.json()["nextCursor"]
            if cursor is None:
                return items

    assert [i["title"] for i in walk("title", category="phones")] == [
        "alpha",
        "Bravo",
        "Charlie",
        "Delta",
        "Echo",
    ]
    assert [i["minPrice"]["amount"] for i in walk("price_asc", category="electronics")] == [
        100,
        200,
        300,
        400,
        500,
    ]
    assert [i["minPrice"]["amount"] for i in walk("price_desc", category="phones")] == [
        500,
        400,
        300,
        200,
        100,
    ]
    newest = walk("newest")
    assert [i["title"] for i in newest] == ["Pan", *reversed(titles)]
    assert [i["title"] for i in walk("newest", brand="LODGE")] == ["Pan"]


def test_every_change_is_in_the_outbox(client: TestClient, admin_headers: Headers) -> None:
    _categories(client, admin_headers)
    pid = _create(client, admin_headers)["id"]
    client.put(f"/api/admin/products/{pid}", json=product_body(title="B"), headers=admin_headers)
    client.put(
        "/api/admin/inventory/OPPO-A92-128-BLK", json={"available": 3}, headers=admin_headers
    )
    client.delete(f"/api/admin/products/{pid}", headers=admin_headers)

    store = client.app.state.services.documents  # type: ignore[attr-defined]
    events: list[dict[str, Any]] = []
    for name in ("catalog", "inventory"):
        checkpoint = None
        while True:
            page = store.container(name).change_feed(checkpoint)
            events.extend(d["event"] for d in page.items if d.get("kind") == "outbox")
            if not page.items:
                break
            checkpoint = page.checkpoint
    by_type = sorted(e["type"] for e in events if e["subject"] in (pid, "OPPO-A92-128-BLK"))
    assert by_type == [
        "inventory.changed",
        "product.archived",
        "product.created",
        "product.updated",
    ]
    pending = store.container("catalog").query(
        Query(filters=[Filter("kind", "eq", "outbox"), Filter("relayedAt", "exists", False)])
    )
    assert len(pending.items) >= 3
