"""The payloads of the events the orders area publishes: `order.*`, `refund.issued`,
`return.*`, `shipment.*`, the order's `inventory.reserved` and `inventory.released`, and
`cart.updated`.

Each payload is a `TypedDict` (the producers annotate the dicts they build with it, so mypy
checks their keys) whose members carry their constraints and descriptions; `EVENT_SPECS`
registers them, and docs/events/<type>.schema.json is rendered from it
(`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.core.events import CurrencyCode, EventSpec, Timestamp

OrderId = Annotated[str, Field(min_length=1, description="The order.")]
CustomerId = Annotated[str, Field(min_length=1, description="The order's customer.")]


class OrderIds(TypedDict):
    """The members every order event's payload starts with."""

    orderId: OrderId
    customerId: CustomerId


class StockLine(TypedDict):
    """Units of one SKU."""

    sku: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(ge=1)]


class PlacedLine(TypedDict):
    """A line of a placed order."""

    sku: str
    quantity: Annotated[int, Field(ge=1)]
    unitPrice: Annotated[int, Field(ge=0)]


class PlacedTotals(TypedDict):
    """The order's totals, in minor units of `currency`."""

    currency: CurrencyCode
    subtotal: int
    shipping: int
    tax: int
    taxInclusive: NotRequired[bool]
    total: Annotated[int, Field(ge=0)]


class OrderPlaced(TypedDict):
    """The payload (`data`) of `order.placed`."""

    orderId: OrderId
    customerId: CustomerId
    status: Literal["pending_payment"]
    lines: list[PlacedLine]
    totals: PlacedTotals


class OrderPaid(TypedDict):
    """The payload (`data`) of `order.paid`."""

    orderId: OrderId
    customerId: CustomerId
    paymentId: str
    provider: str
    amount: Annotated[int, Field(ge=0)]
    currency: CurrencyCode
    fee: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                description="The gateway's fee on the payment, in minor units, when the "
                "gateway reports it (the test gateway does; Stripe's is not read yet).",
            ),
        ]
    ]


class OrderPaymentFailed(TypedDict):
    """The payload (`data`) of `order.payment_failed`."""

    orderId: OrderId
    customerId: CustomerId
    reason: str


class OrderCancelled(TypedDict):
    """The payload (`data`) of `order.cancelled`."""

    orderId: OrderId
    customerId: CustomerId
    reason: Annotated[str, Field(min_length=1)]


# `from` is a Python keyword, so this one is declared in the functional form.
OrderStatusChanged = TypedDict(
    "OrderStatusChanged",
    {"orderId": OrderId, "customerId": CustomerId, "from": str, "to": str},
)
"""The payload (`data`) of `order.status_changed`."""


@with_config(ConfigDict(extra="allow"))
class ImportedLine(TypedDict):
    """A line of an imported order."""

    sku: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(ge=1)]
    unitPrice: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                description="Price of one unit as paid, in minor units of `currency`; absent "
                "when the history did not say.",
            ),
        ]
    ]
    productId: NotRequired[
        Annotated[
            str,
            Field(
                min_length=1,
                description="The catalog product that has the SKU at import time; absent "
                "when no product has it.",
            ),
        ]
    ]


class OrderImported(TypedDict):
    """The payload (`data`) of `order.imported`."""

    orderId: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            description="The order (same as the envelope's `subject`).",
        ),
    ]
    customerId: CustomerId
    placedAt: Annotated[
        Timestamp,
        Field(
            description="When the order was placed, as imported (UTC, fixed width: "
            "`2024-03-01T10:00:00.000000Z`)."
        ),
    ]
    status: Annotated[
        Literal["delivered", "cancelled", "returned", "paid", "shipped"],
        Field(description="Where the order ended up."),
    ]
    currency: NotRequired[
        Annotated[CurrencyCode, Field(description="Currency of every `unitPrice` (ISO 4217).")]
    ]
    lines: Annotated[list[ImportedLine], Field(min_length=1)]


