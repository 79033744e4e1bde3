"""The payload of the event the insights area publishes: `storefront.events_recorded`.

The payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers it, and docs/events/storefront.events_recorded.schema.json is
rendered from it (`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from pydantic.config import JsonDict
from typing_extensions import TypedDict

from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.core.events import EventSpec, Timestamp

StorefrontEventType = Literal[
    "product_viewed",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "recommendation_clicked",
]

# Which members each kind of storefront event needs, beyond `type` and `at`.
_REQUIRED_BY_TYPE: JsonDict = {
    "allOf": [
        {
            "if": {"properties": {"type": {"enum": ["product_viewed", "recommendation_clicked"]}}},
            "then": {"required": ["productId"]},
        },
        {"if": {"properties": {"type": {"const": "search"}}}, "then": {"required": ["query"]}},
        {
            "if": {"properties": {"type": {"enum": ["add_to_cart", "remove_from_cart"]}}},
            "then": {"anyOf": [{"required": ["sku"]}, {"required": ["productId"]}]},
        },
    ]
}


@with_config(ConfigDict(json_schema_extra=_REQUIRED_BY_TYPE))
class StorefrontEvent(TypedDict):
    """One storefront event of the batch, normalised."""

    type: StorefrontEventType
    productId: NotRequired[
        Annotated[
            str,
            Field(
                pattern=r"^[A-Za-z0-9_.-]{1,128}$",
                description="Required for `product_viewed` and `recommendation_clicked` (both "
                "count as a view of the product); `add_to_cart` and `remove_from_cart` carry it "
                "or `sku` or both.",
            ),
        ]
    ]
    sku: NotRequired[Annotated[str, Field(pattern=SKU_PATTERN)]]
    query: NotRequired[
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=200,
                description="The search text (`search` only, required there).",
            ),
        ]
    ]
    resultsCount: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                le=1_000_000,
                description="How many results the search showed (`search` only).",
            ),
        ]
    ]
    at: Annotated[
        Timestamp,
        Field(
            description="When it happened, UTC with microseconds (`2030-01-01T12:00:00.000000Z`): "
            "the client's time (at most 5 minutes ahead of the server's), or the time the batch "
            "was received."
        ),
    ]


class EventsRecorded(TypedDict):
    """The payload (`data`) of `storefront.events_recorded`."""

    ownerId: Annotated[
        str,
        Field(
            min_length=1,
            description="Whose events these are: the customer id when signed in, else "
            "`v:<visitorId>` (the partition key of the `events` container; same as the "
            "envelope's `subject`).",
        ),
    ]
    customerId: Annotated[
        Annotated[str, Field(min_length=1)] | None,
        Field(description="The signed-in customer, or null for an anonymous visitor."),
    ]
    visitorId: Annotated[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")] | None,
        Field(
            description="The anonymous visitor (`X-Visitor-Id`). With a `customerId` too, the "
            "request was signed in and named the visitor id the device used before: the "
            "consumer merges that visitor's history into the customer's and empties the "
            "visitor's."
        ),
    ]
    events: Annotated[
        list[StorefrontEvent],
        Field(
            min_length=1,
            max_length=100,
            description="The batch's events in the order sent, normalised: `type`, the fields "
            "given (strings trimmed, a search query's inner whitespace collapsed) and `at`.",
        ),
    ]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "storefront.events_recorded",
        1,
        "One batch of storefront events accepted by `POST /api/events` (all of it valid, "
        "within the rate limit), published straight to the `events` topic by the route rather "
        "than through an outbox: there is no state to write with it. The `insights-history` "
        "subscription turns its views into browsing history. The envelope's `subject` is the "
        "owner (`ownerId`).",
        EventsRecorded,
    ),
)
"""The event types the insights area publishes."""
