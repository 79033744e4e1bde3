"""A full media upload against `cloudcart serve`: signed PUT, completion, thumbnails.

Real HTTP to a real server process; the thumbnails come from the `media-thumbnails`
Service Bus function, run by the server's trigger host after the outbox relay published
the `media.uploaded` event. Needs `cloudcart.catalog.media_routes.router` mounted in the
app and `cloudcart.catalog.thumbnails.bp` registered in function_app.py.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cloudcart.catalog import media
from cloudcart.core.services import Services
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from tests.e2e.test_serve import REPO, Server, _clean_env, _free_port, _wait_healthy

pytestmark = pytest.mark.e2e

PRODUCT_ID = "e2e-phone"
THUMBNAIL_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "serve-data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, public_base_url=f"http://127.0.0.1:{_free_port()}")


@pytest.fixture
def server(tmp_path: Path, settings: Settings) -> Iterator[Server]:
    # The product is written straight into the server's store first, so this test does not
    # depend on the catalog admin API.
    seed = Services(settings)
    seed.documents.ensure_containers()
    seed.documents.container("catalog").create(
        {
            "id": PRODUCT_ID,
            "pk": PRODUCT_ID,
            "type": "product",
            "title": "E2E Phone",
            "slug": PRODUCT_ID,
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
    )
    seed.close()
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    env = _clean_env(tmp_path)
    env["CLOUDCART_PUBLIC_BASE_URL"] = settings.public_base_url
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloudcart.local.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(settings.data_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    srv = Server(settings.public_base_url, process, log_path)
    try:
        _wait_healthy(srv)
        yield srv
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _wait_for_thumbnails(services: Services, media_id: str, srv: Server) -> dict[str, Any]:
    catalog = services.documents.container("catalog")
    deadline = time.monotonic() + THUMBNAIL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        product = catalog.read(PRODUCT_ID, PRODUCT_ID)
        for entry in product.get("media", []):
            if entry["id"] == media_id and entry.get("thumbnails"):
                return product
        time.sleep(0.1)
    pytest.fail(f"no thumbnails within {THUMBNAIL_TIMEOUT_SECONDS} s:\n{srv.log()}")


def test_media_upload_through_the_signed_url_gets_thumbnails(
    server: Server, settings: Settings
) -> None:
    token, _ = mint_token(settings, "e2e-admin", roles=("Admin",))
    admin = {"Authorization": f"Bearer {token}"}
    original = _png(1600, 1200)
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        declared = client.post(
            f"/api/admin/products/{PRODUCT_ID}/media",
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
            f"/api/admin/products/{PRODUCT_ID}/media/{ticket['mediaId']}/complete", headers=admin
        )
        assert completed.status_code == 200, completed.text
        assert (completed.json()["width"], completed.json()["height"]) == (1600, 1200)

        reader = Services(settings)
        try:
            product = _wait_for_thumbnails(reader, ticket["mediaId"], server)
            [item] = media.media_urls(product, reader)
        finally:
            reader.close()
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
