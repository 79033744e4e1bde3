"""Request and response bodies of the cart, checkout and order APIs.

The response models describe, for the OpenAPI document, the dicts that `Carts.view`,
`public_order`, `admin_order` and the checkout build; the routes return those dicts as they
are (see `cloudcart.orders.routes`), and tests/unit/orders/test_response_schemas.py checks
real answers against the document, so a field added to an answer must be added here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from cloudcart.core.ports.payments import RefundStatus
from cloudcart.orders.state import OrderStatus
from cloudcart.risk.config import Decision

MAX_QUANTITY = 99

ReviewDecision = Literal["approve", "reject"]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def exactly_one_of(*fields: tuple[str, str]) -> dict[str, Any]:
    """JSON Schema saying exactly one of these `(wire name, JSON type)` fields is given and
    not null, as the model's validator requires (a null one counts as left out)."""
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"type": type_}}} for name, type_ in fields
        ]
    }


class CartItemIn(_Body):
    """Add units of a SKU to the cart."""

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class CartQuantityIn(_Body):
    """Set the quantity of a cart line."""

    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class Address(_Body):
    """A shipping address."""

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code.")
    phone: str | None = Field(None, max_length=40)


class CheckoutIn(_Body):
    """Place the caller's cart as an order. Exactly one of `shippingAddress`/`addressId`."""

    model_config = ConfigDict(
        json_schema_extra=exactly_one_of(("shippingAddress", "object"), ("addressId", "string"))
    )

    shipping_address: Address | None = None
    address_id: str | None = Field(None, min_length=1, max_length=100)
    shipping_method: str = Field("standard", min_length=1, max_length=40)

    @model_validator(mode="after")
    def _one_address(self) -> CheckoutIn:
        if (self.shipping_address is None) == (self.address_id is None):
            raise ValueError("give exactly one of shippingAddress and addressId")
        return self


class LineQuantity(_Body):
    """Units of one order line."""

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class ReturnIn(_Body):
    """Return lines of a delivered order."""

    lines: list[LineQuantity] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)


class RefundIn(_Body):
    """Refund by lines or by an amount (minor units), not both."""

    model_config = ConfigDict(
        json_schema_extra=exactly_one_of(("lines", "array"), ("amount", "integer"))
    )

    lines: list[LineQuantity] | None = Field(None, min_length=1, max_length=100)
    amount: int | None = Field(None, ge=1)
    reason: str = Field("requested_by_admin", min_length=1, max_length=500)

    @model_validator(mode="after")
    def _lines_or_amount(self) -> RefundIn:
        if (self.lines is None) == (self.amount is None):
            raise ValueError("give exactly one of lines and amount")
        return self


class StatusIn(_Body):
    """An admin status change."""

    status: Literal["fulfilling", "shipped", "delivered", "on_hold", "returned"]


class ReviewIn(_Body):
    """An admin's decision on an order held for review."""

    decision: ReviewDecision = Field(
        description="`approve` releases the order to fulfilment (or to its open payment); "
        "`reject` cancels it, refunding or voiding its payment."
    )


class CancelIn(_Body):
    """Why the order is cancelled (optional)."""

    reason: str = Field("requested_by_customer", min_length=1, max_length=500)


class AdminCancelIn(_Body):
    """Why the shop cancels the order (optional)."""

    reason: str = Field("cancelled_by_shop", min_length=1, max_length=500)


JSONObject = dict[str, Any]


# --- responses ---------------------------------------------------------------------------


def _left_out_when_absent(schema: dict[str, Any]) -> None:
    """`json_schema_extra=` of a field the API leaves out rather than sending null: the
    document states its type alone, without the null branch and default pydantic adds."""
    kept = [branch for branch in schema.pop("anyOf", []) if branch.get("type") != "null"]
    if len(kept) == 1:
        schema.update(kept[0])
    elif kept:
        schema["anyOf"] = kept
    schema.pop("default", None)


