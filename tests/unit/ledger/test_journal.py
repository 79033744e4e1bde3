"""The journal on a real embedded store: one entry per event and rule, running totals, the
trial balance as of any moment, paging, the CSV export, and the admin API."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.ledger import accounts, journal, posting, rules

ORDER = {
    "id": "ord_1",
    "lines": [{"sku": "A", "quantity": 2, "lineTotal": 23600, "tax": 3600}],
    "totals": {
        "subtotal": 23600,
        "tax": 3600,
        "shipping": 0,
        "taxInclusive": True,
        "total": 23600,
        "currency": "INR",
    },
}
CHART = accounts.chart()
T0 = datetime(2030, 1, 31, 23, 0, tzinfo=UTC)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    found = Services(Settings(data_dir=tmp_path / "data"))
    found.documents.ensure_containers()
    yield found
    found.close()


def _source(event_id: str, at: datetime, type_: str = "order.paid") -> journal.SourceEvent:
    return journal.SourceEvent(event_id, type_, "ord_1", at)


def _capture(services: Services, event_id: str, at: datetime) -> tuple[dict[str, Any], bool]:
    return journal.post(
        services.documents,
        _source(event_id, at),
        "capture",
        "INR",
        rules.capture(ORDER, 23600),
        CHART,
        order_id="ord_1",
    )


def test_an_event_posts_one_entry_with_its_outbox_event(services: Services) -> None:
    entry, posted = _capture(services, "evt_1", T0)
    again, posted_again = _capture(services, "evt_1", T0)
    assert posted and not posted_again and again == entry
    assert entry["id"] == journal.entry_id("evt_1", "capture")
    assert entry["lines"] == [
        {"account": "1100 Gateway receivable", "debit": 23600, "credit": 0, "currency": "INR"},
        {"account": "4000 Sales revenue", "debit": 0, "credit": 20000, "currency": "INR"},
        {"account": "2100 Tax payable", "debit": 0, "credit": 3600, "currency": "INR"},
    ]
    outbox = (
        services.documents.container("ledger")
        .query(Query(filters=[Filter("kind", "eq", "outbox")]), partition_key="2030-01")
        .items
    )
    assert [d["event"]["type"] for d in outbox] == ["ledger.posted"]
    assert outbox[0]["event"]["data"]["id"] == entry["id"]


def test_an_unbalanced_entry_is_refused_and_nothing_is_stored(services: Services) -> None:
    with pytest.raises(journal.UnbalancedEntry):
        journal.post(
            services.documents,
            _source("evt_x", T0),
            "capture",
            "INR",
            [rules.Line("bank", debit=5), rules.Line("sales_revenue", credit=4)],
            CHART,
        )
    assert journal.trial_balance(services.documents, "INR")["accounts"] == []


def test_trial_balance_as_of_any_moment_sums_to_zero(services: Services) -> None:
    _capture(services, "evt_1", T0)  # January
    _capture(services, "evt_2", T0 + timedelta(hours=2))  # February
    journal.post(
        services.documents,
        _source("evt_3", T0 + timedelta(hours=3), "refund.issued"),
        "refund",
        "INR",
        rules.refund(ORDER, 11800, [{"sku": "A", "quantity": 1}]),
        CHART,
    )
    now = journal.trial_balance(services.documents, "INR")
    assert now["totalDebit"] == now["totalCredit"] == 23600 * 2 + 11800
    balances = {a["account"]: a["balance"] for a in now["accounts"]}
    assert balances == {
        "1100 Gateway receivable": 23600 * 2 - 11800,
        "2100 Tax payable": -3600 * 2 + 1800,
        "4000 Sales revenue": -40000,
        "4900 Refunds": 10000,
    }
    january = journal.trial_balance(services.documents, "INR", T0)
    assert january["totalDebit"] == 23600
    mid_february = journal.trial_balance(services.documents, "INR", T0 + timedelta(hours=2))
    assert mid_february["totalDebit"] == 23600 * 2
    assert journal.trial_balance(services.documents, "EUR")["accounts"] == []


def test_entries_page_filter_by_account_and_export(services: Services) -> None:
    for n in range(5):
        _capture(services, f"evt_{n}", T0 + timedelta(minutes=n))
    journal.post(
        services.documents,
        journal.SourceEvent("po_1", "payout.paid", "po_1", T0 + timedelta(minutes=9)),
        "payout",
        "INR",
        rules.payout(1000),
        CHART,
    )
    seen: list[str] = []
    cursor = None
    while True:
        items, cursor = journal.entries(services.documents, limit=2, cursor=cursor)
        seen += [e["id"] for e in items]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    bank, _ = journal.entries(services.documents, account="1000 Bank")
    assert [e["rule"] for e in bank] == ["payout"]
    window, _ = journal.entries(
        services.documents, start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3)
    )
    assert len(window) == 2
    rows = list(csv.reader(io.StringIO("".join(journal.export_csv(services.documents)))))
    assert rows[0] == list(journal.CSV_COLUMNS)
    assert len(rows) == 1 + 5 * 3 + 2
    with pytest.raises(journal.InvalidLedgerQuery):
        journal.entries(services.documents, cursor="not-a-cursor")


def test_a_configured_chart_renames_accounts() -> None:
    chart = accounts.chart('{"sales_revenue": "4010 Online sales"}')
    assert chart["sales_revenue"] == "4010 Online sales"
    assert chart["bank"] == accounts.DEFAULT_ACCOUNTS["bank"]
    for bad in ('{"nope": "x"}', '{"bank": ""}', '{"bank": "4000 Sales revenue"}', "[]"):
        with pytest.raises(accounts.ChartError):
            accounts.chart(bad)


def test_events_become_entries_through_the_consumer(services: Services) -> None:
    orders = services.documents.container("orders")
    orders.create({**ORDER, "type": "order", "customerId": "cus_1", "status": "paid"})
    paid = Event(
        type="order.paid",
        subject="ord_1",
        data={"orderId": "ord_1", "customerId": "cus_1", "amount": 23600, "currency": "INR"},
    )
    refund = Event(
        type="refund.issued",
        subject="ord_1",
        data={
            "orderId": "ord_1",
            "customerId": "cus_1",
            "amount": 23600,
            "currency": "INR",
            "lines": [],
            "kind": "cancellation",
        },
    )
    first = posting.handle_event(services, paid)
    assert first is not None and first["rule"] == "capture"
    assert posting.handle_event(services, paid) == first
    cancelled = posting.handle_event(services, refund)
    assert cancelled is not None and cancelled["rule"] == "cancellation"
    balance = journal.trial_balance(services.documents, "INR")
    assert {a["account"]: a["balance"] for a in balance["accounts"]}["1100 Gateway receivable"] == 0
    ignored = Event(type="order.placed", subject="ord_1", data={})
    assert posting.handle_event(services, ignored) is None


def test_admin_api(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    services = Services(settings)
    app.state.services = services
    services.documents.ensure_containers()
    _capture(services, "evt_1", T0)
    admin, _ = mint_token(settings, "ops", roles=("Admin",))
    customer, _ = mint_token(settings, "alice")
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {admin}"}
        page = client.get("/api/admin/ledger/entries", headers=headers).json()
        assert [e["sourceEvent"]["id"] for e in page["items"]] == ["evt_1"]
        assert page["cursor"] is None
        balance = client.get(
            "/api/admin/ledger/trial-balance",
            params={"asOf": "2030-02-01T00:00:00Z"},
            headers=headers,
        ).json()
        assert balance["totalDebit"] == balance["totalCredit"] == 23600
        assert balance["currency"] == "INR"
        export = client.get("/api/admin/ledger/export", headers=headers)
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert export.text.count("\r\n") == 4
        bad = client.get("/api/admin/ledger/entries", params={"cursor": "zzz"}, headers=headers)
        assert bad.status_code == 400 and bad.json()["type"].endswith("/invalid-ledger-query")
        forbidden = client.get(
            "/api/admin/ledger/entries", headers={"Authorization": f"Bearer {customer}"}
        )
        assert forbidden.status_code == 403
    services.close()
