"""The messages partners send to their inbound queues, one pydantic model per type.

Every message is a JSON object with `type`, `schemaVersion`, a partner-unique `eventId`
and `occurredAt`; the message's subject should equal `type`. The JSON Schemas in
docs/partners/ are generated from these models (`python -m
cloudcart.integrations.partners.messages`), and a test keeps the two in step.

Unknown fields are refused (a typo in a partner's field name must not pass silently), and
so is a `schemaVersion` this build does not know: a partner moving to version 2 of a
message needs a shop that understands it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from pydantic.alias_generators import to_camel

FULFILMENT_QUEUE_MESSAGES = (
    "shipment.accepted",
    "shipment.shipped",
    "shipment.delivered",
    "shipment.failed",
    "return.received",
)
INVENTORY_QUEUE_MESSAGES = ("stock.adjusted",)

_ID = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:~-]+$")]
_SKU = Annotated[str, Field(min_length=1, max_length=64)]


class _Message(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    schema_version: Literal[1] = Field(
        description="Version of this message type's schema; only 1 exists."
    )
    event_id: _ID = Field(
        description="The partner's unique id of this message; a repeat is applied once."
    )
    occurred_at: datetime = Field(description="When it happened at the partner (ISO 8601).")

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError("occurredAt must carry a time zone (e.g. Z)")
        return value.astimezone(UTC)


class Line(BaseModel):
    """Units of one SKU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: _SKU
    quantity: int = Field(ge=1, le=10_000)


class _OrderMessage(_Message):
    order_id: _ID = Field(description="The Cloudcart order id the fulfilment request named.")


class _ShipmentMessage(_OrderMessage):
    request_id: _ID = Field(description="The partner's id of the fulfilment request.")


class ShipmentAccepted(_ShipmentMessage):
    """The partner accepted the fulfilment request: the order is `fulfilling`."""

    type: Literal["shipment.accepted"]


class ShipmentShipped(_ShipmentMessage):
    """Units left the warehouse in one parcel (several parcels: several messages)."""

    type: Literal["shipment.shipped"]
    shipment_id: _ID = Field(description="The partner's id of this parcel.")
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    tracking_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    lines: list[Line] = Field(min_length=1, max_length=100)


class ShipmentDelivered(_ShipmentMessage):
    """A parcel reached the customer."""

    type: Literal["shipment.delivered"]
    shipment_id: _ID


class ShipmentFailed(_ShipmentMessage):
    """The request (or one parcel) cannot be fulfilled or delivered."""

    type: Literal["shipment.failed"]
    shipment_id: _ID | None = None
    reason: str = Field(min_length=1, max_length=500)


class ReturnReceived(_OrderMessage):
    """Returned units arrived back at the warehouse."""

    type: Literal["return.received"]
    lines: list[Line] = Field(min_length=1, max_length=100)
    condition: Literal["resellable", "damaged"] = Field(
        description="`resellable` units go back on hand; `damaged` ones do not."
    )


class StockAdjusted(_Message):
    """The WMS's absolute on-hand figure for a SKU (cycle count, receipt, damage, ...)."""

    type: Literal["stock.adjusted"]
    sku: _SKU
    on_hand: int = Field(ge=0, le=100_000_000, description="Units physically on hand.")
    sequence: int = Field(
        ge=0, description="Per-SKU counter; a message older than the last applied is ignored."
    )
    reason: str = Field(min_length=1, max_length=200)


FulfilmentMessage = Annotated[
    ShipmentAccepted | ShipmentShipped | ShipmentDelivered | ShipmentFailed | ReturnReceived,
    Field(discriminator="type"),
]
InventoryMessage = Annotated[StockAdjusted, Field(discriminator="type")]

FULFILMENT_MESSAGES: TypeAdapter[FulfilmentMessage] = TypeAdapter(FulfilmentMessage)
INVENTORY_MESSAGES: TypeAdapter[StockAdjusted] = TypeAdapter(StockAdjusted)

MESSAGE_MODELS: dict[str, type[_Message]] = {
    "shipment.accepted": ShipmentAccepted,
    "shipment.shipped": ShipmentShipped,
    "shipment.delivered": ShipmentDelivered,
    "shipment.failed": ShipmentFailed,
    "return.received": ReturnReceived,
    "stock.adjusted": StockAdjusted,
}
"""Every inbound message type and its model."""


def message_json_schema(type_: str) -> dict[str, Any]:
    """The JSON Schema of one message type, as committed in docs/partners/."""
    schema = MESSAGE_MODELS[type_].model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://cloudcart.dev/schemas/partners/{type_}.v1.schema.json"
    return schema


def write_schemas(folder: Path) -> list[Path]:
    """Write every message's schema to `folder/<type>.v1.schema.json`."""
    written = []
    for type_ in MESSAGE_MODELS:
        path = folder / f"{type_}.v1.schema.json"
        path.write_text(json.dumps(message_json_schema(type_), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/partners")
    for written_path in write_schemas(target):
        print(written_path)
