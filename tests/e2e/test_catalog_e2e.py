"""The catalog over real HTTP against `cloudcart serve`: an admin creates, updates and
archives a product, and a storefront client sees each step in its reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudcart.core.settings import Settings
from tests.e2e.test_serve import REPO, Server, _free_port, _wait_healthy

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    data_dir = tmp_path / "serve-data"
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    env["PYTHONUNBUFFERED"] = "1"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.e2e.serve_with_catalog",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    srv = Server(f"http://127.0.0.1:{port}", process, log_path)
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


def _token(server: Server, tmp_path: Path, sub: str, *, admin: bool) -> str:
    # Tokens come from the server's own dev identity provider (same data folder, same key).
    args = [sys.executable, "-m", "cloudcart.local.cli", "token", sub]
    if admin:
        args.append("--admin")
    args += ["--data-dir", str(tmp_path / "serve-data")]
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, check=True, timeout=60)
    return out.stdout.decode().strip()


def _product(title: str, status: str = "active") -> dict[str, Any]:
    return {
        "title": title,
        "brand": "OPPO",
        "categoryId": "phones",
        "description": "6.5 inch punch-hole display, 5000 mAh battery",
        "attributes": {"os": "Android", "screenSize": "6.5 in"},
        "variants": [
            {
                "sku": "OPPO-A92-128-BLK",
                "attributes": {"storage": "128 GB", "ram": "8 GB", "colour": "Black"},
                "price": {"amount": 24990, "currency": "INR"},
            }
        ],
        "status": status,
    }


def test_admin_changes_show_in_storefront_reads(server: Server, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {_token(server, tmp_path, 'e2e-admin', admin=True)}"}
    customer = {"Authorization": f"Bearer {_token(server, tmp_path, 'e2e-shopper', admin=False)}"}
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        assert client.post("/api/admin/products", json=_product("X")).status_code == 401
        assert (
            client.post("/api/admin/products", json=_product("X"), headers=customer).status_code
            == 403
        )
        for body in (
            {"id": "electronics", "name": "Electronics", "parentId": None},
            {"id": "phones", "name": "Phones", "parentId": "electronics"},
        ):
            created = client.post("/api/admin/categories", json=body, headers=admin)
            assert created.status_code == 201, created.text

        created = client.post("/api/admin/products", json=_product("OPPO A92"), headers=admin)
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        stock = client.put(
            "/api/admin/inventory/OPPO-A92-128-BLK", json={"available": 7}, headers=admin
        )
        assert stock.status_code == 200, stock.text

        page = client.get(f"/api/catalog/products/{pid}")
        assert page.status_code == 200
        assert page.json()["title"] == "OPPO A92"
        assert page.json()["variants"][0]["available"] == 7
        etag = page.headers["etag"]
        assert (
            client.get(f"/api/catalog/products/{pid}", headers={"If-None-Match": etag}).status_code
            == 304
        )
        listed = client.get("/api/catalog/products", params={"category": "electronics"}).json()
        assert [i["id"] for i in listed["items"]] == [pid]

        updated = client.put(
            f"/api/admin/products/{pid}",
            json=_product("OPPO A92 (2020)"),
            headers={**admin, "If-Match": created.headers["etag"]},
        )
        assert updated.status_code == 200, updated.text
        stale = client.put(
            f"/api/admin/products/{pid}",
            json=_product("lost"),
            headers={**admin, "If-Match": created.headers["etag"]},
        )
        assert stale.status_code == 412
        after = client.get(f"/api/catalog/products/{pid}", headers={"If-None-Match": etag})
        assert after.status_code == 200 and after.json()["title"] == "OPPO A92 (2020)"

        if _search_mounted(client):
            _assert_searchable(client, "OPPO A92 (2020)", pid)

        assert client.delete(f"/api/admin/products/{pid}", headers=admin).status_code == 200
        assert client.get(f"/api/catalog/products/{pid}").status_code == 404
        assert client.get("/api/catalog/products").json()["items"] == []


def _search_mounted(client: httpx.Client) -> bool:
    return "/api/search" in client.get("/api/openapi.json").json()["paths"]


def _assert_searchable(client: httpx.Client, title: str, pid: str) -> None:
    deadline = time.monotonic() + 2.0
    while True:
        found = client.get("/api/search", params={"q": title}).json()
        if any(item.get("productId") == pid for item in found.get("items", [])):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{title!r} was not searchable within 2 s: {found}")
        time.sleep(0.1)
