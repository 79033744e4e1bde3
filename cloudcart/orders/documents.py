"""The stored shapes of the orders area's aggregates: the order and the cart.

`OrderDocument` is an order in the `orders` container (partition `/customerId`, beside the
checkout's idempotency records, import claims and outbox events); `CartDocument` is a cart
in the `carts` container (partition `/customerId`: the customer id, or `anon:<cart id>`),
beside the `cart.updated` outbox events. See cloudcart/core/documents/registry.py.

They are `TypedDict`s: documents stay the plain dicts the documents port reads and writes
(no model is built on the request path), and the code that reads and writes them is type
checked against these shapes. `NotRequired` members are absent on some documents: written
only in some states, only on imported or erased customers' orders, or not yet on documents
written before they existed. Each forbids undeclared members for pydantic
(`TypeAdapter(OrderDocument).validate_python(document, strict=True)`), which is how
tests/unit/orders/test_document_types.py checks that the types describe what is stored.

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

# No `from __future__ import annotations`: evaluated annotations keep each TypedDict's
# `__required_keys__` / `__optional_keys__` right at runtime.
from typing import Literal, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from cloudcart.core.ports.payments import RefundStatus
from cloudcart.orders.state import OrderStatus
from cloudcart.risk.config import Decision

_STRICT = ConfigDict(extra="forbid")
"""Every document type: a member it does not declare is an error when validated."""

StockState = Literal["reserved", "sold", "released", "restocked", "none"]
"""What the order's stock is owed: held for it, sold, given back, sold then partly put back
on sale (`restockLines`), or `none` for an imported order (no stock move)."""

HeldFrom = Literal["pending_payment", "paid", "fulfilling"]
"""The status an order was in when it was put on hold."""

RefundKind = Literal["refund", "cancellation"]
"""A refund asked for, or one reversing a cancelled order's payment."""

FulfilmentRequestStatus = Literal["requested", "accepted", "failed", "cancelled", "cancel_refused"]

ShipmentStatus = Literal["pending", "shipped", "delivered", "failed"]
"""`pending` only while a partner update is applied: the same write sets the parcel's
status."""

ReturnCondition = Literal["resellable", "damaged"]


# --- the order -----------------------------------------------------------------------------


@with_config(_STRICT)
class SkuQuantityDocument(TypedDict):
    """Units of one SKU (returned, restocked, refunded or shipped lines), on an order in the
    `orders` container."""

    sku: str
    quantity: int


@with_config(_STRICT)
class OrderLineDocument(TypedDict):
    """One line of an order (`orders` container), priced at checkout in minor units.

    Imported orders may lack a product (`productId`, `title` null) or a price (`unitPrice`,
    `lineTotal` null); their `tax` is 0."""

    sku: str
    productId: str | None
    title: str | None
    quantity: int
    unitPrice: int | None
    currency: str
    lineTotal: int | None
    tax: int
    refundedQuantity: int


@with_config(_STRICT)
class OrderTotalsDocument(TypedDict):
    """What an order (`orders` container) costs, in minor units of `currency`
    (`cloudcart.orders.pricing.Totals.to_document`)."""

    currency: str
    subtotal: int
    shipping: int
    tax: int
    taxInclusive: bool
    total: int


@with_config(_STRICT)
class ShippingAddressDocument(TypedDict):
    """Where an order (`orders` container) goes, as given at checkout or copied from the
    customer's saved address."""

    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postalCode: str
    country: str
    phone: str | None


@with_config(_STRICT)
class AnonymizedAddressDocument(TypedDict):
    """The shipping address of an erased customer's order (`orders` container): only the
    country, which decided the tax (`cloudcart.orders.privacy`)."""

    country: str
    anonymized: Literal[True]


@with_config(_STRICT)
class OrderPaymentDocument(TypedDict):
    """An order's gateway payment (`orders` container). A payment learnt from its webhook
    before the checkout stored it has only the provider and its id."""

    provider: str
    paymentId: str
    clientSecret: NotRequired[str | None]
    confirmUrl: NotRequired[str | None]


