"""Domain events: the envelope every event on the `events` and `ops` topics carries.

An event is a past-tense fact (`order.placed`, `refund.issued`) about one thing (its
`subject`, e.g. the order id). Services write events through the transactional outbox
(`cloudcart.core.outbox`) in the same batch as the state they announce; the outbox relay
publishes them with `message_id = event.id`, so duplicate detection and idempotent
consumers make replays harmless. The JSON Schema of the envelope lives in
docs/events/event.schema.json (regenerate it with `python -m cloudcart.core.events`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from cloudcart.core.clock import utcnow
from cloudcart.core.ids import new_id
from cloudcart.core.ports.messages import InvalidMessage, OutboundMessage

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
"""`noun.verb`, lowercase with underscores: `order.placed`, `ops.dead_lettered`."""

EVENT_VERSION_PROPERTY = "eventVersion"
"""Application property carrying `Event.version`, so subscriptions can filter on it."""

SUBJECT_ID_PROPERTY = "subjectId"
"""Application property carrying `Event.subject` (the id of the thing the event is about)."""

_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)


def _wire_schema(schema: dict[str, Any]) -> None:
    # The schema documents the wire format, and a serialised event always has every field
    # (defaults are filled in when it is created), so consumers may rely on all of them.
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cloudcart.dev/schemas/events/event.schema.json"
    schema["required"] = list(schema.get("properties", {}))


class Event(BaseModel):
    """The envelope of every event. JSON field names are camelCase (`correlationId`).

    `type` names the fact and doubles as the message subject that subscription filters
    match on; `version` is the version of `data`'s schema for that type (a breaking change
    to `data` means a new version, see docs/events/README.md).
    """

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        title="Event",
        json_schema_extra=_wire_schema,
    )

    id: str = Field(
        default_factory=lambda: new_id("evt_"),
        min_length=1,
        max_length=128,
        description="Unique event id; also the message id, so replays are dropped.",
    )
    type: str = Field(
        pattern=EVENT_TYPE_PATTERN,
        max_length=128,
        description="Past-tense `noun.verb` fact, e.g. `order.placed`; the message subject.",
    )
    version: int = Field(1, ge=1, description="Version of the `data` schema for this type.")
    time: datetime = Field(
        default_factory=utcnow, description="When the fact happened (UTC, ISO 8601)."
    )
    subject: str = Field(
        min_length=1, description="Id of the thing the event is about (order id, SKU, ...)."
    )
    correlation_id: str | None = Field(
        None,
        title="Correlation Id",
        description="Id of the request or message that caused this event, for tracing.",
    )
    data: dict[str, Any] = Field(
        default_factory=dict, description="The type-specific payload (see its own schema)."
    )

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # A naive time is ambiguous across regions; the envelope promises UTC.
        if value.utcoffset() is None:
            raise ValueError("time must be timezone-aware")
        return value.astimezone(UTC)

    def to_json_bytes(self) -> bytes:
        """The event as compact camelCase JSON (the message body)."""
        return self.model_dump_json(by_alias=True).encode("utf-8")

    def to_document(self) -> dict[str, Any]:
        """The event as a JSON-ready dict with camelCase keys (how the outbox stores it)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_message(self) -> OutboundMessage:
        """The message that carries this event on a topic.

        `message_id` is the event id (duplicate detection, consumer idempotency), `subject`
        the event type (subscription filters), and the version and subject id ride along
        as application properties so filters need not parse the body.
        """
        return OutboundMessage(
            body=self.to_json_bytes(),
            message_id=self.id,
            subject=self.type,
            correlation_id=self.correlation_id,
            application_properties={
                EVENT_VERSION_PROPERTY: self.version,
                SUBJECT_ID_PROPERTY: self.subject,
            },
            content_type="application/json",
        )

    @classmethod
    def from_message_body(cls, body: bytes | str) -> Event:
        """Parse a message body written by `to_message` (raises pydantic.ValidationError)."""
        return cls.model_validate_json(body)

    @classmethod
    def from_delivery(cls, body: bytes | str) -> Event:
        """The event a handler received; `InvalidMessage("InvalidEvent")` when the body is
        not one, so the message dead-letters at once instead of being retried."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidMessage(
                "InvalidEvent", f"not an event: {exc.error_count()} errors"
            ) from None


def new_event(
    type: str,
    subject: str,
    data: dict[str, Any],
    *,
    correlation_id: str | None = None,
    version: int = 1,
) -> Event:
    """A new event with a fresh id, stamped now (raises pydantic.ValidationError on a bad
    type name)."""
    return Event(
        type=type, subject=subject, data=data, correlation_id=correlation_id, version=version
    )


def is_event_type(name: str) -> bool:
    """Whether `name` is a valid event type (`noun.verb`)."""
    return bool(_EVENT_TYPE.match(name))


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope, as committed in docs/events/event.schema.json."""
    return Event.model_json_schema(by_alias=True)


if __name__ == "__main__":
    print(json.dumps(event_json_schema(), indent=2, ensure_ascii=False))
