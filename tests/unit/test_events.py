"""The event envelope: construction, validation, wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from cloudcart.core.events import Event, is_event_type, new_event


def test_new_event_fills_id_time_and_version() -> None:
    before = datetime.now(UTC)
    event = new_event("order.placed", "ord_1", {"total": 4200})
    assert event.id.startswith("evt_") and len(event.id) == 30
    assert event.version == 1
    assert event.correlation_id is None
    assert event.time.tzinfo is not None and event.time.utcoffset() == timedelta(0)
    assert before <= event.time <= datetime.now(UTC)
    assert new_event("order.placed", "ord_1", {}).id != event.id


@pytest.mark.parametrize(
    "name", ["order.placed", "ops.dead_lettered", "diagnostics.pinged", "refund.issued"]
)
def test_accepts_noun_verb_types(name: str) -> None:
    assert is_event_type(name)
    assert new_event(name, "x", {}).type == name


@pytest.mark.parametrize(
    "name", ["OrderPlaced", "order", "Order.placed", "order.placed.v2", "order-placed", ""]
)
def test_rejects_other_type_names(name: str) -> None:
    assert not is_event_type(name)
    with pytest.raises(ValidationError):
        new_event(name, "x", {})


def test_rejects_naive_time_and_normalises_to_utc() -> None:
    with pytest.raises(ValidationError):
        Event(type="order.placed", subject="o", time=datetime(2030, 1, 1, 12))
    plus_two = timezone(timedelta(hours=2))
    event = Event(type="order.placed", subject="o", time=datetime(2030, 1, 1, 14, tzinfo=plus_two))
    assert event.time == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert event.time.utcoffset() == timedelta(0)


def test_rejects_version_zero_and_empty_subject() -> None:
    with pytest.raises(ValidationError):
        new_event("order.placed", "o", {}, version=0)
    with pytest.raises(ValidationError):
        new_event("order.placed", "", {})


def test_is_frozen() -> None:
    event = new_event("order.placed", "o", {})
    with pytest.raises(ValidationError):
        event.type = "order.paid"  # type: ignore[misc]


def test_json_is_camel_case_with_every_field() -> None:
    event = new_event("order.placed", "ord_1", {"lines": 2}, correlation_id="req_9", version=3)
    body = json.loads(event.to_json_bytes())
    assert body == {
        "id": event.id,
        "type": "order.placed",
        "version": 3,
        "time": event.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "subject": "ord_1",
        "correlationId": "req_9",
        "data": {"lines": 2},
    }
    assert event.to_document() == body


def test_to_message_carries_id_type_and_properties() -> None:
    event = new_event("order.paid", "ord_7", {"amount": 10}, correlation_id="req_1", version=2)
    message = event.to_message()
    assert message.message_id == event.id
    assert message.subject == "order.paid"
    assert message.correlation_id == "req_1"
    assert dict(message.application_properties) == {"eventVersion": 2, "subjectId": "ord_7"}
    assert message.content_type == "application/json"
    assert Event.from_message_body(message.body_bytes()) == event


def test_from_message_body_rejects_garbage_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Event.from_message_body(b"not json")
    good = json.loads(new_event("order.placed", "o", {}).to_json_bytes())
    with pytest.raises(ValidationError):
        Event.from_message_body(json.dumps({**good, "extra": 1}).encode())
    # A str body (what some SDKs hand over) parses like bytes.
    assert Event.from_message_body(json.dumps(good)).subject == "o"
