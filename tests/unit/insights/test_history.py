"""Storefront events and browsing history: `POST /api/events` through the embedded broker
to the `insights-history` function, `GET`/`DELETE /api/me/history`, the merge of a
visitor's history on sign-in, the personalisation preference, export and erasure."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import jsonschema_rs
import pytest
from azure.functions.servicebus import ServiceBusMessage
from fastapi.testclient import TestClient

from cloudcart import composition
from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.documents import embedded as embedded_documents
from cloudcart.core.errors import Unavailable
from cloudcart.core.events import Event
from cloudcart.core.messages import embedded as embedded_messages
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.ports.documents import Container, DocumentStore, Filter, Query
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.core.settings import Settings
from cloudcart.customers.privacy import unregister_contributors
from cloudcart.customers.service import unregister_personalization_withdrawn
from cloudcart.identity.dev_provider import mint_token
from cloudcart.insights import history, history_functions, history_routes, privacy, storefront
from cloudcart.insights.storefront import RateLimit
from cloudcart.local.trigger_host import HostConfig, TriggerHost, to_service_bus_message
from tests.fakes.publishers import FlakyPublisher

PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "docs" / "events"
VISITOR = "visitor-aaaaaaaaaaaa-1"
OTHER_VISITOR = "visitor-bbbbbbbbbbbb-2"
IN_AN_HOUR = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def view(product_id: str, minutes_ago: float | None = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "product_viewed", "productId": product_id, **extra}
    if minutes_ago is not None:
        event["at"] = ago(minutes_ago)
    return event


# --- a documents store that counts round trips (hand-written, wraps the embedded one) ------


class CountingContainer:
    """Forwards to a container and records every call as (container, operation)."""

    def __init__(self, inner: Container, calls: list[tuple[str, str]]) -> None:
        self._inner = inner
        self._calls = calls
        self.spec = inner.spec

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls.append((self.spec.name, name))
            return target(*args, **kwargs)

        return counted


class CountingStore:
    """A DocumentStore whose containers count their calls in `calls`."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def container(self, name: str) -> Any:
        return CountingContainer(self.inner.container(name), self.calls)

    def ensure_containers(self) -> None:
        self.inner.ensure_containers()

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        self.inner.close()


# --- the shop ---------------------------------------------------------------------------------


