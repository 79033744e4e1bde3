"""docs/partners/ holds exactly the schemas the inbound message models produce, and they
accept what the models accept and refuse what they refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from cloudcart.integrations.partners.messages import (
    FULFILMENT_MESSAGES,
    MESSAGE_MODELS,
    message_json_schema,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "partners"


@pytest.mark.parametrize("type_", sorted(MESSAGE_MODELS))
def test_committed_schema_is_the_generated_one(type_: str) -> None:
    committed = json.loads((DOCS / f"{type_}.v1.schema.json").read_text(encoding="utf-8"))
    assert committed == message_json_schema(type_), (
        "regenerate with `python -m cloudcart.integrations.partners.messages docs/partners`"
    )
    assert jsonschema_rs.meta.is_valid(committed)


def test_no_stray_schema_files() -> None:
    on_disk = {p.name for p in DOCS.glob("*.schema.json")}
    assert on_disk == {f"{t}.v1.schema.json" for t in MESSAGE_MODELS}


SHIPPED: dict[str, Any] = {
    "type": "shipment.shipped",
    "schemaVersion": 1,
    "eventId": "evt-1",
    "occurredAt": "2030-01-01T12:00:00Z",
    "orderId": "ord_1",
    "requestId": "fr-1",
    "shipmentId": "P1",
    "carrier": "BlueDart",
    "trackingNumber": "BD1",
    "trackingUrl": "https://track.example/BD1",
    "lines": [{"sku": "SKU-1", "quantity": 2}],
}


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"schemaVersion": 2}, False),
        ({"occurredAt": "2030-01-01T12:00:00"}, False),
        ({"lines": []}, False),
        ({"carrierName": "typo"}, False),
        ({"trackingUrl": "javascript:alert(1)"}, False),
    ],
)
def test_model_and_schema_agree(change: dict[str, Any], valid: bool) -> None:
    message = {**SHIPPED, **change}
    validator = jsonschema_rs.validator_for(message_json_schema("shipment.shipped"))
    try:
        FULFILMENT_MESSAGES.validate_python(message)
        model_ok = True
    except ValueError:
        model_ok = False
    assert model_ok is valid
    # A naive time passes a JSON Schema `date-time` only when formats are not asserted;
    # the model is the stricter gate, so only require the schema to refuse what it can.
    if change.get("occurredAt") is None:
        assert validator.is_valid(message) is valid
