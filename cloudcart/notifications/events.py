"""The payload of the event the notifications area publishes: `notification.status_changed`.

The payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers it, and docs/events/notification.status_changed.schema.json is
rendered from it (`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from cloudcart.core.events import EventSpec, Timestamp


class NotificationStatusChanged(TypedDict):
    """The payload (`data`) of `notification.status_changed`."""

    notificationId: Annotated[str, Field(min_length=1)]
    customerId: Annotated[
        str,
        Field(
            min_length=1,
            description="The recipient customer, or `~ops` for the shop's operators.",
        ),
    ]
    channel: Literal["email", "sms", "whatsapp", "inApp"]
    template: NotRequired[str | None]
    status: Literal["sent", "delivered", "bounced", "failed"]
    previousStatus: Annotated[
        str | None,
        Field(description="The status before (null for an in-app item, written delivered)."),
    ]
    at: Annotated[Timestamp, Field(description="When the record reached the status.")]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "notification.status_changed",
        1,
        "A notification record reached `sent`, `delivered`, `bounced` or `failed` (an in-app "
        "item is `delivered` when written); written through the `notifications` container's "
        "outbox in the same batch as the record. Statuses only move forward, so each is "
        "announced once per record; a record may skip `sent` (a delivery report that arrived "
        "first). The envelope's `subject` is the notification id. Analytics counts sends and "
        "deliveries per channel from it.",
        NotificationStatusChanged,
    ),
)
"""The event types the notifications area publishes."""
