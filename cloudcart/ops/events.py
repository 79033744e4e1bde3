"""The payloads of the operational events: the `ops.dead_lettered` alert (published by the
trigger host, on the `ops` topic) and `diagnostics.pinged`.

Each payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers them, and docs/events/<type>.schema.json is rendered from it
(`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from typing_extensions import TypedDict

from cloudcart.core.events import EventSpec


class DeadLettered(TypedDict):
    """The payload (`data`) of `ops.dead_lettered`."""

    entity: Annotated[
        str, Field(min_length=1, description="Topic or queue the message was sent to.")
    ]
    subscription: Annotated[
        str | None,
        Field(description="Subscription whose dead-letter queue holds it; null for a queue."),
    ]
    messageId: Annotated[
        str,
        Field(
            min_length=1,
            description="The dead-lettered message's id (for an event: the event id).",
        ),
    ]
    subject: Annotated[
        str | None,
        Field(description="The dead-lettered message's subject (for an event: its type)."),
    ]
    reason: Annotated[
        str | None, Field(description="Dead-letter reason, e.g. `MaxDeliveryCountExceeded`.")
    ]
    description: Annotated[
        str | None,
        Field(description="Human-readable detail (the handler's error, for instance)."),
    ]
    deliveryCount: Annotated[
        int,
        Field(
            ge=0,
            description="How often the message was delivered before it was dead-lettered.",
        ),
    ]


class Pinged(TypedDict):
    """The payload (`data`) of `diagnostics.pinged`."""

    pingId: Annotated[
        str,
        Field(min_length=1, description="Id of the ping; the handler records its effect under it."),
    ]
    failAttempts: Annotated[
        int,
        Field(ge=0, description="The handler raises on this many deliveries before it succeeds."),
    ]
    holdMs: Annotated[
        int,
        Field(ge=0, description="Milliseconds the handler waits before recording its effect."),
    ]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "ops.dead_lettered",
        1,
        "A message was moved to a dead-letter queue (max delivery count exceeded, or "
        "dead-lettered by its handler). Published on the `ops` topic; the envelope's "
        "`subject` is the dead-lettered message's id. It is an alert: someone has to look at "
        "it, resubmit or purge it.",
        DeadLettered,
    ),
    EventSpec(
        "diagnostics.pinged",
        1,
        "A diagnostic ping that exercises the whole event path (outbox, relay, topic, handler) "
        "without touching business data. The envelope's `subject` is the ping id. Its handler "
        "can be told to fail a number of times and to hold a while, which is how the "
        "end-to-end tests prove retries, dead letters and crash recovery.",
        Pinged,
    ),
)
"""The operational event types."""
