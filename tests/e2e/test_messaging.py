"""The event pipeline end to end over a real `cloudcart serve`: outbox, change-feed relay,
topic, subscription, trigger host and an idempotent handler (the diagnostics canary).

Each ping is written through the admin API; the test then polls the ping until the handler's
effect shows. Nothing is mocked: the server is a subprocess on a free loopback port with its
own data folder, and the SIGKILL test kills it for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.events import Event
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import TOPOLOGY
from tests.e2e.serving import ServeProcess, admin_token, serve

pytestmark = pytest.mark.e2e

POLL = 0.05
LOG_TAIL = 6000
PINGS = "/api/admin/diagnostics/pings"
DEAD_LETTERS = "/api/admin/dead-letters"


def admin_client(server: ServeProcess) -> httpx.Client:
    """An httpx client on `server` with a fresh admin token from its identity provider."""
    token = admin_token(server.base_url, sub="e2e-ops")
    return httpx.Client(
        base_url=server.base_url,
        headers={"authorization": f"Bearer {token}"},
        timeout=10.0,
    )


def wait_for(
    what: str, probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    """Poll `probe` until `done(result)`; fail naming `what` and the last result."""
    deadline = time.monotonic() + timeout
    last = probe()
    while not done(last):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(POLL)
        last = probe()
    return last


def send_ping(client: httpx.Client, **knobs: int) -> dict[str, Any]:
    response = client.post(PINGS, json=knobs)
    assert response.status_code == 201, response.text
    ping: dict[str, Any] = response.json()
    assert ping["status"] == "pending" and ping["effects"] == 0
    return ping


def ping_state(client: httpx.Client, ping_id: str) -> dict[str, Any]:
    response = client.get(f"{PINGS}/{ping_id}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def dead_letters(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get(DEAD_LETTERS, params={"entity": "events", "subscription": "diagnostics"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def outbox_document(data_dir: Path, event_id: str) -> dict[str, Any]:
    store = SqliteDocumentStore(data_dir / "documents.sqlite3")
    try:
        return dict(store.container("insights").read(event_id, "diagnostics"))
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve(tmp_path_factory.mktemp("messaging")) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    with admin_client(server) as c:
        yield c


def processed(state: dict[str, Any]) -> bool:
    return bool(state["status"] == "processed")


def test_an_outbox_event_reaches_its_handler_once_in_effect(client: httpx.Client) -> None:
    ping = send_ping(client)
    state = wait_for(
        "the ping to be processed", lambda: ping_state(client, ping["pingId"]), processed, 5.0
    )
    time.sleep(0.3)  # room for a wrong second delivery
    state = ping_state(client, ping["pingId"])
    assert (state["attempts"], state["effects"]) == (1, 1)
    assert state["processedAt"] is not None


def test_a_handler_failing_twice_then_succeeding_has_one_effect(client: httpx.Client) -> None:
    ping = send_ping(client, failAttempts=2)
    wait_for("the ping to be processed", lambda: ping_state(client, ping["pingId"]), processed)
    time.sleep(0.3)
    state = ping_state(client, ping["pingId"])
    assert (state["attempts"], state["effects"]) == (3, 1)


def test_a_poison_message_is_dead_lettered_and_processed_once_after_resubmit(
    client: httpx.Client,
) -> None:
    ping = send_ping(client, failAttempts=3)

    def letters_of_ping() -> list[dict[str, Any]]:
        return [d for d in dead_letters(client) if d["body"]["data"]["pingId"] == ping["pingId"]]

    [letter] = wait_for("the dead letter", letters_of_ping, lambda found: len(found) == 1)
    assert letter["reason"] == "MaxDeliveryCountExceeded"
    assert letter["deliveryCount"] == 3
    assert letter["subject"] == "diagnostics.pinged"
    state = ping_state(client, ping["pingId"])
    assert (state["status"], state["attempts"], state["effects"]) == ("pending", 3, 0)

    # At once, well inside the topic's duplicate-detection window.
    resubmitted = client.post(f"{DEAD_LETTERS}/{letter['id']}/resubmit")
    assert resubmitted.status_code == 202, resubmitted.text
    wait_for("the resubmitted ping", lambda: ping_state(client, ping["pingId"]), processed)
    time.sleep(0.3)
    state = ping_state(client, ping["pingId"])
    assert (state["attempts"], state["effects"]) == (4, 1)
    assert letters_of_ping() == []


def test_duplicate_publishes_have_no_second_effect(
    client: httpx.Client, server: ServeProcess
) -> None:
    ping = send_ping(client)
    wait_for("the ping to be processed", lambda: ping_state(client, ping["pingId"]), processed)
    event = Event.model_validate(outbox_document(server.data_dir, ping["eventId"])["event"])
    message = event.to_message()
    broker = SqliteBroker(server.data_dir / "messages.sqlite3", TOPOLOGY)
    try:
        # The same message id twice: duplicate detection drops both (the relay sent it).
        broker.publish("events", [message, message])
        time.sleep(0.5)
        state = ping_state(client, ping["pingId"])
        assert (state["attempts"], state["effects"]) == (1, 1)

        # A copy with another message id (as after the dedupe window): delivered, and the
        # handler sees it, but keys its effect on the event id, so nothing happens twice.
        broker.publish("events", [replace(message, message_id=f"{event.id}-late-copy")])
    finally:
        broker.close()
    state = wait_for(
        "the late copy to be handled",
        lambda: ping_state(client, ping["pingId"]),
        lambda s: s["attempts"] == 2,
    )
    time.sleep(0.3)
    assert ping_state(client, ping["pingId"])["effects"] == 1


def test_the_relay_marks_the_outbox_event_with_relayed_at_and_a_ttl(
    client: httpx.Client, server: ServeProcess
) -> None:
    ping = send_ping(client)
    wait_for("the ping to be processed", lambda: ping_state(client, ping["pingId"]), processed)
    document = wait_for(
        "the outbox document to be marked relayed",
        lambda: outbox_document(server.data_dir, ping["eventId"]),
        lambda d: d.get("relayedAt") is not None,
    )
    assert document["kind"] == "outbox"
    assert document["event"]["type"] == "diagnostics.pinged"
    assert document["event"]["data"]["pingId"] == ping["pingId"]
    assert isinstance(document["ttl"], int) and document["ttl"] > 0


def test_sigkill_while_a_handler_runs_loses_nothing(tmp_path: Path) -> None:
    server = ServeProcess(data_dir=tmp_path / "data", log_path=tmp_path / "serve.log")
    try:
        server.start()
        with admin_client(server) as c:
            ping = send_ping(c, holdMs=4000)
            wait_for(
                "the handler to start",
                lambda: ping_state(c, ping["pingId"]),
                lambda s: s["attempts"] == 1,
            )
        server.kill()

        # Same ServeProcess, so the same data folder (and log) as the killed run.
        server.start()
        with admin_client(server) as c:
            state = ping_state(c, ping["pingId"])
            assert (state["status"], state["effects"]) == ("pending", 0)
            # Redelivered once the 5 s lock runs out, then held 4 s again.
            wait_for(
                "the redelivered ping to be processed",
                lambda: ping_state(c, ping["pingId"]),
                processed,
                timeout=20.0,
            )
            time.sleep(0.3)
            state = ping_state(c, ping["pingId"])
            assert (state["attempts"], state["effects"]) == (2, 1), server.log(tail=LOG_TAIL)
    finally:
        server.stop()
