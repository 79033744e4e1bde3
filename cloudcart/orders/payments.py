"""`apply_payment_event`: what a verified payment webhook does to its order.

PAYMENTS' webhook route (`POST /api/webhooks/payments/{provider}`) verifies the signature
and calls this. Decisions:

- The order is found by id with one cross-partition query (`find_order`); the checkout
  writes the order before it calls the gateway, so a webhook can never precede its order.
  An unknown order id is logged and acknowledged (the route answers 200): retrying would
  not make it appear (it belongs to another environment sharing the gateway account, or
  was never ours), and a 4xx would only make the gateway retry for days.
- Duplicates: the gateway event id is recorded on the order in the same write as the
  transition, so a redelivery is a no-op (stock moves and refunds have their own keys).
- Out of order: the state machine decides. `payment.failed` after `payment.succeeded`
  changes nothing; `payment.succeeded` after a decline, a cancellation or expiry is
  captured and refunded automatically (the stock was already released to other buyers).
- `refund.succeeded` / `refund.failed` update the matching refund record's status.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cloudcart.core.documents.port import Document
from cloudcart.core.events import Event
from cloudcart.orders.lifecycle import mark_paid, mark_payment_failed
from cloudcart.orders.service import find_order, update_order

if TYPE_CHECKING:
    from cloudcart.core.services import Services
    from cloudcart.integrations.payments.port import PaymentEvent

logger = logging.getLogger(__name__)


def apply_payment_event(services: Services, event: PaymentEvent) -> None:
    """Apply a verified gateway event to its order; idempotent, safe in any order."""
    order = find_order(services.documents, event.order_id)
    if order is None:
        logger.warning(
            "payment event %s (%s) names unknown order %s; acknowledged and ignored",
            event.event_id,
            event.type,
            event.order_id,
        )
        return
    customer_id = str(order["customerId"])
    if event.type == "payment.succeeded":
        mark_paid(
            services,
            customer_id,
            event.order_id,
            event_id=event.event_id,
            payment_id=event.payment_id,
            provider=event.provider,
            amount=event.amount,
            fee=event.fee,
        )
    elif event.type in ("payment.failed", "payment.cancelled"):
        target = "payment_failed" if event.type == "payment.failed" else "cancelled"
        mark_payment_failed(
            services,
            customer_id,
            event.order_id,
            event_id=event.event_id,
            reason=event.failure_reason or event.type,
            target=target,
        )
    else:
        _record_refund_status(services, customer_id, event)


def _record_refund_status(services: Services, customer_id: str, event: PaymentEvent) -> None:
    status = "succeeded" if event.type == "refund.succeeded" else "failed"

    def mutate(document: Document) -> list[Event] | None:
        for refund in document.get("refunds", []):
            if refund.get("refundId") == event.refund_id and refund.get("status") != status:
                refund["status"] = status
                return []
        return None

    update_order(services.documents, customer_id, event.order_id, mutate)
