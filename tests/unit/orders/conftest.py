"""Fixtures: an app with the orders routers on a temp embedded store, a fake gateway, a
seeded product and tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.orders import routes
from tests.fakes.payments import FakeGateway

ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}


@dataclass
class Shop:
    app: FastAPI
    client: TestClient
    services: Services
    gateway: FakeGateway
    settings: Settings

    def headers(self, sub: str, *, admin: bool = False) -> dict[str, str]:
        token, _ = mint_token(self.settings, sub, roles=("Admin",) if admin else ())
        return {"Authorization": f"Bearer {token}"}

    def stock(self, sku: str, available: int, *, price: int = 10000, product: str = "p1") -> None:
        store = self.services.documents
        catalog = store.container("catalog")
        try:
            doc = catalog.read(product, product)
            doc = {k: v for k, v in doc.items() if not k.startswith("_")}
        except Exception:
            doc = {
                "id": product,
                "pk": product,
                "type": "product",
                "title": f"Product {product}",
                "status": "active",
                "variants": [],
            }
        doc["variants"] = [v for v in doc["variants"] if v["sku"] != sku] + [
            {"sku": sku, "price": {"amount": price, "currency": "INR"}}
        ]
        catalog.upsert(doc)
        store.container("inventory").upsert(
            {
                "id": sku,
                "sku": sku,
                "productId": product,
                "available": available,
                "reserved": 0,
                "sold": 0,
                "received": available,
            }
        )

    def inventory(self, sku: str) -> dict[str, int]:
        doc = self.services.documents.container("inventory").read(sku, sku)
        return {k: int(doc.get(k, 0)) for k in ("available", "reserved", "sold", "received")}

    def add_to_cart(self, sub: str, sku: str, quantity: int = 1) -> None:
        r = self.client.post(
            "/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=self.headers(sub)
        )
        assert r.status_code == 200, r.text

    def checkout(
        self, sub: str, key: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        r = self.client.post(
            "/api/checkout",
            json=body or {"shippingAddress": ADDRESS, "shippingMethod": "standard"},
            headers={**self.headers(sub), "Idempotency-Key": key},
        )
        return r.status_code, r.json()

    def import_history_order(self) -> None:
        """Import `hist-1` for `asha` through the admin route: one line priced, one without
        a price (history from another system)."""
        record = {
            "orderId": "hist-1",
            "customerId": "asha",
            "placedAt": "2024-03-01T10:00:00Z",
            "lines": [
                {"sku": "SKU-1", "quantity": 1, "unitPrice": 11800},
                {"sku": "OLD", "quantity": 2},
            ],
        }
        r = self.client.post(
            "/api/admin/import/orders",
            content=(json.dumps(record) + "\n").encode(),
            headers={**self.headers("ops", admin=True), "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    gateway = FakeGateway()
    services = Services(settings, adapters={"payments": gateway})
    app.state.services = services
    for router in (routes.cart_router, routes.router, routes.admin_router):
        app.include_router(router)
    services.documents.ensure_containers()
    with TestClient(app) as client:
        yield Shop(app, client, services, gateway, settings)
    services.close()


@pytest.fixture
def created_shop(tmp_path: Path) -> Iterator[Shop]:
    """The app exactly as `create_app` makes it (every route group once, the import and
    erasure routes included), with the fake gateway."""
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    gateway = FakeGateway()
    services = Services(settings, adapters={"payments": gateway})
    app.state.services = services
    services.documents.ensure_containers()
    with TestClient(app) as client:
        yield Shop(app, client, services, gateway, settings)
    services.close()
