"""Abandoned cart: a signed-in customer whose cart has items and stays unchanged, with no
order, for `ABANDONED_CART_MINUTES` gets one reminder, and only with marketing consent.

No one scans carts. Each `cart.updated` schedules a message on the `marketing-reminders`
queue for `event time + ABANDONED_CART_MINUTES` (Service Bus holds scheduled messages by
the million; message id `abandoned-cart:<event id>`, so a redelivered event schedules
nothing new within the duplicate-detection window). When it comes due, the handler reads
the customer's cart (`cloudcart.orders.cart.Carts`, the orders area's public API) and
sends only if that cart is still the one the message was scheduled for: any later change
scheduled its own message, and checkout empties the cart. An `order.placed` at or after
the cart's last change also cancels it (`last-order` record).

"Once" means: one reminder per cart contents, and at most one a day per customer
(`REMINDER_GAP`). The decision is recorded in the customer's `abandoned-cart` document
(If-Match) *before* `send_bulk`, with the source id `abandoned-cart:<cart event id>`; a
redelivered or replayed message finds its own decision and lets `send_bulk` send what is
not sent yet, and never a second reminder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Conflict, PreconditionFailed
from cloudcart.core.events import Event
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import Container, Document, DocumentStore, strip_system
from cloudcart.core.ports.messages import InvalidMessage, OutboundMessage
from cloudcart.marketing.store import (
    container,
    customer_key,
    marketing_allowed,
    parse_time,
    read_or_none,
)
from cloudcart.notifications.service import NotificationsPending, send_bulk
from cloudcart.orders.cart import Carts

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

TEMPLATE = "abandoned-cart"
STATE_ID = "abandoned-cart"
LAST_ORDER_ID = "last-order"
MESSAGE_SUBJECT = "marketing.abandoned_cart_due"

REMINDER_GAP = timedelta(days=1)
"""The least time between two reminders to one customer."""

_ATTEMPTS = 5


class ReminderDue(BaseModel):
    """The body of a scheduled reminder: which cart change it was scheduled for."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    customer_id: str
    cart_event_id: str
    cart_updated_at: str
    due_at: datetime


# --- scheduling ---------------------------------------------------------------------------


def schedule_reminder(services: Services, event: Event) -> str:
    """Schedule the reminder check of a `cart.updated` (nothing for an emptied cart)."""
    customer_id = event.data.get("customerId")
    items = event.data.get("items")
    updated_at = event.data.get("updatedAt")
    if not isinstance(customer_id, str) or not isinstance(updated_at, str):
        raise InvalidMessage("InvalidCartEvent", "cart.updated needs customerId and updatedAt")
    if not items:
        return "empty"
    due_at = event.time + timedelta(minutes=services.settings.abandoned_cart_minutes)
    body = ReminderDue(
        customer_id=customer_id,
        cart_event_id=event.id,
        cart_updated_at=updated_at,
        due_at=due_at,
    )
    services.messages.publish(
        services.settings.marketing_reminders_queue,
        [
            OutboundMessage(
                body=body.model_dump(mode="json", by_alias=True),
                message_id=f"{TEMPLATE}:{event.id}",
                subject=MESSAGE_SUBJECT,
                correlation_id=event.correlation_id,
                scheduled_enqueue_time=due_at,
            )
        ],
    )
    return "scheduled"


def record_order(documents: DocumentStore, event: Event) -> str:
    """Remember when the customer last placed an order (an order cancels the reminder of
    the cart it came from)."""
    customer_id = event.data.get("customerId")
    if not isinstance(customer_id, str) or not customer_id:
        return "ignored"
    placed_at = timestamp(event.time)
    target = container(documents)
    key = customer_key(customer_id)
    for _ in range(_ATTEMPTS):
        current = read_or_none(target, LAST_ORDER_ID, key)
        if current is not None and current["placedAt"] >= placed_at:
            return "kept"
        document: Document = {
            "id": LAST_ORDER_ID,
            "key": key,
            "kind": "last-order",
            "customerId": customer_id,
            "placedAt": placed_at,
            "orderId": event.subject,
        }
        try:
            if current is None:
                target.create(document)
            else:
                target.replace(document, if_match=current["_etag"])
            return "recorded"
        except (Conflict, PreconditionFailed):
            continue
    raise PreconditionFailed("the last-order record kept changing")


