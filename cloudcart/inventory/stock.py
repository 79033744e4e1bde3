"""Stock per SKU: the one owner of the `inventory` container (partition = SKU).

Every stock move goes through this module, and each one writes its `inventory.changed`
event in the same transactional batch as the new figures. Stock document::

    {"id": sku, "sku", "productId", "onHand", "reserved", "available", "shortfall",
     "sold", "received", "partner": {"onHand", "sequence", "eventId", "at"}, "updatedAt"}

- `onHand` counts units in the warehouse that no paid order has taken yet; `reserved`
  those of them held for orders awaiting payment (or for a checkout in flight).
- `available = max(0, onHand - reserved)`: what a customer may still order. It is stored,
  not computed on read, so product pages, carts and the search index read one field.
- `shortfall = max(0, reserved - onHand)`: units promised to orders that the warehouse
  says it does not have (a partner count lower than the reservations). It is recorded and
  raises `ops.stock_shortfall`; no order is cancelled because of it.
- `sold` counts units sold and not returned, `received` every unit ever put on hand, so
  `onHand + sold == received` (reconciliation checks it).

Moves (each a read and one batch If-Match the stock document's ETag, retried when a
concurrent move got there first, so two buyers of the last unit cannot both have it):

- `set_stock` (admin): a new absolute figure.
- `reserve_stock` / `release_reservation` (checkout): a `reserve:{attempt}` marker per SKU
  records what one checkout attempt holds, so a crashed attempt is given back exactly once.
- `move_order_stock` (order lifecycle): `release`, `sell` or `restock` once per order, each
  keyed by a `{move}:{orderId}` marker created in the same batch.
- `apply_partner_count` (the WMS): an absolute on-hand figure with a per-SKU sequence; an
  older or repeated figure is ignored.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from cloudcart.core.clock import now_timestamp, parse_utc
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import write_with_events
from cloudcart.core.ports.documents import (
    MAX_READ_MANY_KEYS,
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    PatchOp,
    Query,
    each,
    strip_system,
)
from cloudcart.inventory.events import InventoryChanged, StockOut, StockShortfall

logger = logging.getLogger(__name__)

INVENTORY = "inventory"
"""The container this package owns."""

STOCK_MOVE_TYPE = "stock-move"
"""`type` of a marker document (stock documents have no `type`)."""

INVENTORY_CHANGED = "inventory.changed"
STOCK_SHORTFALL = "ops.stock_shortfall"

Move = Literal["set", "reserve", "release", "sale", "return", "adjust"]
"""What changed stock; `inventory.changed` carries it as `move`."""

OrderMove = Literal["release", "sell", "restock"]
"""The moves an order makes after checkout (by the order's `stock` state)."""

_ORDER_MOVES: dict[str, Move] = {"release": "release", "sell": "sale", "restock": "return"}

_MAX_ATTEMPTS = 40
"""Rounds of read-and-write per move before giving up (`StockBusy`): under contention a
round loses only to a move that succeeded, so this bounds waiting, not correctness."""


# --- errors -------------------------------------------------------------------------------


class SkuNotFound(DomainError):
    """The SKU belongs to no product."""

    status = 404
    problem_type = "sku-not-found"
    title = "Not Found"


class StockBusy(DomainError):
    """The SKU's stock kept changing under this move; the caller may retry."""

    status = 409
    problem_type = "stock-busy"
    title = "Conflict"


class OutOfStock(Exception):
    """Not enough units of `sku` are available (or the SKU has no stock document)."""

    def __init__(self, sku: str, requested: int) -> None:
        super().__init__(f"fewer than {requested} unit(s) of {sku!r} are available")
        self.sku = sku
        self.requested = requested


class ReservationWithdrawn(Exception):
    """The attempt's reservation was released before it could reserve `sku` (the attempt
    outlived its lease and was taken over or recovered)."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"the reservation of {sku!r} was withdrawn from this checkout attempt")
        self.sku = sku


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockLevel:
    """The stock of one SKU."""

    sku: str
    product_id: str
    on_hand: int
    reserved: int
    available: int
    shortfall: int
    sold: int
    updated_at: str | None = None
    received: int | None = None
    partner_on_hand: int | None = None
    partner_sequence: int | None = None
    partner_at: str | None = None
    """When the warehouse's figure was last taken or recorded."""
    out_since: str | None = None
    """When `available` last fell to 0 (None while it is above 0)."""
    stock_outs: tuple[dict[str, Any], ...] = ()
    """The newest ended out-of-stock periods (`from`, `to`, `seconds`), newest first."""

    def to_public(self) -> dict[str, Any]:
        """The admin API's view (camelCase)."""
        return {
            "sku": self.sku,
            "productId": self.product_id,
            "onHand": self.on_hand,
            "reserved": self.reserved,
            "available": self.available,
            "shortfall": self.shortfall,
            "updatedAt": self.updated_at,
        }


def _counts(document: Mapping[str, Any]) -> tuple[int, int]:
    reserved = int(document.get("reserved", 0) or 0)
    if "onHand" in document:
        return int(document["onHand"]), reserved
    # Stored before on-hand was modelled: every unit was then either available or reserved.
    return int(document.get("available", 0) or 0) + reserved, reserved


def level_of(document: Mapping[str, Any]) -> StockLevel:
    """The stock level a stock document holds."""
    on_hand, reserved = _counts(document)
    partner = document.get("partner") or {}
    return StockLevel(
        sku=str(document["sku"]),
        product_id=str(document.get("productId", "")),
        on_hand=on_hand,
        reserved=reserved,
        available=max(0, on_hand - reserved),
        shortfall=max(0, reserved - on_hand),
        sold=int(document.get("sold", 0) or 0),
        updated_at=document.get("updatedAt"),
        received=int(document["received"]) if "received" in document else None,
        partner_on_hand=partner.get("onHand"),
        partner_sequence=partner.get("sequence"),
        partner_at=partner.get("at"),
        out_since=document.get("outSince"),
        stock_outs=tuple(dict(p) for p in document.get("stockOuts") or ()),
    )


def _container(store: DocumentStore) -> Container:
    return store.container(INVENTORY)


def stock_level(store: DocumentStore, sku: str) -> StockLevel | None:
    """The stock of one SKU, or None when no product has claimed it (one point read)."""
    try:
        document = _container(store).read(sku, sku)
    except NotFound:
        return None
    if document.get("type") is not None:
        return None
    return level_of(document)


def stock_levels(store: DocumentStore, skus: Iterable[str]) -> dict[str, StockLevel]:
    """The stock of each SKU that has any, in the order given; unknown SKUs are left out.

    One batched read (`read_many`) per `MAX_READ_MANY_KEYS` SKUs, so a product page
    costs the same round trips whatever its number of variants.
    """
    wanted = list(dict.fromkeys(skus))
    container = _container(store)
    found: dict[str, StockLevel] = {}
    for start in range(0, len(wanted), MAX_READ_MANY_KEYS):
        chunk = wanted[start : start + MAX_READ_MANY_KEYS]
        for document in container.read_many([(sku, sku) for sku in chunk]):
            # Markers live in the SKU's partition; like `stock_level`, never count one.
            if document.get("type") is None:
                found[str(document["id"])] = level_of(document)
    return found


def available_units(store: DocumentStore, skus: Iterable[str]) -> dict[str, int]:
    """Units available per SKU (0 for a SKU without stock)."""
    wanted = list(dict.fromkeys(skus))
    levels = stock_levels(store, wanted)
    return {sku: levels[sku].available if sku in levels else 0 for sku in wanted}


def all_levels(store: DocumentStore) -> Iterator[StockLevel]:
    """Every SKU's stock (a cross-partition query, page by page: for reindexing and
    reconciliation, never for a request)."""
    container = _container(store)
    # Markers carry a `type` and outbox events a `kind`; stock documents neither.
    query = Query(filters=(Filter("type", "exists", False), Filter("kind", "exists", False)))
    return (level_of(document) for document in each(container, query))


# --- claiming SKUs ------------------------------------------------------------------------


def claim_sku(
    store: DocumentStore,
    product_id: str,
    sku: str,
    *,
    on_hand: int = 0,
    correlation_id: str | None = None,
) -> bool | str:
    """Create the stock document of `sku` for `product_id`, with `on_hand` units (none by
    default; more is announced as `inventory.changed`, move `set`, in the same batch, as
    `set_stock` would announce it).

    SKUs are unique across the catalog and products live in different partitions, so the
    stock document doubles as the SKU's claim (a create is atomic). Returns True when this
    call created it, False when the product had it already (its stock is then left as it
    is), or the id of the product that holds it. A claim whose product does not exist is
    taken over by the caller of `take_over_orphan`.
    """
    if isinstance(on_hand, bool) or not isinstance(on_hand, int) or on_hand < 0:
        raise ValueError("stock figures are whole numbers >= 0")
    empty = {
        "id": sku,
        "sku": sku,
        "productId": product_id,
        "onHand": 0,
        "reserved": 0,
        "available": 0,
        "shortfall": 0,
        "sold": 0,
        "received": 0,
        "updatedAt": now_timestamp(),
    }
    container = _container(store)
    try:
        if on_hand:
            document = _with_derived(
                {**empty, "onHand": on_hand, "received": on_hand}, now_timestamp()
            )
            plan = _Plan(document, "set", on_hand, "admin")
            write_with_events(
                container,
                sku,
                [BatchOp("create", document=document)],
                _events(level_of(empty), document, plan, correlation_id),
            )
        else:
            # Not announced, and not out of stock: a SKU that never had a unit has not
            # run out (its first move to 0 starts an out-of-stock period).
            container.create(empty)
        return True
    except Conflict:
        pass
    except BatchFailed as exc:
        if not isinstance(exc.cause, Conflict):
            raise
    owner = container.read(sku, sku).get("productId")
    if owner == product_id:
        return False
    return str(owner)


def take_over_orphan(store: DocumentStore, sku: str, orphan_owner: str, product_id: str) -> bool:
    """Move an orphaned claim (its product was never written) to `product_id`; False when
    someone else changed the claim meanwhile."""
    container = _container(store)
    existing = container.read(sku, sku)
    if existing.get("productId") != orphan_owner:
        return False
    try:
        container.patch(
            sku,
            sku,
            [PatchOp("set", "productId", product_id), PatchOp("set", "updatedAt", now_timestamp())],
            if_match=existing["_etag"],
        )
    except PreconditionFailed:
        return False
    return True


def release_sku(store: DocumentStore, product_id: str, sku: str) -> bool:
    """Give back a SKU a product no longer uses, unless stock is reserved against it or it
    was sold (orders still need its document). Returns True when it was released."""
    container = _container(store)
    try:
        current = container.read(sku, sku)
        if current.get("productId") != product_id:
            return False
        level = level_of(current)
        if level.reserved or level.sold:
            return False
        container.delete(sku, sku, if_match=current["_etag"])
        return True
    except (NotFound, PreconditionFailed):
        return False


def owner_of(store: DocumentStore, sku: str) -> str | None:
    """The product that claimed `sku`, or None."""
    level = stock_level(store, sku)
    return level.product_id if level is not None else None


# --- the one write path -------------------------------------------------------------------


@dataclass
class _Plan:
    """What one move writes: marker operations first, then the stock document."""

    document: Document
    move: Move
    quantity: int
    reference: str
    markers: list[BatchOp] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _received(document: Mapping[str, Any], on_hand: int) -> int:
    """Units ever put on hand; a document from before it was counted has `onHand + sold`."""
    if "received" in document:
        return int(document["received"])
    return on_hand + int(document.get("sold", 0) or 0)


STOCK_OUTS_KEPT = 20
"""Ended out-of-stock periods a stock document keeps (the newest)."""


def _with_derived(document: Document, now: str) -> Document:
    """The document with its derived figures and out-of-stock record as of `now` (the
    moment of the move, which its events carry too)."""
    on_hand, reserved = _counts(document)
    document["onHand"] = on_hand
    document["reserved"] = reserved
    document["available"] = max(0, on_hand - reserved)
    document["shortfall"] = max(0, reserved - on_hand)
    if document["shortfall"] and not document.get("shortfallSince"):
        document["shortfallSince"] = now
    elif not document["shortfall"]:
        document.pop("shortfallSince", None)
    out_since = document.get("outSince")
    if document["available"] == 0 and not out_since:
        document["outSince"] = now
    elif document["available"] > 0 and out_since:
        # Kept here, where every move is serialised, so the periods are exact whatever
        # order their events reach a consumer in.
        ended = {"from": out_since, "to": now, "seconds": _seconds_between(out_since, now)}
        document["stockOuts"] = [ended, *(document.get("stockOuts") or [])][:STOCK_OUTS_KEPT]
        document.pop("outSince")
    document["updatedAt"] = now
    return document


def _seconds_between(start: str, end: str) -> int:
    began, ended = parse_utc(start), parse_utc(end)
    return int((ended - began).total_seconds()) if began and ended else 0


def _ended_now(document: Mapping[str, Any]) -> StockOut | None:
    """The out-of-stock period the move that wrote `document` ended, if it ended one."""
    periods = document.get("stockOuts") or []
    if periods and periods[0].get("to") == document.get("updatedAt"):
        return cast("StockOut", dict(periods[0]))
    return None


def _events(
    before: StockLevel, after: Document, plan: _Plan, correlation_id: str | None
) -> list[Event]:
    level = level_of(after)
    changed: InventoryChanged = {
        "sku": level.sku,
        "productId": level.product_id,
        "available": level.available,
        "availableBefore": before.available,
        "onHand": level.on_hand,
        "reserved": level.reserved,
        "move": plan.move,
        "quantity": plan.quantity,
        "reference": plan.reference,
        "outSince": after.get("outSince"),
        "stockOut": _ended_now(after),
    }
    # Some moves add members of their own (the order, the warehouse's sequence and reason).
    data = {**changed, **plan.extra}
    events = [new_event(INVENTORY_CHANGED, level.sku, data, correlation_id=correlation_id)]
    if level.shortfall > before.shortfall:
        shortfall: StockShortfall = {
            "sku": level.sku,
            "productId": level.product_id,
            "onHand": level.on_hand,
            "reserved": level.reserved,
            "shortfall": level.shortfall,
            "reason": plan.move,
            "reference": plan.reference,
        }
        events.append(
            new_event(STOCK_SHORTFALL, level.sku, shortfall, correlation_id=correlation_id)
        )
    return events


def _pause(attempt: int) -> None:
    # Short, jittered: a lost round means another move committed, so the next one is
    # likely to win; the jitter keeps a crowd of buyers from colliding in lock-step.
    time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))


