"""The diagnostics canary's handler, in process: effect once, keyed on the event id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.events import new_event
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.ops import diagnostics
from cloudcart.ops.diagnostics import SimulatedFailure, create_ping, handle_ping, read_ping


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    s.ensure_containers()
    yield s
    s.close()


def test_ping_and_its_event_are_written_together(store: SqliteDocumentStore) -> None:
    ping, event = create_ping(store, fail_attempts=1, hold_ms=5, correlation="c-1")
    outbox = store.container("insights").read(event.id, "diagnostics")
    assert outbox["kind"] == "outbox" and outbox["event"]["type"] == "diagnostics.pinged"
    assert outbox["event"]["data"] == {"pingId": ping["id"], "failAttempts": 1, "holdMs": 5}
    assert outbox["event"]["correlationId"] == "c-1"
    assert read_ping(store, ping["id"])["status"] == "pending"


def test_handler_fails_as_asked_then_applies_the_effect_once(store: SqliteDocumentStore) -> None:
    ping, event = create_ping(store, fail_attempts=1, hold_ms=250)
    body = event.to_json_bytes()
    slept: list[float] = []
    with pytest.raises(SimulatedFailure):
        handle_ping(body, store, sleep=slept.append)
    assert handle_ping(body, store, sleep=slept.append) is True
    assert slept == [0.25]
    # A redelivery or a copy with another message id: same event id, no second effect.
    assert handle_ping(body, store, sleep=slept.append) is False
    stored = read_ping(store, ping["id"])
    assert (stored["attempts"], stored["effects"], stored["status"]) == (3, 1, "processed")


def test_bodies_that_can_never_succeed_are_invalid(store: SqliteDocumentStore) -> None:
    with pytest.raises(InvalidMessage) as not_json:
        handle_ping(b"not json", store)
    assert not_json.value.reason == "InvalidEvent"
    other = new_event("order.placed", "o-1", {})
    with pytest.raises(InvalidMessage) as wrong_type:
        handle_ping(other.to_json_bytes(), store)
    assert wrong_type.value.reason == "UnexpectedEventType"
    unknown = new_event(diagnostics.PING_EVENT, "p", {"pingId": "ping_missing"})
    with pytest.raises(InvalidMessage) as missing:
        handle_ping(unknown.to_json_bytes(), store)
    assert missing.value.reason == "PingNotFound"
