"""The storefront's cart, checkout, payment and order pages.

Everything goes through the public API the apps use: `/api/cart...` (anonymous carts named
by `X-Cart-Id`, kept in the HttpOnly cart cookie), `/api/checkout` (once per
Idempotency-Key: the key is made when the checkout page is rendered, so a double submit
places one order), `/api/orders...` and the payment's confirm URL of the embedded test
gateway. Outcomes reach the next page as `?done=` codes with fixed messages.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import HTTPException, Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.core.settings import Settings
from cloudcart.web import events
from cloudcart.web.client import ApiError
from cloudcart.web.forms import (
    ADDRESS_FIELDS,
    PRODUCT_ID,
    SKU,
    field_errors,
    segment,
    whole_number,
)
from cloudcart.web.pages import Page, notices, open_form, open_page, web_router
from cloudcart.web.security import CART_COOKIE, remember_cart

router = web_router()

CART_HEADER = "X-Cart-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ORDERS_PAGE_SIZE = 10
MAX_QUANTITY = 99

# The shapes the API gives what goes into its paths and headers: anything else is not ours.
_ORDER = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_CART_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,255}")
_ADDRESS_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_CONFIRM_PATH = re.compile(r"/dev/payments/[A-Za-z0-9_-]{1,200}/confirm")
_COUNTRY = re.compile(r"[A-Za-z]{2}")

_ADDRESS_REQUIRED = frozenset({"name", "line1", "city", "postalCode", "country"})
_ADDRESS_LIMITS: Mapping[str, int] = {
    "name": 200,
    "line1": 200,
    "line2": 200,
    "city": 100,
    "region": 100,
    "postalCode": 20,
    "country": 2,
    "phone": 40,
}
_ADDRESS_LABELS: Mapping[str, str] = {
    "name": "Recipient name",
    "line1": "Address line 1",
    "line2": "Address line 2",
    "city": "City",
    "region": "State or region",
    "postalCode": "Postal code",
    "country": "Country code",
    "phone": "Phone for the courier",
}

# The API's rule for a customer's cancel (docs/orders.md: before shipment), mirrored so the
# button shows only when the API would accept it.
CANCELLABLE = frozenset({"pending_payment", "paid", "fulfilling", "on_hold"})
_SHIPPED_PARCEL = frozenset({"shipped", "delivered"})

STATUS_LABELS: Mapping[str, tuple[str, str]] = {
    "pending_payment": ("Awaiting payment", "warn"),
    "paid": ("Paid", "ok"),
    "payment_failed": ("Payment failed", "bad"),
    "fulfilling": ("Being prepared", ""),
    "shipped": ("Shipped", ""),
    "delivered": ("Delivered", "ok"),
    "cancelled": ("Cancelled", "bad"),
    "on_hold": ("On hold", "warn"),
    "return_requested": ("Return requested", "warn"),
    "returned": ("Returned", ""),
    "refunded": ("Refunded", ""),
}

CART_DONE: Mapping[str, str] = {
    "added": "Added to your cart.",
    "updated": "Your cart is updated.",
    "removed": "Removed from your cart.",
}
ORDER_DONE: Mapping[str, str] = {
    "paid": "Payment received",
    "cancelled": "Order cancelled",
    "returned": "Return requested",
}
PAYMENT_NOT_TAKEN = "The payment did not go through."
DECLINES: Mapping[str, str] = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}
TEST_CARDS: tuple[tuple[str, str], ...] = (
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0035 6000 0008", "succeeds, issued in India"),
    ("4000 0000 0000 0002", "declined"),
    ("4000 0000 0000 9995", "insufficient funds"),
)


def _quantity(text: str | None) -> int | None:
    """A posted quantity 0..99, or None when it is not one."""
    return whole_number(text, 0, MAX_QUANTITY)


def _new_key() -> str:
    """A fresh Idempotency-Key for one checkout attempt."""
    return secrets.token_urlsafe(24)


def _done(page: Page, messages: Mapping[str, str]) -> list[str]:
    """The fixed message of the page's `?done=` code (unknown codes show nothing)."""
    return notices(messages, page.request.query_params.get("done"))