MarkerConflict = Callable[[Container], bool]
"""Decides a Conflict on a plan's first marker: True = applied before (nothing to do)."""


def _apply(
    store: DocumentStore,
    sku: str,
    plan_for: Callable[[Document], _Plan | None],
    *,
    correlation_id: str | None = None,
    on_marker_conflict: MarkerConflict | None = None,
) -> StockLevel | None:
    """Read the SKU's stock, let `plan_for` decide the move, and write it with its events
    If-Match the stock's ETag, again from the top when a concurrent move won the round.

    `plan_for` raises to refuse the move and returns None when there is nothing to do.
    Returns the new level (None when nothing was written). Raises SkuNotFound, StockBusy,
    and BatchFailed for failures other than a lost round or a handled marker conflict.
    """
    container = _container(store)
    for attempt in range(_MAX_ATTEMPTS):
        try:
            current = container.read(sku, sku)
        except NotFound:
            raise SkuNotFound(f"SKU {sku!r} belongs to no product") from None
        plan = plan_for(strip_system(current))
        if plan is None:
            return None
        document = _with_derived(plan.document, now_timestamp())
        markers = plan.markers
        try:
            results = write_with_events(
                container,
                sku,
                [*markers, BatchOp("replace", document=document, if_match=str(current["_etag"]))],
                _events(level_of(current), document, plan, correlation_id),
            )
        except BatchFailed as exc:
            if exc.index == len(markers) and isinstance(exc.cause, PreconditionFailed | NotFound):
                _pause(attempt)
                continue
            if (
                exc.index == 0
                and markers
                and isinstance(exc.cause, Conflict)
                and on_marker_conflict is not None
                and on_marker_conflict(container)
            ):
                return None
            raise
        return level_of(results[len(markers)])
    raise StockBusy(f"the stock of {sku!r} kept changing; retry")


