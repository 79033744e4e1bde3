"""Fixtures of the catalog tests: an embedded store, a service, an app with the routers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.routes import admin_router, public_router
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = Services(settings)
    built.documents.ensure_containers()
    yield built
    built.close()


@pytest.fixture
def catalog(services: Services) -> CatalogService:
    service = CatalogService(services.documents)
    service.create_category(CategoryIn(id="electronics", name="Electronics"))
    service.create_category(CategoryIn(id="phones", name="Phones", parent_id="electronics"))
    service.create_category(CategoryIn(id="android", name="Android phones", parent_id="phones"))
    service.create_category(CategoryIn(id="kitchen", name="Kitchen"))
    return service


def product_body(
    title: str = "OPPO A92",
    *,
    sku: str = "OPPO-A92-128-BLK",
    category: str = "phones",
    brand: str = "OPPO",
    amount: int = 2499000,
    status: str = "active",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title,
        "brand": brand,
        "categoryId": category,
        "description": "6.5 inch punch-hole display, 5000 mAh battery",
        "attributes": {"os": "Android", "screenSize": "6.5 in"},
        "variants": [
            {
                "sku": sku,
                "attributes": {"storage": "128 GB", "ram": "8 GB", "colour": "Black"},
                "price": {"amount": amount, "currency": "INR"},
            }
        ],
        "status": status,
    }
    body.update(extra)
    return body


def product_in(**kwargs: Any) -> ProductIn:
    return ProductIn.model_validate(product_body(**kwargs))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(admin_router)
    app.include_router(public_router)
    app.state.services.documents.ensure_containers()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin_headers(settings: Settings) -> dict[str, str]:
    token, _ = mint_token(settings, "admin-1", roles=(settings.identity_admin_role,))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def customer_headers(settings: Settings) -> dict[str, str]:
    token, _ = mint_token(settings, "customer-1")
    return {"Authorization": f"Bearer {token}"}
