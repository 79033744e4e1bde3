"""Expiry of unpaid orders: a timer cancels `pending_payment` orders (and held ones
whose payment never came, such as an order held for a fraud review) whose reservation
expired (`PAYMENT_WINDOW_MINUTES` after checkout), releases their stock, announces
`order.cancelled` (reason `payment_expired`) and cancels the gateway payment once.

Racing a webhook is safe: both go through the state machine with ETag-conditional
writes, so exactly one of `paid` and `cancelled` wins. Before cancelling, the timer asks
the gateway: a payment that already succeeded (its webhook still on the way) is applied
as paid instead. A payment that succeeds after the cancellation is refunded
automatically when its webhook arrives (`mark_paid`).

The same timer runs `recover_abandoned_checkouts`: a checkout that crashed after
reserving stock and before placing its order has no order to expire, so its idempotency
record (still `in_progress`, lease long over) is what names the stock to give back.

The timer itself is `order_expiry` in `cloudcart.orders.expiry_functions`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cloudcart.core.clock import utcnow
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import Filter, Query, fill_page
from cloudcart.orders.lifecycle import cancel_order, gateway, mark_paid
from cloudcart.orders.service import ORDER_TYPE, orders_container
from cloudcart.orders.state import InvalidTransition

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

EXPIRY_BATCH = 100
EXPIRED_REASON = "payment_expired"


def expire_orders(services: Services, *, limit: int = EXPIRY_BATCH) -> int:
    """Cancel up to `limit` unpaid orders past their reservation expiry; returns how many
    were cancelled now (idempotent: a second run finds none)."""
    now = timestamp(utcnow())
    page = fill_page(
        orders_container(services.documents),
        Query(
            filters=(
                Filter("type", "eq", ORDER_TYPE),
                # A held order with nothing captured still holds stock for a payment that
                # may never come; a held paid order waits for its review instead.
                Filter("status", "in", ["pending_payment", "on_hold"]),
                Filter("capturedAmount", "eq", 0),
                Filter("reservationExpiresAt", "lt", now),
            ),
            limit=limit,
        ),
    )
    cancelled = 0
    for order in page.items:
        customer_id, order_id = str(order["customerId"]), str(order["id"])
        try:
            if _paid_at_gateway(services, order):
                continue
            result = cancel_order(services, customer_id, order_id, reason=EXPIRED_REASON)
            cancelled += result["status"] == "cancelled"
        except InvalidTransition:
            continue  # a webhook moved it on meanwhile: the state machine decided
        except Exception:
            logger.exception("could not expire order %s", order_id)
    return cancelled


def _paid_at_gateway(services: Services, order: dict[str, object]) -> bool:
    payment = order.get("payment")
    if not isinstance(payment, dict) or not payment.get("paymentId"):
        return False
    try:
        current = gateway(services).get_payment(str(payment["paymentId"]))
    except Exception:
        logger.warning("could not ask the gateway about %s", order["id"], exc_info=True)
        return False
    if current.status == "succeeded":
        mark_paid(
            services,
            str(order["customerId"]),
            str(order["id"]),
            event_id=f"expiry-check:{current.payment_id}",
            payment_id=current.payment_id,
            provider=current.provider,
            amount=current.amount,
        )
        return True
    # A payment being processed may still succeed: wait for its webhook or the next run.
    return current.status == "processing"
