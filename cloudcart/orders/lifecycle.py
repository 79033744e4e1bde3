"""What happens to an order after checkout: payment outcomes, cancellation, returns,
refunds and admin status changes. Each is a state-machine transition written with its
events (`update_order`), followed by effects outside the order's partition that are
idempotent on their own: stock moves (markers per order and move) and gateway calls
(`SideEffectGuard` keys).

Crash safety: the order document records the intended stock state (`stock`) in the
same write as the transition; `settle_stock` applies what that state implies and is
called again by every later touch of the order (a redelivered webhook, the expiry
timer, reconciliation's repair), so a crash between the two writes is healed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from cloudcart.core.events import Event, new_event
from cloudcart.core.idempotency import SideEffectGuard
from cloudcart.inventory import move_order_stock
from cloudcart.orders.documents import (
    HeldFrom,
    OrderDocument,
    OrderPaymentDocument,
    OrderRefundDocument,
    OrderRiskDocument,
    RefundKind,
    SkuQuantityDocument,
)
from cloudcart.orders.events import (
    InventoryReleased,
    OrderCancelled,
    OrderIds,
    OrderPaid,
    OrderPaymentFailed,
    OrderStatusChanged,
    RefundIssued,
    ReturnRequested,
)
from cloudcart.orders.pricing import line_refund_amount
from cloudcart.orders.service import (
    MAX_RECORDED_PAYMENT_EVENTS,
    OrderRuleViolation,
    add_history,
    now_stamp,
    update_order,
)
from cloudcart.orders.state import (
    CANCELLABLE,
    PAID_STATES,
    InvalidTransition,
    OrderStatus,
    next_status,
)

if TYPE_CHECKING:
    from cloudcart.composition import Services
    from cloudcart.core.ports.payments import PaymentGateway

logger = logging.getLogger(__name__)

REFUNDS_CONSUMER = "orders-refunds"
PAYMENT_CANCEL_CONSUMER = "orders-payment-cancel"


def gateway(services: Services) -> PaymentGateway:
    """The payment gateway (PAYMENTS' `Services.payments`)."""
    found: PaymentGateway = services.payments
    return found


def _lines(document: OrderDocument) -> list[tuple[str, int]]:
    return [(line["sku"], int(line["quantity"])) for line in document["lines"]]


def order_ids(document: OrderDocument) -> OrderIds:
    """The order and customer ids every order event's payload starts with."""
    return {"orderId": document["id"], "customerId": document["customerId"]}


def order_event(document: OrderDocument, type_: str, data: Mapping[str, Any]) -> Event:
    """An event about an order (its subject). Build `data` as the type's payload TypedDict
    from `order_ids(document)`, so mypy checks its members."""
    return new_event(type_, document["id"], data)


def status_changed_event(document: OrderDocument, before: str, after: str) -> Event:
    """`order.status_changed` for one step of the state machine."""
    data: OrderStatusChanged = {**order_ids(document), "from": before, "to": after}
    return order_event(document, "order.status_changed", data)


def released_event(document: OrderDocument, lines: Sequence[tuple[str, int]], reason: str) -> Event:
    """`inventory.released` for units of an order going back to stock."""
    data: InventoryReleased = {
        **order_ids(document),
        "lines": [{"sku": s, "quantity": q} for s, q in lines],
        "reason": reason,
    }
    return order_event(document, "inventory.released", data)


def settle_stock(services: Services, document: OrderDocument) -> None:
    """Apply the stock moves the order's `stock` state implies (idempotent)."""
    store = services.documents
    state = document.get("stock", "reserved")
    order_id = str(document["id"])
    if state == "released":
        move_order_stock(store, order_id, "release", _lines(document))
    elif state == "sold":
        move_order_stock(store, order_id, "sell", _lines(document))
    elif state == "restocked":
        move_order_stock(store, order_id, "sell", _lines(document))
        restock = [(r["sku"], int(r["quantity"])) for r in document.get("restockLines", [])]
        move_order_stock(store, order_id, "restock", restock)


def _remember_event(document: OrderDocument, event_id: str) -> bool:
    """Record a gateway event id on the order; False if it was recorded before."""
    seen: list[str] = document.setdefault("paymentEvents", [])
    if event_id in seen:
        return False
    seen.append(event_id)
    del seen[:-MAX_RECORDED_PAYMENT_EVENTS]
    return True


def _release_to(document: OrderDocument, reason: str) -> list[Event]:
    """Mark the order's stock for release (reserved -> available, or sold -> available)."""
    lines = _lines(document)
    if document.get("stock", "reserved") == "reserved":
        document["stock"] = "released"
    elif document.get("stock") == "sold":
        document["stock"] = "restocked"
        document["restockLines"] = [{"sku": s, "quantity": q} for s, q in lines]
    else:
        return []
    return [released_event(document, lines, reason)]


# --- payment outcomes ---------------------------------------------------------------------


def mark_paid(
    services: Services,
    customer_id: str,
    order_id: str,
    *,
    event_id: str,
    payment_id: str,
    provider: str,
    amount: int,
    fee: int | None = None,
    risk: dict[str, Any] | None = None,
) -> OrderDocument:
    """Apply a succeeded payment (`fee`: the gateway's fee, when it reports one). Paid
    wins only from `pending_payment`; a held order (`on_hold`) records the capture and
    stays held until an admin releases it. A payment that succeeds on an order already
    cancelled or failed (the expiry timer or a decline got there first) is recorded as
    captured and refunded automatically.

    `risk`: the fraud rules' decision now that the card is known; stored on the order,
    and an enforced `review` or `block` holds the paid order (never an order an admin
    already approved)."""
    late = {"value": False}

    def mutate(document: OrderDocument) -> list[Event] | None:
        if not _remember_event(document, event_id):
            return None
        if not document.get("payment"):
            document["payment"] = {"provider": provider, "paymentId": payment_id}
        status = document["status"]
        hold = _apply_risk(document, risk)
        if status in PAID_STATES:
            return [] if document.get("capturedAmount") else None
        document["capturedAmount"] = amount
        if fee is not None:
            document["paymentFee"] = fee
        if status in ("cancelled", "payment_failed"):
            late["value"] = True
            return []
        # The ids spelled out: mypy cannot see that `order_ids` leaves out the optional fee.
        paid_data: OrderPaid = {
            "orderId": document["id"],
            "customerId": document["customerId"],
            "paymentId": payment_id,
            "provider": provider,
            "amount": amount,
            "currency": document["totals"]["currency"],
        }
        if fee is not None:
            paid_data["fee"] = fee
        paid = order_event(document, "order.paid", paid_data)
        document["stock"] = "sold"
        if status == "on_hold":
            # The money is in, but the order waits for its review: releasing it goes back
            # to `paid`, which is what asks the fulfilment partner to ship it.
            document["heldFrom"] = "paid"
            return [paid]
        next_status(status, "paid")
        add_history(document, "paid")
        if not hold:
            return [paid]
        next_status("paid", "on_hold")
        add_history(document, "on_hold")
        document["heldFrom"] = "paid"
        return [paid, status_changed_event(document, "paid", "on_hold")]

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    settle_stock(services, document)
    if document["status"] in ("cancelled", "payment_failed") and (
        int(document.get("capturedAmount", 0)) > int(document.get("refundedAmount", 0))
    ):
        if late["value"]:
            logger.warning(
                "payment of %s succeeded after it was %s; refunding", order_id, document["status"]
            )
        document = refund_remaining(
            services, document, reason="payment_after_cancellation", kind="cancellation"
        )
    return document


def _apply_risk(document: OrderDocument, risk: dict[str, Any] | None) -> bool:
    """Store a payment-time risk decision on the order; whether it holds the order."""
    if risk is None:
        return False
    review = (document.get("risk") or {}).get("review")
    # `risk` is the fraud rules' payment-time decision, an `OrderRiskDocument` as stored.
    document["risk"] = cast(OrderRiskDocument, {**risk, **({"review": review} if review else {})})
    if review and review.get("decision") == "approve":
        return False  # an admin looked at this order already
    return risk.get("mode") == "enforce" and risk.get("decision") in ("review", "block")


def mark_payment_failed(
    services: Services,
    customer_id: str,
    order_id: str,
    *,
    event_id: str,
    reason: str | None,
    target: Literal["payment_failed", "cancelled"] = "payment_failed",
) -> OrderDocument:
    """Apply a failed (or cancelled) payment: `payment_failed` and the stock released. A
    failure arriving after success (out of order) changes nothing."""

    def mutate(document: OrderDocument) -> list[Event] | None:
        if not _remember_event(document, event_id):
            return None
        status = document["status"]
        if status not in ("pending_payment", "on_hold"):
            logger.info("ignoring %s for order %s in %s", target, order_id, status)
            return []
        next_status(status, target)
        add_history(document, target, reason)
        # order.payment_failed and order.cancelled carry the same members.
        data: OrderPaymentFailed = {**order_ids(document), "reason": reason or target}
        event_type = "order.payment_failed" if target == "payment_failed" else "order.cancelled"
        return [order_event(document, event_type, data), *_release_to(document, target)]

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    settle_stock(services, document)
    return document


# --- cancellation -------------------------------------------------------------------------


def _refuse_imported(document: OrderDocument) -> None:
    # Imported orders are history from another system: no payment was captured here, no
    # stock is held, no partner knows them. Changing them would emit events (notifications,
    # fulfilment, refunds) about things that never happened in this shop.
    if document.get("imported"):
        raise OrderRuleViolation(
            "this order was imported from another system and cannot be changed here",
            "imported-order",
        )


def cancel_order(
    services: Services, customer_id: str, order_id: str, *, reason: str
) -> OrderDocument:
    """Cancel before shipment: stock back to available, a captured payment refunded, an
    open one cancelled at the gateway. Cancelling a cancelled order is a no-op."""

    def mutate(document: OrderDocument) -> list[Event] | None:
        _refuse_imported(document)
        status = document["status"]
        if status == "cancelled":
            return None
        if status not in CANCELLABLE:
            raise InvalidTransition(status, "cancelled")
        if any(s.get("status") != "failed" for s in document.get("shipments", [])):
            raise OrderRuleViolation(
                "part of this order has shipped; return it once delivered instead",
                "already-shipped",
            )
        next_status(status, "cancelled")
        add_history(document, "cancelled", reason)
        cancelled: OrderCancelled = {**order_ids(document), "reason": reason}
        return [
            order_event(document, "order.cancelled", cancelled),
            *_release_to(document, reason),
        ]

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    settle_stock(services, document)
    if int(document.get("capturedAmount", 0)) > int(document.get("refundedAmount", 0)):
        document = refund_remaining(services, document, reason=reason, kind="cancellation")
    elif document.get("payment") and not document.get("capturedAmount"):
        cancel_gateway_payment(services, document)
    return document


def cancel_gateway_payment(services: Services, document: OrderDocument) -> None:
    """Cancel the order's open gateway payment once (best effort: if it succeeded
    meanwhile, its webhook arrives and the late payment is refunded)."""
    payment = document["payment"]
    assert payment is not None, "only an order with a payment has one to cancel"
    payment_id = str(payment["paymentId"])
    guard = SideEffectGuard(services.documents, PAYMENT_CANCEL_CONSUMER)
    try:
        with guard.once(str(document["id"])) as key:
            if key is not None:
                gateway(services).cancel_payment(payment_id, idempotency_key=key)
    except Exception:
        logger.warning(
            "could not cancel payment %s of order %s", payment_id, document["id"], exc_info=True
        )


# --- refunds ------------------------------------------------------------------------------


def refund_remaining(
    services: Services, document: OrderDocument, *, reason: str, kind: RefundKind = "refund"
) -> OrderDocument:
    """Refund whatever was captured and not yet refunded."""
    remaining = int(document.get("capturedAmount", 0)) - int(document.get("refundedAmount", 0))
    if remaining <= 0:
        return document
    return issue_refund(services, document, amount=remaining, lines=[], reason=reason, kind=kind)


def refund_lines_amount(document: OrderDocument, lines: Sequence[Mapping[str, Any]]) -> int:
    """What refunding these `{"sku", "quantity"}` lines gives back; OrderRuleViolation
    if a line is not on the order or more units than remain unrefunded are asked for."""
    by_sku = {line["sku"]: line for line in document["lines"]}
    inclusive = bool(document["totals"].get("taxInclusive", True))
    amount = 0
    for item in lines:
        line = by_sku.get(item["sku"])
        if line is None:
            raise OrderRuleViolation(
                f"SKU {item['sku']!r} is not on this order",
                "unknown-line",
            )
        left = int(line["quantity"]) - int(line.get("refundedQuantity", 0))
        if item["quantity"] > left:
            raise OrderRuleViolation(
                f"only {left} unit(s) of {item['sku']!r} can still be refunded",
                "refund-exceeds-line",
            )
        amount += line_refund_amount(line, int(item["quantity"]), tax_inclusive=inclusive)
    return amount


def issue_refund(
    services: Services,
    document: OrderDocument,
    *,
    amount: int,
    lines: Sequence[Mapping[str, Any]],
    reason: str,
    kind: RefundKind = "refund",
) -> OrderDocument:
    """Refund `amount` through the gateway (once per refund number, via SideEffectGuard)
    and record it on the order with `refund.issued`; `returned` orders become `refunded`."""
    _refuse_imported(document)
    order_id = str(document["id"])
    customer_id = str(document["customerId"])
    captured = int(document.get("capturedAmount", 0))
    refunded = int(document.get("refundedAmount", 0))
    if amount <= 0 or amount > captured - refunded:
        raise OrderRuleViolation(
            f"refund of {amount} exceeds what can be refunded ({captured - refunded})",
            "refund-exceeds-captured",
        )
    payment: OrderPaymentDocument | dict[str, Any] = document.get("payment") or {}
    number = len(document.get("refunds", [])) + 1
    message_id = f"{order_id}:refund:{number}"
    guard = SideEffectGuard(services.documents, REFUNDS_CONSUMER)
    claim = guard.begin(message_id)
    if claim.state == "in_progress":
        raise OrderRuleViolation(
            "a refund of this order is in progress; retry", "refund-in-progress"
        )
    if claim.state == "done" and claim.result is not None:
        result = claim.result
    else:
        try:
            refund = gateway(services).refund(
                str(payment["paymentId"]), amount=amount, idempotency_key=claim.key, reason=reason
            )
        except BaseException:
            guard.failed(message_id)
            raise
        result = {
            "refundId": refund.refund_id,
            "amount": refund.amount,
            "status": refund.status,
            "lines": list(lines),
            "reason": reason,
            "kind": kind,
        }
        guard.done(message_id, result)

    def mutate(current: OrderDocument) -> list[Event] | None:
        refunds: list[OrderRefundDocument] = current.setdefault("refunds", [])
        if any(r.get("refundId") == result["refundId"] for r in refunds):
            return None
        # `result` is the refund as the guard recorded it (above): a refund entry's members.
        refunds.append(
            cast(OrderRefundDocument, {**result, "number": number, "createdAt": now_stamp()})
        )
        current["refundedAmount"] = int(current.get("refundedAmount", 0)) + int(result["amount"])
        by_sku = {line["sku"]: line for line in current["lines"]}
        for item in result.get("lines") or []:
            line = by_sku[item["sku"]]
            line["refundedQuantity"] = int(line.get("refundedQuantity", 0)) + int(item["quantity"])
        if current["status"] == "returned":
            add_history(current, "refunded", reason)
        issued: RefundIssued = {
            **order_ids(current),
            "refundId": result["refundId"],
            "paymentId": payment.get("paymentId"),
            "amount": int(result["amount"]),
            "currency": current["totals"]["currency"],
            "lines": result.get("lines") or [],
            "reason": reason,
            "kind": result.get("kind", kind),
        }
        return [order_event(current, "refund.issued", issued)]

    updated, _ = update_order(services.documents, customer_id, order_id, mutate)
    return updated


# --- returns and admin status ---------------------------------------------------------------


def request_return(
    services: Services,
    customer_id: str,
    order_id: str,
    lines: Sequence[dict[str, Any]],
    reason: str,
    now: datetime,
) -> OrderDocument:
    """Ask to return lines of a delivered order within `RETURN_WINDOW_DAYS`."""
    window = timedelta(days=services.settings.return_window_days)

    def mutate(document: OrderDocument) -> list[Event] | None:
        _refuse_imported(document)
        if document["status"] != "delivered":
            raise InvalidTransition(document["status"], "return_requested")
        delivered_at = datetime.fromisoformat(
            str(document.get("deliveredAt")).replace("Z", "+00:00")
        )
        if now - delivered_at > window:
            raise OrderRuleViolation(
                "the return window of this order has closed",
                "return-window-closed",
            )
        refund_lines_amount(document, lines)  # validates lines and quantities
        next_status(document["status"], "return_requested")
        add_history(document, "return_requested", reason)
        # Validated above: `{"sku", "quantity"}` of lines on the order.
        checked = cast(list[SkuQuantityDocument], list(lines))
        document["returnRequest"] = {
            "lines": checked,
            "reason": reason,
            "requestedAt": now_stamp(),
        }
        requested: ReturnRequested = {
            **order_ids(document),
            "lines": [{"sku": line["sku"], "quantity": line["quantity"]} for line in checked],
            "reason": reason,
        }
        return [order_event(document, "return.requested", requested)]

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    return document


ReviewDecision = Literal["approve", "reject"]

REVIEW_REJECTED_REASON = "cancelled_by_shop"
"""The cancellation reason a rejected order shows (the customer sees it; it names no rule)."""


def review_order(
    services: Services,
    customer_id: str,
    order_id: str,
    decision: ReviewDecision,
    *,
    reviewer: str,
) -> OrderDocument:
    """An admin's decision on a held order. `approve` releases it to where it was held from
    (`paid`, which asks the fulfilment partner to ship it, or `pending_payment` while its
    payment is still open); `reject` cancels it, refunding a captured payment or cancelling
    the open one. Repeating the same decision is a no-op; an order not on hold is refused
    (409 `invalid-transition`)."""

    def mutate(document: OrderDocument) -> list[Event] | None:
        _refuse_imported(document)
        risk = cast(OrderRiskDocument, dict(document.get("risk") or {}))
        review = risk.get("review")
        done = review.get("decision") if review else None
        status = document["status"]
        if done == decision and (decision == "reject" or status != "on_hold"):
            return None
        if status != "on_hold":
            target = "cancelled" if decision == "reject" else heldfrom_target(document)
            raise InvalidTransition(status, target)
        risk["review"] = {"decision": decision, "by": reviewer, "at": now_stamp()}
        document["risk"] = risk
        if decision == "reject":
            return []  # the cancellation below moves it, with its own events
        target = heldfrom_target(document)
        next_status(status, target)
        add_history(document, target)
        return [status_changed_event(document, status, target)]

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    if decision == "reject" and document["status"] != "cancelled":
        document = cancel_order(services, customer_id, order_id, reason=REVIEW_REJECTED_REASON)
    settle_stock(services, document)
    return document


def heldfrom_target(document: OrderDocument) -> OrderStatus:
    """Where a held order goes back to: `paid` once its payment is captured (or
    `fulfilling` if it was held there), `pending_payment` while it is still open."""
    if not int(document.get("capturedAmount", 0)):
        return "pending_payment"
    return "fulfilling" if document.get("heldFrom") == "fulfilling" else "paid"


ADMIN_STATUSES = ("fulfilling", "shipped", "delivered", "on_hold", "returned")


def set_status(
    services: Services, customer_id: str, order_id: str, target: OrderStatus
) -> OrderDocument:
    """An admin status change (shops without a fulfilment partner), state machine enforced."""

    def mutate(document: OrderDocument) -> list[Event] | None:
        _refuse_imported(document)
        status = document["status"]
        if (
            target == "fulfilling"
            and status == "on_hold"
            and document.get("heldFrom") not in ("paid", "fulfilling")
        ):
            raise InvalidTransition(status, target)
        if next_status(status, target) is None:
            return None
        if target == "on_hold":
            # The state machine lets only these statuses go to `on_hold`.
            document["heldFrom"] = cast(HeldFrom, status)
        if target == "delivered":
            document["deliveredAt"] = now_stamp()
        events: list[Event] = []
        if target == "returned":
            request = document.get("returnRequest")
            returned = request.get("lines", []) if request else []
            document["stock"] = "restocked"
            document["restockLines"] = returned
            events.append(
                released_event(
                    document, [(r["sku"], int(r["quantity"])) for r in returned], "returned"
                )
            )
        add_history(document, target)
        events.insert(0, status_changed_event(document, status, target))
        return events

    document, _ = update_order(services.documents, customer_id, order_id, mutate)
    settle_stock(services, document)
    return document
