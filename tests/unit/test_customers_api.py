"""`/api/me/...` through HTTP: profile, addresses, preferences, export and erasure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.identity.caller import Caller
from cloudcart.identity.dev_provider import mint_token
from cloudcart.identity.sessions import session_store

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    with TestClient(app) as test_client:
        yield test_client


def auth(
    settings: Settings, sub: str, email: str | None = None, name: str | None = None
) -> dict[str, str]:
    token, _ = mint_token(settings, sub, email=email or f"{sub}@example.com", name=name)
    return {"Authorization": f"Bearer {token}"}


def address(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Asha Rao",
        "line1": "12 MG Road",
        "city": "Bengaluru",
        "region": "KA",
        "postalCode": "560001",
        "country": "IN",
        "phone": "+919876543210",
    }
    body.update(overrides)
    return body


def outbox_types(client: TestClient, customer_id: str) -> list[str]:
    container = client.app.state.services.documents.container("customers")  # type: ignore[attr-defined]
    page = container.query(
        Query(filters=(Filter("kind", "eq", "outbox"),)), partition_key=customer_id
    )
    return sorted(d["event"]["type"] for d in page.items)


def test_first_call_creates_profile_from_claims_once(
    client: TestClient, settings: Settings
) -> None:
    headers = auth(settings, "cust-1", "ada@example.com", "Ada")
    first = client.get("/api/me/profile", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["email"] == "ada@example.com"
    assert first.json()["name"] == "Ada"
    assert first.headers["etag"].startswith('"')
    again = client.get("/api/me/profile", headers=headers)
    assert again.json()["createdAt"] == first.json()["createdAt"]
    assert outbox_types(client, "cust-1") == ["customer.created"]
    # The identity route keeps its contract.
    me = client.get("/api/me", headers=headers).json()
    assert set(me) == {"customerId", "email", "name", "roles", "isAdmin"}


def test_patch_profile_validates_and_honours_if_match(
    client: TestClient, settings: Settings
) -> None:
    headers = auth(settings, "cust-2")
    etag = client.get("/api/me/profile", headers=headers).headers["etag"]
    ok = client.patch(
        "/api/me/profile",
        headers={**headers, "If-Match": etag},
        json={"phone": "+44 20 7946 0958", "locale": "EN-in", "name": "Bea"},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["phone"] == "+442079460958"
    assert ok.json()["locale"] == "en-IN"
    assert ok.headers["etag"] != etag
    stale = client.patch(
        "/api/me/profile", headers={**headers, "If-Match": etag}, json={"name": "X"}
    )
    assert stale.status_code == 412
    assert client.get("/api/me/profile", headers=headers).json()["name"] == "Bea"
    for bad in ({"phone": "0044 20"}, {"email": "not-an-email"}, {"locale": "english"}, {"age": 3}):
        response = client.patch("/api/me/profile", headers=headers, json=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
    assert outbox_types(client, "cust-2") == ["customer.created", "customer.updated"]


def test_profile_time_zone_and_read_only_verified_flags(
    client: TestClient, settings: Settings
) -> None:
    headers = auth(settings, "cust-tz")
    first = client.get("/api/me/profile", headers=headers).json()
    assert (first["emailVerified"], first["phoneVerified"], first["timeZone"]) == (
        False,
        False,
        None,
    )
    ok = client.patch("/api/me/profile", headers=headers, json={"timeZone": "Asia/Kolkata"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["timeZone"] == "Asia/Kolkata"
    for bad in (
        {"timeZone": "Mars/Olympus"},
        {"timeZone": "IST"},
        {"emailVerified": True},
        {"phoneVerified": True},
    ):
        response = client.patch("/api/me/profile", headers=headers, json=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
    cleared = client.patch("/api/me/profile", headers=headers, json={"timeZone": None})
    assert cleared.json()["timeZone"] is None
    assert cleared.json()["emailVerified"] is False


def test_addresses_default_rules_and_isolation(client: TestClient, settings: Settings) -> None:
    alice, bob = auth(settings, "alice"), auth(settings, "bob")
    first = client.post("/api/me/addresses", headers=alice, json=address())
    assert first.status_code == 201, first.text
    assert first.json()["isDefault"] is True  # the first address is the default
    assert first.headers["location"] == f"/api/me/addresses/{first.json()['id']}"
    second = client.post(
        "/api/me/addresses", headers=alice, json=address(name="Two", isDefault=True)
    )
    assert second.json()["isDefault"] is True
    listed = client.get("/api/me/addresses", headers=alice).json()["items"]
    assert [a["id"] for a in listed] == [second.json()["id"], first.json()["id"]]
    assert [a["isDefault"] for a in listed] == [True, False]

    # Another customer's id is unknown to bob: 404 on every verb, and nothing changes.
    aid = first.json()["id"]
    assert client.get(f"/api/me/addresses/{aid}", headers=bob).status_code == 404
    assert client.put(f"/api/me/addresses/{aid}", headers=bob, json=address()).status_code == 404
    assert client.delete(f"/api/me/addresses/{aid}", headers=bob).status_code == 404
    assert client.get(f"/api/me/addresses/{aid}", headers=alice).json()["name"] == "Asha Rao"
    # A non-address document id of the caller's own partition is not an address either.
    assert client.get("/api/me/addresses/profile", headers=alice).status_code == 404

    # Unsetting the default directly is refused; deleting it promotes the other one.
    sid = second.json()["id"]
    refused = client.put(f"/api/me/addresses/{sid}", headers=alice, json=address(isDefault=False))
    assert refused.status_code == 422
    moved = client.put(
        f"/api/me/addresses/{aid}", headers=alice, json=address(city="Pune", isDefault=True)
    )
    assert moved.status_code == 200 and moved.json()["city"] == "Pune"
    assert client.get(f"/api/me/addresses/{sid}", headers=alice).json()["isDefault"] is False
    assert client.delete(f"/api/me/addresses/{aid}", headers=alice).status_code == 204
    remaining = client.get("/api/me/addresses", headers=alice).json()["items"]
    assert [(a["id"], a["isDefault"]) for a in remaining] == [(sid, True)]
    assert client.delete(f"/api/me/addresses/{sid}", headers=alice).status_code == 204
    assert client.get("/api/me/addresses", headers=alice).json()["items"] == []


def test_address_validation_and_limit(client: TestClient, settings: Settings) -> None:
    headers = auth(settings, "many")
    for bad in (
        address(country="XX"),
        address(phone="12345"),
        address(line1=" "),
        address(zip="1"),
    ):
        response = client.post("/api/me/addresses", headers=headers, json=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
    for i in range(20):
        assert (
            client.post(
                "/api/me/addresses", headers=headers, json=address(name=f"n{i}")
            ).status_code
            == 201
        )
    over = client.post("/api/me/addresses", headers=headers, json=address())
    assert over.status_code == 409
    assert over.json()["type"].endswith("/address-limit")
    items = client.get("/api/me/addresses", headers=headers).json()["items"]
    assert len(items) == 20 and sum(a["isDefault"] for a in items) == 1


def test_preferences_defaults_opt_in_and_history(client: TestClient, settings: Settings) -> None:
    headers = auth(settings, "prefs")
    prefs = client.get("/api/me/preferences", headers=headers).json()
    assert prefs["channels"]["email"] == {"transactional": True, "marketing": False}
    assert prefs["channels"]["inApp"] == {"transactional": True, "marketing": False}
    assert prefs["channels"]["whatsapp"] == {"transactional": False, "marketing": False}
    assert all(not c["marketing"] for c in prefs["channels"].values())
    assert prefs["consents"]["email"]["marketing"]["source"] == "default"
    assert prefs["history"] == []

    changed = client.put(
        "/api/me/preferences",
        headers={**headers, "X-Consent-Source": "app"},
        json={"channels": {"whatsapp": {"transactional": True}, "email": {"marketing": True}}},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["channels"]["whatsapp"]["transactional"] is True
    assert body["channels"]["email"] == {"transactional": True, "marketing": True}
    assert body["consents"]["email"]["marketing"]["source"] == "app"
    assert body["consents"]["email"]["marketing"]["at"] is not None
    assert {(e["channel"], e["kind"], e["granted"], e["source"]) for e in body["history"]} == {
        ("whatsapp", "transactional", True, "app"),
        ("email", "marketing", True, "app"),
    }
    # The body's source wins over the header; a repeat of the same value records nothing.
    again = client.put(
        "/api/me/preferences",
        headers={**headers, "X-Consent-Source": "app"},
        json={
            "channels": {"email": {"marketing": False, "transactional": True}},
            "source": "support",
        },
    )
    history = again.json()["history"]
    assert len(history) == 3 and history[-1]["source"] == "support"
    bad = client.put(
        "/api/me/preferences", headers={**headers, "X-Consent-Source": "fax"}, json={"channels": {}}
    )
    assert bad.status_code == 422
    unknown = client.put(
        "/api/me/preferences", headers=headers, json={"channels": {"pigeon": {"marketing": True}}}
    )
    assert unknown.status_code == 422


def test_export_and_erase(client: TestClient, settings: Settings) -> None:
    headers = auth(settings, "gone", "gone@example.com", "Gone")
    client.patch("/api/me/profile", headers=headers, json={"phone": "+15551234567"})
    client.post("/api/me/addresses", headers=headers, json=address())
    client.put(
        "/api/me/preferences", headers=headers, json={"channels": {"sms": {"marketing": True}}}
    )
    services = client.app.state.services  # type: ignore[attr-defined]
    services.documents.container("events").create(
        {"id": "view-1", "customerId": "gone", "kind": "view", "productId": "p1"}
    )
    services.documents.container("customers").create(
        {"id": "ntf-1", "customerId": "gone", "kind": "notification", "text": "Shipped"}
    )
    caller = Caller("gone", "gone@example.com", "Gone", (), ("shop.api",), "iss", False)
    session_id, _ = session_store(services.documents, settings).create(
        caller, {"access_token": "secret-at"}
    )

    exported = client.get("/api/me/export", headers=headers)
    assert exported.status_code == 200, exported.text
    sections = exported.json()["sections"]
    assert sections["profile"]["phone"] == "+15551234567"
    assert sections["addresses"][0]["line1"] == "12 MG Road"
    assert sections["preferences"]["consents"]["sms"]["marketing"]["granted"] is True
    assert sections["consentHistory"][0]["channel"] == "sms"
    assert [d["id"] for d in sections["events"]] == ["view-1"]
    assert "ntf-1" in {d["id"] for d in sections["customerDocuments"]}
    assert len(sections["sessions"]) == 1
    assert "secret-at" not in exported.text and "csrf" not in exported.text.lower()

    assert client.delete("/api/me", headers=headers).status_code == 204
    assert session_store(services.documents, settings).get(session_id) is None
    customers = services.documents.container("customers")
    left = customers.query(Query(), partition_key="gone").items
    assert {d["kind"] for d in left} == {"erasure", "outbox"}
    erased = [d["event"] for d in left if d["kind"] == "outbox"]
    assert [e["type"] for e in erased] == ["customer.erased"]
    assert erased[0]["data"] == {"customerId": "gone"}
    # Only the history's erasure stamp stays (no data: a late message then records nothing).
    left_events = services.documents.container("events").query(Query(), partition_key="gone").items
    assert [d["kind"] for d in left_events] == ["history-state"]
    audit = services.documents.container("audit").query(Query(), partition_key="gone").items
    assert sorted(a["action"] for a in audit) == ["customer.erase", "customer.export"]

    # A retry is harmless and publishes nothing new.
    assert client.delete("/api/me", headers=headers).status_code == 204
    assert (
        len(
            customers.query(
                Query(filters=(Filter("kind", "eq", "outbox"),)), partition_key="gone"
            ).items
        )
        == 1
    )

    # The next call starts an empty profile: none of the old data comes back.
    after = client.get("/api/me/export", headers=headers).json()["sections"]
    assert after["profile"]["phone"] is None
    assert after["addresses"] == [] and after["consentHistory"] == [] and after["events"] == []
    assert after["preferences"]["consents"]["sms"]["marketing"]["granted"] is False


def test_cookie_auth_patch_needs_csrf(client: TestClient, settings: Settings) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    caller = Caller("web-1", "w@example.com", "W", (), ("shop.api",), "iss", False)
    session_id, session = session_store(services.documents, settings).create(caller, {})
    client.cookies.set("cloudcart_session", session_id)
    try:
        assert client.get("/api/me/profile").status_code == 200
        denied = client.patch("/api/me/profile", json={"name": "Mallory"})
        assert denied.status_code == 403
        assert denied.json()["type"].endswith("/csrf-failed")
        allowed = client.patch(
            "/api/me/profile", json={"name": "Wendy"}, headers={"X-CSRF-Token": session.csrf_token}
        )
        assert allowed.status_code == 200 and allowed.json()["name"] == "Wendy"
    finally:
        client.cookies.clear()


def test_routes_need_a_token(client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/me/profile"),
        ("DELETE", "/api/me"),
        ("GET", "/api/me/export"),
    ]:
        assert client.request(method, path).status_code == 401
