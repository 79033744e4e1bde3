"""The catalog over real HTTP against `cloudcart serve`: an admin creates, updates and
archives a product, and a storefront client sees each step in its reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serving import ServeProcess, admin_token, customer_token, serve

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    with serve(tmp_path) as srv:
        yield srv


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


def test_admin_changes_show_in_storefront_reads(server: ServeProcess) -> None:
    admin = {"Authorization": f"Bearer {admin_token(server.base_url)}"}
    customer = {"Authorization": f"Bearer {customer_token(server.base_url, 'e2e-shopper')}"}
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

        # The change reaches search through outbox -> relay -> topic -> indexer, within 2 s.
        _wait_for_search(client, "OPPO A92 (2020)", pid, present=True)

        assert client.delete(f"/api/admin/products/{pid}", headers=admin).status_code == 200
        assert client.get(f"/api/catalog/products/{pid}").status_code == 404
        assert client.get("/api/catalog/products").json()["items"] == []
        _wait_for_search(client, "OPPO A92 (2020)", pid, present=False)


def _wait_for_search(client: httpx.Client, text: str, pid: str, *, present: bool) -> None:
    started = time.monotonic()
    while True:
        found = client.get("/api/search", params={"q": text}).json()
        hit = any(item.get("productId") == pid for item in found.get("items", []))
        if hit == present:
            return
        if time.monotonic() - started > 2.0:
            state = "searchable" if present else "gone from search"
            pytest.fail(f"{text!r} was not {state} within 2 s: {found}")
        time.sleep(0.05)