class ReturnRequested(TypedDict):
    """The payload (`data`) of `return.requested`."""

    orderId: OrderId
    customerId: CustomerId
    lines: list[StockLine]
    reason: Annotated[str, Field(min_length=1)]


class RefundIssued(TypedDict):
    """The payload (`data`) of `refund.issued`."""

    orderId: OrderId
    customerId: CustomerId
    refundId: str
    paymentId: NotRequired[str | None]
    amount: Annotated[int, Field(ge=1)]
    currency: CurrencyCode
    lines: list[StockLine]
    reason: str
    kind: NotRequired[
        Annotated[
            Literal["refund", "cancellation"],
            Field(
                description="`cancellation` when the refund reverses a cancelled order "
                "(cancelled after capture, or paid after it was cancelled); `refund` "
                "otherwise. Absent on events from before it existed (read as `refund`)."
            ),
        ]
    ]


ShipmentId = Annotated[str, Field(min_length=1, description="The partner's id of the parcel.")]
ShippedLines = Annotated[list[StockLine], Field(min_length=1, description="Units of each SKU.")]


class ShipmentDispatched(TypedDict):
    """The payload (`data`) of `shipment.dispatched`."""

    orderId: OrderId
    customerId: CustomerId
    requestId: NotRequired[
        Annotated[str | None, Field(description="The partner's fulfilment request.")]
    ]
    shipmentId: ShipmentId
    carrier: Annotated[str, Field(min_length=1)]
    trackingNumber: Annotated[str, Field(min_length=1)]
    trackingUrl: NotRequired[
        Annotated[str | None, Field(description="Where the customer can follow the parcel.")]
    ]
    lines: ShippedLines
    partial: Annotated[
        bool, Field(description="True while other units of the order have not shipped.")
    ]


class ShipmentDelivered(TypedDict):
    """The payload (`data`) of `shipment.delivered`."""

    orderId: OrderId
    customerId: CustomerId
    shipmentId: ShipmentId


class ShipmentDeliveryFailed(TypedDict):
    """The payload (`data`) of `shipment.delivery_failed`."""

    orderId: OrderId
    customerId: CustomerId
    shipmentId: Annotated[
        str | None, Field(description="The parcel, or null when the whole request failed.")
    ]
    reason: Annotated[str, Field(min_length=1, description="The partner's reason.")]


class ReturnReceived(TypedDict):
    """The payload (`data`) of `return.received`."""

    orderId: OrderId
    customerId: CustomerId
    lines: ShippedLines
    condition: Annotated[
        Literal["resellable", "damaged"],
        Field(description="`resellable` units go back on hand."),
    ]


class InventoryReserved(TypedDict):
    """The payload (`data`) of `inventory.reserved`."""

    orderId: OrderId
    customerId: CustomerId
    lines: list[StockLine]
    expiresAt: str


class InventoryReleased(TypedDict):
    """The payload (`data`) of `inventory.released`."""

    orderId: OrderId
    customerId: CustomerId
    lines: list[StockLine]
    reason: str


class CartLine(TypedDict):
    """A line of the cart."""

    sku: Annotated[str, Field(pattern=SKU_PATTERN)]
    productId: Annotated[
        str | None, Field(description="The product selling the SKU when the line was added.")
    ]
    quantity: Annotated[int, Field(ge=1, le=99)]


