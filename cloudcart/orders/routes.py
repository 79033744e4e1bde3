"""HTTP routes: cart, checkout, the customer's orders, and the admin order API.

Mount (cloudcart/api/app.py): `app.include_router(orders_routes.cart_router)`,
`app.include_router(orders_routes.router)` and `app.include_router(orders_routes.admin_router)`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.problems import PROBLEM_MEDIA_TYPE, Problem
from cloudcart.api.responses import documented_string, optional_auth, problem_responses
from cloudcart.core.audit import record_audit
from cloudcart.core.clock import utcnow
from cloudcart.customers.routes import CurrentProfile
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import (
    SESSION_COOKIE,
    Admin,
    CurrentCustomer,
    bearer_scheme,
    current_caller,
)
from cloudcart.orders import lifecycle
from cloudcart.orders.cart import (
    CART_ID_PATTERN,
    CartError,
    Carts,
    anon_owner,
    new_cart_id,
    valid_cart_id,
)
from cloudcart.orders.checkout import CheckoutContext, checkout
from cloudcart.orders.documents import OrderDocument
from cloudcart.orders.models import (
    AdminCancelIn,
    AdminOrder,
    AdminOrderPage,
    CancelIn,
    Cart,
    CartItemIn,
    CartQuantityIn,
    CheckoutIn,
    CheckoutResult,
    Order,
    OrderPage,
    RefundIn,
    ReturnIn,
    ReviewIn,
    StatusIn,
)
from cloudcart.orders.service import (
    CURSOR_PATTERN,
    OrderNotFound,
    OrderRuleViolation,
    find_order,
    get_order,
    list_orders,
    public_order,
)
from cloudcart.orders.state import ORDER_STATUSES
from cloudcart.risk import client_ip

CART_HEADER = "X-Cart-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255

cart_router = APIRouter(prefix="/api/cart", tags=["cart"])
router = APIRouter(prefix="/api", tags=["orders"])
admin_router = APIRouter(prefix="/api/admin/orders", tags=["admin: orders"])


# The routes return the dicts `Carts.view`, `public_order` and `admin_order` build, and
# declare their models with `response_model=None` and `responses=`: FastAPI documents the
# model and sends the dict as it is. A `response_model` would filter every answer through
# the model, so a field the model missed would silently vanish for clients (the web pages
# among them). tests/unit/orders/test_response_schemas.py checks real answers against the
# document instead, whose schemas forbid undeclared fields.
def _answers(
    model: type[BaseModel],
    description: str,
    errors: dict[int | str, dict[str, Any]],
    *,
    status: int = 200,
    headers: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """`responses=` of an operation answering `model` with `status`, and its problems."""
    success: dict[str, Any] = {"model": model, "description": description}
    if headers:
        success["headers"] = headers
    return {status: success, **errors}


# --- cart -------------------------------------------------------------------------------


def optional_caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller | None:
    """The caller when the request carries credentials (then they must be valid), else None."""
    if (
        credentials is None
        and not request.headers.get("Authorization")
        and not (request.cookies.get(SESSION_COOKIE))
    ):
        return None
    return current_caller(request, services, credentials)


OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]
CartIdHeader = Annotated[
    str | None,
    Header(
        alias=CART_HEADER,
        description="Anonymous cart id returned by the first add.",
        # Documented, not enforced here: `_carts` answers a bad id with 400 `bad-cart-id`.
        json_schema_extra=documented_string(pattern=CART_ID_PATTERN),
    ),
]


def _carts(
    services: ServicesDep,
    caller: Caller | None,
    cart_id: str | None,
    response: Response,
    *,
    create: bool,
) -> Carts | None:
    if cart_id is not None and not valid_cart_id(cart_id):
        raise Problem.of("bad-cart-id", f"{CART_HEADER} is not a cart id")
    store = services.documents
    if caller is not None:
        carts = Carts(store, caller.customer_id)
        if cart_id is not None:
            carts.merge_from(Carts(store, anon_owner(cart_id)))
        return carts
    if cart_id is None:
        if not create:
            return None
        cart_id = new_cart_id()
    response.headers[CART_HEADER] = cart_id
    return Carts(store, anon_owner(cart_id))


_CART_ERRORS = problem_responses(400, 401, 404, 409)
_CART_ID_HEADER = {
    CART_HEADER: {
        "description": "The anonymous cart's id (anonymous callers only): send it back in "
        "`X-Cart-Id`.",
        "schema": {"type": "string", "pattern": CART_ID_PATTERN},
    }
}
_CART_RESPONSES = _answers(
    Cart, "The cart, priced from the catalog now.", _CART_ERRORS, headers=_CART_ID_HEADER
)


@cart_router.get(
    "",
    summary="The cart",
    response_model=None,
    responses=_CART_RESPONSES,
    openapi_extra=optional_auth(),
)
def get_cart(
    services: ServicesDep, caller: OptionalCaller, response: Response, cart_id: CartIdHeader = None
) -> dict[str, Any]:
    """The signed-in customer's cart, or the anonymous cart named by `X-Cart-Id`; prices and
    availability read from the catalog now."""
    carts = _carts(services, caller, cart_id, response, create=False)
    if carts is None:
        return {"items": [], "subtotal": None, "updatedAt": None}
    return carts.view(carts.load())


@cart_router.post(
    "/items",
    summary="Add to the cart",
    response_model=None,
    responses=_CART_RESPONSES,
    openapi_extra=optional_auth(),
)
def add_cart_item(
    body: CartItemIn,
    services: ServicesDep,
    caller: OptionalCaller,
    response: Response,
    cart_id: CartIdHeader = None,
) -> dict[str, Any]:
    """Add units of a SKU. Without a token or cart id a new anonymous cart is made and its id
    returned in `X-Cart-Id`."""
    carts = _carts(services, caller, cart_id, response, create=True)
    assert carts is not None
    return carts.view(carts.add(body.sku, body.quantity))


@cart_router.patch(
    "/items/{sku}",
    summary="Change a cart line",
    response_model=None,
    responses=_CART_RESPONSES,
    openapi_extra=optional_auth(),
)
def set_cart_item(
    sku: str,
    body: CartQuantityIn,
    services: ServicesDep,
    caller: OptionalCaller,
    response: Response,
    cart_id: CartIdHeader = None,
) -> dict[str, Any]:
    """Set the quantity of a SKU in the cart."""
    carts = _carts(services, caller, cart_id, response, create=False)
    if carts is None:
        raise CartError(f"SKU {sku!r} is not in the cart", "not-in-cart")
    return carts.view(carts.set_quantity(sku, body.quantity))


@cart_router.delete(
    "/items/{sku}",
    summary="Remove a cart line",
    response_model=None,
    responses=_CART_RESPONSES,
    openapi_extra=optional_auth(),
)
def delete_cart_item(
    sku: str,
    services: ServicesDep,
    caller: OptionalCaller,
    response: Response,
    cart_id: CartIdHeader = None,
) -> dict[str, Any]:
    """Remove a SKU from the cart."""
    carts = _carts(services, caller, cart_id, response, create=False)
    if carts is None:
        raise CartError(f"SKU {sku!r} is not in the cart", "not-in-cart")
    return carts.view(carts.remove(sku))


# --- checkout and orders -----------------------------------------------------------------


_CHECKOUT_ERRORS = {
    **problem_responses(400, 401, 404, 409, 503),
    422: {
        **problem_responses(422)[422],
        "description": "The body is invalid, the cart is empty or cannot be priced, the key "
        "was used with another body, or the shop declined the order (`checkout-declined`: "
        "nothing was reserved, ordered or charged).",
    },
}


# Declared here rather than as a FastAPI Header parameter, which would answer a missing key
# with its own 422; the route answers 400 `idempotency-key-required` itself.
_IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": True,
    "description": "1..255 characters, unique per attempt.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
}


@router.post(
    "/checkout",
    status_code=201,
    summary="Place the cart as an order",
    response_model=None,
    responses=_answers(
        CheckoutResult,
        "The order placed and its payment; a replay with the same Idempotency-Key and body "
        "answers the same.",
        _CHECKOUT_ERRORS,
        status=201,
    ),
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY_PARAMETER]},
)
def post_checkout(
    request: Request,
    body: CheckoutIn,
    caller: CurrentCustomer,
    services: ServicesDep,
    # The customer's profile exists before their first order: order notifications and the
    # CRM find the customer's email and choices there.
    _profile: CurrentProfile,
) -> Any:
    """Reserve stock, write the order and start its payment, once per Idempotency-Key: the
    same key and body answer the same response however often they are sent."""
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise Problem.of(
            "idempotency-key-required", "the Idempotency-Key header (1..255 characters) is required"
        )
    context = CheckoutContext(
        ip=client_ip(
            request.headers,
            request.client.host if request.client else None,
            services.settings.client_ip_header,
        ),
        email=caller.email or _profile.get("email"),
    )
    result = checkout(services, caller.customer_id, idempotency_key, body, context)
    headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
    return JSONResponse(
        result.body,
        status_code=result.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE if result.status >= 400 else None,
    )


_ORDER_ERRORS = problem_responses(400, 401, 404, 409)
OrderCursorQuery = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="`nextCursor` of the previous page.",
        # The shape is documented; a cursor of another shape is 400 `bad-cursor`, as is a
        # well-formed one this API did not return.
        json_schema_extra=documented_string(pattern=CURSOR_PATTERN),
    ),
]
OrderIdPath = Annotated[str, Path(alias="orderId", min_length=1, max_length=100)]


@router.get(
    "/orders",
    summary="My orders",
    response_model=None,
    responses=_answers(OrderPage, "A page of the caller's orders.", _ORDER_ERRORS),
)
def get_orders(
    caller: CurrentCustomer,
    services: ServicesDep,
    cursor: OrderCursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The caller's orders, newest first; pass `nextCursor` back as `cursor`."""
    try:
        items, next_cursor = list_orders(
            services.documents, customer_id=caller.customer_id, cursor=cursor, limit=limit
        )
    except ValueError as exc:
        raise Problem.of("bad-cursor", str(exc)) from None
    return {"items": [public_order(o) for o in items], "nextCursor": next_cursor}


