"""Small in-memory partners for the connectors' unit tests: they keep one request per
idempotency key like the real APIs do, and can be told to fail or refuse."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from cloudcart.integrations.partners.port import (
    CancelOutcome,
    FulfilmentAccepted,
    FulfilmentRequest,
    PartnerRejected,
    PartnerUnavailable,
    StockFigure,
    StockMove,
)


@dataclass
class FakeFulfilmentPartner:
    """Fulfilment requests by idempotency key; `down` failures come first, `reject` refuses."""

    down: int = 0
    reject: bool = False
    shipped: set[str] = field(default_factory=set)
    requests: dict[str, tuple[str, FulfilmentRequest]] = field(default_factory=dict)
    cancels: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _gate(self) -> None:
        self.calls += 1
        if self.down > 0:
            self.down -= 1
            raise PartnerUnavailable("fulfilment partner answered 503 (attempt 4 of 4)")
        if self.reject:
            raise PartnerRejected(422, "lines: unknown SKU")

    def create_request(
        self, request: FulfilmentRequest, *, idempotency_key: str
    ) -> FulfilmentAccepted:
        with self._lock:
            self._gate()
            if idempotency_key not in self.requests:
                self.requests[idempotency_key] = (f"fr-{next(self._ids)}", request)
            return FulfilmentAccepted(self.requests[idempotency_key][0], "accepted")

    def cancel_request(self, request_id: str, *, idempotency_key: str) -> CancelOutcome:
        with self._lock:
            self._gate()
            if request_id in self.shipped:
                return CancelOutcome(False, "shipped")
            self.cancels[idempotency_key] = request_id
            return CancelOutcome(True, "cancelled")


@dataclass
class FakeInventoryPartner:
    """A WMS that applies each idempotency key once and answers its figure."""

    moves: dict[str, StockMove] = field(default_factory=dict)
    on_hand: dict[str, int] = field(default_factory=dict)
    sequence: dict[str, int] = field(default_factory=dict)

    def record_move(self, move: StockMove, *, idempotency_key: str) -> StockFigure:
        if idempotency_key not in self.moves:
            self.moves[idempotency_key] = move
            current = self.on_hand.get(move.sku, 0)
            if move.kind in ("set", "adjust") and move.on_hand is not None:
                current = move.on_hand
            elif move.kind == "sale":
                current -= move.quantity
            elif move.kind == "return":
                current += move.quantity
            self.on_hand[move.sku] = current
            self.sequence[move.sku] = self.sequence.get(move.sku, 0) + 1
        return StockFigure(move.sku, self.on_hand[move.sku], self.sequence[move.sku])

    def stock(self, sku: str) -> StockFigure | None:
        if sku not in self.on_hand:
            return None
        return StockFigure(sku, self.on_hand[sku], self.sequence[sku])
