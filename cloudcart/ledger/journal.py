"""The journal: immutable, balanced entries in the `ledger` container, and their sums.

Storage (partition `/period`, the entry's month `YYYY-MM`):

    entry:  {"id": "je_<hash>", "type": "entry", "period", "at", "currency", "rule",
             "sourceEvent": {"id", "type", "subject"}, "orderId"?,
             "lines": [{"account", "debit", "credit", "currency"}], "accounts": [...],
             "postedAt"}
    totals: {"id": "totals:<currency>", "type": "totals", "period", "currency",
             "accounts": {<account>: {"debit", "credit"}}, "entries"}

An entry's id is derived from its source event and rule, so posting the same event twice
(a redelivery, a resubmitted dead letter) meets the existing entry and posts nothing. The
entry, its month's running totals (If-Match) and its `ledger.posted` outbox event are one
transactional batch: the totals always equal the sum of the month's entries, and a trial
balance reads one small document per month instead of every entry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from cloudcart.core.clock import utcnow
from cloudcart.core.cursors import decode_continuation, encode_continuation
from cloudcart.core.errors import BatchFailed, Conflict, DomainError, NotFound, PreconditionFailed
from cloudcart.core.events import new_event
from cloudcart.core.outbox import timestamp, write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    Query,
    each,
    fill_page,
    strip_system,
)
from cloudcart.ledger.events import LedgerPosted
from cloudcart.ledger.rules import Line, balanced

LEDGER = "ledger"
LEDGER_POSTED = "ledger.posted"
ENTRY_TYPE = "entry"
TOTALS_TYPE = "totals"
_ATTEMPTS = 40


class UnbalancedEntry(DomainError):
    """An entry whose debits and credits differ (never stored)."""

    problem_type = "unbalanced-entry"


class InvalidLedgerQuery(DomainError):
    """A ledger query the API cannot answer (bad cursor, several currencies, ...)."""

    problem_type = "invalid-ledger-query"


@dataclass(frozen=True)
class SourceEvent:
    """The event an entry was posted from."""

    id: str
    type: str
    subject: str
    time: datetime


def entry_id(source_event_id: str, rule: str) -> str:
    """The id of the one entry a rule posts for an event."""
    digest = hashlib.sha256(f"{source_event_id}:{rule}".encode()).hexdigest()
    return "je_" + digest[:32]


def period_of(at: datetime) -> str:
    """The partition (`YYYY-MM`, UTC) of an entry at `at`."""
    return at.astimezone(UTC).strftime("%Y-%m")


def _container(store: DocumentStore) -> Container:
    return store.container(LEDGER)


def _public(document: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": document["id"],
        "at": document["at"],
        "sourceEvent": document["sourceEvent"],
        "rule": document["rule"],
        "lines": document["lines"],
    }


def post(
    store: DocumentStore,
    source: SourceEvent,
    rule: str,
    currency: str,
    lines: Sequence[Line],
    accounts: Mapping[str, str],
    *,
    order_id: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Post the entry `rule` makes for `source`, once. Returns the entry (public form) and
    whether it was posted now (False: it existed). Raises UnbalancedEntry."""
    if not lines or not balanced(lines):
        raise UnbalancedEntry(f"{rule} for {source.type} {source.id} does not balance")
    at = source.time.astimezone(UTC)
    period = period_of(at)
    entry: dict[str, Any] = {
        "id": entry_id(source.id, rule),
        "type": ENTRY_TYPE,
        "period": period,
        "at": timestamp(at),
        "currency": currency,
        "rule": rule,
        "sourceEvent": {"id": source.id, "type": source.type, "subject": source.subject},
        "lines": [
            {
                "account": accounts[line.role],
                "debit": line.debit,
                "credit": line.credit,
                "currency": currency,
            }
            for line in lines
        ],
        "accounts": sorted({accounts[line.role] for line in lines}),
        "postedAt": timestamp(utcnow()),
    }
    if order_id is not None:
        entry["orderId"] = order_id
    container = _container(store)
    data = cast("LedgerPosted", {**_public(entry), "currency": currency})
    event = new_event(LEDGER_POSTED, entry["id"], data)
    for attempt in range(_ATTEMPTS):
        totals_id = f"totals:{currency}"
        try:
            current = container.read(totals_id, period)
            totals = strip_system(current)
            write = BatchOp("replace", document=_add(totals, entry), if_match=current["_etag"])
        except NotFound:
            totals = {
                "id": totals_id,
                "type": TOTALS_TYPE,
                "period": period,
                "currency": currency,
                "accounts": {},
                "entries": 0,
            }
            write = BatchOp("create", document=_add(totals, entry))
        try:
            write_with_events(
                container, period, [BatchOp("create", document=entry), write], [event]
            )
        except BatchFailed as exc:
            if exc.index == 0 and isinstance(exc.cause, Conflict):
                return _public(container.read(entry["id"], period)), False
            if exc.index == 1 and isinstance(exc.cause, PreconditionFailed | Conflict):
                # Another entry of the month won the round: read its totals again.
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
                continue
            raise
        return _public(entry), True
    raise InvalidLedgerQuery(f"the {period} totals kept changing; retry")