@router.get(
    "/orders/{orderId}",
    summary="One of my orders",
    response_model=None,
    responses=_answers(Order, "The order.", _ORDER_ERRORS),
)
def get_one_order(
    order_id: OrderIdPath, caller: CurrentCustomer, services: ServicesDep
) -> dict[str, Any]:
    """The order, if it is the caller's (404 otherwise)."""
    return public_order(get_order(services.documents, caller.customer_id, order_id))


@router.post(
    "/orders/{orderId}/cancel",
    summary="Cancel my order",
    response_model=None,
    responses=_answers(Order, "The order, cancelled.", _ORDER_ERRORS),
)
def post_cancel(
    order_id: OrderIdPath,
    caller: CurrentCustomer,
    services: ServicesDep,
    body: CancelIn | None = None,
) -> dict[str, Any]:
    """Cancel before shipment: stock released, a captured payment refunded."""
    get_order(services.documents, caller.customer_id, order_id)
    reason = body.reason if body else "requested_by_customer"
    return public_order(
        lifecycle.cancel_order(services, caller.customer_id, order_id, reason=reason)
    )


@router.post(
    "/orders/{orderId}/returns",
    summary="Return lines of my order",
    response_model=None,
    responses=_answers(Order, "The order, `return_requested`.", _ORDER_ERRORS),
)
def post_return(
    order_id: OrderIdPath, body: ReturnIn, caller: CurrentCustomer, services: ServicesDep
) -> dict[str, Any]:
    """Ask to return lines of a delivered order within the return window."""
    lines = [line.model_dump() for line in body.lines]
    return public_order(
        lifecycle.request_return(
            services, caller.customer_id, order_id, lines, body.reason, utcnow()
        )
    )


