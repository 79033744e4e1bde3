"""Which events notify whom: a pure mapping from a domain event to notification intents.

The template decides the kind (transactional or marketing) and the channels it exists on;
the customer's preferences, consent and verified destinations then narrow the channels
(`service.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudcart.core.events import Event

OPS_SUBSCRIPTION = "notifications"
"""The notifications subscription on the `ops` topic (same name as on `events`)."""

# Event type -> template. Each of these events carries `customerId` in its data.
CUSTOMER_TEMPLATES: dict[str, str] = {
    "customer.created": "welcome",
    "order.placed": "order-placed",
    "order.paid": "order-paid",
    "order.payment_failed": "payment-failed",
    "shipment.dispatched": "order-shipped",
    "shipment.delivered": "order-delivered",
    "shipment.delivery_failed": "delivery-failed",
    "order.cancelled": "order-cancelled",
    "return.received": "return-received",
    "refund.issued": "refund-issued",
}

OPS_EVENTS: frozenset[str] = frozenset({"ops.dead_lettered", "ops.stock_shortfall"})
"""Operational events emailed to the shop's operators (NOTIFICATIONS_OPS_EMAIL)."""

SUBSCRIBED_EVENTS: tuple[str, ...] = tuple(CUSTOMER_TEMPLATES)
"""The `events` topic subjects the notifications subscription receives."""


@dataclass(frozen=True)
class Intent:
    """Tell `customer_id` (None: the operators) about something with `template`."""

    template: str
    customer_id: str | None
    data: dict[str, Any] = field(default_factory=dict)


def intents_for(event: Event) -> list[Intent]:
    """The notifications an event calls for (none for an event we do not notify about)."""
    template = CUSTOMER_TEMPLATES.get(event.type)
    if template is not None:
        customer_id = event.data.get("customerId")
        if not isinstance(customer_id, str) or not customer_id:
            return []
        return [Intent(template, customer_id, dict(event.data))]
    if event.type in OPS_EVENTS:
        if event.type == "ops.dead_lettered" and _about_own_alerts(event):
            return []
        return [Intent("ops-alert", None, ops_alert_data(event))]
    return []


def _about_own_alerts(event: Event) -> bool:
    # A dead letter of the alert mails themselves is not mailed again: if mailing is what
    # fails, each alert would dead-letter into a new alert, forever.
    return (
        event.data.get("subscription") == OPS_SUBSCRIPTION
        and event.data.get("subject") in OPS_EVENTS
    )


def ops_alert_data(event: Event) -> dict[str, Any]:
    """The `ops-alert` template's data for an operational event."""
    data = event.data
    if event.type == "ops.stock_shortfall":
        summary = (
            f"SKU {data.get('sku')}: the warehouse counted {data.get('onHand')} on hand "
            f"but {data.get('reserved')} are reserved ({data.get('shortfall')} short)."
        )
    else:
        summary = (
            f"A message ({data.get('subject')}) was dead-lettered on "
            f"{data.get('entity')}/{data.get('subscription') or '-'}: {data.get('reason')}."
        )
    return {
        "alertType": event.type,
        "subject": event.subject,
        "summary": summary,
        "details": {str(k): str(v) for k, v in data.items()},
    }