@with_config(_STRICT)
class OrderRefundDocument(TypedDict):
    """A refund of an order's payment (`orders` container), numbered from 1.

    `kind` is absent on refunds recorded before it was stored (they count as `refund`)."""

    refundId: str
    amount: int
    status: RefundStatus
    lines: list[SkuQuantityDocument]
    reason: str
    kind: NotRequired[RefundKind]
    number: int
    createdAt: str


@with_config(_STRICT)
class HistoryEntryDocument(TypedDict):
    """One status change of an order (`orders` container); `reason` only when it has one."""

    status: OrderStatus
    at: str
    reason: NotRequired[str]


@with_config(_STRICT)
class ReturnRequestDocument(TypedDict):
    """The customer's (or the warehouse's) request to return lines of an order (`orders`
    container)."""

    lines: list[SkuQuantityDocument]
    reason: str
    requestedAt: str


@with_config(_STRICT)
class FulfilmentRequestDocument(TypedDict):
    """The fulfilment partner's request for an order (`orders` container).

    `requestId` is null and `requestedAt` absent when the partner reported a failure of a
    request the order never recorded."""

    requestId: str | None
    status: FulfilmentRequestStatus
    reason: NotRequired[str | None]
    requestedAt: NotRequired[str]
    updatedAt: str


@with_config(_STRICT)
class ShipmentDocument(TypedDict):
    """A parcel the fulfilment partner reported for an order (`orders` container).

    Updates may come out of order: a parcel first heard of as delivered or failed has no
    carrier, tracking or `shippedAt` until its shipped update arrives."""

    shipmentId: str
    status: ShipmentStatus
    lines: list[SkuQuantityDocument]
    carrier: NotRequired[str | None]
    trackingNumber: NotRequired[str | None]
    trackingUrl: NotRequired[str | None]
    shippedAt: NotRequired[str]
    deliveredAt: NotRequired[str]
    reason: NotRequired[str | None]
    updatedAt: str


@with_config(_STRICT)
class ReturnReceivedDocument(TypedDict):
    """Goods the warehouse received back for an order (`orders` container), once per
    partner event."""

    eventId: str
    lines: list[SkuQuantityDocument]
    condition: ReturnCondition | None
    receivedAt: str


@with_config(_STRICT)
class RiskReasonDocument(TypedDict):
    """A fraud rule that fired for an order (`orders` container)."""

    rule: str
    weight: int
    detail: str


@with_config(_STRICT)
class RiskReviewDocument(TypedDict):
    """An admin's decision on an order held for review (`orders` container)."""

    decision: Literal["approve", "reject"]
    by: str
    at: str


@with_config(_STRICT)
class OrderRiskDocument(TypedDict):
    """The fraud rules' decision on an order (`orders` container; docs/risk.md): at
    checkout, again with the card once paid (`cardCountry`), and the admin's review.

    An order the rules never scored that an admin reviewed holds only `review`."""

    score: NotRequired[int]
    decision: NotRequired[Decision]
    reasons: NotRequired[list[RiskReasonDocument]]
    mode: NotRequired[Literal["enforce", "monitor"]]
    evaluatedAt: NotRequired[str]
    cardCountry: NotRequired[str | None]
    review: NotRequired[RiskReviewDocument]


@with_config(_STRICT)
class MoneyDocument(TypedDict):
    """An amount in minor units of its currency, inside a stored checkout response."""

    amount: int
    currency: str


@with_config(_STRICT)
class CheckoutResponseLineDocument(TypedDict):
    """One line of a stored checkout response (`cloudcart.orders.service.public_line`)."""

    sku: str
    productId: str | None
    title: str | None
    quantity: int
    unitPrice: MoneyDocument
    lineTotal: MoneyDocument
    tax: MoneyDocument
    refundedQuantity: int


@with_config(_STRICT)
class CheckoutPaymentDocument(TypedDict):
    """The payment inside a stored checkout response (`public_payment`)."""

    provider: str
    paymentId: str
    clientSecret: str | None
    confirmUrl: str | None