# --- the cart ------------------------------------------------------------------------------


@dataclass
class CartSession:
    """The browser's cart as the API knows it: the anonymous id its cookie holds, sent as
    `X-Cart-Id` on every cart call, and what to do with the cookie afterwards."""

    page: Page
    sent: str | None = None
    issued: str | None = None
    forget: bool = False

    @classmethod
    def of(cls, page: Page) -> CartSession:
        """The cart of this request's browser."""
        cookie = page.request.cookies.get(CART_COOKIE)
        if cookie and not _CART_ID.fullmatch(cookie):
            return cls(page, forget=True)
        return cls(page, sent=cookie or None)

    async def send(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """Call a cart route with the cart id; remember a new id or a merged cart."""
        headers = {CART_HEADER: self.sent} if self.sent else None
        try:
            answer = await self.page.api.send(method, path, json=body, headers=headers)
        except ApiError as exc:
            if exc.slug == "bad-cart-id" and self.sent:
                # A cookie the API no longer takes: start a new cart rather than fail.
                self.sent, self.forget = None, True
                return await self.send(method, path, body)
            if self.sent and self.page.signed_in and exc.status != 401:
                # The API merges before it acts, so the anonymous cart is gone even when
                # the change itself was refused.
                self.forget = True
            raise
        issued = answer.headers.get(CART_HEADER)
        if issued and issued != self.sent and _CART_ID.fullmatch(issued):
            self.issued = issued
        if self.sent and self.page.signed_in:
            # Signed in with an anonymous cart: the API merged it into the customer's.
            self.sent, self.forget = None, True
        body_out: dict[str, Any] = answer.body or {}
        return body_out

    def keep(self, response: Response) -> Response:
        """Set or clear the cart cookie on the response as the calls decided."""
        if self.issued and not self.page.signed_in:
            remember_cart(response, self.page.settings, self.issued)
        elif self.forget:
            remember_cart(response, self.page.settings, None)
        return response


async def _cart_lines(page: Page, cart: dict[str, Any]) -> list[dict[str, Any]]:
    """The cart's lines with their variant's options and picture from the catalog."""
    items: list[dict[str, Any]] = list(cart.get("items") or [])
    ids = (str(i["productId"]) for i in items if i.get("productId"))
    products = await page.api.each("/api/catalog/products/{}", ids)
    lines = []
    for item in items:
        product = products.get(str(item.get("productId")))
        variant = None
        if product:
            variant = next(
                (v for v in product.get("variants") or [] if v.get("sku") == item["sku"]), None
            )
        options = " · ".join(str(v) for v in (variant or {}).get("attributes", {}).values())
        lines.append({**item, "product": product, "options": options})
    return lines


async def _read_cart(
    page: Page, session: CartSession
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cart and its lines with their catalog details."""
    cart = await session.send("GET", "/api/cart")
    return cart, await _cart_lines(page, cart)


async def _render_cart(
    page: Page,
    session: CartSession,
    *,
    status: int = 200,
    error: str | None = None,
    back_to: str | None = None,
) -> Response:
    cart, lines = await _read_cart(page, session)
    response = page.render(
        "cart.html",
        status=status,
        cart=cart,
        lines=lines,
        error=error,
        back_to=back_to,
        notices=_done(page, CART_DONE) if not error else [],
    )
    return session.keep(response)


@router.get("/cart")
async def cart_page(request: Request) -> Response:
    """The cart: lines, quantities, the subtotal and the way to checkout."""
    page = await open_page(request)
    return await _render_cart(page, CartSession.of(page))


@router.post("/cart/items")
async def add_to_cart(request: Request) -> Response:
    """Add units of a SKU (the product page's form), then show the cart."""
    page, fields = await open_form(request)
    session = CartSession.of(page)
    sku = fields.get("sku", "").strip()
    product_id = fields.get("productId", "").strip()
    back_to = f"/products/{segment(product_id)}" if PRODUCT_ID.fullmatch(product_id) else None
    quantity = _quantity(fields.get("qty", "1"))
    if not SKU.fullmatch(sku):
        return await _render_cart(
            page, session, status=400, error="Choose an option to add.", back_to=back_to
        )
    if not quantity:
        return await _render_cart(
            page,
            session,
            status=422,
            error=f"Choose a quantity from 1 to {MAX_QUANTITY}.",
            back_to=back_to,
        )
    try:
        await session.send("POST", "/api/cart/items", {"sku": sku, "quantity": quantity})
    except ApiError as exc:
        if exc.status in (401, 403) or exc.status >= 500:
            raise
        return await _render_cart(
            page, session, status=exc.status, error=exc.message, back_to=back_to
        )
    response = session.keep(page.redirect("/cart?done=added"))
    added = events.event("add_to_cart", productId=product_id if back_to else None, sku=sku)
    return events.record(page.api, response, added)


@router.post("/cart/items/{sku}")
async def change_cart_line(request: Request, sku: str) -> Response:
    """Set a line's quantity; 0 (the remove button) removes it."""
    page, fields = await open_form(request)
    session = CartSession.of(page)
    path = f"/api/cart/items/{segment(sku, SKU)}"
    quantity = _quantity(fields.get("qty"))
    if quantity is None:
        return await _render_cart(
            page, session, status=422, error=f"Choose a quantity from 0 to {MAX_QUANTITY}."
        )
    removing = quantity == 0
    try:
        if removing:
            await session.send("DELETE", path)
        else:
            await session.send("PATCH", path, {"quantity": quantity})
    except ApiError as exc:
        if exc.status in (401, 403) or exc.status >= 500:
            raise
        return await _render_cart(page, session, status=exc.status, error=exc.message)
    response = session.keep(page.redirect("/cart?done=" + ("removed" if removing else "updated")))
    if not removing:
        return response
    product_id = fields.get("productId", "")
    removed = events.event(
        "remove_from_cart",
        productId=product_id if PRODUCT_ID.fullmatch(product_id) else None,
        sku=sku,
    )
    return events.record(page.api, response, removed)


# --- checkout ------------------------------------------------------------------------------


def shipping_methods(settings: Settings) -> list[tuple[str, int]]:
    """The shipping methods checkout accepts with their prices, cheapest first: the shop's
    `ORDER_SHIPPING_RATES`, which the API prices with (it has no route listing them)."""
    try:
        raw = json.loads(settings.order_shipping_rates)
    except ValueError:
        return [("standard", 0)]
    methods = [(str(name), int(price)) for name, price in dict(raw).items()]
    return sorted(methods, key=lambda m: (m[1], m[0])) or [("standard", 0)]


@dataclass
class CheckoutForm:
    """What the checkout form holds: the choices, the new address and the attempt's key."""

    key: str = field(default_factory=_new_key)
    address_id: str = ""
    method: str = ""
    address: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def posted(cls, fields: Mapping[str, str]) -> CheckoutForm:
        """The form as the browser sent it."""
        return cls(
            key=fields.get("idempotencyKey", "").strip(),
            address_id=fields.get("addressId", "").strip(),
            method=fields.get("shippingMethod", "").strip(),
            address={name: fields.get(name, "").strip() for name in ADDRESS_FIELDS},
        )

    def check_address(self) -> dict[str, Any]:
        """The new address as the API takes it; fills `errors` with what is missing."""
        for name in ADDRESS_FIELDS:
            value = self.address.get(name, "")
            if name in _ADDRESS_REQUIRED and not value:
                self.errors[name] = f"Enter the {_ADDRESS_LABELS[name].lower()}."
            elif len(value) > _ADDRESS_LIMITS[name]:
                self.errors[name] = f"At most {_ADDRESS_LIMITS[name]} characters."
        country = self.address.get("country", "")
        if country and not _COUNTRY.fullmatch(country):
            self.errors["country"] = "Two letters, such as IN or DE."
        return {
            name: (value.upper() if name == "country" else value)
            for name, value in self.address.items()
            if value
        }


def _address_errors(exc: ApiError) -> dict[str, str]:
    """The API's validation errors by address field (`body.shippingAddress.city` -> city)."""
    errors = field_errors(exc, under="body.shippingAddress")
    return {name: message for name, message in errors.items() if name in ADDRESS_FIELDS}


async def _render_checkout(
    page: Page,
    form: CheckoutForm,
    *,
    status: int = 200,
    error: str | None = None,
    started: bool = False,
) -> Response:
    session = CartSession.of(page)
    (cart, lines), addresses = await page.api.gather(
        _read_cart(page, session), page.api.get("/api/me/addresses")
    )
    saved = list(addresses.get("items") or [])
    methods = shipping_methods(page.settings)
    if not form.address_id:
        form.address_id = str(saved[0]["id"]) if saved else "new"
    if form.method not in {name for name, _ in methods}:
        form.method = "standard" if any(n == "standard" for n, _ in methods) else methods[0][0]
    response = page.render(
        "checkout.html",
        status=status,
        cart=cart,
        lines=lines,
        addresses=saved,
        methods=methods,
        form=form,
        error=error,
        labels=_ADDRESS_LABELS,
    )
    session.keep(response)
    if started and cart.get("items"):
        return events.record(page.api, response, events.event("checkout_started"))
    return response


@router.get("/checkout")
async def checkout_page(request: Request) -> Response:
    """The cart summary, where to ship and how: the form that places the order."""
    page = await open_page(request)
    page.require_sign_in()
    return await _render_checkout(page, CheckoutForm(), started=True)


@router.post("/checkout")
async def place_order(request: Request) -> Response:
    """Place the cart as an order (once per the form's Idempotency-Key), then pay."""
    page, fields = await open_form(request)
    page.require_sign_in("/checkout")
    form = CheckoutForm.posted(fields)
    if not _IDEMPOTENCY_KEY.fullmatch(form.key):
        form.key = _new_key()
        return await _render_checkout(
            page,
            form,
            status=400,
            error="This form has expired. Check the details and place the order again.",
        )
    body: dict[str, Any] = {}
    if form.method not in {name for name, _ in shipping_methods(page.settings)}:
        form.errors["shippingMethod"] = "Choose a delivery option."
    if form.address_id and form.address_id != "new":
        if not _ADDRESS_ID.fullmatch(form.address_id):
            form.errors["addressId"] = "Choose an address."
        body["addressId"] = form.address_id
    else:
        form.address_id = "new"
        body["shippingAddress"] = form.check_address()
    if form.errors:
        return await _render_checkout(
            page, form, status=422, error="Check the highlighted details."
        )
    body["shippingMethod"] = form.method
    try:
        answer = await page.api.send(
            "POST", "/api/checkout", json=body, headers={IDEMPOTENCY_HEADER: form.key}
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        if exc.slug != "checkout-in-progress" and exc.status < 500:
            # The API keeps answering this refusal for this key: the next try needs a new
            # one. A checkout still running, or one to resume (503), keeps its key.
            form.key = _new_key()
        form.errors = _address_errors(exc)
        return await _render_checkout(page, form, status=exc.status, error=exc.message)
    order = answer.body or {}
    order_id = str(order.get("orderId") or "")
    if not _ORDER.fullmatch(order_id):
        raise HTTPException(404)
    target = _order_url(order_id)
    return page.redirect(target + "/pay" if order.get("payment") else target)


# --- payment -------------------------------------------------------------------------------


def awaiting_payment(order: Mapping[str, Any]) -> bool:
    """Whether the customer still has to pay the order (a held order pays too)."""
    if not order.get("payment"):
        return False
    captured = int((order.get("captured") or {}).get("amount") or 0)
    return order.get("status") == "pending_payment" or (
        order.get("status") == "on_hold" and captured == 0
    )


def pay_view(settings: Settings, order: Mapping[str, Any]) -> dict[str, Any]:
    """What the pay page shows for the shop's payment provider: `mode` is `card` (the
    embedded test gateway's card form), `stripe` (Stripe's Payment Element, with the
    publishable key and the payment's client secret) or `unavailable`."""
    provider = settings.payments_provider
    payment = order.get("payment") or {}
    order_id = str(order.get("orderId") or "")
    if provider == "test":
        return {"mode": "card", "test_cards": TEST_CARDS}
    if provider == "stripe":
        key = settings.stripe_publishable_key
        secret = payment.get("clientSecret")
        if key and secret:
            return {
                "mode": "stripe",
                "stripe": {
                    "publishable_key": key,
                    "client_secret": secret,
                    "return_url": f"{_order_url(order_id)}?done=paid",
                },
            }
    return {"mode": "unavailable"}


def _order_url(order_id: str) -> str:
    """The order's page."""
    return f"/orders/{urllib.parse.quote(order_id, safe='')}"


def _order_api(order_id: str) -> str:
    """The order's API path (an id of another shape is a 404)."""
    return f"/api/orders/{segment(order_id, _ORDER)}"


async def _read_order(page: Page, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = await page.api.get(_order_api(order_id))
    return order


def _render_pay(
    page: Page,
    order: Mapping[str, Any],
    *,
    status: int = 200,
    error: str | None = None,
    declined: str | None = None,
) -> Response:
    return page.render(
        "pay.html",
        status=status,
        order=order,
        error=error,
        declined=declined,
        **pay_view(page.settings, order),
    )


@router.get("/orders/{order_id}/pay")
async def pay_page(request: Request, order_id: str) -> Response:
    """How to pay an order that is waiting for its payment."""
    page = await open_page(request)
    page.require_sign_in()
    order = await _read_order(page, order_id)
    if not awaiting_payment(order):
        return page.redirect(_order_url(order_id))
    return _render_pay(page, order)


@router.post("/orders/{order_id}/pay")
async def pay(request: Request, order_id: str) -> Response:
    """Pay with a card at the embedded test gateway (its confirm URL), then show the order."""
    page, fields = await open_form(request)
    order_url = _order_url(order_id)
    page.require_sign_in(f"{order_url}/pay")
    order = await _read_order(page, order_id)
    if not awaiting_payment(order):
        return page.redirect(order_url)
    if page.settings.payments_provider != "test":
        return _render_pay(page, order, status=400, error="Pay with the form on this page.")
    card = re.sub(r"[\s-]", "", fields.get("card", ""))
    if not re.fullmatch(r"\d{12,19}", card):
        return _render_pay(page, order, status=422, error="Enter the card number: 12 to 19 digits.")
    confirm = urllib.parse.urlsplit(str((order.get("payment") or {}).get("confirmUrl") or "")).path
    if not _CONFIRM_PATH.fullmatch(confirm):
        return _render_pay(
            page, order, status=409, error="This order cannot be paid by card here any more."
        )
    try:
        result = await page.api.post(confirm, {"card": card})
    except ApiError as exc:
        if exc.status != 400:
            raise
        return _render_pay(page, order, status=400, error=exc.message)
    if result.get("status") == "failed":
        reason = str(result.get("failureReason") or "")
        message = DECLINES.get(reason, PAYMENT_NOT_TAKEN)
        return _render_pay(page, order, status=402, declined=message)
    return page.redirect(order_url + "?done=paid")


# --- orders --------------------------------------------------------------------------------


def _badge(status: str) -> dict[str, str]:
    label, tone = STATUS_LABELS.get(status, (status.replace("_", " ").capitalize(), ""))
    return {"label": label, "tone": tone}


@router.get("/orders")
async def orders_page(
    request: Request, cursor: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """The customer's orders, newest first, a page at a time."""
    page = await open_page(request)
    page.require_sign_in()
    answer = await page.api.get("/api/orders", cursor=cursor, limit=ORDERS_PAGE_SIZE)
    orders = [{**o, "badge": _badge(str(o.get("status")))} for o in answer.get("items") or []]
    return page.render(
        "orders.html", orders=orders, next_cursor=answer.get("nextCursor"), paged=bool(cursor)
    )


def _tracking_url(value: Any) -> str | None:
    """A carrier's tracking link, only if it is a web address (never `javascript:`)."""
    text = str(value or "")
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    return text if scheme in ("http", "https") else None


def _order_view(order: Mapping[str, Any]) -> dict[str, Any]:
    """What the order page shows besides the order: badge, parcels, what may be done."""
    status = str(order.get("status"))
    parcels = [
        {**f, "link": _tracking_url(f.get("trackingUrl")), "badge": _badge(str(f.get("status")))}
        for f in order.get("fulfilments") or []
    ]
    shipped = any(p.get("status") in _SHIPPED_PARCEL for p in parcels)
    imported = bool(order.get("imported"))
    returnable = [
        {**line, "index": i, "left": int(line["quantity"]) - int(line.get("refundedQuantity") or 0)}
        for i, line in enumerate(order.get("lines") or [])
    ]
    return {
        "badge": _badge(status),
        "parcels": parcels,
        "can_cancel": status in CANCELLABLE and not shipped and not imported,
        "can_return": status == "delivered" and not imported and not order.get("returnRequest"),
        "returnable": [line for line in returnable if line["left"] > 0],
        "can_pay": awaiting_payment(order),
    }


def _render_order(
    page: Page,
    order: dict[str, Any],
    *,
    status: int = 200,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    notices = [] if error else _done(page, ORDER_DONE)
    if notices and page.request.query_params.get("redirect_status") not in (None, "succeeded"):
        # Back from a payment provider's redirect (Stripe adds `redirect_status`) that
        # did not succeed: "Payment received" would be wrong.
        notices = [PAYMENT_NOT_TAKEN]
    return page.render(
        "order.html",
        status=status,
        order=order,
        error=error,
        form=form or {},
        notices=notices,
        badges=STATUS_LABELS,
        still_pending=notices == [ORDER_DONE["paid"]] and order.get("status") == "pending_payment",
        **_order_view(order),
    )


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str) -> Response:
    """One of the customer's orders: lines, totals, payment, timeline and tracking."""
    page = await open_page(request)
    page.require_sign_in()
    return _render_order(page, await _read_order(page, order_id))


@router.post("/orders/{order_id}/cancel")
async def cancel_order(request: Request, order_id: str) -> Response:
    """Cancel the order before it ships."""
    page, _ = await open_form(request)
    path = _order_api(order_id)
    try:
        await page.api.post(path + "/cancel")
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return _render_order(page, await page.api.get(path), status=exc.status, error=exc.message)
    return page.redirect(f"{_order_url(order_id)}?done=cancelled")


@router.post("/orders/{order_id}/returns")
async def return_lines(request: Request, order_id: str) -> Response:
    """Ask to return chosen lines of a delivered order, with a reason."""
    page, fields = await open_form(request)
    path = _order_api(order_id)
    order = await page.api.get(path)
    lines = []
    for i, line in enumerate(order.get("lines") or []):
        if fields.get(f"return-{i}") != "yes":
            continue
        quantity = _quantity(fields.get(f"qty-{i}", "1"))
        if not quantity:
            return _render_order(
                page, order, status=422, error="Choose how many units to return.", form=fields
            )
        lines.append({"sku": line["sku"], "quantity": quantity})
    reason = fields.get("reason", "").strip()
    if not lines:
        return _render_order(
            page, order, status=422, error="Choose the items to return.", form=fields
        )
    if not reason or len(reason) > 500:
        return _render_order(
            page, order, status=422, error="Tell us why (up to 500 characters).", form=fields
        )
    try:
        await page.api.post(path + "/returns", {"lines": lines, "reason": reason})
    except ApiError as exc:
        if exc.status not in (400, 409, 422):
            raise
        return _render_order(page, order, status=exc.status, error=exc.message, form=fields)
    return page.redirect(f"{_order_url(order_id)}?done=returned")
