"""The ledger's admin API: entries, the trial balance and a CSV export for an accountant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.responses import (
    PageCursor,
    is_base64url,
    problem_responses,
    rfc3339_only,
)
from cloudcart.identity.dependencies import Admin
from cloudcart.ledger import journal

router = APIRouter(prefix="/api/admin/ledger", tags=["ledger"])

From = Annotated[
    datetime | None,
    BeforeValidator(rfc3339_only),
    Query(alias="from", description="Entries at or after (RFC 3339 with an offset)."),
]
To = Annotated[
    datetime | None,
    BeforeValidator(rfc3339_only),
    Query(alias="to", description="Entries before (RFC 3339 with an offset)."),
]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class EntryLine(_Model):
    """A debit or a credit, in minor units."""

    account: str
    debit: int
    credit: int
    currency: str


class SourceEvent(_Model):
    """The event the entry was posted from."""

    id: str
    type: str
    subject: str


class Entry(_Model):
    """One balanced journal entry."""

    id: str
    at: str
    source_event: SourceEvent
    rule: str = Field(description="`capture`, `refund`, `cancellation` or `payout`.")
    lines: list[EntryLine]


class EntryPage(_Model):
    """A page of entries, oldest first; `cursor` fetches the next (null on the last)."""

    items: list[Entry]
    cursor: str | None


class AccountBalance(_Model):
    """An account's sums; `balance = debit - credit`."""

    account: str
    debit: int
    credit: int
    balance: int


class TrialBalance(_Model):
    """Every account in one currency; `totalDebit` always equals `totalCredit`."""

    currency: str
    accounts: list[AccountBalance]
    total_debit: int
    total_credit: int


@router.get(
    "/entries",
    response_model=EntryPage,
    response_model_by_alias=True,
    responses=problem_responses(400, 401, 403),
    summary="Journal entries",
)
def get_entries(
    services: ServicesDep,
    _: Admin,
    start: From = None,
    end: To = None,
    account: Annotated[str | None, Query(max_length=200)] = None,
    cursor: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Entries with `from <= at < to` that touch `account`, oldest first."""
    if cursor is not None and not is_base64url(cursor):
        raise journal.InvalidLedgerQuery("the cursor is not one this API returned")
    items, next_cursor = journal.entries(
        services.documents, start=start, end=end, account=account, cursor=cursor, limit=limit
    )
    return {"items": items, "cursor": next_cursor}


@router.get(
    "/trial-balance",
    response_model=TrialBalance,
    response_model_by_alias=True,
    responses=problem_responses(400, 401, 403),
    summary="Trial balance",
)
def get_trial_balance(
    services: ServicesDep,
    _: Admin,
    as_of: Annotated[
        datetime | None,
        BeforeValidator(rfc3339_only),
        Query(alias="asOf", description="Entries up to this moment (RFC 3339 with an offset)."),
    ] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> dict[str, Any]:
    """Every account's debits, credits and balance, as of a moment (now by default), in
    one currency (`LEDGER_CURRENCY` by default)."""
    chosen = currency or services.settings.ledger_currency
    return journal.trial_balance(services.documents, chosen, as_of)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per entry line."},
        **problem_responses(400, 401, 403),
    },
    summary="Journal as CSV",
)
def export(services: ServicesDep, _: Admin, start: From = None, end: To = None) -> Any:
    """The entries with `from <= at < to` as CSV, one row per entry line."""
    rows: Iterator[str] = journal.export_csv(services.documents, start=start, end=end)
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="journal.csv"'},
    )
