"""Stock reservations on the `inventory` container (partition = SKU).

Inventory document: `{"id": sku, "sku", "productId", "available", "reserved", "sold",
"received", "updatedAt"}`; `available + reserved + sold == received` always holds
(`received` is moved by the admin stock setter, the rest only here).

- `reserve_stock` is the checkout hot path: ONE batch per SKU, a marker
  `reserve:{attemptId}` plus the conditional patch (`available >= qty` -> `available -=
  qty, reserved += qty`). Two buyers racing for the last unit cannot both pass the
  condition, so stock never goes negative; the marker lets a crashed attempt's stock be
  released exactly once (`release_reservation`) by the next attempt or the expiry timer.
- Later moves (`release`, `sell`, `restock`) can be retried by webhooks, timers and
  admin calls, so each is idempotent per order: a transactional batch in the SKU's
  partition creates a marker document `{kind}:{orderId}` and patches the counters; a
  Conflict on the marker means the move was applied already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from cloudcart.core.clock import utcnow
from cloudcart.core.documents.port import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    PatchOp,
)
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.outbox import timestamp

logger = logging.getLogger(__name__)

INVENTORY = "inventory"
STOCK_MOVE_TYPE = "stock-move"

StockMove = Literal["release", "sell", "restock"]

# (field decremented, field incremented) per move.
_MOVES: dict[str, tuple[str, str]] = {
    "release": ("reserved", "available"),
    "sell": ("reserved", "sold"),
    "restock": ("sold", "available"),
}


class OutOfStock(Exception):
    """Not enough units of `sku` are available (or the SKU has no inventory)."""

    def __init__(self, sku: str, requested: int) -> None:
        super().__init__(f"only fewer than {requested} unit(s) of {sku!r} are available")
        self.sku = sku
        self.requested = requested


def _inventory(store: DocumentStore) -> Container:
    return store.container(INVENTORY)


def reserve_stock(store: DocumentStore, attempt_id: str, quantities: Mapping[str, int]) -> None:
    """Reserve every SKU's quantity for one checkout attempt, all or nothing.

    Each SKU moves in one batch in its partition: the marker `reserve:{attempt_id}` (state
    `reserved`) is created and `available >= qty -> available -= qty, reserved += qty`
    patched, so the marker says exactly which reservations an attempt made; a crashed
    attempt's stock is given back from them by `release_reservation`. Raises OutOfStock
    for the first SKU that cannot be reserved, after releasing what this call reserved
    (compensation); ReservationWithdrawn when the attempt was already released (its lease
    ran out and a retry or the recovery timer gave its stock back).
    """
    container = _inventory(store)
    tried: list[str] = []
    try:
        for sku, quantity in quantities.items():
            tried.append(sku)
            marker = _reserve_marker(sku, attempt_id, quantity, "reserved")
            try:
                container.batch(
                    sku,
                    [
                        BatchOp("create", document=marker),
                        BatchOp(
                            "patch",
                            id=sku,
                            patch=[
                                PatchOp("incr", "available", -quantity),
                                PatchOp("incr", "reserved", quantity),
                                PatchOp("set", "updatedAt", timestamp(utcnow())),
                            ],
                            condition=[Filter("available", "ge", quantity)],
                        ),
                    ],
                )
            except BatchFailed as exc:
                if exc.index == 1 and isinstance(exc.cause, (PreconditionFailed, NotFound)):
                    raise OutOfStock(sku, quantity) from None
                if exc.index == 0 and isinstance(exc.cause, Conflict):
                    if container.read(marker["id"], sku).get("state") == "reserved":
                        continue  # applied before by this attempt
                    raise ReservationWithdrawn(sku) from None
                raise
    except BaseException:
        # Every SKU tried so far, the failing one included: a batch that applied but whose
        # answer was lost is released too (the markers make this exact).
        release_reservation(store, attempt_id, tried)
        raise


class ReservationWithdrawn(Exception):
    """The attempt's reservation was released before it could reserve `sku` (the attempt
    outlived its lease and was taken over or recovered)."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"the reservation of {sku!r} was withdrawn from this checkout attempt")
        self.sku = sku


def _reserve_marker(sku: str, attempt_id: str, quantity: int, state: str) -> Document:
    return {
        "id": f"reserve:{attempt_id}",
        "sku": sku,
        "type": STOCK_MOVE_TYPE,
        "move": "reserve",
        "attemptId": attempt_id,
        "quantity": quantity,
        "state": state,
        "createdAt": timestamp(utcnow()),
    }


def release_reservation(store: DocumentStore, attempt_id: str, skus: Iterable[str]) -> int:
    """Give back what checkout attempt `attempt_id` reserved of `skus`, exactly once.

    Only SKUs whose `reserve:{attempt_id}` marker says `reserved` move (by the marker's
    quantity), in one batch that flips the marker to `released` If-Match its ETag; a SKU
    without a marker gets a `released` one, so an attempt still running past its lease
    can no longer reserve it. Returns how many SKUs were released now (0 on a repeat).
    Errors propagate: the caller keeps the attempt's record so a later run retries.
    """
    container = _inventory(store)
    released = 0
    for sku in dict.fromkeys(skus):
        marker_id = f"reserve:{attempt_id}"
        while True:
            try:
                marker = container.read(marker_id, sku)
            except NotFound:
                try:
                    container.create(_reserve_marker(sku, attempt_id, 0, "released"))
                except Conflict:
                    continue  # the attempt reserved meanwhile: release that
                break
            if marker.get("state") != "reserved":
                break
            quantity = int(marker["quantity"])
            done = {k: v for k, v in marker.items() if not k.startswith("_")}
            done.update(state="released", releasedAt=timestamp(utcnow()))
            try:
                container.batch(
                    sku,
                    [
                        BatchOp("replace", document=done, if_match=str(marker["_etag"])),
                        BatchOp(
                            "patch",
                            id=sku,
                            patch=[
                                PatchOp("incr", "reserved", -quantity),
                                PatchOp("incr", "available", quantity),
                                PatchOp("set", "updatedAt", timestamp(utcnow())),
                            ],
                        ),
                    ],
                )
            except BatchFailed as exc:
                if exc.index == 0 and isinstance(exc.cause, (PreconditionFailed, NotFound)):
                    continue  # released by someone else meanwhile: look again
                raise
            released += 1
            break
    return released


def move_stock(
    store: DocumentStore, order_id: str, move: StockMove, quantities: Sequence[tuple[str, int]]
) -> int:
    """Apply `move` for an order's lines once; returns how many SKUs moved now (0 when every
    move was applied before)."""
    source, target = _MOVES[move]
    container = _inventory(store)
    moved = 0
    for sku, quantity in quantities:
        if quantity <= 0:
            continue
        marker = {
            "id": f"{move}:{order_id}",
            "sku": sku,
            "type": STOCK_MOVE_TYPE,
            "move": move,
            "orderId": order_id,
            "quantity": quantity,
            "createdAt": timestamp(utcnow()),
        }
        try:
            container.batch(
                sku,
                [
                    BatchOp("create", document=marker),
                    BatchOp(
                        "patch",
                        id=sku,
                        patch=[
                            PatchOp("incr", source, -quantity),
                            PatchOp("incr", target, quantity),
                            PatchOp("set", "updatedAt", timestamp(utcnow())),
                        ],
                    ),
                ],
            )
            moved += 1
        except BatchFailed as exc:
            if exc.index == 0 and isinstance(exc.cause, Conflict):
                continue  # applied before: the whole point of the marker
            raise
    return moved
