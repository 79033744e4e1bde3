"""An order's way through the fulfilment partner: the request, parcels, delivery, returns.

The fulfilment connector (`cloudcart.integrations.partners`) asks the partner to fulfil a
paid order and records the answer here (`record_request`); the partner's updates arrive
on its queue and are applied here (`apply_update`). Everything is stored on the order:

    "fulfilment": {"requestId", "status": "requested" | "accepted" | "failed" | "cancelled"
                   | "cancel_refused", "reason"?, "requestedAt", "updatedAt"},
    "shipments": [{"shipmentId", "status": "shipped" | "delivered" | "failed", "carrier",
                   "trackingNumber", "trackingUrl", "lines", "updatedAt", ...}],
    "returnsReceived": [{"eventId", "lines", "condition", "receivedAt"}]

Updates may arrive twice or out of order (delivered before shipped). Each one is applied
once (processed markers on its partner event id and message id, in the order's batch),
and the order's status is derived from what is known, walking the state machine one step
at a time (`paid -> fulfilling -> shipped -> delivered`), so every status appears once in
the timeline, in order, whatever order the messages came in. An order is `shipped` when
parcels carry all its units (before that it is `fulfilling` and says `partiallyShipped`),
and `delivered` when every parcel is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from cloudcart.core.errors import DomainError, NotFound
from cloudcart.core.events import Event
from cloudcart.core.idempotency import processed_marker
from cloudcart.core.ports.documents import BatchOp
from cloudcart.orders.documents import (
    FulfilmentRequestDocument,
    FulfilmentRequestStatus,
    OrderDocument,
    ShipmentDocument,
    SkuQuantityDocument,
)
from cloudcart.orders.events import (
    ReturnReceived,
    ShipmentDelivered,
    ShipmentDeliveryFailed,
    ShipmentDispatched,
)
from cloudcart.orders.lifecycle import (
    issue_refund,
    order_event,
    order_ids,
    refund_lines_amount,
    released_event,
    settle_stock,
    status_changed_event,
)
from cloudcart.orders.service import (
    add_history,
    find_order,
    get_order,
    now_stamp,
    orders_container,
    unshipped_lines,
    update_order,
)
from cloudcart.orders.state import InvalidTransition, OrderStatus, next_status

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

FULFILMENT_CHAIN: tuple[OrderStatus, ...] = ("paid", "fulfilling", "shipped", "delivered")
"""The statuses a fulfilled order passes through, in order."""

UPDATES_CONSUMER = "fulfilment-updates"
"""Consumer name of the processed markers of partner updates."""

UpdateKind = Literal["accepted", "shipped", "delivered", "failed", "return_received"]


class UnknownOrder(DomainError):
    """A partner named an order the shop does not have."""

    status = 404
    title = "Not Found"
    problem_type = "order-not-found"


class UnknownOrderLine(DomainError):
    """A partner named a SKU that is not on the order."""

    status = 422
    problem_type = "unknown-line"


@dataclass(frozen=True)
class PartnerUpdate:
    """One update from the fulfilment partner, whatever its wire format."""

    kind: UpdateKind
    order_id: str
    event_id: str
    request_id: str | None = None
    shipment_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    lines: tuple[tuple[str, int], ...] = ()
    reason: str | None = None
    condition: Literal["resellable", "damaged"] | None = None
    message_ids: tuple[str, ...] = field(default=())
    """Broker message ids it came with (a repeat of one is applied once too)."""


_T = TypeVar("_T")


def _given(value: _T | None, name: str, update: PartnerUpdate) -> _T:
    """A member this kind of update always has: the partner's message schema requires it
    (`cloudcart.integrations.partners.inbound`), so a missing one is a bug, not bad input."""
    if value is None:
        raise ValueError(f"a {update.kind!r} update of order {update.order_id} has no {name}")
    return value


# --- status walking -----------------------------------------------------------------------


def _advance(document: OrderDocument, target: OrderStatus) -> list[Event]:
    """Walk the order forward along FULFILMENT_CHAIN up to `target`, one recorded step at
    a time; nothing when it is there already, past it, or off the chain (held, cancelled)."""
    status = document["status"]
    if status not in FULFILMENT_CHAIN:
        return []
    events: list[Event] = []
    start, stop = FULFILMENT_CHAIN.index(status), FULFILMENT_CHAIN.index(target)
    for step in FULFILMENT_CHAIN[start + 1 : stop + 1]:
        before = document["status"]
        next_status(before, step)
        if step == "delivered":
            document["deliveredAt"] = now_stamp()
        add_history(document, step)
        events.append(status_changed_event(document, before, step))
    return events


def _settle_status(document: OrderDocument) -> list[Event]:
    """Move the order as far as its parcels allow."""
    shipments = document.get("shipments", [])
    if not shipments or unshipped_lines(document):
        return []
    events = _advance(document, "shipped")
    if all(s.get("status") == "delivered" for s in shipments):
        events += _advance(document, "delivered")
    return events


# --- the request --------------------------------------------------------------------------


def awaiting_fulfilment(document: OrderDocument) -> bool:
    """Whether the order is paid and no fulfilment request was accepted for it yet."""
    request: FulfilmentRequestDocument | dict[str, Any] = document.get("fulfilment") or {}
    return document["status"] == "paid" and request.get("status") in (None, "requested")


def request_payload(document: OrderDocument) -> dict[str, Any]:
    """What the partner needs to fulfil the order (no customer id: the address suffices)."""
    return {
        "orderId": document["id"],
        "lines": [{"sku": ln["sku"], "quantity": int(ln["quantity"])} for ln in document["lines"]],
        "shippingAddress": document.get("shippingAddress") or {},
        "shippingMethod": document.get("shippingMethod") or "standard",
        "currency": document["totals"]["currency"],
        "placedAt": document["createdAt"],
    }


def record_request(
    services: Services, customer_id: str, order_id: str, *, request_id: str, accepted: bool
) -> OrderDocument:
    """Record the partner's answer to the fulfilment request; an accepted request makes a
    paid order `fulfilling`. Repeats change nothing."""

    def mutate(document: OrderDocument) -> list[Event] | None:
        request: FulfilmentRequestDocument | dict[str, Any] = document.get("fulfilment") or {}
        status = "accepted" if accepted or request.get("status") == "accepted" else "requested"
        if request.get("requestId") == request_id and request.get("status") == status:
            return None
        now = now_stamp()
        document["fulfilment"] = cast(
            FulfilmentRequestDocument,
            {
                **request,
                "requestId": request_id,
                "status": request.get("status") if request.get("status") in _FINAL else status,
                "requestedAt": request.get("requestedAt", now),
                "updatedAt": now,
            },
        )
        return _advance(document, "fulfilling") if status == "accepted" else []

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    return document


_FINAL = ("cancelled", "cancel_refused", "failed")


def record_cancellation(
    services: Services, customer_id: str, order_id: str, *, cancelled: bool
) -> OrderDocument:
    """Record the partner's answer to cancelling the request: `cancelled`, or
    `cancel_refused` when something had shipped (the order then keeps its parcels)."""
    status: FulfilmentRequestStatus = "cancelled" if cancelled else "cancel_refused"

    def mutate(document: OrderDocument) -> list[Event] | None:
        request = document.get("fulfilment")
        if not request or request.get("status") == status:
            return None
        document["fulfilment"] = {**request, "status": status, "updatedAt": now_stamp()}
        if not cancelled:
            logger.error("order %s was cancelled but the partner had shipped already", order_id)
        return []

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    return document


# --- partner updates ----------------------------------------------------------------------


def _markers(update: PartnerUpdate, customer_id: str) -> list[BatchOp]:
    keys = dict.fromkeys(
        [f"event:{update.event_id}", *(f"message:{m}" for m in update.message_ids)]
    )
    return [
        processed_marker(
            UPDATES_CONSUMER, key, partition_key_field="customerId", partition_key=customer_id
        )
        for key in keys
    ]


def _check_lines(document: OrderDocument, lines: Sequence[tuple[str, int]]) -> None:
    skus = {line["sku"] for line in document["lines"]}
    for sku, _ in lines:
        if sku not in skus:
            raise UnknownOrderLine(f"SKU {sku!r} is not on order {document['id']}")


def _shipment(document: OrderDocument, shipment_id: str) -> ShipmentDocument:
    shipments: list[ShipmentDocument] = document.setdefault("shipments", [])
    for shipment in shipments:
        if shipment["shipmentId"] == shipment_id:
            return shipment
    # The caller sets its status (and `updatedAt`) in the same write.
    shipment = cast(ShipmentDocument, {"shipmentId": shipment_id, "status": "pending", "lines": []})
    shipments.append(shipment)
    return shipment


def _lines_json(lines: Sequence[tuple[str, int]]) -> list[SkuQuantityDocument]:
    return [{"sku": sku, "quantity": quantity} for sku, quantity in lines]


def _apply(document: OrderDocument, update: PartnerUpdate) -> list[Event]:
    now = now_stamp()
    request: FulfilmentRequestDocument | dict[str, Any]
    if update.kind == "accepted":
        request = document.get("fulfilment") or {}
        if request.get("status") not in _FINAL:
            document["fulfilment"] = cast(
                FulfilmentRequestDocument,
                {
                    **request,
                    "requestId": update.request_id or request.get("requestId"),
                    "status": "accepted",
                    "requestedAt": request.get("requestedAt", now),
                    "updatedAt": now,
                },
            )
        return _advance(document, "fulfilling")
    if update.kind == "shipped":
        _check_lines(document, update.lines)
        assert update.shipment_id is not None
        shipment = _shipment(document, update.shipment_id)
        shipment.update(
            {
                "carrier": update.carrier,
                "trackingNumber": update.tracking_number,
                "trackingUrl": update.tracking_url,
                "lines": _lines_json(update.lines),
                "shippedAt": now,
                "updatedAt": now,
            }
        )
        # A delivery that overtook this message stays delivered.
        if shipment["status"] != "delivered":
            shipment["status"] = "shipped"
        dispatched: ShipmentDispatched = {
            **order_ids(document),
            "requestId": update.request_id,
            "shipmentId": update.shipment_id,
            "carrier": _given(update.carrier, "carrier", update),
            "trackingNumber": _given(update.tracking_number, "tracking_number", update),
            "trackingUrl": update.tracking_url,
            "lines": _lines_json(update.lines),
            "partial": bool(unshipped_lines(document)),
        }
        events = [order_event(document, "shipment.dispatched", dispatched)]
        return [*_advance(document, "fulfilling"), *events, *_settle_status(document)]
    if update.kind == "delivered":
        assert update.shipment_id is not None
        shipment = _shipment(document, update.shipment_id)
        shipment.update({"status": "delivered", "deliveredAt": now, "updatedAt": now})
        delivered: ShipmentDelivered = {**order_ids(document), "shipmentId": update.shipment_id}
        events = [order_event(document, "shipment.delivered", delivered)]
        return [*events, *_settle_status(document)]
    if update.kind == "failed":
        if update.shipment_id is not None:
            shipment = _shipment(document, update.shipment_id)
            shipment.update({"status": "failed", "reason": update.reason, "updatedAt": now})
        else:
            request = document.get("fulfilment") or {"requestId": update.request_id}
            document["fulfilment"] = cast(
                FulfilmentRequestDocument,
                {**request, "status": "failed", "reason": update.reason, "updatedAt": now},
            )
        failed: ShipmentDeliveryFailed = {
            **order_ids(document),
            "shipmentId": update.shipment_id,
            "reason": _given(update.reason, "reason", update),
        }
        return [order_event(document, "shipment.delivery_failed", failed)]
    return _receive_return(document, update)


def _receive_return(document: OrderDocument, update: PartnerUpdate) -> list[Event]:
    lines = _lines_json(update.lines)
    _check_lines(document, update.lines)
    status = document["status"]
    events: list[Event] = []
    if status == "delivered":
        # Goods came back without a return request: the warehouse's receipt is the request.
        next_status(status, "return_requested")
        add_history(document, "return_requested", "received by the warehouse")
        document["returnRequest"] = {
            "lines": lines,
            "reason": "received by the warehouse",
            "requestedAt": now_stamp(),
        }
        events.append(status_changed_event(document, status, "return_requested"))
    elif status != "return_requested":
        raise InvalidTransition(status, "returned")
    refund_lines_amount(document, lines)  # validates SKUs and quantities
    next_status(document["status"], "returned")
    add_history(document, "returned")
    resellable = update.condition == "resellable"
    document["stock"] = "restocked"
    document["restockLines"] = lines if resellable else []
    document.setdefault("returnsReceived", []).append(
        {
            "eventId": update.event_id,
            "lines": lines,
            "condition": update.condition,
            "receivedAt": now_stamp(),
        }
    )
    received: ReturnReceived = {
        **order_ids(document),
        "lines": lines,
        "condition": _given(update.condition, "condition", update),
    }
    events += [
        status_changed_event(document, "return_requested", "returned"),
        order_event(document, "return.received", received),
    ]
    if resellable:
        events.append(released_event(document, update.lines, "returned"))
    return events


def apply_update(services: Services, update: PartnerUpdate) -> OrderDocument:
    """Apply one partner update to its order, once; returns the order.

    Raises UnknownOrder, UnknownOrderLine or InvalidTransition for an update that can never
    apply (the caller dead-letters it); store errors propagate (the caller retries).
    """
    found = find_order(services.documents, update.order_id)
    if found is None:
        raise UnknownOrder(f"no order {update.order_id!r}")
    customer_id = str(found["customerId"])

    def mutate(document: OrderDocument) -> list[Event] | None:
        return _apply(document, update)

    markers = _markers(update, customer_id)
    try:
        document, _ = update_order(
            services.documents, customer_id, update.order_id, mutate, markers=markers
        )
    except DomainError:
        # A repeat of an update already applied may no longer fit the order's state (a
        # second `return.received` after the refund): the markers tell a repeat apart.
        if not _applied_before(services, customer_id, markers):
            raise
        document = get_order(services.documents, customer_id, update.order_id)
    if update.kind == "return_received":
        # Also on a repeat: a crash after the order write must still end in a refund.
        settle_stock(services, document)
        document = _refund_received(services, document)
    return document


def _applied_before(services: Services, customer_id: str, markers: Sequence[BatchOp]) -> bool:
    container = orders_container(services.documents)
    for marker in markers:
        assert marker.document is not None
        try:
            container.read(str(marker.document["id"]), customer_id)
            return True
        except NotFound:
            continue
    return False


def _refund_received(services: Services, document: OrderDocument) -> OrderDocument:
    if document["status"] != "returned" or not document.get("returnsReceived"):
        return document
    lines = document["returnsReceived"][-1]["lines"]
    amount = refund_lines_amount(document, lines)
    if amount <= 0:
        return document
    return issue_refund(services, document, amount=amount, lines=lines, reason="returned")