# --- moves --------------------------------------------------------------------------------


def set_stock(
    store: DocumentStore,
    sku: str,
    *,
    available: int | None = None,
    on_hand: int | None = None,
    correlation_id: str | None = None,
) -> StockLevel:
    """An admin's absolute figure: `on_hand`, or `available` (then on hand becomes
    `available + reserved`: reservations are left as they are). Announced as
    `inventory.changed` with move `set`."""
    if (available is None) == (on_hand is None):
        raise ValueError("give exactly one of available and on_hand")
    target = available if available is not None else on_hand
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise ValueError("stock figures are whole numbers >= 0")

    def plan_for(document: Document) -> _Plan:
        old_on_hand, reserved = _counts(document)
        new_on_hand = target + reserved if available is not None else target
        document["onHand"] = new_on_hand
        document["received"] = _received(document, old_on_hand) + (new_on_hand - old_on_hand)
        return _Plan(document, "set", new_on_hand, "admin")

    level = _apply(store, sku, plan_for, correlation_id=correlation_id)
    assert level is not None
    return level


def _reserve_marker(sku: str, attempt_id: str, quantity: int, state: str) -> Document:
    return {
        "id": f"reserve:{attempt_id}",
        "sku": sku,
        "type": STOCK_MOVE_TYPE,
        "move": "reserve",
        "attemptId": attempt_id,
        "quantity": quantity,
        "state": state,
        "createdAt": now_timestamp(),
    }