class Amount(_Body):
    """A sum of money in minor units of its currency (paise, cents)."""

    amount: int = Field(description="Minor units.")
    currency: str = Field(description="ISO 4217 code.")


class LineAmount(_Body):
    """A line's price; `amount` is null only on imported orders whose line had no price."""

    amount: int | None = Field(description="Minor units; null when the price is unknown.")
    currency: str = Field(description="ISO 4217 code.")


class CartLine(_Body):
    """A cart line, priced from the catalog now. A SKU no product sells any more shows
    without title or prices, `available` 0 and `inStock` false."""

    sku: str
    product_id: str | None = Field(description="The product that sells the SKU.")
    title: str | None = Field(description="The product's title; null when it is gone.")
    quantity: int = Field(description="Units in the cart.")
    unit_price: Amount | None = Field(description="Current price of one unit.")
    line_total: Amount | None = Field(description="`unitPrice` times `quantity`.")
    available: int = Field(description="Units that can be ordered now.")
    in_stock: bool = Field(description="The product is for sale and `available` covers `quantity`.")


class Cart(_Body):
    """The signed-in customer's cart or an anonymous one."""

    items: list[CartLine]
    subtotal: Amount | None = Field(
        description="Sum of the priced lines; null when no line has a price."
    )
    updated_at: datetime | None = Field(description="Last change; null for a cart never saved.")


class OrderTotals(_Body):
    """What the order costs, in minor units of `currency`."""

    currency: str = Field(description="ISO 4217 code of every amount of the order.")
    subtotal: int = Field(description="Sum of the line totals.")
    shipping: int = Field(description="Price of the shipping method (not taxed).")
    tax: int = Field(description="Sum of the lines' tax.")
    tax_inclusive: bool = Field(
        description="Prices contain the tax (then `total` does not add it)."
    )
    total: int = Field(description="What the customer pays.")


class OrderLine(_Body):
    """One order line, priced at checkout."""

    sku: str
    product_id: str | None = Field(description="Null for an imported SKU no product sells.")
    title: str | None = Field(description="The product's title when the order was placed.")
    quantity: int
    unit_price: LineAmount
    line_total: LineAmount
    tax: Amount = Field(description="Tax of the line (0 on imported orders).")
    refunded_quantity: int = Field(description="Units refunded so far.")


class OrderPayment(_Body):
    """The order's gateway payment."""

    provider: str = Field(description="The payment provider (`stripe`, `test`).")
    payment_id: str = Field(description="The provider's payment id.")
    client_secret: str | None = Field(
        description="What the provider's client SDK needs to confirm the payment (Stripe)."
    )
    confirm_url: str | None = Field(
        description="Where the customer confirms the payment with the embedded test gateway."
    )


class ShippingAddress(_Body):
    """Where the order goes."""

    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str = Field(description="ISO 3166-1 alpha-2 code.")
    phone: str | None


class AnonymizedAddress(_Body):
    """The shipping address of an order whose customer was erased: only the country (it
    decided the tax) is kept."""

    country: str = Field(description="ISO 3166-1 alpha-2 code.")
    anonymized: Literal[True]


class SkuQuantity(_Body):
    """Units of one SKU."""

    sku: str
    quantity: int


class OrderRefund(_Body):
    """A refund of the order's payment."""

    refund_id: str = Field(description="The provider's refund id.")
    amount: int = Field(description="Minor units of the order's currency.")
    lines: list[SkuQuantity] = Field(description="The lines refunded; empty for an amount.")
    reason: str
    status: RefundStatus = Field(description="Where the refund stands at the provider.")
    created_at: datetime


class ReturnRequest(_Body):
    """The customer's (or the warehouse's) request to return lines."""

    lines: list[SkuQuantity]
    reason: str
    requested_at: datetime


