"""The catalog's document types describe exactly what the catalog really stores.

The real flows run through the API (products created, changed, given media, archived,
imported; the demo shop loaded), then every document of the `catalog` container is
validated against its TypedDict with unknown members forbidden.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import azure.functions as func
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import TypeAdapter, ValidationError

from cloudcart.catalog import thumbnails
from cloudcart.catalog.documents import (
    CategoryDocument,
    MediaUploadDocument,
    ProductDocument,
)
from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.outbox import OUTBOX_KIND
from cloudcart.core.ports.documents import Document, Filter, Query, every
from cloudcart.local.demo_data import seed
from tests.unit.catalog.conftest import product_body

ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "product": TypeAdapter(ProductDocument),
    "category": TypeAdapter(CategoryDocument),
    "media-upload": TypeAdapter(MediaUploadDocument),
}


def png_bytes(width: int = 64, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, format="PNG")
    return out.getvalue()


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def attach_media(
    client: TestClient,
    admin: dict[str, str],
    product_id: str,
    data: bytes,
    *,
    kind: str = "image",
    content_type: str = "image/png",
    complete: bool = True,
) -> str:
    base = f"/api/admin/products/{product_id}/media"
    declared = {"kind": kind, "contentType": content_type, "size": len(data)}
    if kind == "image":
        declared["fileName"] = "front.png"
    ticket = ok(client.post(base, json=declared, headers=admin), 201)
    upload = ticket["upload"]
    put = client.request(upload["method"], upload["url"], content=data, headers=upload["headers"])
    assert put.status_code == 201, put.text
    media_id: str = ticket["mediaId"]
    if complete:
        ok(client.post(f"{base}/{media_id}/complete", headers=admin))
    return media_id


def run_thumbnail_function(services: Services, product_id: str) -> None:
    """Deliver the product's `media.uploaded` events to the thumbnail function."""
    outbox = every(
        services.documents.container("catalog"),
        Query(filters=[Filter("kind", "eq", OUTBOX_KIND)]),
        partition_key=product_id,
    )
    for document in outbox:
        event = Event.model_validate(document["event"])
        if event.type == "media.uploaded":
            message = func.ServiceBusMessage(
                body=event.to_json_bytes(), content_type="application/json"
            )
            thumbnails.handle_media_uploaded(message, services)


def stored_documents(services: Services) -> list[Document]:
    """Every document of the catalog container but the outbox's."""
    container = services.documents.container("catalog")
    return [d for d in every(container, Query(limit=500)) if d.get("kind") != OUTBOX_KIND]


