"""Facts: what the roll-ups count, each with its business time and an idempotency key.

One source of truth for both paths: the consumer turns each event into facts (reading the
order it names through the orders package, so the times and amounts are the order's own),
and `cloudcart analytics verify|rebuild` turns the source data (orders and notification
records; storefront facts come from the journal) into the same facts with the same keys. A
fact's key is what the processed marker records, so an event delivered twice, replayed, or
announced again by another event never counts twice.

Kinds, keys, times (and the events that announce them):

- `storefront`, `sf:<event id>`: each inner event's `at` (`storefront.events_recorded`);
- `placed`, `order:<id>:placed`: the order's `createdAt`, an import's `placedAt`
  (`order.placed`, `order.imported`);
- `paid`, `order:<id>:paid`: the order's `paid` history entry, an import's `placedAt`
  (`order.paid`, `order.imported`);
- `cancelled`, `order:<id>:cancelled`: its `cancelled` history entry (`order.cancelled`,
  `order.imported`);
- `refund`, `order:<id>:refund:<refund id>`: the refund's `createdAt` (`refund.issued`);
- `returned`, `order:<id>:returned`: the receipt's `receivedAt` (`return.received`,
  `order.imported`);
- `shipped` / `delivered`, `order:<id>:shipped|delivered:<shipment id>`: the shipment's
  `shippedAt` / `deliveredAt` (`shipment.dispatched`, `shipment.delivered`);
- `stock`, `stock:<event id>`: the event's time (`inventory.changed`);
- `notification`, `notification:<id>:<sent|delivered|bounced|failed>`: the time the record
  reached the status (`notification.status_changed`; a record that reached `delivered` or
  `bounced` without announcing `sent` counts as sent too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudcart.core.clock import parse_utc
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import DocumentStore
from cloudcart.core.ports.messages import InvalidMessage

STOREFRONT_EVENTS = ("storefront.events_recorded",)
ORDER_EVENTS = (
    "order.placed",
    "order.paid",
    "order.cancelled",
    "order.imported",
    "refund.issued",
    "return.received",
    "shipment.dispatched",
    "shipment.delivered",
)
STOCK_EVENTS = ("inventory.changed",)
NOTIFICATION_EVENTS = ("notification.status_changed",)
EVENTS: tuple[str, ...] = (
    *STOREFRONT_EVENTS,
    *ORDER_EVENTS,
    *STOCK_EVENTS,
    *NOTIFICATION_EVENTS,
)
"""Every event type the analytics consumer reads (its subscription's filter)."""

PAID_IMPORT_STATUSES = frozenset({"paid", "shipped", "delivered", "returned"})
"""Imported orders in these states were paid (at their `placedAt`)."""


@dataclass(frozen=True)
class Fact:
    """One countable fact: `kind`, its business time `at` (UTC), its idempotency `key`."""

    key: str
    kind: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (offset-less means UTC), or None."""
    return parse_utc(value)


class Lookups:
    """The other areas' public functions the facts need, with a small per-process cache of
    product categories (a category rarely changes; a sale is counted in the category the
    product has when the sale is counted)."""

    MAX_CACHED = 20_000

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._categories: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def order(self, customer_id: str, order_id: str) -> Mapping[str, Any] | None:
        """The order (a point read), or None when it does not exist."""
        from cloudcart.orders.service import OrderNotFound, get_order

        try:
            return get_order(self.store, customer_id, order_id)
        except OrderNotFound:
            return None

    def customer_orders(self, customer_id: str) -> list[Mapping[str, Any]]:
        """Every order of one customer (one partition, page by page)."""
        from cloudcart.orders.service import list_orders

        found: list[Mapping[str, Any]] = []
        cursor: str | None = None
        while True:
            items, cursor = list_orders(
                self.store, customer_id=customer_id, cursor=cursor, limit=100
            )
            found.extend(items)
            if cursor is None:
                return found

    def category(self, product_id: str | None) -> str | None:
        """The product's category id, or None (unknown product)."""
        if not product_id:
            return None
        with self._lock:
            if product_id in self._categories:
                return self._categories[product_id]
        from cloudcart.catalog.service import CatalogService, ProductNotFound

        try:
            product = CatalogService(self.store).get_product(product_id).document
            category = product.get("categoryId")
        except ProductNotFound:
            category = None
        value = str(category) if category else None
        with self._lock:
            if len(self._categories) >= self.MAX_CACHED:
                self._categories.clear()
            self._categories[product_id] = value
        return value


# --- orders -------------------------------------------------------------------------------


def _history_at(order: Mapping[str, Any], status: str) -> datetime | None:
    for entry in order.get("history") or []:
        if entry.get("status") == status:
            return parse_time(entry.get("at"))
    return None


def paid_at(order: Mapping[str, Any]) -> datetime | None:
    """When the order was paid: its `paid` history entry, or `placedAt` for an imported
    order in a paid state; None if it never was."""
    if order.get("imported"):
        if order.get("status") in PAID_IMPORT_STATUSES:
            return parse_time(order.get("placedAt"))
        return None
    return _history_at(order, "paid")


def _lines(order: Mapping[str, Any], lookups: Lookups) -> list[dict[str, Any]]:
    lines = []
    for line in order.get("lines") or []:
        product_id = line.get("productId")
        lines.append(
            {
                "sku": str(line.get("sku")),
                "productId": product_id,
                "categoryId": lookups.category(product_id),
                "quantity": int(line.get("quantity") or 0),
                "unitPrice": int(line.get("unitPrice") or 0),
            }
        )
    return lines


def _is_first_paid(order: Mapping[str, Any], at: datetime, lookups: Lookups) -> bool:
    """Whether no other order of the customer was paid earlier (ties: the smaller id)."""
    own = (at, str(order["id"]))
    for other in lookups.customer_orders(str(order["customerId"])):
        if other.get("id") == order["id"]:
            continue
        other_at = paid_at(other)
        if other_at is not None and (other_at, str(other.get("id"))) < own:
            return False
    return True


def _base(order: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "orderId": str(order["id"]),
        "customerId": str(order["customerId"]),
        "currency": str((order.get("totals") or {}).get("currency") or ""),
        "imported": bool(order.get("imported")),
    }


def placed_fact(order: Mapping[str, Any], lookups: Lookups) -> Fact | None:
    """The order was placed (imported orders count too, at their `placedAt`)."""
    at = parse_time(order.get("placedAt") if order.get("imported") else order.get("createdAt"))
    if at is None:
        return None
    return Fact(f"order:{order['id']}:placed", "placed", at, _base(order))


def paid_fact(order: Mapping[str, Any], lookups: Lookups) -> Fact | None:
    """The order was paid: revenue, units, products, categories, first or repeat order."""
    at = paid_at(order)
    if at is None:
        return None
    totals = order.get("totals") or {}
    gross = int(order.get("capturedAmount") or 0) or int(totals.get("total") or 0)
    data = {
        **_base(order),
        "gross": gross,
        "lines": _lines(order, lookups),
        "first": _is_first_paid(order, at, lookups),
    }
    return Fact(f"order:{order['id']}:paid", "paid", at, data)


def cancelled_fact(order: Mapping[str, Any]) -> Fact | None:
    """The order was cancelled."""
    at = (
        parse_time(order.get("placedAt"))
        if order.get("imported") and order.get("status") == "cancelled"
        else _history_at(order, "cancelled")
    )
    if at is None:
        return None
    return Fact(f"order:{order['id']}:cancelled", "cancelled", at, _base(order))


def refund_facts(order: Mapping[str, Any]) -> list[Fact]:
    """One fact per refund recorded on the order."""
    facts = []
    for refund in order.get("refunds") or []:
        at = parse_time(refund.get("createdAt"))
        if at is None or not refund.get("refundId"):
            continue
        data = {**_base(order), "amount": int(refund.get("amount") or 0)}
        facts.append(Fact(f"order:{order['id']}:refund:{refund['refundId']}", "refund", at, data))
    return facts


def returned_fact(order: Mapping[str, Any]) -> Fact | None:
    """Goods of the order came back (imported returned orders: every unit)."""
    if order.get("imported"):
        if order.get("status") != "returned":
            return None
        at = parse_time(order.get("placedAt"))
        units = sum(int(line.get("quantity") or 0) for line in order.get("lines") or [])
    else:
        received = order.get("returnsReceived") or []
        if not received:
            return None
        at = parse_time(received[-1].get("receivedAt"))
        units = sum(
            int(line.get("quantity") or 0) for entry in received for line in entry.get("lines", [])
        )
    if at is None:
        return None
    return Fact(f"order:{order['id']}:returned", "returned", at, {**_base(order), "units": units})


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


def shipment_facts(order: Mapping[str, Any], shipment_id: str | None = None) -> list[Fact]:
    """Shipped and delivered facts of the order's shipments (one, or all)."""
    facts = []
    paid = paid_at(order)
    for shipment in order.get("shipments") or []:
        sid = shipment.get("shipmentId")
        if not sid or (shipment_id is not None and sid != shipment_id):
            continue
        shipped = parse_time(shipment.get("shippedAt"))
        delivered = parse_time(shipment.get("deliveredAt"))
        if shipped is not None:
            data = {**_base(order), "seconds": _seconds(paid, shipped)}
            facts.append(Fact(f"order:{order['id']}:shipped:{sid}", "shipped", shipped, data))
        if delivered is not None:
            data = {**_base(order), "seconds": _seconds(shipped, delivered)}
            facts.append(Fact(f"order:{order['id']}:delivered:{sid}", "delivered", delivered, data))
    return facts


def order_facts(order: Mapping[str, Any], lookups: Lookups) -> list[Fact]:
    """Every fact an order holds (for verify and rebuild)."""
    found = [
        placed_fact(order, lookups),
        paid_fact(order, lookups),
        cancelled_fact(order),
        returned_fact(order),
    ]
    return [
        *(f for f in found if f is not None),
        *refund_facts(order),
        *shipment_facts(order),
    ]


def _order_of(event: Event, lookups: Lookups) -> Mapping[str, Any]:
    order_id = event.data.get("orderId") or event.subject
    customer_id = event.data.get("customerId")
    if not isinstance(order_id, str) or not isinstance(customer_id, str):
        raise InvalidMessage("InvalidEvent", f"{event.type} without orderId and customerId")
    order = lookups.order(customer_id, order_id)
    if order is None:
        # Orders are never deleted (erasure anonymises them), so the order must exist.
        raise InvalidMessage("UnknownOrder", f"{event.type}: order {order_id} does not exist")
    return order


def _order_event_facts(event: Event, lookups: Lookups) -> list[Fact]:
    order = _order_of(event, lookups)
    found: list[Fact | None]
    if event.type == "order.placed":
        found = [placed_fact(order, lookups)]
    elif event.type == "order.paid":
        found = [paid_fact(order, lookups)]
    elif event.type == "order.cancelled":
        found = [cancelled_fact(order)]
    elif event.type == "order.imported":
        found = [
            placed_fact(order, lookups),
            paid_fact(order, lookups),
            cancelled_fact(order),
            returned_fact(order),
        ]
    elif event.type == "refund.issued":
        refund_id = event.data.get("refundId")
        return [f for f in refund_facts(order) if f.key.endswith(f":refund:{refund_id}")]
    elif event.type == "return.received":
        found = [returned_fact(order)]
    else:
        shipment_id = str(event.data.get("shipmentId") or "")
        wanted = "shipped" if event.type == "shipment.dispatched" else "delivered"
        return [f for f in shipment_facts(order, shipment_id) if f.kind == wanted]
    return [f for f in found if f is not None]


# --- storefront and stock -------------------------------------------------------------------


def storefront_fact(
    event_id: str,
    accepted_at: datetime,
    owner: str,
    customer_id: str | None,
    visitor_id: str | None,
    events: Sequence[Mapping[str, Any]],
) -> Fact:
    """One storefront batch (each inner event counts in the bucket of its own `at`)."""
    return Fact(
        f"sf:{event_id}",
        "storefront",
        accepted_at,
        {
            "owner": owner,
            "customerId": customer_id,
            "visitorId": visitor_id,
            "events": [dict(e) for e in events],
        },
    )


def _storefront_event_fact(event: Event) -> Fact:
    from cloudcart.insights.history import parse_recorded

    batch = parse_recorded(event)
    return storefront_fact(
        batch.event_id,
        event.time,
        batch.owner_key,
        batch.customer_id,
        batch.visitor_id,
        batch.events,
    )


def _stock_event_fact(event: Event) -> Fact:
    data = event.data
    sku = data.get("sku")
    available = data.get("available")
    if not isinstance(sku, str) or not isinstance(available, int):
        raise InvalidMessage("InvalidEvent", "inventory.changed without sku and available")
    out_since, ended = data.get("outSince"), data.get("stockOut")
    return Fact(
        f"stock:{event.id}",
        "stock",
        event.time,
        {
            "sku": sku,
            "productId": data.get("productId"),
            "available": available,
            # The inventory keeps the out-of-stock periods, so they are exact whatever
            # order the events arrive in.
            "outSince": out_since if isinstance(out_since, str) else None,
            "stockOut": dict(ended) if isinstance(ended, dict) else None,
        },
    )


_NOT_YET_SENT = (None, "pending", "sending")


def notification_facts(
    notification_id: str, channel: str, status: str, previous: str | None, at: datetime
) -> list[Fact]:
    """What a notification's move to `status` counts (see the module docs)."""
    data = {"channel": channel}

    def fact(name: str) -> Fact:
        return Fact(
            f"notification:{notification_id}:{name}", "notification", at, {**data, "status": name}
        )

    if status in ("delivered", "bounced") and previous in _NOT_YET_SENT:
        return [fact("sent"), fact(status)]
    return [fact(status)]


def _notification_event_facts(event: Event) -> list[Fact]:
    data = event.data
    notification_id, channel, status = (
        data.get(k) for k in ("notificationId", "channel", "status")
    )
    at = parse_time(data.get("at")) or event.time
    if not isinstance(notification_id, str) or not isinstance(channel, str):
        raise InvalidMessage("InvalidEvent", f"{event.type} without notificationId and channel")
    if status not in ("sent", "delivered", "bounced", "failed"):
        raise InvalidMessage("InvalidEvent", f"{event.type} with status {status!r}")
    previous = data.get("previousStatus")
    return notification_facts(
        notification_id, channel, str(status), previous if isinstance(previous, str) else None, at
    )


def event_facts(event: Event, lookups: Lookups) -> list[Fact]:
    """The facts one event announces (InvalidMessage when it cannot be read)."""
    if event.type in NOTIFICATION_EVENTS:
        return _notification_event_facts(event)
    if event.type in STOREFRONT_EVENTS:
        return [_storefront_event_fact(event)]
    if event.type in STOCK_EVENTS:
        return [_stock_event_fact(event)]
    if event.type in ORDER_EVENTS:
        return _order_event_facts(event, lookups)
    return []


def record_notification_facts(record: Mapping[str, Any]) -> list[Fact]:
    """The facts a notification record's current status stands for (the recount of what
    its `notification.status_changed` events announced)."""
    status, channel = record.get("status"), record.get("channel")
    if status not in ("sent", "delivered", "bounced", "failed") or not isinstance(channel, str):
        return []
    reached = parse_time(
        record.get("statusAt") or record.get("deliveredAt") or record.get("createdAt")
    )
    if reached is None:
        return []
    notification_id = str(record["id"])
    sent = parse_time(record.get("sentAt"))
    if status == "sent":
        return notification_facts(notification_id, channel, status, "sending", reached)
    if status == "failed":
        # A provider may fail a message after accepting it: it was announced sent first.
        failed = notification_facts(notification_id, channel, status, "sending", reached)
        if sent is None:
            return failed
        return [*notification_facts(notification_id, channel, "sent", "sending", sent), *failed]
    at = parse_time(record.get("deliveredAt")) if status == "delivered" else None
    final = notification_facts(notification_id, channel, status, "sent", at or reached)
    if sent is None:
        # Reached delivered or bounced without announcing sent: counted sent then.
        return [
            *notification_facts(notification_id, channel, "sent", "sending", at or reached),
            *final,
        ]
    return [*notification_facts(notification_id, channel, "sent", "sending", sent), *final]


def source_facts(
    lookups: Lookups,
    *,
    orders: Callable[[], Iterator[Mapping[str, Any]]],
    notifications: Callable[[], Iterator[Mapping[str, Any]]] = lambda: iter(()),
) -> Iterator[Fact]:
    """Every fact the owners' source data holds (orders, notifications)."""
    for record in notifications():
        yield from record_notification_facts(record)
    for order in orders():
        yield from order_facts(order, lookups)