class HistoryEntry(_Body):
    """A status change, with its reason when it has one."""

    status: OrderStatus
    at: datetime
    reason: str | None = Field(
        None,
        description="Why (a cancellation reason, `imported`, ...); left out when none.",
        json_schema_extra=_left_out_when_absent,
    )


class TimelineEntry(_Body):
    """A status change."""

    status: OrderStatus
    at: datetime


FulfilmentStatus = Literal[
    "requested", "accepted", "failed", "cancelled", "cancel_refused", "shipped", "delivered"
]


class OrderFulfilment(_Body):
    """A parcel the fulfilment partner shipped (`shipped`, `delivered`, `failed`), or the
    units still waiting at the partner (the request: `requested`, `accepted`, `failed`,
    `cancelled`, `cancel_refused`)."""

    id: str = Field(description="The parcel's shipment id, or the fulfilment request's id.")
    status: FulfilmentStatus
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    lines: list[SkuQuantity] = Field(description="Units in the parcel, or still to ship.")
    updated_at: datetime


class Order(_Body):
    """An order as its customer sees it."""

    order_id: str
    status: OrderStatus
    lines: list[OrderLine]
    totals: OrderTotals
    total: Amount = Field(description="`totals.total` with its currency.")
    shipping_address: ShippingAddress | AnonymizedAddress | None = Field(
        description="Null on imported orders."
    )
    shipping_method: str | None = Field(description="Null on imported orders.")
    payment: OrderPayment | None = Field(description="Null until a payment was started.")
    captured: Amount = Field(description="What the payment captured.")
    refunded: Amount = Field(description="What was refunded so far.")
    refunds: list[OrderRefund]
    return_request: ReturnRequest | None
    reservation_expires_at: datetime | None = Field(
        description="When an unpaid order is cancelled and its stock released; null on "
        "imported orders."
    )
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry] = Field(description="Every status change, with reasons.")
    timeline: list[TimelineEntry] = Field(description="Every status change once, in order.")
    fulfilments: list[OrderFulfilment]
    partially_shipped: bool = Field(description="Some units have shipped and some have not.")
    imported: bool = Field(description="Imported from the shop's previous system.")


class OrderPage(_Body):
    """A page of orders, newest first."""

    items: list[Order]
    next_cursor: str | None = Field(description="Pass back as `cursor`; null on the last page.")


class RiskReason(_Body):
    """A fraud rule that fired."""

    rule: str
    weight: int
    detail: str


class RiskReview(_Body):
    """An admin's decision on a held order."""

    decision: ReviewDecision
    by: str = Field(description="The admin's id.")
    at: datetime


class OrderRisk(_Body):
    """The fraud rules' decision on the order (docs/risk.md)."""

    score: int
    decision: Decision
    reasons: list[RiskReason] = Field(description="Heaviest first.")
    mode: Literal["enforce", "monitor"] = Field(
        description="`monitor`: the decision was recorded and changed nothing."
    )
    evaluated_at: datetime
    review: RiskReview | None = Field(description="Null until an admin decides.")


class AdminOrder(Order):
    """An order as admins see it: the customer's view, its customer and its fraud score."""

    customer_id: str
    risk: OrderRisk | None = Field(description="Null when the order was not scored.")


class AdminOrderPage(_Body):
    """A page of every customer's orders, newest first."""

    items: list[AdminOrder]
    next_cursor: str | None = Field(description="Pass back as `cursor`; null on the last page.")


class CheckoutResult(_Body):
    """The order placed, and the payment to confirm."""

    order_id: str
    status: OrderStatus = Field(
        description="`pending_payment`, or `on_hold` when the order waits for a review (a "
        "checkout resumed after a failed payment start answers the order's status then)."
    )
    total: Amount
    totals: OrderTotals
    lines: list[OrderLine]
    payment: OrderPayment
    reservation_expires_at: datetime = Field(
        description="Unpaid by then, the order is cancelled and its stock released."
    )
