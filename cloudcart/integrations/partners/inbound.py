"""Inbound: the partners' messages on their queues, validated and applied exactly once.

A message that fails its schema (docs/partners/) is dead-lettered at once with a reason
that names the field, and nothing in the shop changes; so is one that can never apply (an
unknown order, a SKU not on the order, a return for an order that was never delivered).
Store errors propagate, so Service Bus delivers the message again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from cloudcart import inventory
from cloudcart.core.errors import DomainError
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.integrations.partners import links
from cloudcart.integrations.partners.messages import (
    FULFILMENT_MESSAGES,
    INVENTORY_MESSAGES,
    FulfilmentMessage,
)
from cloudcart.orders import fulfilment

if TYPE_CHECKING:
    from cloudcart.composition import Services

MAX_REASON_ERRORS = 5


def describe(error: ValidationError) -> str:
    """`field.path: message` for the first errors, so the dead letter says what is wrong."""
    parts = []
    for item in error.errors()[:MAX_REASON_ERRORS]:
        where = ".".join(str(p) for p in item["loc"]) or "(body)"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


_KINDS: dict[str, fulfilment.UpdateKind] = {
    "shipment.accepted": "accepted",
    "shipment.shipped": "shipped",
    "shipment.delivered": "delivered",
    "shipment.failed": "failed",
    "return.received": "return_received",
}


def _to_update(message: FulfilmentMessage, message_id: str | None) -> fulfilment.PartnerUpdate:
    lines = getattr(message, "lines", None) or ()
    return fulfilment.PartnerUpdate(
        kind=_KINDS[message.type],
        order_id=message.order_id,
        event_id=message.event_id,
        request_id=getattr(message, "request_id", None),
        shipment_id=getattr(message, "shipment_id", None),
        carrier=getattr(message, "carrier", None),
        tracking_number=getattr(message, "tracking_number", None),
        tracking_url=getattr(message, "tracking_url", None),
        lines=tuple((line.sku, line.quantity) for line in lines),
        reason=getattr(message, "reason", None),
        condition=getattr(message, "condition", None),
        message_ids=(message_id,) if message_id else (),
    )


def handle_fulfilment_message(services: Services, body: bytes, message_id: str | None) -> str:
    """Apply one message of the fulfilment partner's queue; returns its type."""
    try:
        message = FULFILMENT_MESSAGES.validate_json(body)
    except ValidationError as exc:
        reason = describe(exc)
        links.record_failure(services.documents, "fulfilment", "inbound", reason)
        raise InvalidMessage("SchemaValidationFailed", reason) from None
    try:
        fulfilment.apply_update(services, _to_update(message, message_id))
    except DomainError as exc:
        links.record_failure(services.documents, "fulfilment", "inbound", str(exc))
        raise InvalidMessage(type(exc).__name__, str(exc)) from None
    links.record_success(services.documents, "fulfilment", "inbound")
    return message.type


def handle_inventory_message(services: Services, body: bytes, message_id: str | None) -> str:
    """Apply one stock count of the WMS's queue; returns what happened to it
    (`applied`, `stale`, `duplicate`)."""
    try:
        message = INVENTORY_MESSAGES.validate_json(body)
    except ValidationError as exc:
        reason = describe(exc)
        links.record_failure(services.documents, "inventory", "inbound", reason)
        raise InvalidMessage("SchemaValidationFailed", reason) from None
    outcome = inventory.apply_partner_count(
        services.documents,
        inventory.PartnerCount(
            sku=message.sku,
            on_hand=message.on_hand,
            sequence=message.sequence,
            event_id=message.event_id,
            reason=message.reason,
            occurred_at=message.occurred_at.isoformat(),
        ),
    )
    if outcome == "unknown-sku":
        reason = f"SKU {message.sku!r} belongs to no product"
        links.record_failure(services.documents, "inventory", "inbound", reason)
        raise InvalidMessage("UnknownSku", reason)
    links.record_success(services.documents, "inventory", "inbound")
    return outcome
