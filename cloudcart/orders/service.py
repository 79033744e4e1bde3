"""Order documents: lookup, the public view, lists, and ETag-conditional transitions.

Storage: the `orders` container, partition = customer id. An order document is an
`OrderDocument` (cloudcart/orders/documents.py, its members and when each is present);
`as_order` is where a stored document read here becomes one.

Finding an order by id alone (webhooks, admin routes) is a cross-partition query on
`type = "order" AND id = ?`: Cosmos serves it from the default (all paths) index and
webhooks/admin calls are rare next to storefront reads, so no pointer document is written
on the checkout path. Every customer route uses a point read in the caller's partition,
so another customer's order id answers 404 exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from cloudcart.core.clock import now_timestamp
from cloudcart.core.cursors import (
    CONTINUATION_CURSOR_PATTERN,
    decode_continuation,
    encode_continuation,
)
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.events import Event
from cloudcart.core.outbox import write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    Query,
    fill_page,
    first,
)
from cloudcart.orders.documents import (
    HistoryEntryDocument,
    OrderDocument,
    OrderLineDocument,
    OrderPaymentDocument,
)
from cloudcart.orders.state import OrderStatus

ORDERS = "orders"
ORDER_TYPE: Final = "order"
_TRANSITION_ATTEMPTS = 8
MAX_RECORDED_PAYMENT_EVENTS = 50


class OrderNotFound(DomainError):
    """No such order for this caller (or at all)."""

    status = 404
    title = "Not Found"
    problem_type = "order-not-found"

    def problem_detail(self) -> str:
        """The same words whoever asks: whether the id exists for another customer stays
        unsaid."""
        return "no such order"


class OrderRuleViolation(DomainError):
    """A request the order's state or rules forbid: the problem's detail and its catalogued
    type, which gives the status and title."""

    def __init__(self, detail: str, type_: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problem_type = type_
        self.catalogued(type_)


def orders_container(store: DocumentStore) -> Container:
    """The `orders` container."""
    return store.container(ORDERS)


now_stamp = now_timestamp
"""Now as a fixed-width UTC timestamp (string order is time order)."""


def as_order(document: Document) -> OrderDocument:
    """A stored document of type `order` as the `OrderDocument` it is (no copy, no check:
    the callers filter on `type`, and tests/unit/orders/test_document_types.py checks that
    what the orders area stores matches the type)."""
    return cast(OrderDocument, document)


def find_order(store: DocumentStore, order_id: str) -> OrderDocument | None:
    """The order with that id in any partition, or None (one cross-partition query)."""
    # `first` follows continuations: a cross-partition query may answer an empty page.
    query = Query(filters=(Filter("type", "eq", ORDER_TYPE), Filter("id", "eq", order_id)))
    found = first(orders_container(store), query)
    return None if found is None else as_order(found)


def get_order(store: DocumentStore, customer_id: str, order_id: str) -> OrderDocument:
    """The caller's order (point read); OrderNotFound otherwise."""
    try:
        document = orders_container(store).read(order_id, customer_id)
    except NotFound:
        raise OrderNotFound(order_id) from None
    if document.get("type") != ORDER_TYPE:
        raise OrderNotFound(order_id)
    return as_order(document)


def money(amount: int | None, currency: str) -> dict[str, Any]:
    """`{"amount", "currency"}` (`amount` None: an imported line's unknown price)."""
    return {"amount": amount, "currency": currency}


def public_payment(payment: OrderPaymentDocument | None) -> dict[str, Any] | None:
    """The payment as the API shows it."""
    if not payment:
        return None
    return {
        "provider": payment.get("provider"),
        "paymentId": payment.get("paymentId"),
        "clientSecret": payment.get("clientSecret"),
        "confirmUrl": payment.get("confirmUrl"),
    }


def public_order(document: OrderDocument) -> dict[str, Any]:
    """The order as the API returns it (no storage fields)."""
    totals = document["totals"]
    currency = totals["currency"]
    return {
        "orderId": document["id"],
        "status": document["status"],
        "lines": [public_line(line) for line in document["lines"]],
        "totals": totals,
        "total": money(totals["total"], currency),
        "shippingAddress": document.get("shippingAddress"),
        "shippingMethod": document.get("shippingMethod"),
        "payment": public_payment(document.get("payment")),
        "captured": money(int(document.get("capturedAmount", 0)), currency),
        "refunded": money(int(document.get("refundedAmount", 0)), currency),
        "refunds": [
            {k: r.get(k) for k in ("refundId", "amount", "lines", "reason", "status", "createdAt")}
            for r in document.get("refunds", [])
        ],
        "returnRequest": document.get("returnRequest"),
        "reservationExpiresAt": document.get("reservationExpiresAt"),
        "createdAt": document["createdAt"],
        "updatedAt": document["updatedAt"],
        "history": document.get("history", []),
        "timeline": [{"status": h["status"], "at": h["at"]} for h in document.get("history", [])],
        "fulfilments": public_fulfilments(document),
        "partiallyShipped": partially_shipped(document),
        # Orders imported from another system (POST /api/admin/import/orders).
        "imported": bool(document.get("imported", False)),
    }