def _add(totals: Document, entry: Mapping[str, Any]) -> Document:
    accounts: dict[str, dict[str, int]] = totals.setdefault("accounts", {})
    for line in entry["lines"]:
        sums = accounts.setdefault(line["account"], {"debit": 0, "credit": 0})
        sums["debit"] += int(line["debit"])
        sums["credit"] += int(line["credit"])
    totals["entries"] = int(totals.get("entries", 0)) + 1
    return totals


# --- reading ------------------------------------------------------------------------------


def _entry_filters(
    start: datetime | None, end: datetime | None, account: str | None
) -> list[Filter]:
    filters = [Filter("type", "eq", ENTRY_TYPE)]
    if start is not None:
        filters.append(Filter("at", "ge", timestamp(start)))
    if end is not None:
        filters.append(Filter("at", "lt", timestamp(end)))
    if account is not None:
        filters.append(Filter("accounts", "contains", account))
    return filters


def entries(
    store: DocumentStore,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    account: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """Entries with `start <= at < end` touching `account`, oldest first, a page at a time."""
    query = Query(
        filters=_entry_filters(start, end, account),
        order_by=(Order("at"),),
        limit=limit,
    )
    try:
        # A malformed cursor, or a forged one carrying a malformed store continuation.
        page = fill_page(_container(store), query, continuation=decode_continuation(cursor))
    except ValueError:
        raise InvalidLedgerQuery("the cursor is not one this API returned") from None
    return [_public(d) for d in page.items], encode_continuation(page.continuation)


def all_entries(
    store: DocumentStore, *, start: datetime | None = None, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Every entry with `start <= at < end`, oldest first (exports, reconciliation)."""
    query = Query(filters=_entry_filters(start, end, None), order_by=(Order("at"),), limit=500)
    for document in each(_container(store), query):
        yield _public(document)


def currencies(store: DocumentStore) -> list[str]:
    """The currencies the journal holds entries in."""
    query = Query(filters=(Filter("type", "eq", TOTALS_TYPE),), limit=500)
    return sorted({str(d["currency"]) for d in each(_container(store), query)})


def trial_balance(
    store: DocumentStore, currency: str, as_of: datetime | None = None
) -> dict[str, Any]:
    """Every account's debits, credits and balance (debit - credit) in `currency`, over the
    entries up to and including `as_of` (all of them without it)."""
    sums: dict[str, list[int]] = {}

    def add(account: str, debit: int, credit: int) -> None:
        pair = sums.setdefault(account, [0, 0])
        pair[0] += debit
        pair[1] += credit

    filters = [Filter("type", "eq", TOTALS_TYPE), Filter("currency", "eq", currency)]
    last_period = None if as_of is None else period_of(as_of)
    if last_period is not None:
        filters.append(Filter("period", "lt", last_period))
    container = _container(store)
    for totals in each(container, Query(filters=filters, limit=500)):
        for account, pair in totals.get("accounts", {}).items():
            add(account, int(pair["debit"]), int(pair["credit"]))
    if as_of is not None and last_period is not None:
        # The month of `as_of` itself, entry by entry up to that moment.
        query = Query(
            filters=(
                Filter("type", "eq", ENTRY_TYPE),
                Filter("currency", "eq", currency),
                Filter("at", "le", timestamp(as_of)),
            ),
            limit=500,
        )
        for entry in each(container, query, partition_key=last_period):
            for line in entry["lines"]:
                add(line["account"], int(line["debit"]), int(line["credit"]))
    accounts = [
        {"account": name, "debit": d, "credit": c, "balance": d - c}
        for name, (d, c) in sorted(sums.items())
    ]
    return {
        "currency": currency,
        "accounts": accounts,
        "totalDebit": sum(a["debit"] for a in accounts),
        "totalCredit": sum(a["credit"] for a in accounts),
    }


CSV_COLUMNS = (
    "entryId",
    "at",
    "rule",
    "sourceEventType",
    "sourceEventId",
    "subject",
    "account",
    "debit",
    "credit",
    "currency",
)


def export_csv(
    store: DocumentStore, *, start: datetime | None = None, end: datetime | None = None
) -> Iterator[str]:
    """The entries as CSV for an accountant, one row per entry line, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for entry in all_entries(store, start=start, end=end):
        source = entry["sourceEvent"]
        for line in entry["lines"]:
            writer.writerow(
                (
                    entry["id"],
                    entry["at"],
                    entry["rule"],
                    source["type"],
                    source["id"],
                    source["subject"],
                    line["account"],
                    line["debit"],
                    line["credit"],
                    line["currency"],
                )
            )
        yield flush()
