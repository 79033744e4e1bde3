"""The ports the partner connectors call: one per partner, each with an HTTP adapter.

Business code (the connectors) knows only these protocols and errors. The HTTP adapters
(`http.py`) add timeouts, retries with backoff and jitter, an `Idempotency-Key` header
and authentication; the local simulators (`cloudcart.local.partners`) speak the same API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from cloudcart.core.errors import CloudcartError

PartnerName = Literal["fulfilment", "inventory"]
PARTNERS: tuple[PartnerName, ...] = ("fulfilment", "inventory")

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
