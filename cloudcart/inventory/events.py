"""The payloads of the events the inventory area publishes: `inventory.changed` and the
`ops.stock_shortfall` alert (relayed to the `ops` topic).

Each payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers them, and docs/events/<type>.schema.json is rendered from it
(`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.core.events import EventSpec, Timestamp

Move = Literal["set", "reserve", "release", "sale", "return", "adjust"]
"""What moved a SKU's stock."""


# `from` is a Python keyword, so the period is declared in the functional form.
StockOut = TypedDict(
    "StockOut",
    {
        "from": Timestamp,
        "to": Timestamp,
        "seconds": Annotated[int, Field(ge=0)],
    },
)
"""An out-of-stock period that ended: from when to when, and how long."""
with_config(ConfigDict(extra="forbid"))(StockOut)


class InventoryChanged(TypedDict):
    """The payload (`data`) of `inventory.changed`."""

    sku: Annotated[
        str, Field(pattern=SKU_PATTERN, description="The SKU (same as the envelope's `subject`).")
    ]
    productId: Annotated[
        str,
        Field(
            min_length=1, description="The product that owns the SKU (its claim in `inventory`)."
        ),
    ]
    available: Annotated[
        int,
        Field(
            ge=0,
            description="Units available to order after the move (the new value, not a delta).",
        ),
    ]
    availableBefore: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                description="Units available before the move (consumers such as the search "
                "indexer act only when availability crosses zero).",
            ),
        ]
    ]
    onHand: NotRequired[
        Annotated[
            int,
            Field(
                description="Units on hand after the move (negative only while a shortfall is "
                "recorded)."
            ),
        ]
    ]
    reserved: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                description="Units held for unpaid orders and checkouts in flight, after the move.",
            ),
        ]
    ]
    move: NotRequired[Annotated[Move, Field(description="What moved the stock.")]]
    quantity: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                description="Units the move concerned; for `set` and `adjust` the new on-hand "
                "figure.",
            ),
        ]
    ]
    reference: NotRequired[
        Annotated[
            str,
            Field(
                description="What caused it: an order id, a checkout attempt, the partner's "
                "event id, or `admin`."
            ),
        ]
    ]
    orderId: NotRequired[
        Annotated[
            str,
            Field(description="The order, for `release`, `sale` and `return` moves of an order."),
        ]
    ]
    sequence: NotRequired[
        Annotated[int, Field(ge=0, description="The warehouse's per-SKU sequence, for `adjust`.")]
    ]
    reason: NotRequired[Annotated[str, Field(description="The warehouse's reason, for `adjust`.")]]
    outSince: NotRequired[
        Annotated[
            Timestamp | None,
            Field(
                description="When `available` fell to 0 and has stayed there since (null while "
                "units are available, and for a SKU that has never had one). Kept by the stock "
                "document, so it holds whatever order events arrive in."
            ),
        ]
    ]
    stockOut: NotRequired[
        Annotated[
            StockOut | None,
            Field(
                description="The out-of-stock period this move ended (units available again), "
                "else null."
            ),
        ]
    ]


class StockShortfall(TypedDict):
    """The payload (`data`) of `ops.stock_shortfall`."""

    sku: Annotated[
        str, Field(min_length=1, description="The SKU (same as the envelope's `subject`).")
    ]
    productId: Annotated[str, Field(min_length=1, description="The product that owns the SKU.")]
    onHand: Annotated[int, Field(description="Units on hand now.")]
    reserved: Annotated[int, Field(ge=0, description="Units reserved for orders now.")]
    shortfall: Annotated[
        int,
        Field(ge=1, description="reserved - onHand: units promised that the warehouse lacks."),
    ]
    reason: Annotated[Move, Field(description="The move that caused or grew the shortfall.")]
    reference: Annotated[
        str, Field(description="What caused the move (partner event id, order id, `admin`).")
    ]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "inventory.changed",
        1,
        "A SKU's stock moved: an admin set it, a checkout reserved or released units, an order "
        "was paid (sale) or returned units came back (return), or the warehouse reported a "
        "count (adjust). Written in the same batch as the new figures; `available = max(0, "
        "onHand - reserved)`. The envelope's `subject` is the SKU.",
        InventoryChanged,
    ),
    EventSpec(
        "ops.stock_shortfall",
        1,
        "The units reserved for orders of a SKU exceed what is on hand (typically a warehouse "
        "count lower than the reservations). Published on the `ops` topic from the inventory "
        "outbox when the shortfall grows; no order is cancelled because of it. The envelope's "
        "`subject` is the SKU.",
        StockShortfall,
    ),
)
"""The event types the inventory area publishes."""
