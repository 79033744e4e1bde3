"""The ports the partner connectors call: one per partner, each with an HTTP adapter.

Business code (the connectors) knows only these protocols and errors. The HTTP adapters
(`cloudcart.integrations.partners.http`) add timeouts, retries with backoff and jitter, an
`Idempotency-Key` header and authentication; the local simulators
(`cloudcart.integrations.partners.simulators`) speak the same API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from cloudcart.core.errors import CloudcartError

PartnerName = Literal["fulfilment", "inventory", "accounting", "crm"]
PARTNERS: tuple[PartnerName, ...] = ("fulfilment", "inventory", "accounting", "crm")

StockMoveKind = Literal["set", "reserve", "release", "sale", "return", "adjust"]


class PartnerError(CloudcartError):
    """A partner call failed."""


class PartnerUnavailable(PartnerError):
    """The partner could not be reached or kept failing (timeouts, connection errors, 429,
    5xx) after the retries of one call. The message is abandoned and redelivered."""


class PartnerRejected(PartnerError):
    """The partner refused the request for good (a 4xx other than 408/429): retrying the
    same request cannot succeed. `status` and `detail` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"partner answered {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class PartnerLine:
    """Units of one SKU."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class FulfilmentRequest:
    """What the shop asks the fulfilment partner to ship for one paid order."""

    order_id: str
    lines: tuple[PartnerLine, ...]
    shipping_address: Mapping[str, Any]
    shipping_method: str
    currency: str
    placed_at: str


@dataclass(frozen=True)
class FulfilmentAccepted:
    """The partner's answer to a fulfilment request."""

    request_id: str
    status: str
    """`accepted` (the request will be fulfilled) or `received` (acceptance follows as a
    `shipment.accepted` message)."""


@dataclass(frozen=True)
class CancelOutcome:
    """The partner's answer to a cancellation."""

    cancelled: bool
    """False when something had shipped already (the partner keeps the request)."""
    status: str


class FulfilmentPartner(Protocol):
    """A fulfilment centre's API."""

    def create_request(
        self, request: FulfilmentRequest, *, idempotency_key: str
    ) -> FulfilmentAccepted:
        """Ask the partner to fulfil an order. The same `idempotency_key` always yields the
        same request at the partner, never a second one."""
        ...

    def cancel_request(self, request_id: str, *, idempotency_key: str) -> CancelOutcome:
        """Cancel a request if nothing has shipped."""
        ...


@dataclass(frozen=True)
class StockMove:
    """One stock move the WMS is told about."""

    sku: str
    kind: StockMoveKind
    quantity: int
    """Units moved (>= 0); for `set` and `adjust` the new on-hand figure is `on_hand`."""
    reference: str
    """What caused it: an order id, a checkout attempt, an admin change."""
    occurred_at: datetime
    on_hand: int | None = None


@dataclass(frozen=True)
class StockFigure:
    """The WMS's figure for a SKU after a move."""

    sku: str
    on_hand: int
    sequence: int
    extra: Mapping[str, Any] = field(default_factory=dict)


class InventoryPartner(Protocol):
    """A warehouse management system's API."""

    def record_move(self, move: StockMove, *, idempotency_key: str) -> StockFigure:
        """Tell the WMS about a move; the same `idempotency_key` is applied once."""
        ...

    def stock(self, sku: str) -> StockFigure | None:
        """The WMS's current figure for a SKU (None when it does not know the SKU)."""
        ...


@dataclass(frozen=True)
class JournalLine:
    """One line of a journal entry: a debit or a credit (the other is 0), minor units."""

    account: str
    debit: int
    credit: int


@dataclass(frozen=True)
class JournalEntry:
    """A balanced double-entry journal entry in one currency."""

    entry_id: str
    at: str
    """When the fact it records happened (ISO 8601, UTC)."""
    currency: str
    source_event: str
    """The type of the event it was posted from (`order.paid`, `refund.issued`, ...)."""
    lines: tuple[JournalLine, ...]


@dataclass(frozen=True)
class PartnerTrialBalance:
    """An accounting system's balances in one currency: account -> (debit, credit)."""

    currency: str
    accounts: Mapping[str, tuple[int, int]]


class AccountingPartner(Protocol):
    """An accounting system's journal-import API."""

    def post_entry(self, entry: JournalEntry, *, idempotency_key: str) -> str:
        """Import one journal entry; returns the partner's journal id. The same
        `idempotency_key` is imported once."""
        ...

    def trial_balance(self, currency: str) -> PartnerTrialBalance:
        """The partner's books in `currency`, account by account."""
        ...


@dataclass(frozen=True)
class Contact:
    """What the CRM holds about a customer. Marketing attributes only with consent."""

    customer_id: str
    email: str | None
    name: str | None
    phone: str | None
    marketing: Mapping[str, bool]
    """Per channel (`email`, `sms`, `whatsapp`): whether marketing is allowed."""
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderStats:
    """A customer's orders as the CRM sees them."""

    order_count: int
    lifetime_value: int
    currency: str | None
    last_order_id: str | None
    last_order_at: str | None
    last_order_status: str | None


class CrmPartner(Protocol):
    """A CRM's contacts API."""

    def upsert_contact(self, contact: Contact, *, idempotency_key: str) -> None:
        """Create or replace the contact of `contact.customer_id`."""
        ...

    def update_order_stats(
        self, customer_id: str, stats: OrderStats, *, idempotency_key: str
    ) -> None:
        """Set the contact's order count, lifetime value and last order."""
        ...

    def delete_contact(self, customer_id: str, *, idempotency_key: str) -> None:
        """Delete the contact and everything the CRM holds about it (no error when it is
        gone already)."""
        ...
