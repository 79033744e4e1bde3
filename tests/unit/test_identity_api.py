"""GET /api/me, GET /api/admin/whoami and the dev identity provider, through HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from cloudcart.api.problems import Problem
from cloudcart.composition import Services
from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity import dev_routes, routes
from tests.fakes.oidc_issuer import (
    FakeOidcIssuer,
    forge_alg_none,
    forge_hs256_with_public_key,
    tamper_payload,
)

PROBLEM = "application/problem+json"


def build_app(settings: Settings) -> FastAPI:
    """A minimal app wired the way the real app factory wires it."""
    app = FastAPI()
    app.state.services = Services(settings)
    app.include_router(routes.router)
    app.include_router(dev_routes.router)

    @app.exception_handler(Problem)
    async def problem_handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return JSONResponse(
            exc.to_dict(), status_code=exc.status, headers=exc.headers, media_type=PROBLEM
        )

    return app


@pytest.fixture(scope="module")
def b2c() -> Iterator[FakeOidcIssuer]:
    with FakeOidcIssuer("b2c") as idp:
        yield idp


@pytest.fixture(scope="module")
def external_id() -> Iterator[FakeOidcIssuer]:
    with FakeOidcIssuer("external_id") as idp:
        yield idp


def azure_client(tmp_path: Path, *idps: FakeOidcIssuer, **overrides: Any) -> TestClient:
    settings = Settings(
        identity_adapter=Adapter.azure,
        identity_issuers=json.dumps([idp.trust_entry() for idp in idps]),
        data_dir=tmp_path,
        **overrides,
    )
    return TestClient(build_app(settings))


def entra_customer(idp: FakeOidcIssuer, user: str) -> str:
    """The customer id of an External ID user: object id and tenant, whatever the app."""
    return f"{idp.object_id(user)}.{idp.tenant_id}"


@pytest.fixture
def client(tmp_path: Path, b2c: FakeOidcIssuer, external_id: FakeOidcIssuer) -> TestClient:
    return azure_client(tmp_path, b2c, external_id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token(response: Any, detail: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["type"] == "https://cloudcart.dev/problems/invalid-token"
    assert body["detail"] == detail
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="cloudcart", error="invalid_token"')
    assert f'error_description="{detail}"' in challenge


# --- valid tokens ---------------------------------------------------------------------------


def test_me_with_valid_external_id_token(client: TestClient, external_id: FakeOidcIssuer) -> None:
    token = external_id.sign(external_id.claims("cust-7", name="Carol", roles=["Editor"]))
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "customerId": entra_customer(external_id, "cust-7"),
        "email": "cust-7@example.com",
        "name": "Carol",
        "roles": ["Editor"],
        "isAdmin": False,
    }


def test_me_with_valid_b2c_token(client: TestClient, b2c: FakeOidcIssuer) -> None:
    token = b2c.sign(b2c.claims("b2c-user", emails=["first@example.com", "second@example.com"]))
    body = client.get("/api/me", headers=bearer(token)).json()
    assert body["customerId"] == b2c.object_id("b2c-user")
    assert body["email"] == "first@example.com"


def test_one_person_is_one_customer_in_every_app(
    client: TestClient, external_id: FakeOidcIssuer
) -> None:
    ids = {
        client.get(
            "/api/me", headers=bearer(external_id.sign(external_id.claims("hana", client=app)))
        ).json()["customerId"]
        for app in ("web", "android", "ios")
    }
    assert ids == {entra_customer(external_id, "hana")}


def test_password_reset_token_cannot_call_the_api(tmp_path: Path) -> None:
    with FakeOidcIssuer("b2c", other_policies=["B2C_1_passwordreset"]) as idp:
        settings = Settings(
            identity_adapter=Adapter.azure,
            identity_issuers=json.dumps([idp.trust_entry(policies=["B2C_1_signupsignin"])]),
            data_dir=tmp_path,
        )
        client = TestClient(build_app(settings))
        assert client.get("/api/me", headers=bearer(idp.sign())).status_code == 200
        reset = idp.sign(idp.claims(policy="B2C_1_passwordreset"))
        assert_invalid_token(
            client.get("/api/me", headers=bearer(reset)),
            "user flow 'B2C_1_passwordreset' is not accepted",
        )


def test_b2c_string_roles_claim_grants_admin(tmp_path: Path, b2c: FakeOidcIssuer) -> None:
    client = azure_client(tmp_path, b2c, identity_roles_claim="extension_Role")
    token = b2c.sign(b2c.claims("boss", extension_Role="Admin,Support"))
    response = client.get("/api/admin/whoami", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["roles"] == ["Admin", "Support"]
    assert response.json()["isAdmin"] is True


# --- rejected tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"exp": int(time.time()) - 3600}, "token expired"),
        ({"nbf": int(time.time()) + 3600}, "token not yet valid"),
        ({"iss": "https://login.example.invalid/tenant/v2.0"}, "untrusted issuer"),
        ({"aud": "api://another-api"}, "audience mismatch"),
        ({"aud": "https://contoso.onmicrosoft.com/cloudcart"}, "audience mismatch"),
        ({"scp": "openid profile"}, "token lacks the required scope 'shop.api'"),
    ],
)
def test_rejected_claims(
    client: TestClient, b2c: FakeOidcIssuer, overrides: dict[str, Any], detail: str
) -> None:
    response = client.get("/api/me", headers=bearer(b2c.sign(b2c.claims(**overrides))))
    assert_invalid_token(response, detail)


def test_alg_none_is_401(client: TestClient, b2c: FakeOidcIssuer) -> None:
    response = client.get("/api/me", headers=bearer(forge_alg_none(b2c.claims(), kid=b2c.kid)))
    assert_invalid_token(response, "unsupported signing algorithm 'none'; only RS256 is accepted")


def test_hs256_with_public_key_as_secret_is_401(client: TestClient, b2c: FakeOidcIssuer) -> None:
    token = forge_hs256_with_public_key(
        b2c.claims(), kid=b2c.kid, public_pem=b2c.public_pem(b2c.kid)
    )
    response = client.get("/api/me", headers=bearer(token))
    assert_invalid_token(response, "unsupported signing algorithm 'HS256'; only RS256 is accepted")


def test_tampered_payload_is_401(client: TestClient, b2c: FakeOidcIssuer) -> None:
    token = tamper_payload(b2c.sign(b2c.claims("alice")), sub="mallory")
    assert_invalid_token(
        client.get("/api/me", headers=bearer(token)), "signature verification failed"
    )


def test_unknown_kid_refetches_jwks_once_then_401(tmp_path: Path) -> None:
    with FakeOidcIssuer("external_id") as idp:
        client = azure_client(tmp_path, idp)
        assert client.get("/api/me", headers=bearer(idp.sign())).status_code == 200
        assert idp.jwks_fetches == 1
        stranger = idp.add_key(publish=False)
        for _ in range(3):
            response = client.get("/api/me", headers=bearer(idp.sign(kid=stranger)))
            assert_invalid_token(response, "unknown signing key (kid)")
        assert idp.jwks_fetches == 2


def test_key_rotation_is_picked_up(tmp_path: Path) -> None:
    with FakeOidcIssuer("b2c") as idp:
        client = azure_client(tmp_path, idp)
        assert client.get("/api/me", headers=bearer(idp.sign())).status_code == 200
        new_kid = idp.add_key()
        response = client.get("/api/me", headers=bearer(idp.sign(kid=new_kid)))
        assert response.status_code == 200
        assert idp.jwks_fetches == 2


def test_missing_authorization_header(client: TestClient) -> None:
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == 'Bearer realm="cloudcart"'
    assert response.json()["detail"] == "a bearer token is required"


@pytest.mark.parametrize(
    "value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token-without-scheme"]
)
def test_non_bearer_authorization_header(client: TestClient, value: str) -> None:
    response = client.get("/api/me", headers={"Authorization": value})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "eyJ9.eyJ9.eyJ9"])
def test_garbage_bearer_token(client: TestClient, garbage: str) -> None:
    assert_invalid_token(client.get("/api/me", headers=bearer(garbage)), "malformed token")


def test_idp_unreachable_is_503(tmp_path: Path) -> None:
    with FakeOidcIssuer("b2c") as idp:
        idp.failing = True
        client = azure_client(tmp_path, idp)
        response = client.get("/api/me", headers=bearer(idp.sign()))
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["retry-after"] == "30"


# --- admin --------------------------------------------------------------------------------


def test_non_admin_on_admin_route_is_403(client: TestClient, external_id: FakeOidcIssuer) -> None:
    token = external_id.sign(external_id.claims("shopper", roles=["Support"]))
    response = client.get("/api/admin/whoami", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "https://cloudcart.dev/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "the admin role is required",
    }


def test_admin_on_admin_route_is_200(client: TestClient, external_id: FakeOidcIssuer) -> None:
    token = external_id.sign(external_id.claims("boss", roles=["Admin"]))
    response = client.get("/api/admin/whoami", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["isAdmin"] is True


def test_admin_route_without_token_is_401_not_403(client: TestClient) -> None:
    assert client.get("/api/admin/whoami").status_code == 401


# --- OpenAPI ------------------------------------------------------------------------------


def test_openapi_documents_bearer_security(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    me = doc["paths"]["/api/me"]["get"]
    assert me["security"] == [{"bearer": []}]
    assert PROBLEM in me["responses"]["401"]["content"]
    assert "403" in doc["paths"]["/api/admin/whoami"]["get"]["responses"]
    assert not any(path.startswith("/dev/") for path in doc["paths"])


# --- embedded dev provider ----------------------------------------------------------------


@pytest.fixture
def dev_client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path, public_base_url="http://testserver")
    return TestClient(build_app(settings))


def test_dev_token_round_trip(dev_client: TestClient) -> None:
    response = dev_client.post(
        "/dev/idp/token",
        data={"sub": "dev.user@shop", "email": "dev@example.com", "roles": "Admin, Support"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    me = dev_client.get("/api/admin/whoami", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "customerId": "dev.user@shop",
        "email": "dev@example.com",
        "name": None,
        "roles": ["Admin", "Support"],
        "isAdmin": True,
    }


def test_dev_token_with_wrong_scope_is_401(dev_client: TestClient) -> None:
    token = dev_client.post("/dev/idp/token", data={"sub": "u1", "scope": "other"}).json()
    response = dev_client.get("/api/me", headers=bearer(token["access_token"]))
    assert_invalid_token(response, "token lacks the required scope 'shop.api'")


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"sub": ""},
        {"sub": "has space"},
        {"sub": "x" * 129},
        {"sub": "u", "roles": "a;b"},
        {"sub": "u", "email": "not-an-email"},
    ],
)
def test_dev_token_rejects_bad_fields(dev_client: TestClient, form: dict[str, str]) -> None:
    response = dev_client.post("/dev/idp/token", data=form)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


def test_dev_token_rejects_huge_forms(dev_client: TestClient) -> None:
    response = dev_client.post("/dev/idp/token", data={"sub": "u1", "name": "x" * 10_000})
    assert response.status_code == 400
    assert response.json()["detail"] == "form body too large"


def test_dev_token_needs_a_form(dev_client: TestClient) -> None:
    response = dev_client.post("/dev/idp/token", json={"sub": "u1"})
    assert response.status_code == 415


def test_dev_openid_configuration_and_jwks(dev_client: TestClient) -> None:
    config = dev_client.get("/dev/idp/.well-known/openid-configuration").json()
    assert config["issuer"] == "http://testserver/dev/idp"
    assert config["jwks_uri"] == "http://testserver/dev/idp/jwks"
    assert config["token_endpoint"] == "http://testserver/dev/idp/token"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = dev_client.get("/dev/idp/jwks").json()["keys"]
    assert len(keys) == 1 and keys[0]["alg"] == "RS256" and "d" not in keys[0]


def test_dev_provider_is_dark_in_azure_mode(client: TestClient) -> None:
    assert client.post("/dev/idp/token", data={"sub": "x"}).status_code == 404
    assert client.get("/dev/idp/jwks").status_code == 404