def reserve_stock(
    store: DocumentStore,
    attempt_id: str,
    quantities: Mapping[str, int],
    *,
    reference: str | None = None,
) -> None:
    """Reserve every SKU's quantity for one checkout attempt, all or nothing.

    Each SKU moves in one batch in its partition: the marker `reserve:{attempt_id}` (state
    `reserved`) is created with the new figures, so the marker says exactly which
    reservations an attempt made and `release_reservation` gives a crashed attempt's stock
    back from them. Raises OutOfStock for the first SKU that cannot be reserved, after
    releasing what this call reserved (compensation); ReservationWithdrawn when the
    attempt was already released (its lease ran out and a retry or the recovery timer
    gave its stock back).
    """
    if any(isinstance(q, bool) or not isinstance(q, int) or q < 1 for q in quantities.values()):
        raise ValueError("reserved quantities are whole numbers >= 1")
    tried: list[str] = []
    try:
        for sku, quantity in quantities.items():
            tried.append(sku)
            _reserve_one(store, attempt_id, sku, quantity, reference or attempt_id)
    except BaseException:
        # Every SKU tried so far, the failing one included: a batch that applied but whose
        # answer was lost is released too (the markers make this exact).
        release_reservation(store, attempt_id, tried)
        raise


def _reserve_one(
    store: DocumentStore, attempt_id: str, sku: str, quantity: int, reference: str
) -> None:
    marker = _reserve_marker(sku, attempt_id, quantity, "reserved")

    def applied_before(container: Container) -> bool:
        try:
            state = container.read(marker["id"], sku).get("state")
        except NotFound:
            return False
        if state == "reserved":
            return True
        raise ReservationWithdrawn(sku)

    def plan_for(document: Document) -> _Plan | None:
        if level_of(document).available < quantity:
            # Short, unless this very attempt holds the units already (a repeat).
            if applied_before(_container(store)):
                return None
            raise OutOfStock(sku, quantity)
        on_hand, reserved = _counts(document)
        document.update(onHand=on_hand, reserved=reserved + quantity)
        return _Plan(
            document,
            "reserve",
            quantity,
            reference,
            markers=[BatchOp("create", document=marker)],
        )

    try:
        _apply(store, sku, plan_for, on_marker_conflict=applied_before)
    except SkuNotFound:
        raise OutOfStock(sku, quantity) from None


