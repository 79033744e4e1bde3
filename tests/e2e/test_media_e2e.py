"""A full media upload against `cloudcart serve`: signed PUT, completion, thumbnails.

Real HTTP to a real server process; the thumbnails come from the `media-thumbnails`
Service Bus function, run by the server's trigger host after the outbox relay published
the `media.uploaded` event; the storefront sees them in the public product read.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.serving import ServeProcess, admin_token, serve

pytestmark = pytest.mark.e2e

THUMBNAIL_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    with serve(tmp_path) as srv:
        yield srv


def _create_product(client: httpx.Client, admin: dict[str, str]) -> str:
    for body in (
        {"id": "electronics", "name": "Electronics", "parentId": None},
        {"id": "phones", "name": "Phones", "parentId": "electronics"},
    ):
        assert client.post("/api/admin/categories", json=body, headers=admin).status_code == 201
    created = client.post(
        "/api/admin/products",
        headers=admin,
        json={
            "title": "E2E Phone",
            "brand": "OPPO",
            "categoryId": "phones",
            "description": "A phone with pictures",
            "attributes": {},
            "variants": [
                {
                    "sku": "E2E-PHONE-1",
                    "attributes": {},
                    "price": {"amount": 100, "currency": "INR"},
                }
            ],
            "status": "active",
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _wait_for_thumbnails(
    client: httpx.Client, product_id: str, media_id: str, srv: ServeProcess
) -> dict[str, Any]:
    # Through the public product read, as a storefront sees it.
    deadline = time.monotonic() + THUMBNAIL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        product = client.get(f"/api/catalog/products/{product_id}").json()
        for entry in product.get("media", []):
            if entry["id"] == media_id and entry.get("thumbnails"):
                return dict(entry)
        time.sleep(0.1)
    pytest.fail(f"no thumbnails within {THUMBNAIL_TIMEOUT_SECONDS} s:\n{srv.log()}")


def test_media_upload_through_the_signed_url_gets_thumbnails(
    server: ServeProcess,
) -> None:
    admin = {"Authorization": f"Bearer {admin_token(server.base_url)}"}
    original = _png(1600, 1200)
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        product_id = _create_product(client, admin)
        declared = client.post(
            f"/api/admin/products/{product_id}/media",
            json={"kind": "image", "contentType": "image/png", "size": len(original)},
            headers=admin,
        )
        assert declared.status_code == 201, declared.text
        ticket = declared.json()
        upload = ticket["upload"]
        assert upload["url"].startswith(server.base_url)

        # Straight to storage, like a storefront client: no bearer token, only the signature.
        put = httpx.request(
            upload["method"], upload["url"], content=original, headers=upload["headers"]
        )
        assert put.status_code == 201, put.text

        completed = client.post(
            f"/api/admin/products/{product_id}/media/{ticket['mediaId']}/complete", headers=admin
        )
        assert completed.status_code == 200, completed.text
        assert (completed.json()["width"], completed.json()["height"]) == (1600, 1200)

        item = _wait_for_thumbnails(client, product_id, ticket["mediaId"], server)
        assert item["url"].startswith(server.base_url)
        assert set(item["thumbnails"]) == {"w160", "w480", "w1024"}
        thumb = item["thumbnails"]["w480"]
        assert (thumb["width"], thumb["height"]) == (480, 360)

        got = httpx.get(thumb["url"], timeout=10.0)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "image/webp"
        assert "max-age" in got.headers["cache-control"]
        image = Image.open(io.BytesIO(got.content))
        assert (image.format, image.size) == ("WEBP", (480, 360))

        assert httpx.get(item["url"], timeout=10.0).content == original
