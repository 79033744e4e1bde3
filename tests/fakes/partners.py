"""Small in-memory partners for the connectors' unit tests: they keep one request per
idempotency key like the real APIs do, and can be told to fail or refuse."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from cloudcart.core.ports.partners import (
    CancelOutcome,
    Contact,
    FulfilmentAccepted,
    FulfilmentRequest,
    JournalEntry,
    OrderStats,
    PartnerRejected,
    PartnerTrialBalance,
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


@dataclass
class FakeAccountingPartner:
    """A journal that imports each idempotency key once."""

    entries: dict[str, JournalEntry] = field(default_factory=dict)
    down: int = 0

    def post_entry(self, entry: JournalEntry, *, idempotency_key: str) -> str:
        if self.down > 0:
            self.down -= 1
            raise PartnerUnavailable("accounting partner answered 503 (attempt 1 of 1)")
        self.entries.setdefault(idempotency_key, entry)
        return f"jr-{len(self.entries)}"

    def trial_balance(self, currency: str) -> PartnerTrialBalance:
        sums: dict[str, tuple[int, int]] = {}
        for entry in self.entries.values():
            if entry.currency != currency:
                continue
            for line in entry.lines:
                debit, credit = sums.get(line.account, (0, 0))
                sums[line.account] = (debit + line.debit, credit + line.credit)
        return PartnerTrialBalance(currency, sums)


@dataclass
class FakeCrmPartner:
    """Contacts by customer id, with the keys of every call."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    stats: dict[str, OrderStats] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)

    def upsert_contact(self, contact: Contact, *, idempotency_key: str) -> None:
        self.keys.append(idempotency_key)
        self.contacts[contact.customer_id] = contact
        self.deleted.discard(contact.customer_id)

    def update_order_stats(
        self, customer_id: str, stats: OrderStats, *, idempotency_key: str
    ) -> None:
        self.keys.append(idempotency_key)
        if customer_id not in self.contacts:
            raise PartnerRejected(404, "no such contact")
        self.stats[customer_id] = stats

    def delete_contact(self, customer_id: str, *, idempotency_key: str) -> None:
        self.keys.append(idempotency_key)
        self.contacts.pop(customer_id, None)
        self.stats.pop(customer_id, None)
        self.deleted.add(customer_id)
