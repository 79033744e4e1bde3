"""Domain events: the envelope every event on the `events` and `ops` topics carries.

An event is a past-tense fact (`order.placed`, `refund.issued`) about one thing (its
`subject`, e.g. the order id). Services write events through the transactional outbox
(`cloudcart.core.outbox`) in the same batch as the state they announce; the outbox relay
publishes them with `message_id = event.id`, so duplicate detection and idempotent
consumers make replays harmless. The JSON Schema of the envelope lives in
docs/events/event.schema.json.

Each type's payload (`data`) is a `TypedDict` declared by the domain that publishes it
(`cloudcart/<domain>/events.py`) and registered there as an `EventSpec`; the schemas in
docs/events/ are rendered from those (`event_type_json_schema`) by
`python -m cloudcart.event_catalogue --write`. TypedDicts cost nothing when an event is
built: they only let mypy check the payload's keys and describe its shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

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
    data: Mapping[str, Any],
    *,
    correlation_id: str | None = None,
    version: int = 1,
) -> Event:
    """A new event with a fresh id, stamped now (raises pydantic.ValidationError on a bad
    type name)."""
    # The payload is a TypedDict or a plain dict, a dict at run time either way; validation
    # copies it into the event.
    return Event(
        type=type,
        subject=subject,
        data=cast("dict[str, Any]", data),
        correlation_id=correlation_id,
        version=version,
    )


def is_event_type(name: str) -> bool:
    """Whether `name` is a valid event type (`noun.verb`)."""
    return bool(_EVENT_TYPE.match(name))


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope, as committed in docs/events/event.schema.json."""
    return Event.model_json_schema(by_alias=True)


# --- payload schemas ----------------------------------------------------------------------

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""A time in a payload: an ISO 8601 string, UTC (`2030-01-01T12:00:00.000000Z`)."""

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 currency code in a payload (`INR`)."""

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URL = "https://cloudcart.dev/schemas/events/"
"""Every committed schema's `$id` is this plus its file name."""

ENVELOPE_SCHEMA_FILE = "event.schema.json"


@dataclass(frozen=True)
class EventSpec:
    """One event type as its publisher declares it: the payload of `data` is `payload`, a
    `TypedDict` whose members carry their constraints and descriptions as
    `Annotated[..., pydantic.Field(...)]` (optional members are `NotRequired`)."""

    type: str
    version: int
    description: str
    payload: Any
    """The TypedDict class (typed `Any`: mypy has no type for "a TypedDict class")."""

    @property
    def schema_file(self) -> str:
        """The file name of its schema in docs/events/."""
        return f"{self.type}.schema.json"


class _PayloadSchema(GenerateJsonSchema):
    """pydantic's generator, tuned to how the committed schemas read."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        # "Customerid" titles say nothing the member name does not.
        return False

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        # pydantic renders constrained keys as `patternProperties`, which lets a key that
        # does not match through unchecked; `propertyNames` refuses it.
        rendered = super().dict_schema(schema)
        patterns = rendered.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            rendered["propertyNames"] = {**rendered.get("propertyNames", {}), "pattern": pattern}
            rendered["additionalProperties"] = values
        return rendered

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        # A docstring's line breaks are the source's layout, not the text's.
        rendered = super().typed_dict_schema(schema)
        if "description" in rendered:
            rendered["description"] = " ".join(rendered["description"].split())
        return rendered


def payload_json_schema(payload: Any) -> dict[str, Any]:
    """The JSON Schema of a payload TypedDict (nested shapes in `$defs`)."""
    schema: dict[str, Any] = TypeAdapter(payload).json_schema(schema_generator=_PayloadSchema)
    return schema


def event_type_json_schema(spec: EventSpec) -> dict[str, Any]:
    """The JSON Schema of one event type: the envelope with `type`, `version` and `data`
    pinned, as committed in docs/events/<type>.schema.json."""
    data = payload_json_schema(spec.payload)
    definitions = data.pop("$defs", {})
    data.pop("title", None)  # the file's own title names the type
    if "additionalProperties" not in data:
        # Adding a member is not a breaking change (docs/events/README.md), so consumers
        # must accept members they do not know; a payload may still forbid them.
        data = {"additionalProperties": True, **data}
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URL + spec.schema_file,
        "title": f"{spec.type} (version {spec.version})",
        "description": spec.description,
    }
    if definitions:
        # Refs are `#/$defs/...` from the payload's root; hoisted here they resolve from
        # the file's root instead.
        schema["$defs"] = dict(sorted(definitions.items()))
    schema["allOf"] = [{"$ref": ENVELOPE_SCHEMA_FILE}]
    schema["properties"] = {
        "type": {"const": spec.type},
        "version": {"const": spec.version},
        "data": data,
    }
    return schema


if __name__ == "__main__":
    print(json.dumps(event_json_schema(), indent=2, ensure_ascii=False))
