"""docs/events/: the committed schemas match the code and accept what the code publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from cloudcart.core.events import Event, new_event

EVENTS_DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
ENVELOPE = EVENTS_DOCS / "event.schema.json"
TYPE_SCHEMAS = {
    "ops.dead_lettered": EVENTS_DOCS / "ops.dead_lettered.schema.json",
    "diagnostics.pinged": EVENTS_DOCS / "diagnostics.pinged.schema.json",
    "customer.created": EVENTS_DOCS / "customer.created.schema.json",
    "customer.updated": EVENTS_DOCS / "customer.updated.schema.json",
    "customer.erased": EVENTS_DOCS / "customer.erased.schema.json",
    "order.placed": EVENTS_DOCS / "order.placed.schema.json",
    "order.paid": EVENTS_DOCS / "order.paid.schema.json",
    "order.payment_failed": EVENTS_DOCS / "order.payment_failed.schema.json",
    "order.cancelled": EVENTS_DOCS / "order.cancelled.schema.json",
    "order.status_changed": EVENTS_DOCS / "order.status_changed.schema.json",
    "return.requested": EVENTS_DOCS / "return.requested.schema.json",
    "refund.issued": EVENTS_DOCS / "refund.issued.schema.json",
    "inventory.reserved": EVENTS_DOCS / "inventory.reserved.schema.json",
    "inventory.released": EVENTS_DOCS / "inventory.released.schema.json",
}


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _validator(path: Path) -> Any:
    envelope = _load(ENVELOPE)
    registry = jsonschema_rs.Registry([(envelope["$id"], envelope)])
    return jsonschema_rs.validator_for(_load(path), registry=registry, validate_formats=True)


def _wire(event: Event) -> Any:
    return json.loads(event.to_json_bytes())


def test_committed_envelope_schema_matches_the_model() -> None:
    assert _load(ENVELOPE) == Event.model_json_schema(by_alias=True), (
        "docs/events/event.schema.json is stale; regenerate it with "
        "`.venv/bin/python -m cloudcart.core.events > docs/events/event.schema.json`"
    )


def test_envelope_schema_accepts_published_events_and_rejects_broken_ones() -> None:
    validator = _validator(ENVELOPE)
    event = _wire(new_event("order.placed", "ord_1", {"total": 1}, correlation_id="req_1"))
    assert validator.is_valid(event)
    assert validator.is_valid({**event, "correlationId": None})
    assert not validator.is_valid({**event, "type": "OrderPlaced"})
    assert not validator.is_valid({k: v for k, v in event.items() if k != "id"})
    assert not validator.is_valid({**event, "time": "yesterday"})


@pytest.mark.parametrize("path", [ENVELOPE, *TYPE_SCHEMAS.values()], ids=lambda p: p.name)
def test_schemas_are_valid_draft_2020_12(path: Path) -> None:
    schema = _load(path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema_rs.meta.is_valid(schema)
    assert schema["$id"].endswith("/" + path.name)


def test_dead_lettered_schema() -> None:
    validator = _validator(TYPE_SCHEMAS["ops.dead_lettered"])
    data = {
        "entity": "events",
        "subscription": "billing",
        "messageId": "evt_1",
        "subject": "order.placed",
        "reason": "MaxDeliveryCountExceeded",
        "description": "handler raised ValueError",
        "deliveryCount": 10,
    }
    good = _wire(new_event("ops.dead_lettered", "evt_1", data))
    assert validator.is_valid(good)
    assert validator.is_valid({**good, "data": {**data, "subscription": None, "reason": None}})
    assert not validator.is_valid({**good, "type": "ops.resubmitted"})
    assert not validator.is_valid({**good, "data": {**data, "deliveryCount": "10"}})
    missing = {k: v for k, v in data.items() if k != "messageId"}
    assert not validator.is_valid({**good, "data": missing})
    # The envelope's rules apply too.
    assert not validator.is_valid({k: v for k, v in good.items() if k != "time"})


def test_pinged_schema() -> None:
    validator = _validator(TYPE_SCHEMAS["diagnostics.pinged"])
    data = {"pingId": "ping_1", "failAttempts": 2, "holdMs": 0}
    good = _wire(new_event("diagnostics.pinged", "ping_1", data))
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "data": {**data, "failAttempts": -1}})
    assert not validator.is_valid({**good, "data": {"pingId": "ping_1"}})
    assert not validator.is_valid({**good, "version": 2})


def test_readme_lists_every_schema() -> None:
    readme = (EVENTS_DOCS / "README.md").read_text(encoding="utf-8")
    on_disk = {p.name for p in EVENTS_DOCS.glob("*.schema.json")}
    assert on_disk == {ENVELOPE.name, *(p.name for p in TYPE_SCHEMAS.values())}
    for name in on_disk:
        assert f"({name})" in readme, f"docs/events/README.md does not link {name}"
