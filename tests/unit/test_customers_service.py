"""The customers service and privacy module below HTTP: concurrency, crash recovery,
contributors, and the events they publish against their committed schemas."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from cloudcart.composition import Services
from cloudcart.core.ports.documents import DocumentStore, Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.customers import privacy
from cloudcart.customers.models import AddressInput, PreferencesUpdate, Profile, ProfilePatch
from cloudcart.customers.service import CustomerService, ErasureInProgress
from cloudcart.identity.caller import Caller

EVENTS_DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = Services(Settings(data_dir=tmp_path / "data"))
    built.documents.ensure_containers()
    yield built
    built.close()


def caller(customer_id: str = "c1") -> Caller:
    return Caller(
        customer_id, f"{customer_id}@example.com", "Name", (), ("shop.api",), "iss", False
    )


def ctx(services: Services, customer_id: str = "c1") -> privacy.PrivacyContext:
    return privacy.PrivacyContext(customer_id, services.documents, services.settings)


def outbox(documents: DocumentStore, customer_id: str) -> list[dict[str, Any]]:
    page = documents.container("customers").query(
        Query(filters=(Filter("kind", "eq", "outbox"),)), partition_key=customer_id
    )
    return [d["event"] for d in page.items]


def validator(event_type: str) -> Any:
    envelope = json.loads((EVENTS_DOCS / "event.schema.json").read_text())
    schema = json.loads((EVENTS_DOCS / f"{event_type}.schema.json").read_text())
    registry = jsonschema_rs.Registry([(envelope["$id"], envelope)])
    assert jsonschema_rs.meta.is_valid(schema)
    return jsonschema_rs.validator_for(schema, registry=registry, validate_formats=True)


def test_concurrent_first_calls_create_one_profile(services: Services) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def first_call() -> None:
        try:
            results.append(CustomerService(services.documents).ensure_profile(caller())["_etag"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert [e["type"] for e in outbox(services.documents, "c1")] == ["customer.created"]


def test_concurrent_address_creates_keep_one_default(services: Services) -> None:
    service = CustomerService(services.documents)
    data = AddressInput(name="A", line1="L", city="C", country="DE", is_default=True)

    def add() -> None:
        CustomerService(services.documents).create_address("c1", data)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = service.list_addresses("c1")
    assert len(items) == 4
    assert sum(1 for a in items if a["isDefault"]) == 1
    book = services.documents.container("customers").read("address-book", "c1")
    assert book["count"] == 4 and book["defaultAddressId"] == items[0]["id"]


def test_published_events_match_their_schemas(services: Services) -> None:
    service = CustomerService(services.documents, correlation_id="req-1")
    service.ensure_profile(caller())
    service.update_profile(caller(), ProfilePatch(phone="+4915112345678"), None)
    service.create_address("c1", AddressInput(name="A", line1="L", city="C", country="DE"))
    service.update_preferences(
        "c1", PreferencesUpdate.model_validate({"channels": {"push": {"marketing": True}}}), "app"
    )
    privacy.erase_customer(ctx(services), actor_id="c1")
    events = outbox(services.documents, "c1")
    assert [e["type"] for e in events] == ["customer.erased"]
    # The erasure removed the earlier events (they carry personal data); check their shape
    # on fresh ones.
    service.ensure_profile(caller("c2"))
    service.update_profile(caller("c2"), ProfilePatch(name="New", email="N@Example.COM"), None)
    service.create_address("c2", AddressInput(name="A", line1="L", city="C", country="DE"))
    service.update_preferences(
        "c2", PreferencesUpdate.model_validate({"channels": {"push": {"marketing": True}}}), "app"
    )
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in [*events, *outbox(services.documents, "c2")]:
        by_type.setdefault(event["type"], []).append(event)
    assert set(by_type) == {"customer.created", "customer.updated", "customer.erased"}
    for event_type, found in by_type.items():
        check = validator(event_type)
        for event in found:
            assert check.is_valid(event), (event_type, event)
    erased = by_type["customer.erased"][0]
    assert not validator("customer.erased").is_valid(
        {**erased, "data": {"customerId": "c1", "email": "x"}}
    )
    emails = [e["data"]["changes"].get("email") for e in by_type["customer.updated"]]
    assert "N@example.com" in emails  # the domain is normalised, the local part kept


def test_crash_during_erasure_is_completed_by_the_next_call(services: Services) -> None:
    service = CustomerService(services.documents)
    service.ensure_profile(caller())
    service.create_address("c1", AddressInput(name="A", line1="L", city="C", country="DE"))
    calls: list[str] = []

    def crashing(context: privacy.PrivacyContext) -> None:
        calls.append(context.customer_id)
        if len(calls) == 1:
            raise RuntimeError("power cut")

    privacy.register_erasure_contributor("test-crash", crashing)
    try:
        with pytest.raises(RuntimeError):
            privacy.erase_customer(ctx(services), actor_id="c1")
        # The event is out already; the profile is still there but may not be served.
        assert [e["type"] for e in outbox(services.documents, "c1")].count("customer.erased") == 1
        with pytest.raises(ErasureInProgress):
            service.ensure_profile(caller())
        result = privacy.erase_customer(ctx(services), actor_id="c1")
    finally:
        privacy.unregister_contributors("test-crash")
    assert calls == ["c1", "c1"]
    assert result.event_id is not None
    assert service.list_addresses("c1") == []
    types = [e["type"] for e in outbox(services.documents, "c1")]
    assert types == ["customer.erased"]  # resumed, not started again
    marker = services.documents.container("customers").read("erasure", "c1")
    assert marker["status"] == "completed" and marker["eventId"] == result.event_id


def test_export_contributors_are_pluggable(services: Services) -> None:
    privacy.register_export_contributor("orders", lambda c: [{"orderId": f"o-{c.customer_id}"}])
    try:
        exported = privacy.export_customer(ctx(services), actor_id="c1")
    finally:
        privacy.unregister_contributors("orders")
    assert exported["sections"]["orders"] == [{"orderId": "o-c1"}]
    assert "orders" not in privacy.export_contributors()


def test_verified_flags_and_time_zone(services: Services) -> None:
    service = CustomerService(services.documents)
    created = service.ensure_profile(caller())
    assert (created["emailVerified"], created["phoneVerified"], created["timeZone"]) == (
        False,
        False,
        None,
    )
    service.update_profile(caller(), ProfilePatch(phone="+4915112345678"), None)
    assert service.mark_verified("c1", "phone", "+4915199999999") is False
    assert service.mark_verified("c1", "email", "c1@example.com") is True
    assert service.mark_verified("c1", "phone", "+4915112345678") is True
    assert service.mark_verified("c1", "phone", "+4915112345678") is True  # no second write
    service.update_profile(
        caller(), ProfilePatch(email="new@example.com", time_zone="Asia/Kolkata"), None
    )
    stored = service.get_profile("c1")
    assert stored is not None
    assert (stored["emailVerified"], stored["phoneVerified"]) == (False, True)
    assert stored["timeZone"] == "Asia/Kolkata"
    updates = [e for e in outbox(services.documents, "c1") if e["type"] == "customer.updated"]
    # The outbox is not ordered; the sets of changes are what matter.
    assert sorted(e["data"]["changedFields"] for e in updates) == [
        ["email", "timeZone", "emailVerified"],
        ["emailVerified"],
        ["phone"],
        ["phoneVerified"],
    ]
    [reset] = [e for e in updates if "email" in e["data"]["changedFields"]]
    assert reset["data"]["changes"]["emailVerified"] is False
    check = validator("customer.updated")
    for event in updates:
        assert check.is_valid(event), event

    # A profile stored before the flags existed reads as unverified.
    container = services.documents.container("customers")
    legacy = {k: v for k, v in container.read("profile", "c1").items() if not k.startswith("_")}
    for name in ("emailVerified", "phoneVerified", "timeZone"):
        legacy.pop(name)
    container.upsert(legacy)
    profile = Profile.model_validate(container.read("profile", "c1"))
    assert (profile.email_verified, profile.phone_verified, profile.time_zone) == (
        False,
        False,
        None,
    )


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "asia/kolkata", "localtime", "../etc/passwd", "/etc/UTC", ""]
)
def test_unknown_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        ProfilePatch(time_zone=zone)