def release_reservation(store: DocumentStore, attempt_id: str, skus: Iterable[str]) -> int:
    """Give back what checkout attempt `attempt_id` reserved of `skus`, exactly once.

    Only SKUs whose `reserve:{attempt_id}` marker says `reserved` move (by the marker's
    quantity), in one batch that flips the marker to `released` If-Match its ETag; a SKU
    without a marker gets a `released` one, so an attempt still running past its lease
    can no longer reserve it. Returns how many SKUs were released now (0 on a repeat).
    Errors propagate: the caller keeps the attempt's record so a later run retries.
    """
    container = _container(store)
    released = 0
    marker_id = f"reserve:{attempt_id}"
    for sku in dict.fromkeys(skus):
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
            plan_for = _release_plan(attempt_id, marker)
            try:
                _apply(store, sku, plan_for)
            except BatchFailed as exc:
                if exc.index == 0 and isinstance(exc.cause, PreconditionFailed | NotFound):
                    continue  # released by someone else meanwhile: look again
                raise
            except SkuNotFound:
                break
            released += 1
            break
    return released


def _release_plan(attempt_id: str, marker: Document) -> Callable[[Document], _Plan]:
    quantity = int(marker["quantity"])
    done = {**strip_system(marker), "state": "released", "releasedAt": now_timestamp()}

    def plan_for(document: Document) -> _Plan:
        on_hand, reserved = _counts(document)
        document["onHand"] = on_hand
        document["reserved"] = max(0, reserved - quantity)
        return _Plan(
            document,
            "release",
            quantity,
            attempt_id,
            markers=[BatchOp("replace", document=done, if_match=str(marker["_etag"]))],
        )

    return plan_for


