"""An accounting system simulator: the journal-import API of docs/partners/api.md, on
loopback.

The shop imports balanced double-entry journal entries (`POST /v1/journal-entries`, each
Idempotency-Key imported once, across restarts too) and reads the books back per currency
(`GET /v1/trial-balance?currency=XXX`). Amounts are whole minor units. The simulator keeps
its own books, so a reconciliation compares two independent ledgers, as it would with a
real accounting system. It sends no messages.

Simulator controls (not part of the partner API): `POST /sim/outage {"seconds": N}` and
`POST /sim/latency {"seconds": N}`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from cloudcart.integrations.partners.simulators.server import (
    PartnerSimulator,
    Problem,
    Stored,
    fingerprint,
    iso_utc,
    new_id,
    required_key,
    validation_detail,
)

CURRENCY_PATTERN = r"^[A-Z]{3}$"
_MAX_AMOUNT = 10**15
"""Per line, in minor units: keeps every sum of the books far inside 64-bit integers."""
_MAX_LINES = 1000
_UNUSED_QUEUE = "accounting-sends-nothing"


def _send_nothing(queue: str, body: dict[str, Any], message_id: str) -> None:
    """The base class's sender; never called, as nothing here writes to the outbox."""


class JournalLineIn(BaseModel):
    """One line of `POST /v1/journal-entries`: a debit or a credit, the other 0."""

    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, max_length=200)
    # Strict: `true` or `"10"` for an amount is a broken client, not 1 or 10.
    debit: StrictInt = Field(ge=0, le=_MAX_AMOUNT)
    credit: StrictInt = Field(ge=0, le=_MAX_AMOUNT)

    @model_validator(mode="after")
    def _one_side(self) -> JournalLineIn:
        if (self.debit > 0) == (self.credit > 0):
            raise ValueError(
                f"line of account {self.account!r}: exactly one of debit and credit must be "
                "greater than 0, the other 0"
            )
        return self


class JournalEntryIn(BaseModel):
    """`POST /v1/journal-entries`: a balanced entry in one currency."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    entry_id: str = Field(min_length=1, max_length=200)
    at: AwareDatetime
    currency: str = Field(pattern=CURRENCY_PATTERN)
    source_event: str = Field(min_length=1, max_length=100)
    lines: list[JournalLineIn] = Field(min_length=2, max_length=_MAX_LINES)

    @model_validator(mode="after")
    def _balanced(self) -> JournalEntryIn:
        debit = sum(line.debit for line in self.lines)
        credit = sum(line.credit for line in self.lines)
        if debit != credit:
            raise ValueError(f"the entry is unbalanced: debits {debit} != credits {credit}")
        return self


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    journal_id TEXT NOT NULL UNIQUE,
    entry_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    at TEXT NOT NULL,
    currency TEXT NOT NULL,
    source_event TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
    entry_seq INTEGER NOT NULL REFERENCES entries (seq),
    position INTEGER NOT NULL,
    currency TEXT NOT NULL,
    account TEXT NOT NULL,
    debit INTEGER NOT NULL,
    credit INTEGER NOT NULL,
    PRIMARY KEY (entry_seq, position)
);
CREATE INDEX IF NOT EXISTS lines_currency ON lines (currency, account);
"""


def _trial_balance(currency: str | None, rows: list[sqlite3.Row]) -> dict[str, Any]:
    totals: dict[str, list[int]] = {}
    for row in rows:
        account = totals.setdefault(row["account"], [0, 0])
        account[0] += int(row["debit"])
        account[1] += int(row["credit"])
    accounts = [
        {"account": name, "debit": debit, "credit": credit, "balance": debit - credit}
        for name, (debit, credit) in sorted(totals.items())
    ]
    return {
        "currency": currency,
        "accounts": accounts,
        "totalDebit": sum(item["debit"] for item in accounts),
        "totalCredit": sum(item["credit"] for item in accounts),
    }


