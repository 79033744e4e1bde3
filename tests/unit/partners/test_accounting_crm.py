"""The accounting and CRM adapters against their real simulators (loopback, SQLite state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloudcart.core.ports.partners import (
    Contact,
    JournalEntry,
    JournalLine,
    OrderStats,
    PartnerRejected,
    PartnerTrialBalance,
    PartnerUnavailable,
)
from cloudcart.core.settings import Settings
from cloudcart.integrations.partners.http import (
    ApiKeyAuth,
    HttpAccountingPartner,
    HttpCrmPartner,
    PartnerAuth,
    PartnerHttpClient,
    accounting_partner_from_settings,
    crm_partner_from_settings,
)
from cloudcart.integrations.partners.simulators import (
    AccountingSimulator,
    CrmSimulator,
    PartnerSimulator,
)
from tests.fakes.partner_api import Scripted, running_partner_api


def _client(
    base_url: str,
    *,
    auth: PartnerAuth | None = None,
    max_attempts: int = 3,
    sleep: Callable[[float], None] | None = None,
) -> PartnerHttpClient:
    return PartnerHttpClient(
        base_url,
        auth=auth,
        timeout=5.0,
        max_attempts=max_attempts,
        max_retry_wait=0.01,
        sleep=sleep or (lambda seconds: None),
        name="test partner",
    )


@pytest.fixture
def started() -> Iterator[list[PartnerSimulator]]:
    simulators: list[PartnerSimulator] = []
    yield simulators
    for simulator in simulators:
        simulator.stop()


@pytest.fixture
def accounting(
    tmp_path: Path, started: list[PartnerSimulator]
) -> Callable[..., AccountingSimulator]:
    def make(**options: Any) -> AccountingSimulator:
        simulator = AccountingSimulator(tmp_path, **options).start()
        started.append(simulator)
        return simulator

    return make


@pytest.fixture
def crm(tmp_path: Path, started: list[PartnerSimulator]) -> Callable[..., CrmSimulator]:
    def make(**options: Any) -> CrmSimulator:
        simulator = CrmSimulator(tmp_path, **options).start()
        started.append(simulator)
        return simulator

    return make


# --- accounting ----------------------------------------------------------------------------


def _entry(
    entry_id: str = "je-1",
    *lines: tuple[str, int, int],
    currency: str = "INR",
    source_event: str = "order.paid",
) -> JournalEntry:
    chosen = lines or (("cash", 1180, 0), ("sales", 0, 1000), ("tax payable", 0, 180))
    return JournalEntry(
        entry_id=entry_id,
        at="2030-01-01T12:00:00Z",
        currency=currency,
        source_event=source_event,
        lines=tuple(JournalLine(account, debit, credit) for account, debit, credit in chosen),
    )


def test_an_entry_is_imported_once_per_key(accounting) -> None:
    simulator = accounting()
    partner = HttpAccountingPartner(_client(simulator.base_url))

    first = partner.post_entry(_entry(), idempotency_key="ord-1:paid")
    again = partner.post_entry(_entry(), idempotency_key="ord-1:paid")

    assert first == again
    assert first.startswith("jrn-")
    [entry] = simulator.entries()
    assert entry["journalId"] == first
    assert entry["idempotencyKey"] == "ord-1:paid"
    assert entry["lines"] == [
        {"account": "cash", "debit": 1180, "credit": 0},
        {"account": "sales", "debit": 0, "credit": 1000},
        {"account": "tax payable", "debit": 0, "credit": 180},
    ]
    with pytest.raises(PartnerRejected) as caught:
        partner.post_entry(_entry("je-2"), idempotency_key="ord-1:paid")
    assert caught.value.status == 422
    assert len(simulator.entries()) == 1


def test_a_replayed_key_answers_200_with_the_first_body(accounting) -> None:
    simulator = accounting()
    body = {
        "entryId": "je-1",
        "at": "2030-01-01T12:00:00Z",
        "currency": "INR",
        "sourceEvent": "order.paid",
        "lines": [
            {"account": "cash", "debit": 500, "credit": 0},
            {"account": "sales", "debit": 0, "credit": 500},
        ],
    }
    with httpx.Client(base_url=simulator.base_url) as http:
        created = http.post("/v1/journal-entries", json=body, headers={"Idempotency-Key": "k"})
        replayed = http.post("/v1/journal-entries", json=body, headers={"Idempotency-Key": "k"})
        keyless = http.post("/v1/journal-entries", json=body)

    assert created.status_code == 201
    assert created.json() == {
        "entryId": "je-1",
        "journalId": created.json()["journalId"],
        "status": "posted",
    }
    assert replayed.status_code == 200
    assert replayed.json() == created.json()
    assert keyless.status_code == 400


def test_the_trial_balance_sums_the_books_per_currency(accounting) -> None:
    simulator = accounting()
    partner = HttpAccountingPartner(_client(simulator.base_url))
    partner.post_entry(_entry("je-1"), idempotency_key="k1")
    partner.post_entry(
        _entry("je-2", ("cash", 590, 0), ("sales", 0, 500), ("tax payable", 0, 90)),
        idempotency_key="k2",
    )
    partner.post_entry(
        _entry("je-3", ("sales", 1000, 0), ("cash", 0, 1000), source_event="refund.issued"),
        idempotency_key="k3",
    )
    partner.post_entry(
        _entry("je-4", ("cash", 70, 0), ("sales", 0, 70), currency="EUR"), idempotency_key="k4"
    )

    balance = partner.trial_balance("INR")

    assert balance == PartnerTrialBalance(
        currency="INR",
        accounts={"cash": (1770, 1000), "sales": (1000, 1500), "tax payable": (0, 270)},
    )
    assert simulator.trial_balance("INR") == {
        "currency": "INR",
        "accounts": [
            {"account": "cash", "debit": 1770, "credit": 1000, "balance": 770},
            {"account": "sales", "debit": 1000, "credit": 1500, "balance": -500},
            {"account": "tax payable", "debit": 0, "credit": 270, "balance": -270},
        ],
        "totalDebit": 2770,
        "totalCredit": 2770,
    }
    with httpx.Client(base_url=simulator.base_url) as http:
        answer = http.get("/v1/trial-balance", params={"currency": "INR"})
        missing = http.get("/v1/trial-balance")
        lower = http.get("/v1/trial-balance", params={"currency": "inr"})
    assert answer.status_code == 200
    assert answer.json() == simulator.trial_balance("INR")
    assert (missing.status_code, lower.status_code) == (422, 422)
    assert partner.trial_balance("EUR").accounts == {"cash": (70, 0), "sales": (0, 70)}
    assert partner.trial_balance("USD") == PartnerTrialBalance(currency="USD", accounts={})
    assert simulator.trial_balance("USD") == {
        "currency": "USD",
        "accounts": [],
        "totalDebit": 0,
        "totalCredit": 0,
    }
    with pytest.raises(ValueError, match="several currencies"):
        simulator.trial_balance()


def test_the_python_trial_balance_defaults_to_the_only_currency(accounting) -> None:
    simulator = accounting()
    empty = simulator.trial_balance()
    HttpAccountingPartner(_client(simulator.base_url)).post_entry(_entry(), idempotency_key="k")

    assert empty == {"currency": None, "accounts": [], "totalDebit": 0, "totalCredit": 0}
    assert simulator.trial_balance() == simulator.trial_balance("INR")
    assert simulator.trial_balance()["totalDebit"] == 1180


@pytest.mark.parametrize(
    ("lines", "currency", "detail"),
    [
        ((("cash", 100, 0), ("sales", 0, 90)), "INR", "unbalanced"),
        ((("cash", 100, 100), ("sales", 0, 0)), "INR", "exactly one of debit and credit"),
        ((("cash", 0, 0), ("sales", 0, 0)), "INR", "exactly one of debit and credit"),
        ((("cash", -100, 0), ("sales", 0, -100)), "INR", "greater than or equal to 0"),
        ((("cash", 100, 0), ("sales", 0, 100)), "inr", "currency"),
        ((("cash", 100, 0), ("sales", 0, 100)), "EURO", "currency"),
        ((("cash", 100, 0),), "INR", "lines"),
    ],
)
def test_an_invalid_entry_is_rejected_and_nothing_is_posted(
    accounting, lines: tuple[tuple[str, int, int], ...], currency: str, detail: str
) -> None:
    simulator = accounting()
    partner = HttpAccountingPartner(_client(simulator.base_url))

    with pytest.raises(PartnerRejected) as caught:
        partner.post_entry(_entry("je-1", *lines, currency=currency), idempotency_key="k")

    assert caught.value.status == 422
    assert detail in caught.value.detail
    assert simulator.entries() == []
    # A refusal is not stored under the key: the corrected entry can use it.
    assert partner.post_entry(_entry("je-1"), idempotency_key="k")
    assert len(simulator.entries()) == 1


def test_an_outage_runs_the_attempts_out_with_short_waits(accounting) -> None:
    simulator = accounting()
    waits: list[float] = []
    partner = HttpAccountingPartner(_client(simulator.base_url, sleep=waits.append))
    simulator.outage(60)

    with pytest.raises(PartnerUnavailable, match=r"503.*attempt 3 of 3"):
        partner.post_entry(_entry(), idempotency_key="k")
    with pytest.raises(PartnerUnavailable):
        partner.trial_balance("INR")

    assert waits == [0.01] * 4  # Retry-After: 1, capped by the longest wait
    assert simulator.entries() == []
    simulator.outage(0)
    assert partner.post_entry(_entry(), idempotency_key="k")
    assert len(simulator.entries()) == 1


def test_a_restart_keeps_the_books_and_the_keys(tmp_path: Path) -> None:
    first = AccountingSimulator(tmp_path).start()
    try:
        journal_id = HttpAccountingPartner(_client(first.base_url)).post_entry(
            _entry(), idempotency_key="k"
        )
    finally:
        first.stop()

    second = AccountingSimulator(tmp_path).start()
    try:
        partner = HttpAccountingPartner(_client(second.base_url))
        assert partner.post_entry(_entry(), idempotency_key="k") == journal_id
        assert len(second.entries()) == 1
        assert partner.trial_balance("INR").accounts["cash"] == (1180, 0)
    finally:
        second.stop()
    assert (tmp_path / "partners" / "accounting.sqlite3").is_file()


# --- CRM -----------------------------------------------------------------------------------


def _contact(customer_id: str = "cus-1", name: str = "Ada Lovelace", **options: Any) -> Contact:
    options.setdefault("marketing", {"email": True, "sms": False, "whatsapp": False})
    return Contact(
        customer_id=customer_id,
        email="ada@example.com",
        name=name,
        phone="+91 20 5555 0100",
        attributes=options.pop("attributes", {"tier": "gold"}),
        **options,
    )


STATS = OrderStats(
    order_count=2,
    lifetime_value=2360,
    currency="INR",
    last_order_id="ord-2",
    last_order_at="2030-01-02T12:00:00Z",
    last_order_status="paid",
)


def test_a_contact_is_upserted_given_order_stats_and_deleted(crm) -> None:
    simulator = crm()
    partner = HttpCrmPartner(_client(simulator.base_url))

    partner.upsert_contact(_contact(), idempotency_key="cus-1:v1")
    created = simulator.contact("cus-1")
    partner.update_order_stats("cus-1", STATS, idempotency_key="cus-1:stats:2")
    partner.upsert_contact(_contact(name="Ada King"), idempotency_key="cus-1:v2")
    with httpx.Client(base_url=simulator.base_url) as http:
        read = http.get("/v1/contacts/cus-1")

    assert created is not None and created["orders"] is None
    assert read.status_code == 200
    assert read.json() == simulator.contact("cus-1")
    assert read.json() == {
        "customerId": "cus-1",
        "email": "ada@example.com",
        "name": "Ada King",
        "phone": "+91 20 5555 0100",
        "marketing": {"email": True, "sms": False, "whatsapp": False},
        "attributes": {"tier": "gold"},
        # Replacing the contact keeps the figures.
        "orders": {
            "orderCount": 2,
            "lifetimeValue": 2360,
            "currency": "INR",
            "lastOrderId": "ord-2",
            "lastOrderAt": "2030-01-02T12:00:00Z",
            "lastOrderStatus": "paid",
        },
        "updatedAt": read.json()["updatedAt"],
    }
    assert not simulator.deleted("cus-1")

    partner.delete_contact("cus-1", idempotency_key="cus-1:erase")
    partner.delete_contact("cus-1", idempotency_key="cus-1:erase")
    partner.delete_contact("cus-1", idempotency_key="cus-1:erase-again")
    with httpx.Client(base_url=simulator.base_url) as http:
        gone = http.get("/v1/contacts/cus-1")
        deleted = http.delete("/v1/contacts/cus-1", headers={"Idempotency-Key": "by-hand"})

    assert simulator.contact("cus-1") is None
    assert simulator.deleted("cus-1")
    assert gone.status_code == 404
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert not simulator.deleted("cus-never-seen")


def test_order_stats_need_a_contact(crm) -> None:
    simulator = crm()
    partner = HttpCrmPartner(_client(simulator.base_url))

    with pytest.raises(PartnerRejected) as caught:
        partner.update_order_stats("cus-unknown", STATS, idempotency_key="s1")

    assert caught.value.status == 404
    # The 404 is not stored under the key: once the contact exists, the retry succeeds.
    partner.upsert_contact(_contact("cus-unknown"), idempotency_key="c1")
    partner.update_order_stats("cus-unknown", STATS, idempotency_key="s1")
    contact = simulator.contact("cus-unknown")
    assert contact is not None and contact["orders"]["orderCount"] == 2


def test_a_repeated_key_is_applied_once_and_never_revives_an_erased_contact(crm) -> None:
    simulator = crm()
    partner = HttpCrmPartner(_client(simulator.base_url))
    partner.upsert_contact(_contact(name="First"), idempotency_key="v1")
    partner.upsert_contact(_contact(name="Second"), idempotency_key="v2")

    partner.upsert_contact(_contact(name="First"), idempotency_key="v1")  # a late redelivery
    contact = simulator.contact("cus-1")
    assert contact is not None and contact["name"] == "Second"
    with pytest.raises(PartnerRejected) as caught:
        partner.upsert_contact(_contact(name="Third"), idempotency_key="v1")
    assert caught.value.status == 422

    partner.delete_contact("cus-1", idempotency_key="erase")
    partner.upsert_contact(_contact(name="Second"), idempotency_key="v2")
    assert simulator.contact("cus-1") is None
    assert simulator.deleted("cus-1")

    partner.upsert_contact(_contact(name="Back"), idempotency_key="v3")
    assert not simulator.deleted("cus-1")


def test_missing_channels_are_sent_as_no_consent(crm) -> None:
    simulator = crm()
    partner = HttpCrmPartner(_client(simulator.base_url))

    partner.upsert_contact(_contact(marketing={"sms": True}), idempotency_key="k")

    contact = simulator.contact("cus-1")
    assert contact is not None
    assert contact["marketing"] == {"email": False, "sms": True, "whatsapp": False}


def test_the_crm_refuses_invalid_requests(crm) -> None:
    simulator = crm()
    body = {
        "customerId": "cus-1",
        "email": None,
        "name": None,
        "phone": None,
        "marketing": {"email": False, "sms": False, "whatsapp": False},
        "attributes": {},
    }
    with httpx.Client(base_url=simulator.base_url) as http:
        other = http.put("/v1/contacts/cus-2", json=body, headers={"Idempotency-Key": "a"})
        keyless = http.put("/v1/contacts/cus-1", json=body)
        no_consent = http.put(
            "/v1/contacts/cus-1",
            json={**body, "marketing": {"email": True}},
            headers={"Idempotency-Key": "b"},
        )
        created = http.put("/v1/contacts/cus-1", json=body, headers={"Idempotency-Key": "c"})
        bad_stats = http.put(
            "/v1/contacts/cus-1/orders",
            json={"orderCount": -1, "lifetimeValue": 0},
            headers={"Idempotency-Key": "d"},
        )
        delete_keyless = http.delete("/v1/contacts/cus-1")

    assert other.status_code == 422
    assert "differ" in other.json()["detail"]
    assert keyless.status_code == 400
    assert no_consent.status_code == 422
    assert created.status_code == 200
    assert created.json()["customerId"] == "cus-1"
    assert bad_stats.status_code == 422
    assert delete_keyless.status_code == 400
    assert simulator.contact("cus-1") is not None


def test_the_crm_keeps_contacts_and_keys_across_a_restart(tmp_path: Path) -> None:
    first = CrmSimulator(tmp_path).start()
    try:
        HttpCrmPartner(_client(first.base_url)).upsert_contact(_contact(), idempotency_key="v1")
    finally:
        first.stop()

    second = CrmSimulator(tmp_path).start()
    try:
        partner = HttpCrmPartner(_client(second.base_url))
        with pytest.raises(PartnerRejected) as caught:
            partner.upsert_contact(_contact(name="Other"), idempotency_key="v1")
        assert caught.value.status == 422
        contact = second.contact("cus-1")
        assert contact is not None and contact["name"] == "Ada Lovelace"
    finally:
        second.stop()


def test_put_and_delete_carry_the_idempotency_key_on_every_attempt() -> None:
    with running_partner_api() as api:
        path = "/v1/contacts/cus%2F1"
        api.script("PUT", path, Scripted(503), Scripted(200, json={}))
        api.script("PUT", path + "/orders", Scripted(502), Scripted(200, json={}))
        api.script("DELETE", path, Scripted(500), Scripted(404))
        partner = HttpCrmPartner(_client(api.base_url))

        partner.upsert_contact(_contact("cus/1"), idempotency_key="c")
        partner.update_order_stats("cus/1", STATS, idempotency_key="s")
        partner.delete_contact("cus/1", idempotency_key="d")  # 404: gone already

        keys = [
            (r.method, r.path.removeprefix(path), r.header("Idempotency-Key"))
            for r in api.partner_requests
        ]
        [stats] = api.requests_to("PUT", path + "/orders")[:1]

    assert keys == [
        ("PUT", "", "c"),
        ("PUT", "", "c"),
        ("PUT", "/orders", "s"),
        ("PUT", "/orders", "s"),
        ("DELETE", "", "d"),
        ("DELETE", "", "d"),
    ]
    assert stats.body == {
        "orderCount": 2,
        "lifetimeValue": 2360,
        "currency": "INR",
        "lastOrderId": "ord-2",
        "lastOrderAt": "2030-01-02T12:00:00Z",
        "lastOrderStatus": "paid",
    }


def test_an_unusable_trial_balance_is_unavailable() -> None:
    with running_partner_api() as api:
        api.script(
            "GET",
            "/v1/trial-balance",
            Scripted(200, json={"currency": "EUR", "accounts": []}),
            Scripted(200, json={"currency": "INR", "accounts": [{"account": "cash"}]}),
        )
        partner = HttpAccountingPartner(_client(api.base_url))

        with pytest.raises(PartnerUnavailable, match="asked for INR, answered EUR"):
            partner.trial_balance("INR")
        with pytest.raises(PartnerUnavailable, match="debit"):
            partner.trial_balance("INR")
        [first, _] = api.requests_to("GET", "/v1/trial-balance")

    assert first.query == {"currency": "INR"}


# --- authentication and wiring -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["accounting", "crm"])
def test_the_api_key_is_enforced(accounting, crm, kind: str) -> None:
    simulator = (accounting if kind == "accounting" else crm)(api_key="sim-key")

    def call(auth: PartnerAuth | None) -> None:
        client = _client(simulator.base_url, auth=auth)
        if kind == "accounting":
            HttpAccountingPartner(client).post_entry(_entry(), idempotency_key="k")
        else:
            HttpCrmPartner(client).upsert_contact(_contact(), idempotency_key="k")

    for auth in (None, ApiKeyAuth("nope")):
        with pytest.raises(PartnerRejected) as caught:
            call(auth)
        assert caught.value.status == 401
    call(ApiKeyAuth("sim-key"))

    if isinstance(simulator, AccountingSimulator):
        assert len(simulator.entries()) == 1
    else:
        assert simulator.contact("cus-1") is not None


def test_no_url_means_no_adapter() -> None:
    settings = Settings()
    assert accounting_partner_from_settings(settings) is None
    assert crm_partner_from_settings(settings) is None


def test_settings_build_working_adapters(accounting, crm) -> None:
    books = accounting(api_key="books-key")
    contacts = crm(api_key="crm-key")
    settings = Settings(
        accounting_partner_url=books.base_url + "/",
        accounting_partner_api_key=SecretStr("books-key"),
        crm_partner_url=contacts.base_url,
        crm_partner_api_key=SecretStr("crm-key"),
    )
    waits: list[float] = []

    ledger = accounting_partner_from_settings(settings, sleep=waits.append)
    customers = crm_partner_from_settings(settings, sleep=waits.append)

    assert ledger is not None and customers is not None
    assert isinstance(ledger.client.auth, ApiKeyAuth)
    try:
        ledger.post_entry(_entry(), idempotency_key="k")
        customers.upsert_contact(_contact(), idempotency_key="k")
        customers.delete_contact("cus-1", idempotency_key="erase")
        assert ledger.trial_balance("INR").accounts["sales"] == (0, 1000)
    finally:
        ledger.close()
        customers.close()
    assert contacts.deleted("cus-1")
    assert waits == []