def _order_move_plan(
    order_id: str, move: OrderMove, sku: str, quantity: int
) -> Callable[[Document], _Plan]:
    kind = _ORDER_MOVES[move]
    marker = {
        "id": f"{move}:{order_id}",
        "sku": sku,
        "type": STOCK_MOVE_TYPE,
        "move": move,
        "orderId": order_id,
        "quantity": quantity,
        "createdAt": now_timestamp(),
    }

    def plan_for(document: Document) -> _Plan:
        on_hand, reserved = _counts(document)
        sold = int(document.get("sold", 0) or 0)
        if kind == "release":
            reserved -= quantity
        elif kind == "sale":
            reserved -= quantity
            on_hand -= quantity
            sold += quantity
        else:
            on_hand += quantity
            if quantity > sold:
                # More units back than the SKU ever sold (counts from before sales were
                # recorded): the surplus arrives as received stock.
                document["received"] = _received(document, on_hand - quantity) + quantity - sold
            sold -= quantity
        document.update(onHand=on_hand, reserved=max(0, reserved), sold=max(0, sold))
        return _Plan(
            document,
            kind,
            quantity,
            order_id,
            markers=[BatchOp("create", document=marker)],
            extra={"orderId": order_id},
        )

    return plan_for


def move_order_stock(
    store: DocumentStore,
    order_id: str,
    move: OrderMove,
    quantities: Sequence[tuple[str, int]],
    *,
    correlation_id: str | None = None,
) -> int:
    """Apply an order's `release`, `sell` or `restock` once per SKU; returns how many SKUs
    moved now (0 when every move was applied before).

    - release: reserved units go back to available (an unpaid order ended);
    - sell: reserved units leave on hand (the order was paid);
    - restock: sold units come back on hand (a paid order was cancelled, or returned
      units arrived resellable).
    """
    moved = 0
    for sku, quantity in quantities:
        if quantity <= 0:
            continue
        plan_for = _order_move_plan(order_id, move, sku, quantity)
        try:
            level = _apply(
                store,
                sku,
                plan_for,
                correlation_id=correlation_id,
                on_marker_conflict=lambda _container: True,
            )
        except SkuNotFound:
            logger.warning("order %s moves stock of %s, which has no stock document", order_id, sku)
            continue
        if level is not None:
            moved += 1
    return moved