class AccountingSimulator(PartnerSimulator):
    """The accounting system. Its books live in `<data_dir>/partners/accounting.sqlite3`."""

    name = "accounting"
    _schema = _SCHEMA

    def __init__(self, data_dir: Path, *, api_key: str | None = None, port: int = 0) -> None:
        super().__init__(
            Path(data_dir) / "partners" / "accounting.sqlite3",
            _send_nothing,
            _UNUSED_QUEUE,
            api_key=api_key,
            port=port,
        )

    # --- the partner's behaviour -------------------------------------------------------

    def post_entry(self, payload: dict[str, Any], idempotency_key: str) -> Stored:
        """Import an entry once per key: 201 first, 200 with the same body for a repeat, a
        422 Problem for an invalid or unbalanced entry or the key reused with another."""
        try:
            entry = JournalEntryIn.model_validate(payload)
        except ValidationError as error:
            raise Problem(422, "Unprocessable Content", validation_detail(error)) from error

        def apply(db: sqlite3.Connection) -> Stored:
            journal_id = new_id("jrn")
            cursor = db.execute(
                "INSERT INTO entries (journal_id, entry_id, idempotency_key, at, currency, "
                "source_event, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    journal_id,
                    entry.entry_id,
                    idempotency_key,
                    entry.at.isoformat(),
                    entry.currency,
                    entry.source_event,
                    time.time(),
                ),
            )
            db.executemany(
                "INSERT INTO lines (entry_seq, position, currency, account, debit, credit) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (cursor.lastrowid, n, entry.currency, line.account, line.debit, line.credit)
                    for n, line in enumerate(entry.lines)
                ],
            )
            return Stored(
                201, {"entryId": entry.entry_id, "journalId": journal_id, "status": "posted"}
            )

        return self._idempotent(
            idempotency_key,
            fingerprint({"operation": "post", "body": payload}),
            apply,
            replay_status=lambda status: 200 if status == 201 else status,
        )

    def trial_balance(self, currency: str | None = None) -> dict[str, Any]:
        """The books in `currency`, as `GET /v1/trial-balance` answers them: accounts by
        name with debit, credit and balance (debit - credit), and the totals.

        Without `currency`: the one currency the books hold, or `currency` None with no
        accounts when they are empty. Raises ValueError when they hold several.
        """
        with self._write() as db:
            if currency is None:
                held = [
                    str(row["currency"])
                    for row in db.execute(
                        "SELECT DISTINCT currency FROM entries ORDER BY currency"
                    ).fetchall()
                ]
                if len(held) > 1:
                    raise ValueError(f"the books hold several currencies ({', '.join(held)})")
                currency = held[0] if held else None
            rows = db.execute(
                "SELECT account, debit, credit FROM lines WHERE currency = ?", (currency,)
            ).fetchall()
        return _trial_balance(currency, rows)

    def entries(self, currency: str | None = None) -> list[dict[str, Any]]:
        """The entries imported (in one currency, or all), oldest first, with their
        journal id, idempotency key and lines."""
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM entries WHERE ? IS NULL OR currency = ? ORDER BY seq",
                (currency, currency),
            ).fetchall()
            lines = {
                row["seq"]: db.execute(
                    "SELECT account, debit, credit FROM lines WHERE entry_seq = ? "
                    "ORDER BY position",
                    (row["seq"],),
                ).fetchall()
                for row in rows
            }
        return [
            {
                "entryId": row["entry_id"],
                "journalId": row["journal_id"],
                "idempotencyKey": row["idempotency_key"],
                "at": row["at"],
                "currency": row["currency"],
                "sourceEvent": row["source_event"],
                "receivedAt": iso_utc(row["received_at"]),
                "lines": [dict(line) for line in lines[row["seq"]]],
            }
            for row in rows
        ]

    # --- hooks -------------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        @app.post("/v1/journal-entries")
        def _post(
            payload: Annotated[dict[str, Any], Body()],
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        ) -> JSONResponse:
            stored = self.post_entry(payload, required_key(idempotency_key))
            return JSONResponse(stored.body, status_code=stored.status)

        @app.get("/v1/trial-balance")
        def _trial(
            currency: Annotated[str, Query(pattern=CURRENCY_PATTERN)],
        ) -> JSONResponse:
            return JSONResponse(self.trial_balance(currency))
