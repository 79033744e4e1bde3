"""The customers area's document types describe exactly what it really stores.

The real flows run through `/api/me/...` (first sign-in, profile, addresses, preferences
and consent, erasure and the next sign-in), then every document of the `customers`
container is validated against its TypedDict with unknown members forbidden.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from cloudcart.composition import Services
from cloudcart.core.outbox import OUTBOX_KIND
from cloudcart.core.ports.documents import Document, Query, every
from cloudcart.core.settings import Settings
from cloudcart.customers.documents import CustomerDocument, CustomersDocument
from cloudcart.customers.models import PreferencesUpdate
from cloudcart.customers.privacy import (
    PrivacyContext,
    erase_customer,
    register_erasure_contributor,
    unregister_contributors,
)
from cloudcart.customers.service import CustomerService
from tests.unit.test_customers_api import address, auth, client, settings

__all__ = ["client", "settings"]  # fixtures

ANY_DOCUMENT: TypeAdapter[Any] = TypeAdapter(CustomersDocument)


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def stored_documents(services: Services) -> list[Document]:
    """Every document of the customers container but the outbox's."""
    container = services.documents.container("customers")
    return [d for d in every(container, Query(limit=500)) if d.get("kind") != OUTBOX_KIND]


class Interrupted(Exception):
    pass


def test_every_stored_customer_document_matches_its_type(
    client: TestClient, settings: Settings
) -> None:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    service = CustomerService(services.documents)

    # Created on first sign-in, without a name; then every profile field set and cleared.
    asha = auth(settings, "cust-asha", "asha@example.com", "Asha")
    ok(client.get("/api/me/profile", headers=asha))
    ok(client.get("/api/me/profile", headers=auth(settings, "cust-bare")))
    ok(
        client.patch(
            "/api/me/profile",
            json={
                "name": "Asha Rao",
                "phone": "+919876543210",
                "locale": "en-IN",
                "timeZone": "Asia/Kolkata",
            },
            headers=asha,
        )
    )
    assert service.mark_verified("cust-asha", "phone", "+919876543210")
    assert service.mark_verified("cust-asha", "email", "asha@example.com")
    ok(client.patch("/api/me/profile", json={"email": "rao@example.com"}, headers=asha))
    ok(client.patch("/api/me/profile", json={"locale": None}, headers=asha))

    # Addresses: a first (default), a second made default, one replaced, the default deleted.
    home = ok(client.post("/api/me/addresses", json=address(), headers=asha), 201)
    work = ok(
        client.post(
            "/api/me/addresses",
            json=address(line1="1 Tech Park", line2=None, region=None, isDefault=True),
            headers=asha,
        ),
        201,
    )
    third = ok(
        client.post(
            "/api/me/addresses",
            json=address(country="de", postalCode=None, phone=None),
            headers=asha,
        ),
        201,
    )
    ok(
        client.put(
            f"/api/me/addresses/{third['id']}",
            json=address(city="Mysuru", isDefault=True),
            headers=asha,
        )
    )
    ok(client.delete(f"/api/me/addresses/{third['id']}", headers=asha), 204)
    assert {home["id"], work["id"]} <= {
        a["id"] for a in ok(client.get("/api/me/addresses", headers=asha))["items"]
    }

    # Preferences: channel opt-ins, personalization off and on, a provider's unsubscribe.
    ok(
        client.put(
            "/api/me/preferences",
            json={
                "channels": {"whatsapp": {"transactional": True}, "email": {"marketing": True}},
                "source": "web",
            },
            headers=asha,
        )
    )
    ok(client.put("/api/me/preferences", json={"personalization": False}, headers=asha))
    ok(
        client.put(
            "/api/me/preferences",
            json={"personalization": True, "channels": {"inApp": {"marketing": True}}},
            headers={**asha, "X-Consent-Source": "app"},
        )
    )
    service.update_preferences(
        "cust-asha",
        PreferencesUpdate.model_validate({"channels": {"email": {"marketing": False}}}),
        "provider",
    )

    # Erasure: one completed (and the next sign-in), one interrupted.
    gone = auth(settings, "cust-gone", "gone@example.com", "Gone")
    ok(client.post("/api/me/addresses", json=address(), headers=gone), 201)
    ok(client.put("/api/me/preferences", json={"personalization": False}, headers=gone))
    ok(client.get("/api/me/export", headers=gone))
    ok(client.delete("/api/me", headers=gone), 204)
    ok(client.get("/api/me/profile", headers=gone))
    ben = auth(settings, "cust-ben", "ben@example.com", "Ben")
    ok(client.post("/api/me/addresses", json=address(), headers=ben), 201)

    def interrupt(ctx: PrivacyContext) -> None:
        raise Interrupted

    register_erasure_contributor("interrupt", interrupt)
    try:
        with pytest.raises(Interrupted):
            erase_customer(
                PrivacyContext("cust-ben", services.documents, services.settings),
                actor_id="cust-ben",
            )
    finally:
        unregister_contributors("interrupt")

    documents = stored_documents(services)
    for document in documents:
        try:
            ANY_DOCUMENT.validate_python(document, strict=True)
        except ValidationError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{document.get('kind')} {document['id']!r} does not match: {exc}")

    # The shapes the flows were meant to produce really were produced.
    kinds = Counter(str(d["kind"]) for d in documents)
    assert set(kinds) == {
        "profile",
        "preferences",
        "consent",
        "address-book",
        "address",
        "erasure",
    }, kinds
    erasures = {d["customerId"]: d for d in documents if d["kind"] == "erasure"}
    assert erasures["cust-gone"]["status"] == "completed" and "completedAt" in erasures["cust-gone"]
    assert erasures["cust-ben"]["status"] == "in-progress"
    sources = {d["source"] for d in documents if d["kind"] == "consent"}
    assert sources == {"web", "app", "api", "provider"}
    preferences = {d["preference"] for d in documents if d["kind"] == "consent"}
    assert preferences == {"channel", "personalization"}


