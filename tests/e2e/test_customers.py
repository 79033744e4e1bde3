"""Customers over real HTTP against `cloudcart serve`: profile, addresses and preferences
round-trip, isolation between customers, export, erasure with its published event, and
CSRF on cookie-authenticated writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.identity.caller import Caller
from cloudcart.identity.sessions import session_store
from tests.e2e.serving import ServeProcess, serve

pytestmark = pytest.mark.e2e

RELAY_TIMEOUT_SECONDS = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    with serve(tmp_path) as srv:
        yield srv


def _client(server: ServeProcess, sub: str) -> httpx.Client:
    # Tokens from the server's own dev identity provider, like a script would get them.
    minted = httpx.post(
        f"{server.base_url}/dev/idp/token",
        data={"sub": sub, "email": f"{sub}@example.com", "name": sub.title()},
        timeout=10.0,
    )
    assert minted.status_code == 200, minted.text
    token = minted.json()["access_token"]
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    )


ADDRESS: dict[str, Any] = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}


def test_round_trip_isolation_export_and_erasure(server: ServeProcess) -> None:
    with _client(server, "alice") as alice, _client(server, "bob") as bob:
        profile = alice.get("/api/me/profile")
        assert profile.status_code == 200, profile.text
        assert profile.json()["email"] == "alice@example.com"
        patched = alice.patch(
            "/api/me/profile",
            json={"phone": "+919876543210", "locale": "en-IN"},
            headers={"If-Match": profile.headers["etag"]},
        )
        assert patched.status_code == 200, patched.text
        stale = alice.patch(
            "/api/me/profile", json={"name": "X"}, headers={"If-Match": profile.headers["etag"]}
        )
        assert stale.status_code == 412
        assert alice.get("/api/me/profile").json()["locale"] == "en-IN"

        created = alice.post("/api/me/addresses", json=ADDRESS)
        assert created.status_code == 201, created.text
        address_id = created.json()["id"]
        assert alice.get(f"/api/me/addresses/{address_id}").json()["line1"] == "12 MG Road"

        prefs = alice.put(
            "/api/me/preferences",
            json={"channels": {"whatsapp": {"marketing": True}}, "source": "web"},
        )
        assert prefs.status_code == 200, prefs.text
        assert alice.get("/api/me/preferences").json()["channels"]["whatsapp"]["marketing"]

        # Bob cannot see or touch Alice's address: it does not exist for him.
        assert bob.get(f"/api/me/addresses/{address_id}").status_code == 404
        assert bob.put(f"/api/me/addresses/{address_id}", json=ADDRESS).status_code == 404
        assert bob.delete(f"/api/me/addresses/{address_id}").status_code == 404
        assert bob.get("/api/me/addresses").json()["items"] == []
        assert alice.get(f"/api/me/addresses/{address_id}").status_code == 200

        exported = alice.get("/api/me/export")
        assert exported.status_code == 200, exported.text
        sections = exported.json()["sections"]
        assert sections["profile"]["phone"] == "+919876543210"
        assert [a["id"] for a in sections["addresses"]] == [address_id]
        assert sections["preferences"]["consents"]["whatsapp"]["marketing"]["source"] == "web"
        assert [e["channel"] for e in sections["consentHistory"]] == ["whatsapp"]

        assert alice.delete("/api/me").status_code == 204

        after = alice.get("/api/me/export").json()["sections"]
        assert after["profile"]["phone"] is None and after["profile"]["locale"] is None
        assert after["addresses"] == [] and after["consentHistory"] == []
        assert not after["preferences"]["consents"]["whatsapp"]["marketing"]["granted"]
        assert alice.get(f"/api/me/addresses/{address_id}").status_code == 404

    # The erasure event is in the outbox and the server's relay published it.
    store = SqliteDocumentStore(server.data_dir / "documents.sqlite3")
    try:
        customers = store.container("customers")
        deadline = time.monotonic() + RELAY_TIMEOUT_SECONDS
        while True:
            found = [
                d
                for d in customers.query(
                    Query(filters=(Filter("kind", "eq", "outbox"),)), partition_key="alice"
                ).items
                if d["event"]["type"] == "customer.erased"
            ]
            if found and found[0].get("relayedAt"):
                break
            assert time.monotonic() < deadline, f"customer.erased not relayed: {found}"
            time.sleep(0.2)
        assert found[0]["event"]["data"] == {"customerId": "alice"}
    finally:
        store.close()


def test_cookie_authenticated_patch_needs_csrf(server: ServeProcess) -> None:
    # A web session as the sign-in callback would leave it (that flow has its own e2e test).
    settings = Settings(data_dir=server.data_dir)
    store = SqliteDocumentStore(server.data_dir / "documents.sqlite3")
    try:
        caller = Caller("webby", "webby@example.com", "Webby", (), ("shop.api",), "iss", False)
        session_id, session = session_store(store, settings).create(caller, {})
    finally:
        store.close()
    with httpx.Client(
        base_url=server.base_url, cookies={"cloudcart_session": session_id}, timeout=10.0
    ) as browser:
        assert browser.get("/api/me/profile").status_code == 200
        denied = browser.patch("/api/me/profile", json={"name": "Mallory"})
        assert denied.status_code == 403
        assert denied.json()["type"].endswith("/csrf-failed")
        ok = browser.patch(
            "/api/me/profile", json={"name": "Wendy"}, headers={"X-CSRF-Token": session.csrf_token}
        )
        assert ok.status_code == 200 and ok.json()["name"] == "Wendy"
