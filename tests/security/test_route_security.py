"""Every route in the OpenAPI document is protected unless it is listed here as public.

New routes join automatically: the parametrisation reads the app's own OpenAPI document, so a
route that forgets its `CurrentCustomer`/`Admin` dependency fails here, not in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token

PUBLIC_OPERATIONS = {
    ("GET", "/api/cart"): "anonymous carts by X-Cart-Id (a token, when sent, is validated)",
    ("POST", "/api/cart/items"): "anonymous carts: the first add creates the cart id",
    ("PATCH", "/api/cart/items/{sku}"): "anonymous carts by X-Cart-Id",
    ("DELETE", "/api/cart/items/{sku}"): "anonymous carts by X-Cart-Id",
    ("GET", "/api/search"): "anonymous storefront product search",
    ("GET", "/api/search/suggest"): "anonymous storefront typeahead",
    ("GET", "/api/health"): "liveness probe",
    ("POST", "/api/webhooks/payments/{provider}"): "authenticated by the gateway's signature",
    ("POST", "/api/webhooks/sendgrid"): "authenticated by SendGrid's ECDSA signature",
    ("POST", "/api/webhooks/twilio/status"): "authenticated by X-Twilio-Signature",
    ("POST", "/api/webhooks/twilio/inbound"): "authenticated by X-Twilio-Signature",
    ("GET", "/api/ready"): "readiness probe (names adapters, never data)",
    ("GET", "/auth/login"): "starts the browser sign-in (redirects to the identity provider)",
    ("GET", "/auth/callback"): "the identity provider's redirect back (state + PKCE checked)",
    ("GET", "/api/catalog/categories"): "storefront browsing: the public category tree",
    ("GET", "/api/catalog/products"): "storefront browsing: active products only",
    ("GET", "/api/catalog/products/{productId}"): "storefront product page: active products only",
    ("GET", "/api/catalog/products/{productId}/also-bought"): "storefront product page: "
    "co-purchase recommendations, nobody's personal data",
    ("POST", "/api/events"): "anonymous shoppers report events with X-Visitor-Id (a token, "
    "when sent, is validated)",
}
"""Operations anyone may call, each with the reason it is public."""

ADMIN_PREFIX = "/api/admin/"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _operations() -> list[tuple[str, str]]:
    app = create_app(Settings(data_dir=Path("/nonexistent-never-written")))
    spec = app.openapi()
    found = []
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                found.append((method.upper(), path))
    return sorted(found)


OPERATIONS = _operations()
PROTECTED = [op for op in OPERATIONS if op not in PUBLIC_OPERATIONS]
ADMIN = [op for op in OPERATIONS if op[1].startswith(ADMIN_PREFIX)]


def _concrete(path: str) -> str:
    # Any value will do for path parameters: auth must be decided before the id is looked at.
    return re.sub(r"\{[^}]+\}", "sample-id", path)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_public_list_names_only_existing_operations() -> None:
    assert set(PUBLIC_OPERATIONS) <= set(OPERATIONS), "a public operation no longer exists"
    assert PROTECTED, "no protected operation found: the OpenAPI document looks empty"


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_protected_operation_needs_a_token(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, _concrete(path), json={})
    assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
    assert response.headers["content-type"].startswith("application/problem+json")
    if path.startswith("/api/"):
        # Cookie-only /auth routes have no bearer challenge to offer.
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_protected_operation_rejects_a_token_from_another_key(
    client: TestClient, tmp_path: Path, method: str, path: str
) -> None:
    # Same issuer, audience and claims, but signed by a key this app never published.
    foreign, _ = mint_token(Settings(data_dir=tmp_path), "intruder", roles=("Admin",))
    response = client.request(
        method, _concrete(path), json={}, headers={"Authorization": f"Bearer {foreign}"}
    )
    assert response.status_code == 401, f"{method} {path} answered {response.status_code}"


@pytest.mark.parametrize(("method", "path"), ADMIN, ids=[f"{m} {p}" for m, p in ADMIN])
def test_admin_operation_refuses_a_customer(
    client: TestClient, settings: Settings, method: str, path: str
) -> None:
    token, _ = mint_token(settings, "plain-customer", email="c@example.com")
    response = client.request(
        method, _concrete(path), json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403, f"{method} {path} answered {response.status_code}"
    assert response.json()["status"] == 403