# --- the reminder ---------------------------------------------------------------------------


def _contents(items: Sequence[Mapping[str, Any]]) -> str:
    lines = sorted((str(i["sku"]), int(i["quantity"])) for i in items)
    return hashlib.sha256(json.dumps(lines).encode()).hexdigest()[:32]


def _decide(
    target: Container, customer_id: str, source_id: str, contents: str, now: datetime
) -> str:
    """Record the decision to remind (`send`), or say why not; `resend` when this very
    reminder was decided before (a redelivery), `done` when it was also sent."""
    key = customer_key(customer_id)
    for _ in range(_ATTEMPTS):
        state = read_or_none(target, STATE_ID, key)
        if state is not None:
            if state["sourceId"] == source_id:
                return "done" if state.get("status") == "sent" else "resend"
            if state["contents"] == contents:
                return "already-reminded"
            if parse_time(state["decidedAt"]) > now - REMINDER_GAP:
                return "too-soon"
        document: Document = {
            "id": STATE_ID,
            "key": key,
            "kind": "abandoned-cart",
            "customerId": customer_id,
            "sourceId": source_id,
            "contents": contents,
            "decidedAt": timestamp(now),
            "status": "decided",
        }
        try:
            if state is None:
                target.create(document)
            else:
                target.replace(document, if_match=state["_etag"])
            return "send"
        except (Conflict, PreconditionFailed):
            continue
    raise PreconditionFailed("the reminder record kept changing")


def _mark_sent(target: Container, customer_id: str, source_id: str, sent_at: datetime) -> None:
    key = customer_key(customer_id)
    for _ in range(_ATTEMPTS):
        state = read_or_none(target, STATE_ID, key)
        if state is None or state["sourceId"] != source_id or state.get("status") == "sent":
            return
        updated = strip_system(state)
        updated.update(status="sent", sentAt=timestamp(sent_at))
        try:
            target.replace(updated, if_match=state["_etag"])
            return
        except PreconditionFailed:
            continue


def parse_due(body: bytes | str) -> ReminderDue:
    """The reminder a queue message carries; InvalidMessage (dead-lettered at once) when the
    body is not one."""
    try:
        return ReminderDue.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidMessage(
            "InvalidReminder", f"not a reminder: {exc.error_count()} errors"
        ) from None


def handle_due(services: Services, body: bytes | str, *, now: datetime | None = None) -> str:
    """Send the reminder a due message stands for, if it still applies; returns what
    happened (`sent`, or why nothing was: `empty`, `changed`, `ordered`, `no-consent`,
    `already-reminded`, `too-soon`, `done`).

    Raises NotificationsPending when a send must be retried (the decision stays, so the
    redelivery sends it and nothing more)."""
    due = parse_due(body)
    now = now or utcnow()
    documents = services.documents
    customer_id = due.customer_id
    carts = Carts(documents, customer_id)
    cart = carts.load()
    if not cart["items"]:
        return "empty"
    if cart.get("updatedAt") != due.cart_updated_at:
        return "changed"
    target = container(documents)
    last_order = read_or_none(target, LAST_ORDER_ID, customer_key(customer_id))
    if last_order is not None and last_order["placedAt"] >= due.cart_updated_at:
        return "ordered"
    if not marketing_allowed(documents, customer_id, TEMPLATE):
        return "no-consent"
    source_id = f"{TEMPLATE}:{due.cart_event_id}"
    decision = _decide(target, customer_id, source_id, _contents(cart["items"]), now)
    if decision not in ("send", "resend"):
        return decision
    view = carts.view(cart)
    lines = [
        {"sku": line["sku"], "name": line.get("title") or None, "quantity": line["quantity"]}
        for line in view["items"]
    ]
    data = {
        "cartUrl": f"{services.settings.public_base_url.rstrip('/')}/cart",
        "lines": lines,
        "itemCount": sum(int(line["quantity"]) for line in lines),
    }
    outcome = send_bulk(
        services,
        source_id=source_id,
        template=TEMPLATE,
        customer_ids=[customer_id],
        data=data,
        source_type="cart.updated",
        now=now,
    )
    if outcome.pending:
        raise NotificationsPending(f"abandoned cart {source_id}: {outcome}")
    _mark_sent(target, customer_id, source_id, now)
    logger.info("abandoned-cart reminder %s: %s", source_id, outcome)
    return "sent"