class CartUpdated(TypedDict):
    """The payload (`data`) of `cart.updated`."""

    customerId: Annotated[
        str,
        Field(min_length=1, description="The cart's owner (same as the envelope's `subject`)."),
    ]
    items: Annotated[
        list[CartLine],
        Field(
            max_length=100,
            description="The cart's lines after the change, in the order they were added "
            "(empty when the last line was removed).",
        ),
    ]
    itemCount: Annotated[
        int, Field(ge=0, description="Units in the cart (the sum of the quantities).")
    ]
    updatedAt: Annotated[
        Timestamp,
        Field(
            description="The cart's `updatedAt` after the change (UTC, fixed width); a "
            "consumer compares it with the stored cart to tell whether this is still the "
            "latest change."
        ),
    ]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "order.placed",
        1,
        "An order was placed by `POST /api/checkout` (status `pending_payment`, stock "
        "reserved). Subject: the order id.",
        OrderPlaced,
    ),
    EventSpec(
        "order.paid",
        1,
        "The order's payment succeeded (gateway webhook); stock moved from reserved to sold.",
        OrderPaid,
    ),
    EventSpec(
        "order.payment_failed",
        1,
        "The order's payment failed (declined card, insufficient funds); its stock was released.",
        OrderPaymentFailed,
    ),
    EventSpec(
        "order.cancelled",
        1,
        "The order was cancelled: by the customer, an admin, the gateway, or the expiry "
        "timer (`reason` = `payment_expired`). A captured payment is refunded "
        "(`refund.issued`).",
        OrderCancelled,
    ),
    EventSpec(
        "order.status_changed",
        1,
        "An admin moved the order along (fulfilling, shipped, delivered, on_hold, returned) "
        "for shops without a fulfilment partner.",
        OrderStatusChanged,
    ),
    EventSpec(
        "order.imported",
        1,
        "A historical order was imported by `POST /api/admin/import/orders` (or `cloudcart "
        "import orders`), or re-imported with a change (then with a new event id). Imported "
        "orders never reserve or move stock, take payments, post to the journal or notify "
        "anyone: this is the only event they write, in the same batch as the order. An "
        "identical re-import writes no event. Subject: the order id.",
        OrderImported,
    ),
    EventSpec(
        "return.requested",
        1,
        "The customer asked to return lines of a delivered order within the return window.",
        ReturnRequested,
    ),
    EventSpec(
        "refund.issued",
        1,
        "Money went back to the customer through the gateway: a cancellation after payment, "
        "an admin refund (by lines or amount), or a payment that succeeded after its order "
        "was cancelled.",
        RefundIssued,
    ),
    EventSpec(
        "shipment.dispatched",
        1,
        "A parcel of the order left the fulfilment partner's warehouse (one event per "
        "parcel). The envelope's `subject` is the order id.",
        ShipmentDispatched,
    ),
    EventSpec(
        "shipment.delivered",
        1,
        "A parcel of the order reached the customer. The envelope's `subject` is the order id.",
        ShipmentDelivered,
    ),
    EventSpec(
        "shipment.delivery_failed",
        1,
        "The fulfilment partner could not fulfil the order (`shipmentId` null) or deliver one "
        "parcel. The order keeps its status for the shop to decide. The envelope's `subject` "
        "is the order id.",
        ShipmentDeliveryFailed,
    ),
    EventSpec(
        "return.received",
        1,
        "Returned units of the order arrived back at the warehouse; resellable ones go back "
        "on hand and the refund of the lines starts. The envelope's `subject` is the order id.",
        ReturnReceived,
    ),
    EventSpec(
        "inventory.reserved",
        1,
        "Checkout reserved stock for an order (`available` -> `reserved`) until `expiresAt`. "
        "Subject: the order id.",
        InventoryReserved,
    ),
    EventSpec(
        "inventory.released",
        1,
        "Stock held by an order went back to `available` (payment failed, cancellation, "
        "expiry, or returned lines). Subject: the order id.",
        InventoryReleased,
    ),
    EventSpec(
        "cart.updated",
        1,
        "A signed-in customer's cart changed (a line added, its quantity set, a line removed, "
        "or an anonymous cart merged in at sign-in); written in the same batch as the cart. "
        "Anonymous carts announce nothing, and emptying the cart at checkout is announced by "
        "`order.placed`. The envelope's `subject` is the customer id.",
        CartUpdated,
    ),
)
"""The event types the orders area publishes."""
