"""The accounting and CRM connectors against in-memory partners: entries imported once,
contacts built from current data with marketing only where consented, order figures,
erasure, and no contact sent again for an erased customer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.ports.partners import PartnerUnavailable
from cloudcart.core.settings import Settings
from cloudcart.customers.models import PreferencesUpdate
from cloudcart.customers.service import CustomerService
from cloudcart.identity.caller import Caller
from cloudcart.integrations.partners import accounting, crm, links
from cloudcart.ledger import accounts, journal, rules
from tests.fakes.partners import FakeAccountingPartner, FakeCrmPartner


@pytest.fixture
def books() -> FakeAccountingPartner:
    return FakeAccountingPartner()


@pytest.fixture
def contacts() -> FakeCrmPartner:
    return FakeCrmPartner()


@pytest.fixture
def services(
    tmp_path: Path, books: FakeAccountingPartner, contacts: FakeCrmPartner
) -> Iterator[Services]:
    found = Services(
        Settings(data_dir=tmp_path / "data"),
        adapters={"accounting_partner": books, "crm_partner": contacts},
    )
    found.documents.ensure_containers()
    yield found
    found.close()


def _posted(services: Services) -> Event:
    order = {
        "id": "ord_1",
        "lines": [{"sku": "A", "quantity": 1, "lineTotal": 11800, "tax": 1800}],
        "totals": {"subtotal": 11800, "tax": 1800, "shipping": 0, "taxInclusive": True},
    }
    entry, _ = journal.post(
        services.documents,
        journal.SourceEvent("evt_1", "order.paid", "ord_1", datetime(2030, 1, 1, tzinfo=UTC)),
        "capture",
        "INR",
        rules.capture(order, 11800),
        accounts.chart(),
    )
    return Event(type="ledger.posted", subject=entry["id"], data={**entry, "currency": "INR"})


def test_each_entry_is_imported_once_and_books_agree(
    services: Services, books: FakeAccountingPartner
) -> None:
    event = _posted(services)
    books.down = 1
    with pytest.raises(PartnerUnavailable):
        accounting.handle_ledger_event(services, event)
    assert accounting.handle_ledger_event(services, event) == "sent"
    assert accounting.handle_ledger_event(services, event) == "sent"
    assert list(books.entries) == [f"journal:{event.data['id']}"]
    ours = journal.trial_balance(services.documents, "INR")["accounts"]
    theirs = books.trial_balance("INR").accounts
    assert {a["account"]: (a["debit"], a["credit"]) for a in ours} == dict(theirs)


def _customer(services: Services, sub: str = "asha") -> None:
    CustomerService(services.documents).ensure_profile(
        Caller(
            customer_id=sub,
            email=f"{sub}@example.com",
            name="Asha",
            roles=(),
            scopes=(),
            issuer="test",
            is_admin=False,
        )
    )


def _event(type_: str, sub: str = "asha", **data: object) -> Event:
    return Event(type=type_, subject=sub, data={"customerId": sub, **data})


def test_marketing_attributes_follow_consent(services: Services, contacts: FakeCrmPartner) -> None:
    _customer(services)
    assert crm.handle_crm_event(services, _event("customer.created")) == "sent"
    contact = contacts.contacts["asha"]
    assert contact.email == "asha@example.com"
    assert contact.marketing == {"email": False, "sms": False, "whatsapp": False}
    assert "marketingEmail" not in contact.attributes
    CustomerService(services.documents).update_preferences(
        "asha",
        PreferencesUpdate.model_validate(
            {"channels": {"email": {"marketing": True}}, "source": "web"}
        ),
        "web",
    )
    crm.handle_crm_event(services, _event("customer.updated"))
    contact = contacts.contacts["asha"]
    assert contact.marketing["email"] is True
    assert contact.attributes["marketingEmail"] == "asha@example.com"
    assert [r["system"] for r in links.processing_records(services.documents, "asha")] == ["crm"]


def test_erasure_deletes_the_contact_and_nothing_brings_it_back(
    services: Services, contacts: FakeCrmPartner
) -> None:
    _customer(services)
    crm.handle_crm_event(services, _event("customer.created"))
    services.documents.container("customers").create(
        {"id": "erasure", "customerId": "asha", "kind": "erasure", "status": "completed"}
    )
    assert crm.handle_crm_event(services, _event("customer.erased")) == "sent"
    assert "asha" in contacts.deleted and "asha" not in contacts.contacts
    # A late update (delivered after the erasure) sends nothing.
    assert crm.handle_crm_event(services, _event("customer.updated")) == "skipped"
    assert "asha" not in contacts.contacts
    (record,) = links.processing_records(services.documents, "asha")
    assert record["erasedAt"] is not None


def test_order_figures_create_a_missing_contact_first(
    services: Services, contacts: FakeCrmPartner
) -> None:
    _customer(services, "ravi")
    orders = services.documents.container("orders")
    for n, (status, captured, refunded) in enumerate(
        [("delivered", 10000, 0), ("refunded", 5000, 5000), ("pending_payment", 0, 0)]
    ):
        orders.create(
            {
                "id": f"ord_{n}",
                "type": "order",
                "customerId": "ravi",
                "status": status,
                "capturedAmount": captured,
                "refundedAmount": refunded,
                "totals": {"currency": "INR"},
                "createdAt": f"2030-01-0{n + 1}T00:00:00.000000Z",
            }
        )
    assert crm.handle_crm_event(services, _event("order.paid", "ravi", orderId="ord_0")) == "sent"
    stats = contacts.stats["ravi"]
    assert (stats.order_count, stats.lifetime_value, stats.last_order_id) == (2, 10000, "ord_1")
    ignored = _event("order.status_changed", "ravi", to="shipped")
    assert crm.handle_crm_event(services, ignored) == "ignored"