def test_every_stored_catalog_document_matches_its_type(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    assert seed(services)

    # Categories: a root and one under a demo category.
    ok(
        client.post(
            "/api/admin/categories", json={"id": "toys", "name": "Toys"}, headers=admin_headers
        ),
        201,
    )
    ok(
        client.post(
            "/api/admin/categories",
            json={"id": "rugged-phones", "name": "Rugged phones", "parentId": "phones"},
            headers=admin_headers,
        ),
        201,
    )

    # A draft product, changed: a variant added, a price changed, a compare-at price set.
    body = product_body("Rugged One", sku="RUGGED-ONE-64", category="rugged-phones", status="draft")
    created = ok(client.post("/api/admin/products", json=body, headers=admin_headers), 201)
    product_id = created["id"]
    body["variants"][0]["price"] = {"amount": 1999000, "currency": "INR"}
    body["variants"].append(
        {
            "sku": "RUGGED-ONE-128",
            "attributes": {"storage": "128 GB", "waterproof": True, "weightGrams": 210.5},
            "price": {"amount": 2299000, "currency": "INR"},
            "compareAtPrice": {"amount": 2599000, "currency": "INR"},
        }
    )
    body["status"] = "active"
    ok(client.put(f"/api/admin/products/{product_id}", json=body, headers=admin_headers))

    # Media: an image (thumbnails made by the function), a video, a pending upload.
    attach_media(client, admin_headers, product_id, png_bytes())
    attach_media(
        client, admin_headers, product_id, b"\x00" * 64, kind="video", content_type="video/mp4"
    )
    attach_media(client, admin_headers, product_id, png_bytes(8, 8), complete=False)
    run_thumbnail_function(services, product_id)
    # A change after media were attached keeps them.
    body["description"] = "Drop-proof to 2 m."
    ok(client.put(f"/api/admin/products/{product_id}", json=body, headers=admin_headers))

    # Archived: through DELETE, and through PUT with status archived.
    ok(client.delete(f"/api/admin/products/{product_id}", headers=admin_headers))
    other = product_body("Toy Robot", sku="TOY-ROBOT", category="toys", brand="Robo")
    other_id = ok(client.post("/api/admin/products", json=other, headers=admin_headers), 201)["id"]
    other["status"] = "archived"
    ok(client.put(f"/api/admin/products/{other_id}", json=other, headers=admin_headers))

    # Imported: a new product with an id and stock, one without id, an update of a demo one.
    lines = [
        {**product_body("Kite", sku="KITE-1", category="toys", brand="Sky"), "id": "kite"},
        {
            **product_body("Yo-yo", sku="YOYO-1", category="toys", brand="Spin"),
            "stock": {"YOYO-1": 4},
        },
        {**product_body("OPPO A92", sku="OPPO-A92-NEW", category="phones"), "id": "oppo-a92"},
    ]
    summary = ok(
        client.post(
            "/api/admin/import/products",
            content="\n".join(json.dumps(line) for line in lines).encode(),
            headers={**admin_headers, "Content-Type": "application/x-ndjson"},
        )
    )
    assert (summary["imported"], summary["updated"], summary["rejectedCount"]) == (2, 1, 0)

    documents = stored_documents(services)
    kinds = Counter(str(d.get("type")) for d in documents)
    assert set(kinds) == set(ADAPTERS), kinds
    assert kinds["product"] > 300 and kinds["category"] > 10 and kinds["media-upload"] == 3
    for document in documents:
        try:
            ADAPTERS[document["type"]].validate_python(document, strict=True)
        except ValidationError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{document['type']} {document['id']!r} does not match: {exc}")

    # The shapes the flows were meant to produce really were produced.
    by_id = {d["id"]: d for d in documents}
    product = by_id[product_id]
    assert product["status"] == "archived"
    image, video = product["media"]
    assert set(image["thumbnails"]) == {"w160", "w480", "w1024"} and "width" in image
    assert video["thumbnails"] == {} and "width" not in video
    assert by_id[other_id]["status"] == "archived"
    statuses = Counter(d["status"] for d in documents if d["type"] == "media-upload")
    assert statuses == {"ready": 2, "pending": 1}
    assert {"kite", "prd_YOYO-1"} <= set(by_id)


# --- the test can fail --------------------------------------------------------------------


def stored_product() -> dict[str, Any]:
    return {
        "id": "p1",
        "pk": "p1",
        "type": "product",
        "title": "Kite",
        "slug": "kite",
        "brand": "Sky",
        "categoryId": "toys",
        "description": "",
        "attributes": {"colour": "Red"},
        "variants": [
            {
                "sku": "KITE-1",
                "attributes": {},
                "price": {"amount": 100, "currency": "INR"},
                "compareAtPrice": None,
            }
        ],
        "media": [],
        "status": "active",
        "minPrice": {"amount": 100, "currency": "INR"},
        "brandKey": "sky",
        "sortTitle": "kite",
        "createdAt": "2030-01-01T00:00:00.000000Z",
        "updatedAt": "2030-01-01T00:00:00.000000Z",
        "_etag": "abc",
        "_ts": 1,
    }


def test_a_valid_product_passes() -> None:
    ADAPTERS["product"].validate_python(stored_product(), strict=True)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"colour": "Red"}, "colour"),
        ({"status": "deleted"}, "status"),
        ({"minPrice": {"amount": "100", "currency": "INR"}}, "minPrice.amount"),
        ({"variants": [{"sku": "KITE-1", "price": {"amount": 1, "currency": "INR"}}]}, "variants"),
        ({"_ts": "1"}, "_ts"),
    ],
)
def test_an_unknown_or_wrongly_typed_member_is_rejected(change: dict[str, Any], path: str) -> None:
    document = {**stored_product(), **change}
    with pytest.raises(ValidationError) as raised:
        ADAPTERS["product"].validate_python(document, strict=True)
    locations = [".".join(str(p) for p in e["loc"]) for e in raised.value.errors()]
    assert any(loc.startswith(path) for loc in locations), locations


def test_a_missing_member_is_rejected() -> None:
    document = stored_product()
    del document["minPrice"]
    with pytest.raises(ValidationError):
        ADAPTERS["product"].validate_python(document, strict=True)
    category = {"id": "c", "pk": "categories", "type": "category", "name": "C", "createdAt": "t"}
    with pytest.raises(ValidationError):
        ADAPTERS["category"].validate_python(category, strict=True)