def shipped_quantities(document: OrderDocument) -> dict[str, int]:
    """Units shipped per SKU across the order's parcels."""
    shipped: dict[str, int] = {}
    for shipment in document.get("shipments", []):
        for line in shipment.get("lines") or []:
            shipped[line["sku"]] = shipped.get(line["sku"], 0) + int(line["quantity"])
    return shipped


def unshipped_lines(document: OrderDocument) -> list[dict[str, Any]]:
    """`{"sku", "quantity"}` of the order's units no parcel has carried yet."""
    shipped = shipped_quantities(document)
    remaining = []
    for line in document["lines"]:
        left = int(line["quantity"]) - shipped.get(line["sku"], 0)
        if left > 0:
            remaining.append({"sku": line["sku"], "quantity": left})
    return remaining


def partially_shipped(document: OrderDocument) -> bool:
    """Some units have shipped and some have not."""
    return bool(shipped_quantities(document)) and bool(unshipped_lines(document))


def public_fulfilments(document: OrderDocument) -> list[dict[str, Any]]:
    """One entry per parcel the partner shipped, then one for the units still waiting at
    the partner (while a fulfilment request is open)."""
    items: list[dict[str, Any]] = [
        {
            "id": s["shipmentId"],
            "status": s["status"],
            "carrier": s.get("carrier"),
            "trackingNumber": s.get("trackingNumber"),
            "trackingUrl": s.get("trackingUrl"),
            "lines": s.get("lines") or [],
            "updatedAt": s["updatedAt"],
        }
        for s in document.get("shipments", [])
    ]
    request = document.get("fulfilment")
    remaining = unshipped_lines(document)
    if request and (remaining or not items):
        items.append(
            {
                "id": request["requestId"],
                "status": request["status"],
                "carrier": None,
                "trackingNumber": None,
                "trackingUrl": None,
                "lines": remaining,
                "updatedAt": request["updatedAt"],
            }
        )
    return items


def public_line(line: OrderLineDocument) -> dict[str, Any]:
    """One order line as the API shows it."""
    return {
        "sku": line["sku"],
        "productId": line.get("productId"),
        "title": line.get("title"),
        "quantity": line["quantity"],
        "unitPrice": money(line["unitPrice"], line["currency"]),
        "lineTotal": money(line["lineTotal"], line["currency"]),
        "tax": money(line["tax"], line["currency"]),
        "refundedQuantity": line.get("refundedQuantity", 0),
    }


Mutation = Callable[[OrderDocument], Sequence[Event] | None]
"""Changes an order document in place and returns the events announcing the change, or
None when there is nothing to do (the transition is a no-op)."""


def update_order(
    store: DocumentStore,
    customer_id: str,
    order_id: str,
    mutate: Mutation,
    *,
    markers: Sequence[BatchOp] = (),
) -> tuple[OrderDocument, bool]:
    """Read the order, apply `mutate`, and replace it (If-Match its ETag) together with the
    events in one outbox batch; on a lost race (412) read again and re-apply.

    `markers` are processed-message markers (`cloudcart.core.idempotency`) written first
    in the same batch: when one exists already the message was applied before, and the
    order is returned unchanged. Returns the stored order and whether it changed. `mutate`
    may raise (InvalidTransition, OrderRuleViolation); nothing is written then.
    """
    container = orders_container(store)
    for _ in range(_TRANSITION_ATTEMPTS):
        document = get_order(store, customer_id, order_id)
        etag = str(document["_etag"])
        events = mutate(document)
        if events is None:
            return document, False
        document["updatedAt"] = now_stamp()
        try:
            results = write_with_events(
                container,
                customer_id,
                [*markers, BatchOp("replace", document=cast(Document, document), if_match=etag)],
                events,
            )
        except BatchFailed as exc:
            if exc.index < len(markers) and isinstance(exc.cause, Conflict):
                return get_order(store, customer_id, order_id), False
            if exc.index == len(markers) and isinstance(exc.cause, PreconditionFailed | NotFound):
                continue
            raise
        return as_order(results[len(markers)]), True
    raise OrderRuleViolation("the order kept changing while it was updated; retry", "order-busy")


def add_history(document: OrderDocument, status: OrderStatus, reason: str | None = None) -> None:
    """Record a status change on the order."""
    entry: HistoryEntryDocument = {"status": status, "at": now_stamp()}
    if reason:
        entry["reason"] = reason
    document.setdefault("history", []).append(entry)
    document["status"] = status


CURSOR_PATTERN = CONTINUATION_CURSOR_PATTERN
"""Every cursor `encode_cursor` makes: padded base64url of at least 9 bytes."""

encode_cursor = encode_continuation
"""An opaque API cursor for a store continuation (None on the last page)."""

decode_cursor = decode_continuation
"""The store continuation of an API cursor; ValueError when it is not one of ours."""


def list_orders(
    store: DocumentStore,
    *,
    customer_id: str | None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[OrderDocument], str | None]:
    """Orders newest first: one customer's (single partition) or, for admins, everyone's
    (`customer_id=None`, cross-partition), optionally of one status."""
    filters = [Filter("type", "eq", ORDER_TYPE)]
    if status is not None:
        filters.append(Filter("status", "eq", status))
    page = fill_page(
        orders_container(store),
        Query(filters=filters, order_by=(Order("createdAt", descending=True),), limit=limit),
        partition_key=customer_id,
        continuation=decode_cursor(cursor),
    )
    return cast(list[OrderDocument], page.items), encode_cursor(page.continuation)
