"""The list page is encoded by the route itself: it must be what its response model makes."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from cloudcart.catalog.models import ProductPage
from cloudcart.catalog.service import CatalogService
from cloudcart.core.ports.documents import strip_system
from tests.unit.catalog.conftest import product_in


def _with_media(catalog: CatalogService, product_id: str) -> None:
    container = catalog.store.container("catalog")
    document = strip_system(container.read(product_id, product_id))
    blob = f"products/{product_id}/med_1/original"
    document["media"] = [
        {
            "id": "med_1",
            "kind": "image",
            "contentType": "image/png",
            "blob": blob,
            "status": "ready",
            "width": 30,
            "height": 20,
            "thumbnails": {
                "w160": {"blob": f"products/{product_id}/med_1/w160.webp", "width": 160},
            },
        },
        {
            "id": "med_2",
            "kind": "video",
            "contentType": "video/mp4",
            "blob": "v",
            "status": "ready",
        },
        {"id": "med_3", "kind": "image", "contentType": "image/png", "status": "pending"},
    ]
    container.replace(document)


def test_a_list_page_is_exactly_what_its_response_model_serialises(
    client: TestClient, catalog: CatalogService
) -> None:
    first = catalog.create_product(product_in(title="OPPO A92"))
    catalog.create_product(product_in(title="OPPO A53", sku="OPPO-A53-64-BLU"))
    _with_media(catalog, first.document["id"])

    answer = client.get("/api/catalog/products", params={"category": "electronics", "limit": 1})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"].startswith("public, max-age=")
    body = answer.json()
    assert body["nextCursor"]
    page = client.get(
        "/api/catalog/products",
        params={"category": "electronics", "limit": 1, "cursor": body["nextCursor"]},
    ).json()
    for shown in (body, page):
        modelled = ProductPage.model_validate(shown).model_dump(mode="json", by_alias=True)
        # Same keys in the same order, not only equal values.
        assert json.dumps(shown) == json.dumps(modelled)
    media = [m for item in (body["items"] + page["items"]) for m in item["media"]]
    assert [m["id"] for m in media] == ["med_1", "med_2"]
    assert media[0]["blob"] is None
    assert media[0]["thumbnails"]["w160"]["url"]