# --- the test can fail --------------------------------------------------------------------


def stored_profile() -> dict[str, Any]:
    return {
        "id": "profile",
        "kind": "profile",
        "customerId": "c1",
        "name": "Asha",
        "email": "asha@example.com",
        "phone": None,
        "locale": None,
        "timeZone": None,
        "emailVerified": False,
        "phoneVerified": False,
        "createdAt": "2030-01-01T00:00:00+00:00",
        "updatedAt": "2030-01-01T00:00:00+00:00",
        "_etag": "abc",
        "_ts": 1,
    }


def test_documents_stored_before_a_member_existed_still_match() -> None:
    legacy_profile = stored_profile()
    del legacy_profile["emailVerified"], legacy_profile["phoneVerified"]
    legacy_preferences = {
        "id": "preferences",
        "kind": "preferences",
        "customerId": "c1",
        "consents": {
            "email": {"transactional": {"granted": True, "at": None, "source": "default"}}
        },
        "updatedAt": "2030-01-01T00:00:00+00:00",
    }
    legacy_consent = {
        "id": "cns_1",
        "kind": "consent",
        "customerId": "c1",
        "channel": "sms",
        "messageKind": "marketing",
        "granted": True,
        "at": "2030-01-01T00:00:00+00:00",
        "source": "web",
    }
    for document in (legacy_profile, legacy_preferences, legacy_consent):
        ANY_DOCUMENT.validate_python(document, strict=True)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"nickname": "A"}, "profile.nickname"),
        ({"emailVerified": "yes"}, "profile.emailVerified"),
        ({"phone": 919876543210}, "profile.phone"),
        ({"kind": "customer"}, ""),
    ],
)
def test_an_unknown_or_wrongly_typed_member_is_rejected(change: dict[str, Any], path: str) -> None:
    document = {**stored_profile(), **change}
    with pytest.raises(ValidationError) as raised:
        ANY_DOCUMENT.validate_python(document, strict=True)
    locations = [".".join(str(p) for p in e["loc"]) for e in raised.value.errors()]
    assert any(loc.startswith(path) for loc in locations), locations
    with pytest.raises(ValidationError):
        TypeAdapter(CustomerDocument).validate_python(document, strict=True)


def test_a_consent_for_an_unknown_channel_is_rejected() -> None:
    preferences = {
        "id": "preferences",
        "kind": "preferences",
        "customerId": "c1",
        "consents": {"fax": {"marketing": {"granted": True, "at": None, "source": "default"}}},
    }
    with pytest.raises(ValidationError):
        ANY_DOCUMENT.validate_python(preferences, strict=True)
