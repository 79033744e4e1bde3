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
- Fraud rules: a succeeded payment scores the order again with its card (country,
  fingerprint velocity) before it is marked paid, and an enforced `review`/`block` holds
  it; a declined one counts against the customer and the order's IP (card testing). Both
  are counted once per order / gateway event (docs/risk.md), and a risk store that cannot
  be reached never stops a payment from being applied.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from cloudcart import risk
from cloudcart.core.events import Event
from cloudcart.orders.documents import OrderDocument
from cloudcart.orders.lifecycle import mark_paid, mark_payment_failed
from cloudcart.orders.service import find_order, update_order

if TYPE_CHECKING:
    from cloudcart.composition import Services
    from cloudcart.core.ports.payments import PaymentEvent, RefundStatus

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
            risk=_payment_risk(services, order, event),
        )
    elif event.type in ("payment.failed", "payment.cancelled"):
        target: Literal["payment_failed", "cancelled"] = (
            "payment_failed" if event.type == "payment.failed" else "cancelled"
        )
        mark_payment_failed(
            services,
            customer_id,
            event.order_id,
            event_id=event.event_id,
            reason=event.failure_reason or event.type,
            target=target,
        )
        if event.type == "payment.failed":
            _count_decline(services, order, event)
    else:
        _record_refund_status(services, customer_id, event)


def _signals(order: OrderDocument, event: PaymentEvent) -> risk.PaymentSignals:
    address = order.get("shippingAddress")
    return risk.PaymentSignals(
        order_id=str(order["id"]),
        customer_id=str(order["customerId"]),
        event_id=event.event_id,
        succeeded=event.type == "payment.succeeded",
        card_country=event.card_country,
        card_fingerprint=event.card_fingerprint,
        shipping_country=address.get("country") if address else None,
        placed_at=datetime.fromisoformat(str(order["createdAt"]).replace("Z", "+00:00")),
    )


def _payment_risk(
    services: Services, order: OrderDocument, event: PaymentEvent
) -> dict[str, Any] | None:
    if order.get("imported"):
        return None
    try:
        return risk.assess_payment(services, _signals(order, event), order.get("risk"))
    except Exception:
        logger.warning("fraud rules skipped for payment of %s", order["id"], exc_info=True)
        return None


def _count_decline(services: Services, order: OrderDocument, event: PaymentEvent) -> None:
    try:
        risk.record_decline(services, _signals(order, event))
    except Exception:
        logger.warning("decline of %s not counted by the fraud rules", order["id"], exc_info=True)


def _record_refund_status(services: Services, customer_id: str, event: PaymentEvent) -> None:
    status: RefundStatus = "succeeded" if event.type == "refund.succeeded" else "failed"

    def mutate(document: OrderDocument) -> list[Event] | None:
        for refund in document.get("refunds", []):
            if refund.get("refundId") == event.refund_id and refund.get("status") != status:
                refund["status"] = status
                return []
        return None

    update_order(services.documents, customer_id, event.order_id, mutate)
