"""The OpenAPI document states the rules of the customer's profile, addresses and
preferences and of web sign-in, and the API keeps the problems it always answered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.customers.models import ISO_COUNTRIES, validate_locale, validate_phone
from cloudcart.identity.dev_provider import mint_token


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    token, _ = mint_token(settings, "asha", email="asha@example.com")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def _document(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.app.openapi()  # type: ignore[attr-defined]
    return document


def _properties(client: TestClient, model: str) -> dict[str, Any]:
    properties: dict[str, Any] = _document(client)["components"]["schemas"][model]["properties"]
    return properties


def _accepts(validator: Any, value: str) -> bool:
    try:
        validator(value)
    except ValueError:
        return False
    return True


def test_profile_patterns_match_the_validators(client: TestClient) -> None:
    profile = _properties(client, "ProfilePatch")
    phone = re.compile(profile["phone"]["pattern"])
    for value in ("+919876543210", " +91 (98) 765-43210 ", "+10", "", "+0123", "919876", "+1"):
        assert bool(phone.search(value)) == _accepts(validate_phone, value), value
    locale = re.compile(profile["locale"]["pattern"])
    for value in ("en", "en-IN", "zh-Hant-TW", "es-419", "", "e", "en-", "en-x-private"):
        assert bool(locale.search(value)) == _accepts(validate_locale, value), value
    assert profile["email"]["format"] == "email"
    email = re.compile(profile["email"]["pattern"])
    assert email.search("asha@shop.example") and not email.search("asha@shop.TEST")
    assert not re.search(profile["name"]["pattern"], "  ")
    zones = profile["timeZone"]["enum"]
    assert "Asia/Kolkata" in zones and None in zones and "posixrules" not in zones


def test_refused_profile_values_are_schema_invalid(client: TestClient) -> None:
    r = client.patch(
        "/api/me/profile", json={"email": "", "phone": "", "locale": "", "timeZone": "Mars/Base"}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")
    ok = client.patch(
        "/api/me/profile",
        json={"phone": "+91 98765-43210", "locale": "en-in", "timeZone": "Asia/Kolkata"},
    )
    assert ok.status_code == 200 and ok.json()["phone"] == "+919876543210"


def test_country_pattern_is_the_assigned_codes_in_any_case(client: TestClient) -> None:
    country = re.compile(_properties(client, "AddressInput")["country"]["pattern"])
    assert all(country.search(code) and country.search(code.lower()) for code in ISO_COUNTRIES)
    assert country.search("dE")
    assert not any(country.search(code) for code in ("00", "QQ", "XX", "IND", "I"))


def _address(**overrides: Any) -> dict[str, Any]:
    return {"name": "Asha", "line1": "12 MG Road", "city": "Bengaluru", "country": "in"} | overrides


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
def test_address_booleans_are_json_booleans(client: TestClient, value: object) -> None:
    r = client.post("/api/me/addresses", json=_address(isDefault=value))
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")
    assert client.post("/api/me/addresses", json=_address(isDefault=True)).status_code == 201


@pytest.mark.parametrize(
    "body", [{"personalization": 0}, {"channels": {"email": {"marketing": "yes"}}}]
)
def test_preference_booleans_are_json_booleans(client: TestClient, body: dict[str, Any]) -> None:
    r = client.put("/api/me/preferences", json=body)
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")


def test_consent_source_header_is_declared_and_checked_whenever_sent(
    client: TestClient,
) -> None:
    operation = _document(client)["paths"]["/api/me/preferences"]["put"]
    header = next(p for p in operation["parameters"] if p["name"] == "X-Consent-Source")
    assert header["schema"]["type"] == "string"  # never null: a header is absent instead
    pattern = re.compile(header["schema"]["pattern"])
    assert all(pattern.search(v) for v in ("web", "APP", "", "Support"))
    assert not any(pattern.search(v) for v in ("null", "email", "webs"))
    for value, body in (("null", {}), ("email", {"source": "web"})):
        r = client.put("/api/me/preferences", json=body, headers={"X-Consent-Source": value})
        assert r.status_code == 422, value
        assert r.json()["type"].endswith("/invalid-consent-source")
    for value in ("", " WEB "):
        r = client.put(
            "/api/me/preferences",
            json={"personalization": False},
            headers={"X-Consent-Source": value},
        )
        assert r.status_code == 200, value


def test_sign_in_parameters_are_declared(client: TestClient) -> None:
    paths = _document(client)["paths"]
    login = next(p for p in paths["/auth/login"]["get"]["parameters"] if p["name"] == "returnTo")
    return_to = re.compile(login["schema"]["pattern"])
    assert all(return_to.search(v) for v in ("", "/", "/account?tab=orders"))
    assert not any(return_to.search(v) for v in ("//evil.com", "/\\evil.com", "/a b", "x"))
    assert login["schema"]["maxLength"] == 2048
    callback = {p["name"]: p for p in paths["/auth/callback"]["get"]["parameters"]}
    assert callback["state"]["required"] is True
    assert set(callback) >= {"state", "code", "error"}
    # Declared, not enforced by FastAPI: a missing state keeps its own problem.
    r = client.get("/auth/callback")
    assert r.status_code == 400 and r.json()["type"].endswith("/sign-in-invalid")
    r = client.get("/auth/login", params={"returnTo": "//evil.com"})
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-return-to")
