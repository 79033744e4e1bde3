"""Every customer's orders: the list by status, one order with all it went through, and the
forms that review, cancel, refund and move it along."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web.admin.common import AdminPage, major, open_admin, open_admin_form
from cloudcart.web.client import ApiError
from cloudcart.web.forms import segment
from cloudcart.web.pages import notices, web_router

router = web_router()

# Order statuses as the API names them (docs/orders.md), with the words the pages show.
ORDER_STATUSES: dict[str, str] = {
    "pending_payment": "Awaiting payment",
    "paid": "Paid",
    "payment_failed": "Payment failed",
    "fulfilling": "Fulfilling",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "on_hold": "On hold",
    "return_requested": "Return requested",
    "returned": "Returned",
    "refunded": "Refunded",
}
# The moves `POST /api/admin/orders/{id}/status` may make from each status (the state
# machine in docs/orders.md). Only offered as choices: the API stays the judge and answers
# an impossible move with 409, shown on the page. A held order leaves hold by review.
STATUS_MOVES: dict[str, tuple[str, ...]] = {
    "pending_payment": ("on_hold",),
    "paid": ("fulfilling", "on_hold"),
    "fulfilling": ("shipped", "on_hold"),
    "shipped": ("delivered",),
    "return_requested": ("returned",),
}
# Statuses the API cancels from (before anything shipped).
CANCEL_FROM = ("pending_payment", "paid", "fulfilling", "on_hold")
SHIPPED_FULFILMENTS = ("shipped", "delivered")
ORDERS_PAGE = 25

ORDER_DONE = {
    "approved": "The order was approved and released.",
    "rejected": "The order was rejected: it is cancelled, its payment refunded or voided.",
    "cancelled": "The order was cancelled: its payment is refunded or voided, its stock released.",
    "refunded": "The refund was issued.",
    "refund-seen": "A refund was recorded on this order after the refund form was opened, so "
    "nothing more was refunded. Check the refunds below before refunding again.",
    "status": "The order's status was changed.",
}


@router.get("/admin/orders")
async def orders(
    request: Request,
    status: Annotated[str, Query(max_length=30)] = "",
    cursor: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """Every customer's orders, newest first, filtered by status, a page at a time."""
    admin = await open_admin(request)
    error = None
    result: dict[str, Any] = {"items": [], "nextCursor": None}
    if status and status not in ORDER_STATUSES:
        error = "Choose one of the statuses offered."
    else:
        result = await admin.api.get(
            "/api/admin/orders", status=status, cursor=cursor, limit=ORDERS_PAGE
        )
    return admin.render(
        "admin/orders.html",
        status=400 if error else 200,
        error=error,
        result=result,
        statuses=ORDER_STATUSES,
        selected="" if error else status,
        paged=bool(cursor) and not error,
    )


def _refundable(order: Mapping[str, Any]) -> int:
    captured = int((order.get("captured") or {}).get("amount", 0))
    refunded = int((order.get("refunded") or {}).get("amount", 0))
    return max(0, captured - refunded)


def _shipped(order: Mapping[str, Any]) -> bool:
    return any(f.get("status") in SHIPPED_FULFILMENTS for f in order.get("fulfilments") or [])


def _actions(order: Mapping[str, Any]) -> dict[str, Any]:
    """Which forms the order page offers (the API still decides)."""
    status = str(order.get("status"))
    imported = bool(order.get("imported"))
    return {
        "review": status == "on_hold" and not imported,
        "cancel": status in CANCEL_FROM and not imported and not _shipped(order),
        "refund": _refundable(order) > 0 and not imported,
        "moves": () if imported else STATUS_MOVES.get(status, ()),
    }


def _order_api(order_id: str) -> str:
    return f"/api/admin/orders/{segment(order_id)}"


def _after(order_id: str, done: str) -> str:
    """The order's page after a form, saying what was done."""
    return f"/admin/orders/{segment(order_id)}?done={done}"