# --- admin -----------------------------------------------------------------------------


def _admin_order(services: ServicesDep, order_id: str) -> OrderDocument:
    found = find_order(services.documents, order_id)
    if found is None:
        raise OrderNotFound(order_id)
    return found


_ADMIN_ERRORS = problem_responses(400, 401, 403, 404, 409)


@admin_router.get(
    "",
    summary="Orders (all customers)",
    response_model=None,
    responses=_answers(AdminOrderPage, "A page of orders.", _ADMIN_ERRORS),
)
def admin_list(
    _: Admin,
    services: ServicesDep,
    status: Annotated[
        str | None,
        Query(
            description="Only orders in this status.",
            # Documented, not enforced by FastAPI: an unknown status is 400 `bad-status`.
            json_schema_extra=documented_string(enum=list(ORDER_STATUSES)),
        ),
    ] = None,
    cursor: OrderCursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Every customer's orders, newest first (a cross-partition query)."""
    if status is not None and status not in ORDER_STATUSES:
        raise Problem.of("bad-status", f"unknown status {status!r}")
    try:
        items, next_cursor = list_orders(
            services.documents, customer_id=None, status=status, cursor=cursor, limit=limit
        )
    except ValueError as exc:
        raise Problem.of("bad-cursor", str(exc)) from None
    return {"items": [admin_order(o) for o in items], "nextCursor": next_cursor}


@admin_router.get(
    "/{orderId}",
    summary="One order (any customer)",
    response_model=None,
    responses=_answers(AdminOrder, "The order.", _ADMIN_ERRORS),
)
def admin_get(order_id: OrderIdPath, _: Admin, services: ServicesDep) -> dict[str, Any]:
    """An order with its customer id, fulfilments and timeline."""
    return admin_order(_admin_order(services, order_id))


def admin_order(document: OrderDocument) -> dict[str, Any]:
    """The order as admins see it: the customer's view plus its customer id and the fraud
    rules' `risk: {score, decision, reasons}` (null when it was not scored)."""
    risk = document.get("risk")
    shown = None
    if isinstance(risk, dict):
        shown = {
            k: risk.get(k)
            for k in ("score", "decision", "reasons", "mode", "evaluatedAt", "review")
        }
    return {**public_order(document), "customerId": document["customerId"], "risk": shown}


@admin_router.post(
    "/{orderId}/review",
    summary="Approve or reject an order held for review",
    response_model=None,
    responses=_answers(AdminOrder, "The order after the decision.", _ADMIN_ERRORS),
)
def admin_review(
    order_id: OrderIdPath, body: ReviewIn, caller: Admin, services: ServicesDep
) -> dict[str, Any]:
    """Decide on an order `on_hold` for review: `approve` releases it (to fulfilment once
    paid), `reject` cancels it with a refund or a voided payment. The same decision again
    changes nothing; an order that is not held answers 409 `invalid-transition`."""
    order = _admin_order(services, order_id)
    updated = lifecycle.review_order(
        services,
        str(order["customerId"]),
        str(order["id"]),
        body.decision,
        reviewer=caller.customer_id,
    )
    record_audit(
        services.documents,
        actor_id=caller.customer_id,
        action=f"order.review.{body.decision}",
        target={"orderId": order_id, "status": updated["status"]},
        correlation_id=correlation_id.get(),
    )
    return admin_order(updated)


@admin_router.post(
    "/{orderId}/cancel",
    summary="Cancel an order (any customer)",
    response_model=None,
    responses=_answers(AdminOrder, "The order, cancelled.", _ADMIN_ERRORS),
)
def admin_cancel(
    order_id: OrderIdPath,
    caller: Admin,
    services: ServicesDep,
    body: AdminCancelIn | None = None,
) -> dict[str, Any]:
    """Cancel before shipment, as a customer can cancel their own: stock released, a
    captured payment refunded, an open one cancelled at the gateway; audited. Cancelling a
    cancelled order changes nothing; once part of it shipped, 409 `already-shipped`."""
    order = _admin_order(services, order_id)
    reason = body.reason if body else "cancelled_by_shop"
    updated = lifecycle.cancel_order(
        services, str(order["customerId"]), str(order["id"]), reason=reason
    )
    record_audit(
        services.documents,
        actor_id=caller.customer_id,
        action="order.cancel",
        target={"orderId": order_id, "status": updated["status"], "reason": reason},
        correlation_id=correlation_id.get(),
    )
    return admin_order(updated)


@admin_router.post(
    "/{orderId}/refunds",
    summary="Refund an order",
    response_model=None,
    responses=_answers(Order, "The order with the refund recorded.", _ADMIN_ERRORS),
)
def admin_refund(
    order_id: OrderIdPath, body: RefundIn, _: Admin, services: ServicesDep
) -> dict[str, Any]:
    """Refund lines (their price and tax) or an amount of a paid order; `refund.issued`.
    A `returned` order becomes `refunded`."""
    order = _admin_order(services, order_id)
    if not order.get("capturedAmount"):
        raise OrderRuleViolation("the order has no captured payment", "not-paid")
    lines = [line.model_dump() for line in body.lines] if body.lines else []
    amount = lifecycle.refund_lines_amount(order, lines) if lines else int(body.amount or 0)
    return public_order(
        lifecycle.issue_refund(services, order, amount=amount, lines=lines, reason=body.reason)
    )


@admin_router.post(
    "/{orderId}/status",
    summary="Change an order's status",
    response_model=None,
    responses=_answers(Order, "The order in its new status.", _ADMIN_ERRORS),
)
def admin_status(
    order_id: OrderIdPath, body: StatusIn, _: Admin, services: ServicesDep
) -> dict[str, Any]:
    """Move an order along (shops without a fulfilment partner); the state machine
    refuses impossible steps with 409."""
    order = _admin_order(services, order_id)
    return public_order(
        lifecycle.set_status(services, str(order["customerId"]), str(order["id"]), body.status)
    )
