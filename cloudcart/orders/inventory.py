"""Stock reservations on the `inventory` container (partition = SKU).

Inventory document: `{"id": sku, "sku", "productId", "available", "reserved", "sold",
"received", "updatedAt"}`; `available + reserved + sold == received` always holds
(`received` is moved by the admin stock setter, the rest only here).

- `reserve_stock` is the checkout hot path: ONE conditional patch per SKU
  (`available >= qty` -> `available -= qty, reserved += qty`). Two buyers racing for the
  last unit cannot both pass the condition, so stock never goes negative.
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
from cloudcart.core.documents.port import BatchOp, Container, DocumentStore, Filter, PatchOp
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


def reserve_stock(store: DocumentStore, quantities: Mapping[str, int]) -> None:
    """Reserve every SKU's quantity, all or nothing.

    Raises OutOfStock for the first SKU that cannot be reserved, after releasing what this
    call reserved already (compensation), so a failed checkout holds no stock.
    """
    container = _inventory(store)
    done: list[tuple[str, int]] = []
    try:
        for sku, quantity in quantities.items():
            try:
                container.patch(
                    sku,
                    sku,
                    [
                        PatchOp("incr", "available", -quantity),
                        PatchOp("incr", "reserved", quantity),
                        PatchOp("set", "updatedAt", timestamp(utcnow())),
                    ],
                    condition=[Filter("available", "ge", quantity)],
                )
            except (PreconditionFailed, NotFound):
                raise OutOfStock(sku, quantity) from None
            done.append((sku, quantity))
    except BaseException:
        unreserve(store, done)
        raise


def unreserve(store: DocumentStore, reserved: Iterable[tuple[str, int]]) -> None:
    """Give back reservations made by a checkout that then failed before its order existed
    (no marker: the order never existed, so nothing else can release them)."""
    container = _inventory(store)
    for sku, quantity in reserved:
        try:
            container.patch(
                sku,
                sku,
                [PatchOp("incr", "available", quantity), PatchOp("incr", "reserved", -quantity)],
            )
        except Exception:  # logged loudly; reconciliation reports the drift
            logger.exception("could not release %d unit(s) of %s", quantity, sku)


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