@dataclass
class Env:
    client: TestClient
    services: Services
    settings: Settings
    store: CountingStore
    broker: SqliteBroker
    publisher: FlakyPublisher | None
    delivered: list[Event] = field(default_factory=list)

    @property
    def documents(self) -> DocumentStore:
        return self.services.documents

    def auth(self, sub: str) -> dict[str, str]:
        token, _ = mint_token(self.settings, sub, email=f"{sub}@example.com")
        return {"Authorization": f"Bearer {token}"}

    def product(self, product_id: str, status: str = "active") -> None:
        self.documents.container("catalog").upsert(
            {
                "id": product_id,
                "pk": product_id,
                "type": "product",
                "title": f"Product {product_id}",
                "status": status,
                "variants": [],
            }
        )

    def post(
        self,
        events: Any,
        *,
        sub: str | None = None,
        visitor: str | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if sub is not None:
            headers.update(self.auth(sub))
        if visitor is not None:
            headers[history_routes.VISITOR_HEADER] = visitor
        response: httpx.Response
        if raw is not None:
            response = self.client.post("/api/events", content=raw, headers=headers)
        else:
            response = self.client.post("/api/events", json={"events": events}, headers=headers)
        return response

    def deliver(self) -> int:
        """Run the `insights-history` function on every waiting message, as the trigger
        host would: a return completes the message."""
        count = 0
        while True:
            received = self.broker.receive("events", history.SUBSCRIPTION, max_messages=10)
            if not received:
                return count
            for message in received:
                self.delivered.append(Event.from_message_body(message.body))
                history_functions.insights_history(to_service_bus_message(message))
                self.broker.complete(message.lock_token)
                count += 1

    def history(self, sub: str, visitor: str | None = None, **params: Any) -> list[dict[str, Any]]:
        headers = self.auth(sub)
        if visitor is not None:
            headers[history_routes.VISITOR_HEADER] = visitor
        r = self.client.get("/api/me/history", headers=headers, params=params)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def products(self, sub: str, visitor: str | None = None, **params: Any) -> list[str]:
        return [i["productId"] for i in self.history(sub, visitor, **params)]

    def partition(self, owner: str) -> list[dict[str, Any]]:
        page = self.documents.container("events").query(Query(limit=1000), partition_key=owner)
        return page.items

    def kinds(self, owner: str) -> list[str]:
        return sorted(str(d.get("kind")) for d in self.partition(owner))

    def set_personalization(self, sub: str, allowed: bool) -> dict[str, Any]:
        r = self.client.put(
            "/api/me/preferences", headers=self.auth(sub), json={"personalization": allowed}
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, flaky: bool) -> Iterator[Env]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    broker = embedded_messages.from_settings(settings)
    publisher = FlakyPublisher(broker) if flaky else None
    store = CountingStore(embedded_documents.from_settings(settings))
    services = Services(settings, adapters={"messages": publisher or broker, "documents": store})
    app.state.services = services
    # Mounted here until the app factory does.
    if not any(getattr(r, "path", "") == "/api/events" for r in app.routes):
        app.include_router(history_routes.router)
        app.openapi_schema = None
    privacy.register()
    monkeypatch.setattr(composition, "services", lambda: services)
    services.documents.ensure_containers()
    try:
        with TestClient(app) as client:
            yield Env(client, services, settings, store, broker, publisher)
    finally:
        unregister_contributors(privacy.SECTION)
        unregister_personalization_withdrawn(privacy.SECTION)
        services.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from _build(tmp_path, monkeypatch, flaky=True)


def assert_problem(r: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + type_), body
    return body


# --- the way through ----------------------------------------------------------------------


def test_a_view_on_one_device_shows_on_another_newest_first_once_per_product(env: Env) -> None:
    for p in ("p1", "p2", "p3"):
        env.product(p)
    phone = env.post([view("p1", 30), view("p2", 20), view("p1", 25)], sub="asha")
    assert phone.status_code == 202, phone.text
    assert phone.json() == {"accepted": 3}
    laptop = env.post(
        [{"type": "recommendation_clicked", "productId": "p3", "at": ago(10)}], sub="asha"
    )
    assert laptop.json() == {"accepted": 1}
    assert env.deliver() == 2
    items = env.history("asha")
    assert [i["productId"] for i in items] == ["p3", "p2", "p1"]
    # p1 was viewed twice in the batch: the newer view counts.
    p1_at = datetime.fromisoformat(items[2]["viewedAt"])
    assert abs(p1_at - (datetime.now(UTC) - timedelta(minutes=25))) < timedelta(seconds=30)
    # Viewing p1 again moves it to the top; still one entry per product.
    env.post([view("p1")], sub="asha")
    env.deliver()
    assert env.products("asha") == ["p1", "p3", "p2"]
    assert env.products("asha", limit=2) == ["p1", "p3"]
    # Other customers see nothing of it.
    assert env.history("ravi") == []


def test_the_batch_is_one_message_in_the_documented_shape(env: Env) -> None:
    env.product("p1")
    r = env.post(
        [
            view("p1", 5, sku="SKU-1"),
            {"type": "search", "query": "  blue   phone ", "resultsCount": 12},
            {"type": "add_to_cart", "sku": "SKU-1"},
            {"type": "remove_from_cart", "productId": "p1"},
            {"type": "checkout_started", "productId": None},
        ],
        sub="asha",
        visitor=VISITOR,
    )
    assert r.status_code == 202, r.text
    assert env.publisher is not None
    assert len(env.publisher.calls) == 1
    (message,) = env.broker.receive("events", history.SUBSCRIPTION)
    event = Event.from_message_body(message.body)
    assert message.message_id == event.id
    assert message.subject == "storefront.events_recorded"
    assert message.application_properties["eventVersion"] == 1
    assert message.application_properties["subjectId"] == "asha"
    assert event.data["ownerId"] == "asha"
    assert event.data["customerId"] == "asha"
    assert event.data["visitorId"] == VISITOR
    kinds = [e["type"] for e in event.data["events"]]
    assert kinds == [
        "product_viewed",
        "search",
        "add_to_cart",
        "remove_from_cart",
        "checkout_started",
    ]
    search = event.data["events"][1]
    assert search["query"] == "blue phone" and search["resultsCount"] == 12
    assert event.data["events"][4] == {"type": "checkout_started", "at": search["at"]}
    assert all(e["at"].endswith("Z") and len(e["at"]) == 27 for e in event.data["events"])
    envelope = json.loads((SCHEMAS / "event.schema.json").read_text())
    schema = json.loads((SCHEMAS / "storefront.events_recorded.schema.json").read_text())
    validator = jsonschema_rs.validator_for(
        schema,
        registry=jsonschema_rs.Registry([(envelope["$id"], envelope)]),
        validate_formats=True,
    )
    wire = json.loads(event.to_json_bytes())
    assert validator.is_valid(wire)
    anonymous = {**wire, "data": {**wire["data"], "customerId": None, "ownerId": "v:x"}}
    assert validator.is_valid(anonymous)
    broken = {**wire, "data": {**wire["data"], "events": [{"type": "search", "at": "now"}]}}
    assert not validator.is_valid(broken)


def test_an_anonymous_visitor_needs_a_well_formed_visitor_id(env: Env) -> None:
    env.product("p1")
    assert_problem(env.post([view("p1")]), 400, "visitor-id-required")
    assert_problem(env.post([view("p1")], visitor="short"), 400, "bad-visitor-id")
    assert_problem(env.post([view("p1")], visitor="x" * 15 + "/"), 400, "bad-visitor-id")
    assert env.post([view("p1", 1)], visitor=VISITOR).status_code == 202
    env.deliver()
    (entry,) = [d for d in env.partition("v:" + VISITOR) if d["kind"] == "view"]
    assert entry["id"] == "view:p1" and entry["productId"] == "p1"
    bad = env.client.get(
        "/api/me/history", headers={**env.auth("asha"), history_routes.VISITOR_HEADER: "no"}
    )
    assert_problem(bad, 400, "bad-visitor-id")
    # An invalid token is refused, never taken for an anonymous call.
    r = env.client.post(
        "/api/events",
        json={"events": [view("p1")]},
        headers={"Authorization": "Bearer nope", history_routes.VISITOR_HEADER: VISITOR},
    )
    assert r.status_code == 401


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "index", "field_", "words"),
    [
        ([view("p1"), {"type": "page_viewed"}], 1, "type", "unknown event type"),
        ([{"productId": "p1"}], 0, "type", "required"),
        ([view("p1"), view("p2"), {"type": "product_viewed"}], 2, "productId", "required"),
        ([{"type": "recommendation_clicked"}], 0, "productId", "required"),
        ([{"type": "search"}], 0, "query", "required"),
        ([{"type": "search", "query": "   "}], 0, "query", "blank"),
        ([{"type": "search", "query": "x", "resultsCount": True}], 0, "resultsCount", "whole"),
        ([{"type": "search", "query": "x", "resultsCount": -1}], 0, "resultsCount", "0.."),
        ([{"type": "add_to_cart"}], 0, "sku", "sku or productId"),
        ([{"type": "remove_from_cart"}], 0, "sku", "sku or productId"),
        ([{"type": "add_to_cart", "sku": "bad sku"}], 0, "sku", "sku must be"),
        ([view("p/1")], 0, "productId", "productId must be"),
        ([view("p1", colour="red")], 0, "colour", "unknown field"),
        ([{"type": "search", "query": "x", "productId": "p1"}], 0, "productId", "not apply"),
        ([view("p1", at="yesterday")], 0, "at", "ISO 8601"),
        ([view("p1", at="2030-01-01T12:00:00")], 0, "at", "time zone"),
        ([view("p1", at=IN_AN_HOUR)], 0, "at", "future"),
        (["product_viewed"], 0, None, "JSON object"),
    ],
)
def test_an_invalid_event_names_its_index_and_field_and_nothing_is_recorded(
    env: Env, events: list[Any], index: int, field_: str | None, words: str
) -> None:
    body = assert_problem(env.post(events, sub="asha"), 422, "invalid-events")
    assert body["eventIndex"] == index
    assert body["field"] == field_
    assert words in body["detail"]
    assert f"event {index}" in body["detail"]
    first = body["errors"][0]
    assert first["location"] == f"body.events.{index}" + (f".{field_}" if field_ else "")
    assert env.publisher is not None and env.publisher.calls == []
    assert env.partition("asha") == []