@with_config(_STRICT)
class CheckoutResponseDocument(TypedDict):
    """The `POST /api/checkout` answer stored on its order (`orders` container), which a
    replay with the same Idempotency-Key answers byte for byte."""

    orderId: str
    status: OrderStatus
    total: MoneyDocument
    totals: OrderTotalsDocument
    lines: list[CheckoutResponseLineDocument]
    payment: CheckoutPaymentDocument
    reservationExpiresAt: str | None


@with_config(_STRICT)
class OrderDocument(TypedDict):
    """An order: the `orders` container, partition `/customerId` (the customer's id).

    Placed by the checkout (`cloudcart.orders.checkout`) or imported from another system
    (`cloudcart.orders.importer`: `imported`, no payment, address or stock, `stock` is
    `none`), changed by the lifecycle, fulfilment and erasure through
    `cloudcart.orders.service.update_order`."""

    id: str
    type: Literal["order"]
    customerId: str
    status: OrderStatus
    lines: list[OrderLineDocument]
    totals: OrderTotalsDocument
    shippingAddress: ShippingAddressDocument | AnonymizedAddressDocument | None
    shippingMethod: str | None
    reservationExpiresAt: str | None
    payment: OrderPaymentDocument | None
    capturedAmount: int
    refundedAmount: int
    refunds: list[OrderRefundDocument]
    paymentEvents: list[str]
    """Gateway event ids applied (the last `MAX_RECORDED_PAYMENT_EVENTS`)."""
    stock: StockState
    history: list[HistoryEntryDocument]
    createdAt: str
    updatedAt: str
    idempotencyRecord: NotRequired[str]
    """The checkout's idempotency record (placed orders)."""
    checkoutResponse: NotRequired[CheckoutResponseDocument]
    paymentFee: NotRequired[int]
    heldFrom: NotRequired[HeldFrom]
    risk: NotRequired[OrderRiskDocument]
    deliveredAt: NotRequired[str]
    returnRequest: NotRequired[ReturnRequestDocument]
    restockLines: NotRequired[list[SkuQuantityDocument]]
    fulfilment: NotRequired[FulfilmentRequestDocument]
    shipments: NotRequired[list[ShipmentDocument]]
    returnsReceived: NotRequired[list[ReturnReceivedDocument]]
    anonymizedAt: NotRequired[str]
    imported: NotRequired[bool]
    importHash: NotRequired[str]
    importRevision: NotRequired[int]
    importedAt: NotRequired[str]
    placedAt: NotRequired[str]
    _etag: NotRequired[str]
    _ts: NotRequired[int]
    ttl: NotRequired[int]


# --- the cart ------------------------------------------------------------------------------


@with_config(_STRICT)
class CartItemDocument(TypedDict):
    """One line of a cart (`carts` container): a SKU, its product and units, never a
    price (prices are read from the catalog on every view)."""

    sku: str
    productId: str
    quantity: int


@with_config(_STRICT)
class CartDocument(TypedDict):
    """A cart: the `carts` container, partition `/customerId` (the customer's id, or
    `anon:<cart id>` for an anonymous cart), id `cart`.

    `updatedAt` is absent only on the empty cart `Carts.load` answers before anything was
    saved; every stored cart has it."""

    id: Literal["cart"]
    customerId: str
    items: list[CartItemDocument]
    updatedAt: NotRequired[str]
    _etag: NotRequired[str]
    _ts: NotRequired[int]
    ttl: NotRequired[int]


__all__ = [
    "AnonymizedAddressDocument",
    "CartDocument",
    "CartItemDocument",
    "CheckoutPaymentDocument",
    "CheckoutResponseDocument",
    "CheckoutResponseLineDocument",
    "FulfilmentRequestDocument",
    "HeldFrom",
    "HistoryEntryDocument",
    "MoneyDocument",
    "OrderDocument",
    "OrderLineDocument",
    "OrderPaymentDocument",
    "OrderRefundDocument",
    "OrderRiskDocument",
    "OrderTotalsDocument",
    "RefundKind",
    "ReturnReceivedDocument",
    "ReturnRequestDocument",
    "RiskReasonDocument",
    "RiskReviewDocument",
    "ShipmentDocument",
    "ShippingAddressDocument",
    "SkuQuantityDocument",
    "StockState",
]