@dataclass(frozen=True)
class PartnerCount:
    """An absolute on-hand figure from the warehouse."""

    sku: str
    on_hand: int
    sequence: int
    event_id: str
    reason: str
    occurred_at: str


def apply_partner_count(
    store: DocumentStore, count: PartnerCount, *, correlation_id: str | None = None
) -> Literal["applied", "stale", "duplicate", "unknown-sku"]:
    """Take the warehouse's on-hand figure for a SKU, unless a figure with the same or a
    higher sequence was applied already (late or repeated messages change nothing).

    A figure below what is reserved leaves `available` at 0 and records the shortfall
    (`ops.stock_shortfall`); reservations and paid orders are never touched by it.
    """
    outcome: list[Literal["applied", "stale", "duplicate"]] = ["applied"]

    def plan_for(document: Document) -> _Plan | None:
        partner = document.get("partner") or {}
        if partner.get("eventId") == count.event_id:
            outcome[0] = "duplicate"
            return None
        if partner.get("sequence") is not None and int(partner["sequence"]) >= count.sequence:
            outcome[0] = "stale"
            return None
        old_on_hand, _ = _counts(document)
        document["onHand"] = count.on_hand
        document["received"] = _received(document, old_on_hand) + (count.on_hand - old_on_hand)
        document["partner"] = {
            "onHand": count.on_hand,
            "sequence": count.sequence,
            "eventId": count.event_id,
            "reason": count.reason,
            "at": count.occurred_at,
        }
        return _Plan(
            document,
            "adjust",
            count.on_hand,
            count.event_id,
            extra={"sequence": count.sequence, "reason": count.reason},
        )

    try:
        _apply(store, count.sku, plan_for, correlation_id=correlation_id)
    except SkuNotFound:
        return "unknown-sku"
    return outcome[0]


def record_partner_figure(store: DocumentStore, sku: str, on_hand: int, sequence: int) -> None:
    """Remember the warehouse's figure after one of our moves (its answer to the move), so
    reconciliation can compare; never changes the shop's own figures."""
    container = _container(store)
    for _ in range(_MAX_ATTEMPTS):
        try:
            current = container.read(sku, sku)
        except NotFound:
            return
        partner = dict(current.get("partner") or {})
        if partner.get("sequence") is not None and int(partner["sequence"]) >= sequence:
            return
        partner.update(onHand=on_hand, sequence=sequence, at=now_timestamp())
        try:
            container.patch(
                sku, sku, [PatchOp("set", "partner", partner)], if_match=current["_etag"]
            )
            return
        except PreconditionFailed:
            continue