def test_every_bad_event_is_listed(env: Env) -> None:
    body = assert_problem(
        env.post([view("p1"), {"type": "search"}, {"type": "add_to_cart"}], sub="asha"),
        422,
        "invalid-events",
    )
    assert [e["location"] for e in body["errors"]] == [
        "body.events.1.query",
        "body.events.2.sku",
    ]


def test_a_slightly_fast_client_clock_is_accepted(env: Env) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert env.post([view("p1", at=soon)], sub="asha").status_code == 202
    offset = (datetime.now(UTC) - timedelta(hours=1)).astimezone().isoformat()
    assert env.post([view("p1", at=offset)], sub="asha").status_code == 202


@pytest.mark.parametrize(
    ("raw", "status", "type_"),
    [
        (b"not json", 400, "malformed-event-batch"),
        (b"\xff\xfe", 400, "malformed-event-batch"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed-event-batch"),
        (b"[]", 400, "malformed-event-batch"),
        (b'{"event": []}', 400, "malformed-event-batch"),
        (b'{"events": {}}', 400, "malformed-event-batch"),
        (b"{}", 400, "malformed-event-batch"),
        (b" " * (storefront.MAX_BODY_BYTES + 1), 413, "event-batch-too-large"),
    ],
)
def test_a_malformed_batch_is_a_clear_problem(
    env: Env, raw: bytes, status: int, type_: str
) -> None:
    assert_problem(env.post(None, sub="asha", raw=raw), status, type_)
    assert env.publisher is not None and env.publisher.calls == []


def test_more_than_100_events_are_refused_whole(env: Env) -> None:
    body = assert_problem(env.post([view("p1")] * 101, sub="asha"), 422, "too-many-events")
    assert body["maxEvents"] == 100 and body["count"] == 101
    assert env.post([view("p1")] * 100, sub="asha").json() == {"accepted": 100}


def test_an_empty_batch_records_nothing(env: Env) -> None:
    assert env.post([], sub="asha").json() == {"accepted": 0}
    assert env.publisher is not None and env.publisher.calls == []


# --- rate limit, publish failures and round trips -------------------------------------------


def test_rate_limit_per_customer_and_visitor_with_retry_after(env: Env) -> None:
    env.client.app.dependency_overrides[history_routes.rate_limit] = lambda: RateLimit(5, 60)  # type: ignore[attr-defined]
    assert env.post([view("p1")] * 3, sub="asha").status_code == 202
    assert env.post([view("p1")] * 2, sub="asha").status_code == 202
    r = env.post([view("p1")], sub="asha")
    body = assert_problem(r, 429, "events-rate-limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert body["retryAfter"] == int(r.headers["Retry-After"])
    assert body["limit"] == 5
    # Each owner has its own budget, and a refused batch consumed none.
    assert env.post([view("p1")] * 5, sub="ravi").status_code == 202
    assert env.post([view("p1")] * 5, visitor=VISITOR).status_code == 202
    assert env.post([view("p1")], visitor=VISITOR).status_code == 429
    assert env.post([view("p1")] * 5, visitor=OTHER_VISITOR).status_code == 202
    assert env.publisher is not None and len(env.publisher.calls) == 5


def test_the_rate_limit_holds_under_concurrency(env: Env) -> None:
    limit = RateLimit(20, 60)
    results: list[str] = []

    def one() -> None:
        try:
            storefront.take(env.documents, "racer", 3, limit=limit)
            results.append("ok")
        except storefront.EventsRateLimited:
            results.append("limited")

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 6  # 6 x 3 = 18 <= 20 < 21
    (counter,) = [d for d in env.partition("racer") if d["kind"] == "rate-limit"]
    assert counter["count"] == 18 and counter["ttl"] == 120


def test_the_next_window_starts_afresh(env: Env) -> None:
    limit = RateLimit(5, 60)
    start = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
    storefront.take(env.documents, "o", 5, limit=limit, now=start)
    with pytest.raises(storefront.EventsRateLimited) as caught:
        storefront.take(env.documents, "o", 1, limit=limit, now=start + timedelta(seconds=20))
    assert caught.value.retry_after == 30
    storefront.take(env.documents, "o", 5, limit=limit, now=start + timedelta(seconds=50))


def test_a_failed_publish_answers_503_and_the_retry_goes_through(env: Env) -> None:
    assert env.publisher is not None
    env.publisher.failures = 1
    r = env.post([view("p1")], sub="asha")
    assert_problem(r, 503, "events-unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    assert env.deliver() == 0
    assert env.post([view("p1")], sub="asha").status_code == 202
    assert env.deliver() == 1


def test_round_trips_of_a_post_and_a_get(env: Env) -> None:
    for p in ("p1", "p2", "p3"):
        env.product(p)
    env.store.calls.clear()
    env.post([view("p1", 3), view("p2", 2)], sub="asha")
    # The first batch of a window finds no counter and creates it.
    assert env.store.calls == [("events", "patch"), ("events", "create")]
    env.store.calls.clear()
    env.post([view("p3", 1)], sub="asha")
    assert env.store.calls == [("events", "patch")]
    assert env.publisher is not None and len(env.publisher.calls) == 2
    env.deliver()
    env.store.calls.clear()
    assert env.products("asha") == ["p3", "p2", "p1"]
    assert env.store.calls[:2] == [("customers", "read"), ("events", "query")]
    assert sorted(env.store.calls[2:]) == [("catalog", "read")] * 3
    # The consumer: the preference, one read of what the batch touches, one batch.
    env.post([view("p1")], sub="asha")
    env.store.calls.clear()
    env.deliver()
    assert env.store.calls == [("customers", "read"), ("events", "query"), ("events", "batch")]


# --- the consumer -------------------------------------------------------------------------------


def test_redelivery_and_older_views_change_nothing(env: Env) -> None:
    env.product("p1")
    env.post([view("p1", 1)], sub="asha")
    env.deliver()
    (event,) = env.delivered
    before = env.partition("asha")
    assert history.handle_event(env.documents, event) == "recorded"
    after = env.partition("asha")
    assert [d["id"] for d in after] == [d["id"] for d in before]
    entry = next(d for d in after if d["kind"] == "view")
    assert entry["_etag"] == next(d for d in before if d["kind"] == "view")["_etag"]
    env.post([view("p1", 60)], sub="asha")
    env.deliver()
    stored = next(d for d in env.partition("asha") if d["kind"] == "view")
    assert stored["viewedAt"] == entry["viewedAt"]
    # One raw batch per message, whatever the redeliveries.
    assert env.kinds("asha").count("storefront-batch") == 2


def test_concurrent_batches_of_one_customer_all_land(env: Env) -> None:
    products = [f"p{i}" for i in range(12)]
    for p in products:
        env.product(p)
        env.post([view(p, 30 - products.index(p))], sub="asha")
    received = env.broker.receive("events", history.SUBSCRIPTION, max_messages=20)
    events = [Event.from_message_body(m.body) for m in received]
    threads = [
        threading.Thread(target=history.handle_event, args=(env.documents, e)) for e in events
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert env.products("asha", limit=100) == list(reversed(products))


def test_a_batch_of_100_distinct_products_spans_transactional_batches(env: Env) -> None:
    events = [view(f"p{i:03d}", 200 - i) for i in range(100)]
    assert env.post(events, sub="asha").status_code == 202
    env.deliver()
    assert env.kinds("asha").count("view") == 100


def test_messages_that_can_never_apply_are_dead_lettered_at_once(env: Env) -> None:
    def event(version: int = 1, **data: Any) -> Event:
        body: dict[str, Any] = {
            "ownerId": "asha",
            "customerId": "asha",
            "visitorId": None,
            "events": [],
        }
        return Event(
            type="storefront.events_recorded",
            subject="asha",
            data={**body, **data},
            version=version,
        )

    with pytest.raises(InvalidMessage, match="UnsupportedVersion"):
        history.handle_event(env.documents, event(version=2))
    with pytest.raises(InvalidMessage, match="ownerId"):
        history.handle_event(env.documents, event(ownerId="v:someone-else-entirely"))
    with pytest.raises(InvalidMessage, match="productId"):
        history.handle_event(
            env.documents, event(events=[{"type": "product_viewed", "at": ago(1)}])
        )
    with pytest.raises(InvalidMessage, match="at"):
        history.handle_event(
            env.documents,
            event(events=[{"type": "product_viewed", "productId": "p1", "at": "soon"}]),
        )
    garbage = ServiceBusMessage(
        body=b"{}", message_id="m1", application_properties={}, user_properties={}
    )
    with pytest.raises(InvalidMessage, match="InvalidEvent"):
        history_functions.insights_history(garbage)
    assert env.partition("asha") == []


def test_a_view_is_on_the_other_device_within_a_second_through_the_trigger_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for live in _build(tmp_path, monkeypatch, flaky=False):
        live.product("p1")
        app = func.FunctionApp()
        app.register_functions(history_functions.bp)
        host = TriggerHost(
            app.get_functions(),
            live.settings,
            live.services,
            host_config=HostConfig(max_concurrent_calls=4),
            poll_interval=0.05,
        )
        with host:
            started = time.monotonic()
            assert live.post([view("p1")], sub="asha").status_code == 202
            while not live.history("asha"):
                assert time.monotonic() - started < 1.0, "not in the history within 1 s"
                time.sleep(0.02)


# --- merge on sign-in -----------------------------------------------------------------------


def _visitor_views(env: Env) -> None:
    for p in ("p1", "p2", "p3"):
        env.product(p)
    env.post([view("p1", 50)], sub="asha")
    env.post([view("p1", 5), view("p2", 10)], visitor=VISITOR)
    env.deliver()


def test_a_signed_in_batch_with_the_visitor_id_merges_that_visitors_history(env: Env) -> None:
    _visitor_views(env)
    env.post([view("p3", 20)], sub="asha", visitor=VISITOR)
    env.deliver()
    items = env.history("asha")
    assert [i["productId"] for i in items] == ["p1", "p2", "p3"]
    assert env.kinds("v:" + VISITOR) == ["history-state"]
    # Once: redelivering the merging batch changes nothing.
    merging = env.delivered[-1]
    assert merging.data["visitorId"] == VISITOR
    history.handle_event(env.documents, merging)
    assert env.history("asha") == items


def test_reading_the_history_with_the_visitor_id_merges_it_first(env: Env) -> None:
    _visitor_views(env)
    assert env.products("asha") == ["p1"]
    assert env.products("asha", visitor=VISITOR) == ["p1", "p2"]
    assert env.kinds("v:" + VISITOR) == ["history-state"]
    env.store.calls.clear()
    assert env.products("asha", visitor=VISITOR) == ["p1", "p2"]
    # Merged already: the visitor's partition is one empty read.
    assert env.store.calls.count(("events", "query")) == 2


def test_views_the_visitor_makes_while_merging_are_kept_for_next_time(env: Env) -> None:
    _visitor_views(env)
    container = env.documents.container("events")
    stale = [d for d in env.partition("v:" + VISITOR) if d["kind"] == "view"]
    env.post([view("p3", 1)], visitor=VISITOR)
    env.deliver()
    history._delete_documents(container, "v:" + VISITOR, stale)
    assert [d["productId"] for d in env.partition("v:" + VISITOR) if d["kind"] == "view"] == ["p3"]


# --- archived products, clearing ------------------------------------------------------------


def test_products_no_longer_for_sale_are_left_out_and_the_page_is_still_full(env: Env) -> None:
    for i in range(6):
        env.product(f"p{i}")
    env.post([view(f"p{i}", 10 - i) for i in range(6)], sub="asha")
    env.deliver()
    env.product("p5", status="archived")
    env.product("p4", status="draft")
    env.documents.container("catalog").delete("p3", "p3")
    assert env.products("asha", limit=2) == ["p2", "p1"]
    assert env.products("asha") == ["p2", "p1", "p0"]


def test_limit_is_1_to_100(env: Env) -> None:
    for limit in (0, 101, "x"):
        r = env.client.get("/api/me/history", headers=env.auth("asha"), params={"limit": limit})
        assert r.status_code == 422
    r = env.client.get("/api/me/history", headers=env.auth("asha"))
    assert r.json() == {"items": []}
    assert r.headers["cache-control"] == "private, no-store"
    assert env.client.get("/api/me/history").status_code == 401


def test_delete_clears_the_history_and_late_messages_do_not_bring_it_back(env: Env) -> None:
    env.product("p1")
    env.product("p2")
    env.post([view("p1", 2)], sub="asha", visitor=VISITOR)
    env.post([view("p2", 3)], visitor=VISITOR)
    env.deliver()
    late = env.post([view("p2", 1)], sub="asha")
    assert late.status_code == 202
    r = env.client.delete(
        "/api/me/history", headers={**env.auth("asha"), history_routes.VISITOR_HEADER: VISITOR}
    )
    assert r.status_code == 204
    assert env.history("asha") == []
    # The message accepted before the clear arrives afterwards: nothing comes back.
    env.deliver()
    assert env.history("asha") == []
    for event in env.delivered:
        history.handle_event(env.documents, event)
    assert env.history("asha") == []
    assert "view" not in env.kinds("v:" + VISITOR)
    # A view after the clear is recorded as usual.
    env.post([view("p1")], sub="asha")
    env.deliver()
    assert env.products("asha") == ["p1"]
    assert env.client.delete("/api/me/history", headers=env.auth("asha")).status_code == 204
    assert env.client.delete("/api/me/history", headers=env.auth("asha")).status_code == 204


# --- personalisation --------------------------------------------------------------------------


def test_personalization_is_on_by_default_with_its_consent_record(env: Env) -> None:
    prefs = env.client.get("/api/me/preferences", headers=env.auth("asha")).json()
    assert prefs["personalization"] is True
    assert prefs["personalizationConsent"] == {"granted": True, "at": None, "source": "default"}
    from cloudcart.customers.service import CustomerService

    assert CustomerService(env.documents).personalization_allowed("asha") is True
    assert CustomerService(env.documents).personalization_allowed("never-seen") is True


def test_turning_personalization_off_deletes_the_history_and_records_nothing(env: Env) -> None:
    env.product("p1")
    env.product("p2")
    env.post([view("p1", 2)], sub="asha")
    env.deliver()
    in_flight = env.post([view("p2", 1)], sub="asha")
    assert in_flight.status_code == 202
    prefs = env.set_personalization("asha", False)
    assert prefs["personalization"] is False
    assert prefs["personalizationConsent"]["granted"] is False
    assert prefs["personalizationConsent"]["source"] == "api"
    (entry,) = prefs["history"]
    assert entry["preference"] == "personalization" and entry["granted"] is False
    assert entry["channel"] is None and entry["kind"] is None
    # Deleted at once, and neither the batch in flight nor a new one records anything.
    assert "view" not in env.kinds("asha")
    env.post([view("p1")], sub="asha")
    env.deliver()
    assert env.kinds("asha").count("view") == 0
    assert env.kinds("asha").count("storefront-batch") == 0
    assert env.history("asha") == []
    # Nor does a visitor's history get merged into it: it is deleted instead.
    env.post([view("p1")], visitor=VISITOR)
    env.deliver()
    assert env.history("asha", visitor=VISITOR) == []
    assert "view" not in env.kinds("v:" + VISITOR)
    # The same value again records no second consent change.
    again = env.set_personalization("asha", False)
    assert len(again["history"]) == 1
    # Back on: recorded again from now on.
    on = env.set_personalization("asha", True)
    assert on["personalization"] is True and len(on["history"]) == 2
    env.post([view("p2")], sub="asha")
    env.deliver()
    assert env.products("asha") == ["p2"]


def test_the_preference_change_is_announced_and_channels_are_untouched(env: Env) -> None:
    env.client.get("/api/me/profile", headers=env.auth("asha"))
    prefs = env.set_personalization("asha", False)
    assert prefs["channels"]["email"] == {"transactional": True, "marketing": False}
    outbox = env.documents.container("customers").query(
        Query(filters=(Filter("kind", "eq", "outbox"),)), partition_key="asha"
    )
    updated = [d["event"] for d in outbox.items if d["event"]["type"] == "customer.updated"]
    assert updated[-1]["data"]["changedFields"] == ["preferences"]
    assert updated[-1]["data"]["changes"] == {"personalization": False}
    schema = json.loads((SCHEMAS / "customer.updated.schema.json").read_text())
    envelope = json.loads((SCHEMAS / "event.schema.json").read_text())
    validator = jsonschema_rs.validator_for(
        schema, registry=jsonschema_rs.Registry([(envelope["$id"], envelope)])
    )
    assert validator.is_valid(updated[-1])


def test_a_failed_deletion_is_completed_by_a_retry(env: Env) -> None:
    env.product("p1")
    env.post([view("p1")], sub="asha")
    env.deliver()
    from cloudcart.customers.service import register_personalization_withdrawn

    def broken(documents: DocumentStore, customer_id: str) -> None:
        raise Unavailable("store down")

    register_personalization_withdrawn(privacy.SECTION, broken)
    r = env.client.put(
        "/api/me/preferences", headers=env.auth("asha"), json={"personalization": False}
    )
    assert r.status_code == 503
    privacy.register()
    assert env.history("asha") == []  # off already: reads as empty
    env.set_personalization("asha", False)
    assert "view" not in env.kinds("asha")


# --- privacy -----------------------------------------------------------------------------------


def test_export_includes_the_history_and_erasure_removes_it(env: Env) -> None:
    env.product("p1")
    env.product("p2", status="archived")
    env.post([view("p1", 2), view("p2", 1), {"type": "search", "query": "phone"}], sub="asha")
    env.deliver()
    late = env.post([view("p1")], sub="asha")
    assert late.status_code == 202
    r = env.client.get("/api/me/export", headers=env.auth("asha"))
    assert r.status_code == 200, r.text
    section = r.json()["sections"]["history"]
    assert [i["productId"] for i in section["items"]] == ["p2", "p1"]
    assert [e["type"] for e in section["events"]] == ["product_viewed", "product_viewed", "search"]
    assert env.client.delete("/api/me", headers=env.auth("asha")).status_code == 204
    assert [d["kind"] for d in env.partition("asha")] in ([], ["history-state"])
    # The batch accepted before the erasure arrives late: nothing comes back.
    env.deliver()
    assert [d["kind"] for d in env.partition("asha")] in ([], ["history-state"])
    # What stays is a stamp that drops late batches: no history, no events.
    kept = {"id", "kind", "customerId", "clearedAt", "updatedAt", "ttl", "_etag", "_ts"}
    assert all(set(d) <= kept for d in env.partition("asha"))
    # Erasure is idempotent.
    privacy.erase(_context(env, "asha"))
    assert "view" not in env.kinds("asha")


def _context(env: Env, customer_id: str) -> Any:
    from cloudcart.customers.privacy import PrivacyContext

    return PrivacyContext(customer_id=customer_id, documents=env.documents, settings=env.settings)


def test_register_is_idempotent_and_names_the_section() -> None:
    from cloudcart.customers.privacy import erasure_contributors, export_contributors

    privacy.register()
    privacy.register()
    try:
        assert export_contributors()["history"] is privacy.export
        assert erasure_contributors()["history"] is privacy.erase
    finally:
        unregister_contributors(privacy.SECTION)
        unregister_personalization_withdrawn(privacy.SECTION)
