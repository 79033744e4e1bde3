"""Product media over HTTP: signed uploads, verified completion, read URLs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cloudcart.api.app import create_app
from cloudcart.catalog import media, media_routes
from cloudcart.composition import Services
from cloudcart.core.errors import BlobNotFound
from cloudcart.core.ports.documents import Container, Document, Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token

PRODUCT_ID = "oppo-a92"
BASE = f"/api/admin/products/{PRODUCT_ID}/media"


def png_bytes(width: int = 64, height: int = 40, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def product_document(product_id: str = PRODUCT_ID) -> Document:
    return {
        "id": product_id,
        "pk": product_id,
        "type": "product",
        "title": "OPPO A92",
        "slug": product_id,
        "brand": "OPPO",
        "categoryId": "phones",
        "description": "",
        "attributes": {},
        "variants": [],
        "media": [],
        "status": "active",
        "createdAt": "2030-01-01T00:00:00.000000Z",
        "updatedAt": "2030-01-01T00:00:00.000000Z",
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(media_routes.router)
    services: Services = app.state.services
    services.documents.ensure_containers()
    services.documents.container("catalog").create(product_document())
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def services(client: TestClient) -> Services:
    found: Services = client.app.state.services  # type: ignore[attr-defined]
    return found


@pytest.fixture
def catalog(services: Services) -> Container:
    return services.documents.container("catalog")


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    token, _ = mint_token(settings, "catalog-admin", roles=("Admin",))
    return {"Authorization": f"Bearer {token}"}


def declare(
    client: TestClient,
    admin: dict[str, str],
    *,
    kind: str = "image",
    content_type: str = "image/png",
    size: int = 100,
    product_id: str = PRODUCT_ID,
) -> Any:
    return client.post(
        f"/api/admin/products/{product_id}/media",
        json={"kind": kind, "contentType": content_type, "size": size, "fileName": "a.png"},
        headers=admin,
    )


def upload(client: TestClient, admin: dict[str, str], data: bytes, **declared: Any) -> str:
    """Declare and PUT `data` through the signed URL; the media id."""
    declared.setdefault("size", len(data))
    answer = declare(client, admin, **declared)
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    put = client.request(
        ticket["upload"]["method"],
        ticket["upload"]["url"],
        content=data,
        headers=ticket["upload"]["headers"],
    )
    assert put.status_code == 201, put.text
    media_id: str = ticket["mediaId"]
    return media_id


def complete(client: TestClient, admin: dict[str, str], media_id: str) -> Any:
    return client.post(f"{BASE}/{media_id}/complete", headers=admin)


def outbox_events(catalog: Container) -> list[Document]:
    page = catalog.query(Query(filters=[Filter("kind", "eq", "outbox")]), partition_key=PRODUCT_ID)
    return [doc["event"] for doc in page.items]


# --- declaring an upload -------------------------------------------------------------------


def test_declaring_an_upload_returns_a_signed_put_for_the_stable_blob_name(
    client: TestClient, admin: dict[str, str]
) -> None:
    answer = declare(client, admin, size=1234)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    media_id = body["mediaId"]
    upload_info = body["upload"]
    assert upload_info["method"] == "PUT"
    assert f"/media/products/{PRODUCT_ID}/{media_id}/original?" in upload_info["url"]
    assert upload_info["headers"]["Content-Type"] == "image/png"
    assert upload_info["headers"]["x-ms-blob-type"] == "BlockBlob"
    assert "expiresAt" in upload_info


@pytest.mark.parametrize(
    ("kind", "content_type", "size", "status"),
    [
        ("image", "image/gif", 10, 415),
        ("video", "video/quicktime", 10, 415),
        ("image", "text/html", 10, 415),
        ("image", "video/mp4", 10, 422),
        ("video", "image/png", 10, 422),
        ("image", "image/jpeg", media.MAX_IMAGE_BYTES + 1, 422),
        ("video", "video/mp4", media.MAX_VIDEO_BYTES + 1, 422),
        ("image", "image/png", 0, 422),
        ("image", "image/webp", media.MAX_IMAGE_BYTES, 201),
        ("video", "video/webm", media.MAX_VIDEO_BYTES, 201),
    ],
)
def test_type_and_size_limits(
    client: TestClient,
    admin: dict[str, str],
    kind: str,
    content_type: str,
    size: int,
    status: int,
) -> None:
    answer = declare(client, admin, kind=kind, content_type=content_type, size=size)
    assert answer.status_code == status, answer.text
    if status != 201:
        assert answer.headers["content-type"] == "application/problem+json"


def test_unknown_product_is_404(client: TestClient, admin: dict[str, str]) -> None:
    answer = declare(client, admin, product_id="no-such-product")
    assert answer.status_code == 404
    assert answer.json()["type"].endswith("/product-not-found")


def test_customers_and_anonymous_callers_are_refused(
    client: TestClient, settings: Settings
) -> None:
    token, _ = mint_token(settings, "shopper-1")
    assert declare(client, {}).status_code == 401
    assert declare(client, {"Authorization": f"Bearer {token}"}).status_code == 403
    done = client.post(f"{BASE}/med_x/complete", headers={"Authorization": f"Bearer {token}"})
    assert done.status_code == 403


# --- completing ----------------------------------------------------------------------------


def test_complete_attaches_the_image_and_announces_it_once(
    client: TestClient, admin: dict[str, str], catalog: Container
) -> None:
    media_id = upload(client, admin, png_bytes(64, 40))
    first = complete(client, admin, media_id)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["mediaId"] == media_id
    assert (body["kind"], body["contentType"], body["status"]) == ("image", "image/png", "ready")
    assert (body["width"], body["height"]) == (64, 40)

    product = catalog.read(PRODUCT_ID, PRODUCT_ID)
    [entry] = product["media"]
    assert entry["id"] == media_id
    assert entry["blob"] == f"products/{PRODUCT_ID}/{media_id}/original"
    assert entry["status"] == "ready"
    events = outbox_events(catalog)
    assert [e["type"] for e in events] == ["media.uploaded"]
    assert events[0]["data"] == {
        "productId": PRODUCT_ID,
        "mediaId": media_id,
        "blob": entry["blob"],
        "contentType": "image/png",
        "kind": "image",
    }

    again = complete(client, admin, media_id)
    assert again.status_code == 200
    assert again.json() == body
    assert len(outbox_events(catalog)) == 1
    assert len(catalog.read(PRODUCT_ID, PRODUCT_ID)["media"]) == 1


def test_a_video_is_attached_without_decoding(
    client: TestClient, admin: dict[str, str], catalog: Container
) -> None:
    media_id = upload(client, admin, b"\x00" * 300, kind="video", content_type="video/mp4")
    answer = complete(client, admin, media_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "video"
    assert answer.json()["width"] is None
    assert catalog.read(PRODUCT_ID, PRODUCT_ID)["media"][0]["kind"] == "video"


def _blob_exists(services: Services, name: str) -> bool:
    try:
        services.blobs.properties(media.MEDIA_CONTAINER, name)
    except BlobNotFound:
        return False
    return True


def test_wrong_content_type_after_upload_is_rejected_and_deleted(
    client: TestClient, admin: dict[str, str], services: Services, catalog: Container
) -> None:
    data = png_bytes()
    ticket = declare(client, admin, size=len(data)).json()
    name = media.original_blob_name(PRODUCT_ID, ticket["mediaId"])
    # Storage itself took a different type (Azure with a plain SAS does not pin it).
    services.blobs.put(media.MEDIA_CONTAINER, name, data, content_type="image/jpeg")
    answer = complete(client, admin, ticket["mediaId"])
    assert answer.status_code == 422
    assert "image/jpeg" in answer.json()["detail"]
    assert not _blob_exists(services, name)
    assert catalog.read(PRODUCT_ID, PRODUCT_ID)["media"] == []
    assert outbox_events(catalog) == []


def test_size_other_than_declared_is_rejected(
    client: TestClient, admin: dict[str, str], catalog: Container
) -> None:
    data = png_bytes()
    media_id = upload(client, admin, data, size=len(data) + 1)
    answer = complete(client, admin, media_id)
    assert answer.status_code == 422
    assert "declared" in answer.json()["detail"]
    assert catalog.read(PRODUCT_ID, PRODUCT_ID)["media"] == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"<html>not an image</html>", "image/png"),
        (png_bytes(), "image/jpeg"),  # a real image, but not the declared format
        (png_bytes()[:40], "image/png"),  # truncated
    ],
    ids=["html", "png-declared-as-jpeg", "truncated-png"],
)
def test_non_image_bytes_are_rejected_and_deleted(
    client: TestClient,
    admin: dict[str, str],
    services: Services,
    catalog: Container,
    data: bytes,
    content_type: str,
) -> None:
    media_id = upload(client, admin, data, content_type=content_type)
    answer = complete(client, admin, media_id)
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("/media-rejected")
    assert not _blob_exists(services, media.original_blob_name(PRODUCT_ID, media_id))
    assert catalog.read(PRODUCT_ID, PRODUCT_ID)["media"] == []
    assert outbox_events(catalog) == []


def test_complete_before_upload_is_409_and_unknown_media_404(
    client: TestClient, admin: dict[str, str]
) -> None:
    ticket = declare(client, admin).json()
    assert complete(client, admin, ticket["mediaId"]).status_code == 409
    assert complete(client, admin, "med_unknown").status_code == 404


# --- read URLs -----------------------------------------------------------------------------


def test_media_urls_are_signed_stable_and_serve_the_bytes(
    client: TestClient, admin: dict[str, str], services: Services, catalog: Container
) -> None:
    data = png_bytes(30, 20)
    media_id = upload(client, admin, data)
    assert complete(client, admin, media_id).status_code == 200
    product = catalog.read(PRODUCT_ID, PRODUCT_ID)
    [item] = media.media_urls(product, services)
    assert item["id"] == media_id
    assert (item["width"], item["height"], item["thumbnails"]) == (30, 20, {})
    # Same URL on the next read: caches can key on it.
    assert media.media_urls(product, services)[0]["url"] == item["url"]
    served = client.get(item["url"])
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == "image/png"


def test_media_urls_use_the_cdn_base_when_configured(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", media_cdn_base_url="https://cdn.example/media/")
    product = {
        "media": [
            {
                "id": "m1",
                "kind": "image",
                "contentType": "image/png",
                "blob": "products/p1/m1/original",
                "width": 10,
                "height": 5,
                "thumbnails": {
                    "w160": {"blob": "products/p1/m1/w160.webp", "width": 10, "height": 5}
                },
            },
            {"id": "m2", "kind": "video", "status": "pending", "blob": "products/p1/m2/original"},
        ]
    }
    assert media.media_urls(product, Services(settings)) == [
        {
            "id": "m1",
            "kind": "image",
            "contentType": "image/png",
            "url": "https://cdn.example/media/products/p1/m1/original",
            "width": 10,
            "height": 5,
            "thumbnails": {
                "w160": {
                    "url": "https://cdn.example/media/products/p1/m1/w160.webp",
                    "width": 10,
                    "height": 5,
                }
            },
        }
    ]


def test_read_url_lifetime_ends_on_a_day_boundary_two_to_three_days_out() -> None:
    for now in (1_900_000_000, 1_900_000_000 + 86_399, 1_900_050_000):
        lifetime = media._read_url_lifetime(now)
        assert 2 * 86_400 <= lifetime <= 3 * 86_400
        assert (now + lifetime) % 86_400 == 0


def test_the_published_event_matches_its_documented_schema(
    client: TestClient, admin: dict[str, str], catalog: Container
) -> None:
    import json

    import jsonschema_rs

    docs = Path(__file__).resolve().parents[2] / "docs" / "events"
    envelope = json.loads((docs / "event.schema.json").read_text("utf-8"))
    schema = json.loads((docs / "media.uploaded.schema.json").read_text("utf-8"))
    assert jsonschema_rs.meta.is_valid(schema)
    validator = jsonschema_rs.validator_for(
        schema, registry=jsonschema_rs.Registry([(envelope["$id"], envelope)])
    )
    media_id = upload(client, admin, png_bytes())
    assert complete(client, admin, media_id).status_code == 200
    [event] = outbox_events(catalog)
    assert validator.is_valid(event)
    assert not validator.is_valid({**event, "data": {**event["data"], "kind": "audio"}})
