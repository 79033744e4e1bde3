"""The accounting connector: every journal entry (`ledger.posted`) is imported into the
accounting system's journal, once (the Idempotency-Key is the entry's id, itself derived
from its source event), with the same retries and dead letters as the other connectors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudcart.core.events import Event
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.core.ports.partners import JournalEntry, JournalLine
from cloudcart.integrations.partners.connectors import Outcome, partner_call

if TYPE_CHECKING:
    from cloudcart.composition import Services

LEDGER_POSTED = "ledger.posted"


def journal_key(entry_id: str) -> str:
    """The Idempotency-Key of importing one entry."""
    return f"journal:{entry_id}"


def handle_ledger_event(services: Services, event: Event) -> Outcome:
    """Import one posted entry into the accounting system."""
    if event.type != LEDGER_POSTED:
        return "ignored"
    partner = services.accounting_partner
    if partner is None:
        return "disabled"
    data = event.data
    try:
        entry = JournalEntry(
            entry_id=str(data["id"]),
            at=str(data["at"]),
            currency=str(data["currency"]),
            source_event=str(data["sourceEvent"]["type"]),
            lines=tuple(
                JournalLine(str(line["account"]), int(line["debit"]), int(line["credit"]))
                for line in data["lines"]
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage("InvalidEvent", f"ledger.posted without {exc}") from None
    with partner_call(services, "accounting"):
        partner.post_entry(entry, idempotency_key=journal_key(entry.entry_id))
    return "sent"
