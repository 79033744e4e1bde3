"""The payload of the event the ledger publishes: `ledger.posted`.

The payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers it, and docs/events/ledger.posted.schema.json is rendered from it
(`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from typing_extensions import TypedDict

from cloudcart.core.events import CurrencyCode, EventSpec


class SourceEvent(TypedDict):
    """The event the entry records."""

    id: str
    type: str
    subject: str


class JournalLine(TypedDict):
    """One side of the entry on one account, in minor units."""

    account: Annotated[str, Field(min_length=1)]
    debit: Annotated[int, Field(ge=0)]
    credit: Annotated[int, Field(ge=0)]
    currency: str


class LedgerPosted(TypedDict):
    """The payload (`data`) of `ledger.posted`."""

    id: Annotated[
        str,
        Field(min_length=1, description="The entry id (derived from the source event and rule)."),
    ]
    at: Annotated[
        str,
        Field(description="When the recorded fact happened (UTC, fixed-width ISO 8601)."),
    ]
    currency: CurrencyCode
    rule: Literal["capture", "refund", "cancellation", "payout"]
    sourceEvent: SourceEvent
    lines: Annotated[
        list[JournalLine],
        Field(min_length=2, description="Debits equal credits; each line is one-sided."),
    ]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "ledger.posted",
        1,
        "A balanced journal entry was posted (once per source event and rule), in the same "
        "batch as the entry. The envelope's `subject` is the entry id. The accounting "
        "connector imports it into the accounting system.",
        LedgerPosted,
    ),
)
"""The event types the ledger publishes."""