async def _order_page(
    admin: AdminPage,
    order_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    order = await admin.api.get(_order_api(order_id))
    return admin.render(
        "admin/order.html",
        status=status,
        order=order,
        error=error,
        notices=notices(ORDER_DONE, done),
        actions=_actions(order),
        refundable=_refundable(order),
        statuses=ORDER_STATUSES,
        form=form or {},
        major=major,
    )


async def _order_refused(
    admin: AdminPage, order_id: str, exc: ApiError, form: Mapping[str, str] | None = None
) -> Response:
    """The order page again with what the API refused, for refusals an admin can act on."""
    if exc.status not in (400, 409, 412, 422):
        raise exc
    return await _order_page(admin, order_id, status=exc.status, error=exc.message, form=form)


@router.get("/admin/orders/{order_id}")
async def order_detail(
    request: Request, order_id: str, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """One order: lines, totals, customer, payment, risk, history, shipments and actions."""
    admin = await open_admin(request)
    return await _order_page(admin, order_id, done=done)


@router.post("/admin/orders/{order_id}/review")
async def review_order(request: Request, order_id: str) -> Response:
    """Approve or reject an order held for review."""
    admin, fields = await open_admin_form(request)
    decision = fields.get("decision", "")
    if decision not in ("approve", "reject"):
        return await _order_page(admin, order_id, status=422, error="Choose approve or reject.")
    try:
        await admin.api.post(f"{_order_api(order_id)}/review", {"decision": decision})
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc)
    return admin.redirect(_after(order_id, "approved" if decision == "approve" else "rejected"))


@router.post("/admin/orders/{order_id}/cancel")
async def cancel_order(request: Request, order_id: str) -> Response:
    """Cancel an order before it ships: its payment refunded or voided, its stock
    released (the API refuses once part of it shipped)."""
    admin, _ = await open_admin_form(request)
    try:
        await admin.api.post(f"{_order_api(order_id)}/cancel", {"reason": "cancelled_by_shop"})
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc)
    return admin.redirect(_after(order_id, "cancelled"))


def minor_units(text: str) -> int:
    """An amount typed in major units ("1,299.50") as minor units (129950); ValueError
    when it is not a positive amount with at most two decimals."""
    cleaned = text.replace(",", "").replace(" ", "").strip()
    try:
        value = decimal.Decimal(cleaned)
    except decimal.InvalidOperation:
        raise ValueError("Enter the amount as a number, like 1299.50.") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("The amount must be more than zero.")
    minor = value * 100
    if minor != minor.to_integral_value():
        raise ValueError("The amount can have at most two decimals.")
    return int(minor)


def _refund_body(order: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """The refund the form asks for: an amount or lines, not both; ValueError to show."""
    lines: list[dict[str, Any]] = []
    for line in order.get("lines") or []:
        raw = fields.get(f"qty-{line['sku']}", "").strip()
        if not raw or raw == "0":
            continue
        try:
            quantity = int(raw)
        except ValueError:
            raise ValueError(f"The quantity of {line['sku']} must be a whole number.") from None
        left = int(line.get("quantity", 0)) - int(line.get("refundedQuantity", 0))
        if quantity < 0 or quantity > left:
            raise ValueError(f"Refund between 0 and {left} units of {line['sku']}.")
        lines.append({"sku": line["sku"], "quantity": quantity})
    amount = fields.get("amount", "").strip()
    if amount and lines:
        raise ValueError("Refund either an amount or lines, not both.")
    if not amount and not lines:
        raise ValueError("Enter an amount to refund, or the units of the lines to refund.")
    reason = fields.get("reason", "").strip()[:500] or "requested_by_admin"
    if lines:
        return {"lines": lines, "reason": reason}
    minor = minor_units(amount)
    if minor > _refundable(order):
        raise ValueError(f"At most {major(_refundable(order))} can still be refunded.")
    return {"amount": minor, "reason": reason}


@router.post("/admin/orders/{order_id}/refund")
async def refund_order(request: Request, order_id: str) -> Response:
    """Refund an amount or lines of a paid order, once per form.

    The admin refund route takes no idempotency key, so the form carries how many refunds
    the order had when it was drawn (`seen`). A second submission of the same form finds a
    refund more and refunds nothing; two submissions racing each other ask the API for the
    same refund number, which its guard issues only once.
    """
    admin, fields = await open_admin_form(request)
    path = _order_api(order_id)
    order = await admin.api.get(path)
    try:
        seen = int(fields.get("seen", ""))
    except ValueError:
        return await _order_page(
            admin, order_id, status=400, error="This form is incomplete: reload the page."
        )
    if len(order.get("refunds") or []) != seen:
        return admin.redirect(_after(order_id, "refund-seen"))
    try:
        body = _refund_body(order, fields)
    except ValueError as exc:
        return await _order_page(admin, order_id, status=422, error=str(exc), form=fields)
    try:
        await admin.api.post(f"{path}/refunds", body)
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc, form=fields)
    return admin.redirect(_after(order_id, "refunded"))


@router.post("/admin/orders/{order_id}/status")
async def change_status(request: Request, order_id: str) -> Response:
    """Move an order along (shops without a fulfilment partner)."""
    admin, fields = await open_admin_form(request)
    target = fields.get("status", "")
    if target not in {move for moves in STATUS_MOVES.values() for move in moves}:
        return await _order_page(
            admin, order_id, status=422, error="Choose one of the statuses offered."
        )
    try:
        await admin.api.post(f"{_order_api(order_id)}/status", {"status": target})
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc)
    return admin.redirect(_after(order_id, "status"))
