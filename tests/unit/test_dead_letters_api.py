"""The dead-letter admin API over HTTP, against real dead letters in the embedded broker."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core import audit
from cloudcart.core.messages import embedded
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import Queue, SubjectPrefix, Subscription, Topic, Topology
from cloudcart.core.ports.documents import DocumentStore, Filter, Query
from cloudcart.core.ports.messages import OutboundMessage
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.ops.dead_letters import decode_body, router

PROBLEM = "application/problem+json"
BASE = "/api/admin/dead-letters"

# Duplicate detection off on most entities; on for `dedup-calls`, to show that a resubmit
# inside the window still goes through (the copy gets a new message id).
TEST_TOPOLOGY = Topology(
    topics=(
        Topic(
            "shop-events",
            subscriptions=(
                Subscription("billing", max_delivery_count=2),
                Subscription("mailer", SubjectPrefix("order.")),
            ),
            duplicate_detection_window=None,
        ),
    ),
    queues=(
        Queue("partner-calls", max_delivery_count=2, duplicate_detection_window=None),
        Queue(
            "dedup-calls", max_delivery_count=1, duplicate_detection_window=timedelta(minutes=10)
        ),
    ),
)


# --- producing real dead letters ----------------------------------------------------------


def publish(
    broker: SqliteBroker,
    entity: str,
    message_id: str,
    body: bytes | str | dict[str, Any],
    *,
    subject: str | None = None,
    content_type: str | None = "application/json",
    properties: dict[str, str | int | float | bool] | None = None,
) -> None:
    broker.publish(
        entity,
        [
            OutboundMessage(
                body=body,
                message_id=message_id,
                subject=subject,
                content_type=content_type,
                correlation_id=f"corr-{message_id}",
                application_properties=properties or {},
            )
        ],
    )


def reject(broker: SqliteBroker, entity: str, subscription: str | None = None) -> None:
    """A handler refuses the next message as invalid: dead-lettered without retries."""
    [message] = broker.receive(entity, subscription)
    broker.dead_letter(message.lock_token, "InvalidMessage", "sku is missing")


def fail_until_dead(broker: SqliteBroker, entity: str, subscription: str | None = None) -> None:
    """A handler raises on every delivery: abandoned until past max delivery count."""
    while True:
        received = broker.receive(entity, subscription)
        if not received:
            return
        broker.abandon(received[0].lock_token)


def seed(broker: SqliteBroker) -> None:
    """Four dead letters: JSON on billing, text on mailer, bytes and JSON on partner-calls."""
    publish(broker, "shop-events", "evt-1", {"orderId": "o-1", "total": 12.5}, subject="order.paid")
    fail_until_dead(broker, "shop-events", "billing")
    reject(broker, "shop-events", "mailer")
    publish(
        broker,
        "partner-calls",
        "cmd-1",
        b"\xff\x00\xfe",
        subject="erp.sync",
        content_type="application/octet-stream",
        properties={"partner": "erp", "attempt": 3},
    )
    fail_until_dead(broker, "partner-calls")
    publish(broker, "partner-calls", "cmd-2", "plain words", content_type="text/plain")
    reject(broker, "partner-calls")


# --- the app ------------------------------------------------------------------------------


@pytest.fixture
def test_topology(monkeypatch: pytest.MonkeyPatch) -> Topology:
    # The embedded adapter's from_settings builds the broker with this module constant, so the
    # app (through Services) runs on the test topology without any test-only seam in the code.
    monkeypatch.setattr(embedded, "TOPOLOGY", TEST_TOPOLOGY)
    return TEST_TOPOLOGY


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def app_client(settings: Settings, test_topology: Topology) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(router)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def services(app_client: TestClient) -> Services:
    found: Services = app_client.app.state.services  # type: ignore[attr-defined]
    return found


@pytest.fixture
def broker(services: Services) -> SqliteBroker:
    messages = services.messages
    assert isinstance(messages, SqliteBroker)
    assert messages.topology is TEST_TOPOLOGY
    return messages


@pytest.fixture
def admin_headers(settings: Settings) -> dict[str, str]:
    token, _ = mint_token(settings, "ops-admin", roles=("Admin",))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def customer_headers(settings: Settings) -> dict[str, str]:
    token, _ = mint_token(settings, "shopper-1")
    return {"Authorization": f"Bearer {token}"}


def audit_records(documents: DocumentStore, actor_id: str) -> list[dict[str, Any]]:
    page = documents.container("audit").query(
        Query(filters=[Filter("actorId", "eq", actor_id)]), partition_key=actor_id
    )
    return page.items


def by_message(items: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(item["messageId"], item["subscription"]): item for item in items}


# --- listing ------------------------------------------------------------------------------


def test_list_shows_every_dead_letter_with_reason_count_and_body(
    app_client: TestClient, broker: SqliteBroker, admin_headers: dict[str, str]
) -> None:
    seed(broker)
    response = app_client.get(BASE, headers=admin_headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 4
    found = by_message(items)

    billing = found[("evt-1", "billing")]
    assert billing["entity"] == "shop-events"
    assert billing["reason"] == "MaxDeliveryCountExceeded"
    assert billing["deliveryCount"] == 2
    assert billing["body"] == {"orderId": "o-1", "total": 12.5}
    assert billing["bodyEncoding"] == "json"
    assert billing["subject"] == "order.paid"
    assert billing["correlationId"] == "corr-evt-1"
    assert billing["contentType"] == "application/json"
    assert billing["deadLetteredAt"] is not None
    assert billing["enqueuedAt"]

    mailer = found[("evt-1", "mailer")]
    assert mailer["reason"] == "InvalidMessage"
    assert mailer["description"] == "sku is missing"
    assert mailer["deliveryCount"] == 1

    binary = found[("cmd-1", None)]
    assert binary["bodyEncoding"] == "base64"
    assert base64.b64decode(binary["body"]) == b"\xff\x00\xfe"
    assert binary["properties"] == {"partner": "erp", "attempt": 3}

    text = found[("cmd-2", None)]
    assert text["body"] == "plain words"
    assert text["bodyEncoding"] == "utf-8"

    # Every field of the contract is there, camelCase on the wire.
    assert set(billing) == {
        "id",
        "entity",
        "subscription",
        "messageId",
        "subject",
        "reason",
        "description",
        "deliveryCount",
        "enqueuedAt",
        "deadLetteredAt",
        "correlationId",
        "contentType",
        "properties",
        "body",
        "bodyEncoding",
    }


def test_list_filters_by_entity_and_subscription(
    app_client: TestClient, broker: SqliteBroker, admin_headers: dict[str, str]
) -> None:
    seed(broker)

    def listed(**params: str) -> set[tuple[str, str | None]]:
        response = app_client.get(BASE, params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        return set(by_message(response.json()["items"]))

    assert listed(entity="partner-calls") == {("cmd-1", None), ("cmd-2", None)}
    assert listed(entity="shop-events") == {("evt-1", "billing"), ("evt-1", "mailer")}
    assert listed(entity="shop-events", subscription="mailer") == {("evt-1", "mailer")}
    assert listed(subscription="billing") == {("evt-1", "billing")}
    assert listed(entity="dedup-calls") == set()


def test_limit_caps_the_list_across_entities(
    app_client: TestClient, broker: SqliteBroker, admin_headers: dict[str, str]
) -> None:
    seed(broker)
    response = app_client.get(BASE, params={"limit": 3}, headers=admin_headers)
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"entity": "nope"}, "nope"),
        ({"entity": "shop-events", "subscription": "ghost"}, "ghost"),
        ({"entity": "partner-calls", "subscription": "billing"}, "billing"),
        ({"subscription": "ghost"}, "ghost"),
    ],
)
def test_unknown_entity_or_subscription_is_a_404_naming_it(
    app_client: TestClient, admin_headers: dict[str, str], params: dict[str, str], named: str
) -> None:
    response = app_client.get(BASE, params=params, headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/unknown-entity")
    assert named in problem["detail"]


@pytest.mark.parametrize("limit", ["0", "501", "many"])
def test_limit_out_of_range_is_a_422_problem(
    app_client: TestClient, admin_headers: dict[str, str], limit: str
) -> None:
    response = app_client.get(BASE, params={"limit": limit}, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["location"] == "query.limit"


def test_the_app_topology_lists_without_the_test_topology(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    # No monkeypatch here: the real TOPOLOGY and the real Services path.
    app = create_app(settings)
    app.include_router(router)
    with TestClient(app) as client:
        response = client.get(BASE, headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"items": []}


# --- auth ---------------------------------------------------------------------------------

ROUTES = [
    ("GET", BASE),
    ("GET", f"{BASE}/dl-x"),
    ("POST", f"{BASE}/dl-x/resubmit"),
    ("DELETE", f"{BASE}/dl-x"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_token(app_client: TestClient, method: str, path: str) -> None:
    response = app_client.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_admin_role(
    app_client: TestClient,
    broker: SqliteBroker,
    customer_headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    seed(broker)
    [letter] = broker.list_dead_letters("partner-calls", limit=1)
    response = app_client.request(method, path.replace("dl-x", letter.id), headers=customer_headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    # A refused caller changed nothing.
    assert broker.peek(letter.id) == letter


# --- one dead letter ----------------------------------------------------------------------


def test_show_one_dead_letter(
    app_client: TestClient, broker: SqliteBroker, admin_headers: dict[str, str]
) -> None:
    seed(broker)
    [letter] = broker.list_dead_letters("shop-events", "billing")
    response = app_client.get(f"{BASE}/{letter.id}", headers=admin_headers)
    assert response.status_code == 200
    shown = response.json()
    assert shown["id"] == letter.id
    assert shown["messageId"] == "evt-1"
    assert shown["subscription"] == "billing"
    assert shown["body"] == {"orderId": "o-1", "total": 12.5}


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/resubmit"), ("DELETE", "")])
def test_unknown_id_is_a_404_problem(
    app_client: TestClient,
    services: Services,
    admin_headers: dict[str, str],
    method: str,
    suffix: str,
) -> None:
    response = app_client.request(method, f"{BASE}/dl-missing{suffix}", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/dead-letter-not-found")
    assert "dl-missing" in problem["detail"]
    assert audit_records(services.documents, "ops-admin") == []


# --- resubmit -----------------------------------------------------------------------------


def test_resubmit_puts_the_message_back_on_its_subscription_only_and_audits(
    app_client: TestClient,
    broker: SqliteBroker,
    services: Services,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(broker)
    [letter] = broker.list_dead_letters("shop-events", "billing")

    with caplog.at_level(logging.INFO, logger=audit.__name__):
        response = app_client.post(f"{BASE}/{letter.id}/resubmit", headers=admin_headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"id": letter.id, "status": "resubmitted"}

    # The dead letter is gone, and a fresh copy waits on billing (and only there).
    assert app_client.get(f"{BASE}/{letter.id}", headers=admin_headers).status_code == 404
    [again] = broker.receive("shop-events", "billing")
    assert again.message_id == "evt-1~r1"
    assert again.application_properties["cloudcart_original_message_id"] == "evt-1"
    assert again.delivery_count == 1
    assert again.json() == {"orderId": "o-1", "total": 12.5}
    assert broker.receive("shop-events", "mailer") == []

    [record] = audit_records(services.documents, "ops-admin")
    assert record["id"].startswith("aud_")
    assert record["action"] == "dead_letter.resubmit"
    assert record["target"]["deadLetterId"] == letter.id
    assert record["target"]["entity"] == "shop-events"
    assert record["target"]["subscription"] == "billing"
    assert record["target"]["messageId"] == "evt-1"
    assert record["correlationId"] == response.headers["x-correlation-id"]
    assert record["at"]

    [log] = [r for r in caplog.records if r.name == audit.__name__]
    assert log.levelno == logging.INFO
    assert log.__dict__["auditAction"] == "dead_letter.resubmit"
    assert log.__dict__["actorId"] == "ops-admin"
    assert log.__dict__["auditId"] == record["id"]


def test_resubmit_to_a_queue(
    app_client: TestClient, broker: SqliteBroker, admin_headers: dict[str, str]
) -> None:
    seed(broker)
    letters = broker.list_dead_letters("partner-calls")
    binary = next(letter for letter in letters if letter.message_id == "cmd-1")
    response = app_client.post(f"{BASE}/{binary.id}/resubmit", headers=admin_headers)
    assert response.status_code == 202
    [again] = broker.receive("partner-calls")
    assert again.body == b"\xff\x00\xfe"
    assert again.application_properties == {
        "partner": "erp",
        "attempt": 3,
        "cloudcart_original_message_id": "cmd-1",
    }
    remaining = {letter.message_id for letter in broker.list_dead_letters("partner-calls")}
    assert remaining == {"cmd-2"}


def test_resubmit_inside_the_duplicate_window_goes_through_with_a_new_message_id(
    app_client: TestClient,
    broker: SqliteBroker,
    services: Services,
    admin_headers: dict[str, str],
) -> None:
    publish(broker, "dedup-calls", "cmd-dup", {"n": 1})
    fail_until_dead(broker, "dedup-calls")
    [letter] = broker.list_dead_letters("dedup-calls")

    response = app_client.post(f"{BASE}/{letter.id}/resubmit", headers=admin_headers)
    assert response.status_code == 202, response.text
    [copy] = broker.receive("dedup-calls")
    assert copy.message_id == "cmd-dup~r1"
    assert copy.application_properties["cloudcart_original_message_id"] == "cmd-dup"
    assert copy.json() == {"n": 1}
    assert broker.list_dead_letters("dedup-calls") == []
    [record] = audit_records(services.documents, "ops-admin")
    assert record["target"]["messageId"] == "cmd-dup"


# --- purge --------------------------------------------------------------------------------


def test_delete_purges_and_audits(
    app_client: TestClient,
    broker: SqliteBroker,
    services: Services,
    admin_headers: dict[str, str],
) -> None:
    seed(broker)
    [letter] = broker.list_dead_letters("shop-events", "mailer")

    response = app_client.delete(f"{BASE}/{letter.id}", headers=admin_headers)
    assert response.status_code == 204
    assert response.content == b""
    assert [d.id for d in broker.list_dead_letters("shop-events", "mailer")] == []
    # Purged, not resubmitted: nothing went back on the subscription.
    assert broker.receive("shop-events", "mailer") == []

    [record] = audit_records(services.documents, "ops-admin")
    assert record["action"] == "dead_letter.purge"
    assert record["target"]["deadLetterId"] == letter.id
    assert record["target"]["reason"] == "InvalidMessage"

    again = app_client.delete(f"{BASE}/{letter.id}", headers=admin_headers)
    assert again.status_code == 404
    assert len(audit_records(services.documents, "ops-admin")) == 1


# --- OpenAPI ------------------------------------------------------------------------------


def test_openapi_declares_every_problem_and_camel_case_models(app_client: TestClient) -> None:
    schema = app_client.get("/api/openapi.json").json()
    paths = schema["paths"]
    expected = {
        (BASE, "get"): {"200", "401", "403", "404", "422"},
        (BASE + "/{dead_letter_id}", "get"): {"200", "401", "403", "404", "422"},
        (BASE + "/{dead_letter_id}/resubmit", "post"): {"202", "401", "403", "404", "422"},
        (BASE + "/{dead_letter_id}", "delete"): {"204", "401", "403", "404", "422"},
    }
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        assert operation["tags"] == ["operations"]
        assert statuses <= set(operation["responses"]), (path, method)
        for status in statuses - {"200", "202", "204"}:
            content = operation["responses"][status]["content"]
            assert list(content) == [PROBLEM], (path, method, status)
    view = schema["components"]["schemas"]["DeadLetterView"]["properties"]
    assert {"messageId", "deliveryCount", "deadLetteredAt", "bodyEncoding"} <= set(view)
    assert "message_id" not in view
    assert "204" in paths[BASE + "/{dead_letter_id}"]["delete"]["responses"]


# --- pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"a":1}', "application/json", ({"a": 1}, "json")),
        (b'{"a":1}', None, ({"a": 1}, "json")),
        (b'{"a":1}', "application/cloudevents+json; charset=utf-8", ({"a": 1}, "json")),
        (b"42", "text/plain", ("42", "utf-8")),
        (b"not json", "application/json", ("not json", "utf-8")),
        (b"\x80abc", "application/json", ("gGFiYw==", "base64")),
    ],
)
def test_decode_body(body: bytes, content_type: str | None, expected: tuple[Any, str]) -> None:
    assert decode_body(body, content_type) == expected


def test_record_audit_needs_an_actor_and_an_action(tmp_path: Path) -> None:
    documents = Services(Settings(data_dir=tmp_path)).documents
    with pytest.raises(ValueError, match="actor_id"):
        audit.record_audit(documents, actor_id="", action="x.y", target={})
    with pytest.raises(ValueError, match="action"):
        audit.record_audit(documents, actor_id="a", action="", target={})
    stored = audit.record_audit(
        documents, actor_id="a", action="x.y", target={"k": 1}, correlation_id="c-1"
    )
    assert documents.container("audit").read(stored["id"], "a")["target"] == {"k": 1}
