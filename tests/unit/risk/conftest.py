"""Fixtures: the orders app with a fulfilment partner, a fake gateway and settings chosen
per test (fraud rules on, `X-Client-IP` trusted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.orders import routes
from tests.fakes.partners import FakeFulfilmentPartner
from tests.fakes.payments import FakeGateway
from tests.unit.orders.conftest import ADDRESS, Shop


class RiskShop(Shop):
    """The orders test shop plus what the fraud tests need: an IP and an email per call."""

    partner: FakeFulfilmentPartner

    def token(self, sub: str, *, email: str | None = None, admin: bool = False) -> str:
        token, _ = mint_token(self.settings, sub, email=email, roles=("Admin",) if admin else ())
        return token

    def buy(
        self,
        sub: str,
        key: str,
        *,
        sku: str = "SKU-1",
        qty: int = 1,
        ip: str | None = "203.0.113.7",
        email: str | None = None,
        address: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Add to the cart and check out, from `ip` (the trusted header) as `email`."""
        headers = {"Authorization": f"Bearer {self.token(sub, email=email)}"}
        r = self.client.post("/api/cart/items", json={"sku": sku, "quantity": qty}, headers=headers)
        assert r.status_code == 200, r.text
        if ip is not None:
            headers["X-Client-IP"] = ip
        r = self.client.post(
            "/api/checkout",
            json={"shippingAddress": address or ADDRESS, "shippingMethod": "standard"},
            headers={**headers, "Idempotency-Key": key},
        )
        return r.status_code, r.json()

    def admin_view(self, order_id: str) -> dict[str, Any]:
        r = self.client.get(
            f"/api/admin/orders/{order_id}", headers=self.headers("root", admin=True)
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def make_shop(tmp_path: Path) -> Iterator[Callable[..., RiskShop]]:
    made: list[tuple[Services, TestClient]] = []

    def make(**overrides: Any) -> RiskShop:
        settings = Settings(
            data_dir=tmp_path / f"data{len(made)}",
            fulfilment_partner_url="http://partner",
            client_ip_header="X-Client-IP",
            **overrides,
        )
        app = create_app(settings)
        gateway = FakeGateway()
        partner = FakeFulfilmentPartner()
        services = Services(settings, adapters={"payments": gateway, "fulfilment_partner": partner})
        app.state.services = services
        for router in (routes.cart_router, routes.router, routes.admin_router):
            app.include_router(router)
        services.documents.ensure_containers()
        client = TestClient(app)
        client.__enter__()
        made.append((services, client))
        shop = RiskShop(app, client, services, gateway, settings)
        shop.partner = partner
        shop.stock("SKU-1", 1000, price=11800)
        return shop

    yield make
    for services, client in made:
        client.__exit__(None, None, None)
        services.close()
