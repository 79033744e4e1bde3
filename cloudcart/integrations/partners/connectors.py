"""Outbound connectors: domain events become calls to the partners' APIs.

- fulfilment (`fulfilment` subscription): `order.paid`, or an order released from hold
  back to `paid`, asks the fulfilment partner to fulfil it; `order.cancelled` withdraws
  the request if nothing has shipped.
- inventory (`inventory-sync` subscription): every stock move (`inventory.changed`) is
  told to the WMS, except the WMS's own counts.

A partner call is idempotent at the partner: the Idempotency-Key is derived from what the
call is about, so a redelivered event, a resubmitted dead letter or a crash between the
call and recording its answer can never create a second request. For a fulfilment request
the key is the order's (`fulfilment-request:<orderId>`): whichever event leads to it
(paid, or released from hold), an order is fulfilled once. For a stock move it is the
`inventory.changed` event's id, one move per event.

A partner that cannot be reached raises PartnerUnavailable after the adapter's retries:
the message is abandoned, Service Bus delivers it again, and after the max delivery count
it is dead-lettered with the reason (which raises the dead-letter alert). A request the
partner refuses for good (PartnerRejected) is dead-lettered at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from cloudcart import inventory
from cloudcart.core.events import Event
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.core.ports.partners import (
    FulfilmentPartner,
    FulfilmentRequest,
    InventoryPartner,
    PartnerError,
    PartnerLine,
    PartnerName,
    PartnerRejected,
    StockMove,
    StockMoveKind,
)
from cloudcart.integrations.partners import links
from cloudcart.orders import fulfilment
from cloudcart.orders.service import OrderNotFound, get_order

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

Outcome = Literal["requested", "cancelled", "sent", "skipped", "ignored", "disabled"]
"""What a connector did with an event."""

_FORWARDED_MOVES: frozenset[str] = frozenset({"set", "reserve", "release", "sale", "return"})


def request_key(order_id: str) -> str:
    """The Idempotency-Key of an order's fulfilment request."""
    return f"fulfilment-request:{order_id}"


def cancel_key(order_id: str) -> str:
    """The Idempotency-Key of withdrawing an order's fulfilment request."""
    return f"fulfilment-cancel:{order_id}"


@contextmanager
def partner_call(services: Services, partner: PartnerName) -> Iterator[None]:
    """Around calls to a partner: a success or a failure is noted on the link's status, and
    a refusal (4xx) dead-letters the message at once, since retrying cannot help."""
    try:
        yield
    except PartnerError as exc:
        links.record_failure(services.documents, partner, "outbound", str(exc))
        if isinstance(exc, PartnerRejected):
            raise InvalidMessage("PartnerRejected", str(exc)) from exc
        raise
    links.record_success(services.documents, partner, "outbound")


# --- fulfilment ---------------------------------------------------------------------------


def handle_fulfilment_event(services: Services, event: Event) -> Outcome:
    """React to one event of the `fulfilment` subscription."""
    partner = services.fulfilment_partner
    if event.type == "order.paid" or (
        event.type == "order.status_changed" and event.data.get("to") == "paid"
    ):
        action = request_fulfilment
    elif event.type == "order.cancelled":
        action = cancel_fulfilment
    else:
        return "ignored"
    if partner is None:
        logger.info("no fulfilment partner configured; %s left to the shop", event.subject)
        return "disabled"
    order_id, customer_id = event.data.get("orderId"), event.data.get("customerId")
    if not isinstance(order_id, str) or not isinstance(customer_id, str):
        raise InvalidMessage("InvalidEvent", f"{event.type} without orderId and customerId")
    return action(services, partner, customer_id, order_id)


def request_fulfilment(
    services: Services, partner: FulfilmentPartner, customer_id: str, order_id: str
) -> Outcome:
    """Ask the partner to fulfil a paid order (once), and record its answer."""
    try:
        document = get_order(services.documents, customer_id, order_id)
    except OrderNotFound:
        # Erased or never written: nothing can ever be fulfilled for it.
        raise InvalidMessage("OrderNotFound", f"no order {order_id!r}") from None
    if not fulfilment.awaiting_fulfilment(document):
        return "skipped"  # held, cancelled, or requested already
    payload = fulfilment.request_payload(document)
    request = FulfilmentRequest(
        order_id=order_id,
        lines=tuple(PartnerLine(ln["sku"], ln["quantity"]) for ln in payload["lines"]),
        shipping_address=payload["shippingAddress"],
        shipping_method=payload["shippingMethod"],
        currency=payload["currency"],
        placed_at=payload["placedAt"],
    )
    with partner_call(services, "fulfilment"):
        answer = partner.create_request(request, idempotency_key=request_key(order_id))
    # The partner now holds the shipping address: the customer's export says so.
    links.record_processing(services.documents, "fulfilment", customer_id)
    document = fulfilment.record_request(
        services,
        customer_id,
        order_id,
        request_id=answer.request_id,
        accepted=answer.status == "accepted",
    )
    if document["status"] == "cancelled":
        # Cancelled while the partner was being asked: withdraw what was just requested.
        cancel_fulfilment(services, partner, customer_id, order_id)
    return "requested"


def cancel_fulfilment(
    services: Services, partner: FulfilmentPartner, customer_id: str, order_id: str
) -> Outcome:
    """Withdraw a cancelled order's request at the partner, if it has one."""
    try:
        document = get_order(services.documents, customer_id, order_id)
    except OrderNotFound:
        return "skipped"
    request = document.get("fulfilment")
    if (
        not request
        or not request.get("requestId")
        or request.get("status") in ("cancelled", "cancel_refused")
    ):
        return "skipped"
    with partner_call(services, "fulfilment"):
        outcome = partner.cancel_request(
            str(request["requestId"]), idempotency_key=cancel_key(order_id)
        )
    fulfilment.record_cancellation(services, customer_id, order_id, cancelled=outcome.cancelled)
    return "cancelled"


# --- inventory ----------------------------------------------------------------------------


def handle_inventory_event(services: Services, event: Event) -> Outcome:
    """Tell the WMS about one stock move, and remember its figure for reconciliation."""
    if event.type != inventory.INVENTORY_CHANGED:
        return "ignored"
    move = event.data.get("move")
    if move not in _FORWARDED_MOVES:
        return "ignored"  # the WMS's own counts, or an event from before moves were named
    partner: InventoryPartner | None = services.inventory_partner
    if partner is None:
        return "disabled"
    sku = str(event.data.get("sku") or event.subject)
    on_hand = event.data.get("onHand")
    stock_move = StockMove(
        sku=sku,
        kind=_kind(move),
        quantity=int(event.data.get("quantity", 0)),
        reference=str(event.data.get("reference") or event.id),
        occurred_at=event.time,
        on_hand=int(on_hand) if move == "set" and on_hand is not None else None,
    )
    with partner_call(services, "inventory"):
        figure = partner.record_move(stock_move, idempotency_key=f"stock-move:{event.id}")
    inventory.record_partner_figure(services.documents, sku, figure.on_hand, figure.sequence)
    return "sent"


def _kind(move: str) -> StockMoveKind:
    assert move in _FORWARDED_MOVES
    return move  # type: ignore[return-value]
