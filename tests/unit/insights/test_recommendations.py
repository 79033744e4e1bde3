"""Recommendations on a real embedded store: the consumer learns from paid and imported
orders and from catalog and stock events (delivered as the outbox relay would deliver
them), each order counts once, and the reads (also bought, order again, for you) and their
routes answer from the precomputed documents."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.errors import Unavailable
from cloudcart.core.events import Event
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import BatchOp, Container, Document, DocumentStore
from cloudcart.core.settings import Settings
from cloudcart.customers.models import PreferencesUpdate
from cloudcart.customers.service import CustomerService
from cloudcart.identity.dev_provider import mint_token
from cloudcart.insights import privacy, recommendation_routes, recommendations
from cloudcart.insights.recommendations import (
    NEIGHBOURS_ID,
    POPULARITY_ID,
    PROFILE_ID,
    customer_key,
    popularity_key,
    product_key,
)

PROBLEM = "application/problem+json"
NOW = datetime.now(UTC)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    found = Services(Settings(data_dir=tmp_path / "data"))
    found.documents.ensure_containers()
    yield found
    found.close()


class Relay:
    """Hands the outbox events of catalog, inventory and orders to the consumer, as the
    relay and the `insights-recommendations` subscription would."""

    CONTAINERS = ("catalog", "inventory", "orders")

    def __init__(self, services: Services) -> None:
        self.services = services
        self.checkpoints: dict[str, str | None] = dict.fromkeys(self.CONTAINERS)

    def pending(self) -> list[Event]:
        events: list[Event] = []
        for name in self.CONTAINERS:
            container = self.services.documents.container(name)
            while True:
                page = container.change_feed(self.checkpoints[name], max_items=500)
                self.checkpoints[name] = page.checkpoint
                if not page.items:
                    break
                events.extend(
                    Event.model_validate(d["event"])
                    for d in page.items
                    if d.get("kind") == "outbox" and d["event"]["type"] in recommendations.EVENTS
                )
        return events

    def deliver(self) -> list[Event]:
        events = self.pending()
        for event in events:
            recommendations.handle_event(self.services, event)
        return events


@pytest.fixture
def relay(services: Services) -> Relay:
    catalog = CatalogService(services.documents)
    for category in ("phones", "laptops"):
        catalog.create_category(CategoryIn.model_validate({"id": category, "name": category}))
    return Relay(services)


def add_product(
    services: Services,
    product_id: str,
    *,
    category: str = "phones",
    stock: int = 5,
    status: str = "active",
) -> None:
    catalog = CatalogService(services.documents)
    body = ProductIn.model_validate(
        {
            "title": f"Product {product_id}",
            "brand": "Acme",
            "categoryId": category,
            "status": status,
            "variants": [
                {"sku": f"SKU-{product_id}", "price": {"amount": 1000, "currency": "INR"}}
            ],
        }
    )
    catalog.create_product(body, product_id=product_id)
    if stock:
        catalog.set_inventory(f"SKU-{product_id}", available=stock)


def paid_order(
    services: Services, order_id: str, customer_id: str, product_ids: Sequence[str]
) -> Event:
    """Stores a paid order and returns its `order.paid` event."""
    services.documents.container("orders").create(
        {
            "id": order_id,
            "type": "order",
            "customerId": customer_id,
            "status": "paid",
            "lines": [
                {"sku": f"SKU-{p}", "productId": p, "quantity": 1, "unitPrice": 1000}
                for p in product_ids
            ],
        }
    )
    return Event(
        type="order.paid",
        subject=order_id,
        data={
            "orderId": order_id,
            "customerId": customer_id,
            "paymentId": f"pay_{order_id}",
            "provider": "test",
            "amount": 1000 * len(product_ids),
            "currency": "INR",
        },
    )


def imported_order(
    order_id: str,
    customer_id: str,
    product_ids: Sequence[str],
    placed_at: datetime,
    *,
    with_product_ids: bool = True,
) -> Event:
    lines: list[dict[str, Any]] = []
    for p in product_ids:
        line: dict[str, Any] = {"sku": f"SKU-{p}", "quantity": 1}
        if with_product_ids:
            line["productId"] = p
        lines.append(line)
    return Event(
        type="order.imported",
        subject=order_id,
        data={
            "orderId": order_id,
            "customerId": customer_id,
            "placedAt": timestamp(placed_at),
            "status": "delivered",
            "lines": lines,
        },
    )


def handle(services: Services, *events: Event) -> None:
    for event in events:
        recommendations.handle_event(services, event)


def insights_doc(services: Services, doc_id: str, key: str) -> Document:
    return services.documents.container("insights").read(doc_id, key)


def ids(items: Sequence[recommendations.Recommendation]) -> list[str]:
    return [item.product_id for item in items]


# --- learning -------------------------------------------------------------------------------


def test_paid_orders_make_co_purchase_neighbours(services: Services, relay: Relay) -> None:
    for p in ("A", "B", "C", "D"):
        add_product(services, p)
    relay.deliver()
    handle(
        services,
        paid_order(services, "o1", "c1", ["A", "B"]),
        paid_order(services, "o2", "c2", ["A", "B", "C"]),
        paid_order(services, "o3", "c3", ["D"]),
    )
    a = insights_doc(services, NEIGHBOURS_ID, product_key("A"))
    assert a["counts"] == {"B": 2, "C": 1}
    assert a["orders"] == 2
    assert a["categoryId"] == "phones"
    top = insights_doc(services, recommendations.TOP_ID, product_key("A"))
    assert [e["productId"] for e in top["top"]] == ["B", "C"]
    found = recommendations.also_bought(services.documents, "A", limit=2)
    assert ids(found) == ["B", "C"]
    assert found[0].score > found[1].score > 0
    popular = insights_doc(services, POPULARITY_ID, popularity_key(None))
    assert popular["counts"] == {"A": 2, "B": 2, "C": 1, "D": 1}
    assert popular["orders"] == 3
    assert insights_doc(services, POPULARITY_ID, popularity_key("phones"))["orders"] == 3


def test_the_same_event_handled_twice_counts_once(services: Services, relay: Relay) -> None:
    for p in ("A", "B"):
        add_product(services, p)
    relay.deliver()
    event = paid_order(services, "o1", "c1", ["A", "B"])
    first = recommendations.handle_event(services, event)
    again = recommendations.handle_event(services, event)
    assert "5 documents changed, 0 already applied" in first
    assert "0 documents changed, 5 already applied" in again
    # The same order imported again under a new event id (a corrected import) too.
    handle(services, imported_order("o1", "c1", ["A", "B"], NOW))
    assert insights_doc(services, NEIGHBOURS_ID, product_key("A"))["counts"] == {"B": 1}
    assert insights_doc(services, POPULARITY_ID, popularity_key(None))["counts"] == {
        "A": 1,
        "B": 1,
    }
    profile = insights_doc(services, PROFILE_ID, customer_key("c1"))
    assert {p: e["count"] for p, e in profile["products"].items()} == {"A": 1, "B": 1}


class _FailingContainer:
    """Raises on the first write into one partition: a crash half-way through an event."""

    def __init__(self, inner: Container, key: str) -> None:
        self._inner = inner
        self._key = key
        self.failed = False

    def _fail(self, partition_key: str) -> None:
        if partition_key == self._key and not self.failed:
            self.failed = True
            raise Unavailable("the store went away")

    def batch(self, partition_key: str, operations: Sequence[BatchOp]) -> list[Document]:
        self._fail(partition_key)
        return self._inner.batch(partition_key, operations)

    def create(self, document: Document) -> Document:
        self._fail(document["key"])
        return self._inner.create(document)

    def replace(self, document: Document, *, if_match: str | None = None) -> Document:
        self._fail(document["key"])
        return self._inner.replace(document, if_match=if_match)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def failing_services(services: Services, key: str) -> Services:
    store = _FailingStore(services.documents, key)
    return Services(services.settings, adapters={"documents": store})


class _FailingStore:
    def __init__(self, inner: DocumentStore, key: str) -> None:
        self._inner = inner
        self.insights = _FailingContainer(inner.container("insights"), key)

    def container(self, name: str) -> Any:
        return self.insights if name == "insights" else self._inner.container(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_redelivery_after_a_crash_completes_without_counting_twice(
    services: Services, relay: Relay
) -> None:
    for p in ("A", "B", "C"):
        add_product(services, p)
    relay.deliver()
    event = paid_order(services, "o1", "c1", ["A", "B", "C"])
    with pytest.raises(Unavailable):
        recommendations.handle_event(failing_services(services, popularity_key("phones")), event)
    # Neighbours and the profile were written; category and shop popularity were not.
    assert insights_doc(services, NEIGHBOURS_ID, product_key("A"))["counts"] == {"B": 1, "C": 1}
    outcome = recommendations.handle_event(services, event)
    assert "2 documents changed, 4 already applied" in outcome
    assert insights_doc(services, NEIGHBOURS_ID, product_key("A"))["counts"] == {"B": 1, "C": 1}
    assert insights_doc(services, POPULARITY_ID, popularity_key("phones"))["orders"] == 1
    assert insights_doc(services, POPULARITY_ID, popularity_key(None))["orders"] == 1


def test_concurrent_orders_all_count_on_hot_documents(services: Services, relay: Relay) -> None:
    for p in ("A", "B", "C"):
        add_product(services, p)
    relay.deliver()
    events = [paid_order(services, f"o{n}", f"c{n % 3}", ["A", "B", "C"]) for n in range(24)]
    errors: list[BaseException] = []

    def work(chunk: Sequence[Event]) -> None:
        try:
            handle(services, *chunk)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(events[n::6],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    popular = insights_doc(services, POPULARITY_ID, popularity_key(None))
    assert popular["orders"] == 24
    assert popular["counts"] == {"A": 24, "B": 24, "C": 24}
    assert insights_doc(services, NEIGHBOURS_ID, product_key("B"))["counts"] == {"A": 24, "C": 24}


def test_imported_orders_resolve_products_from_skus(services: Services, relay: Relay) -> None:
    for p in ("A", "B"):
        add_product(services, p)
    relay.deliver()
    handle(services, imported_order("h1", "c1", ["A", "B"], NOW, with_product_ids=False))
    assert insights_doc(services, NEIGHBOURS_ID, product_key("B"))["counts"] == {"A": 1}
    cancelled = imported_order("h2", "c1", ["A", "B"], NOW)
    cancelled = cancelled.model_copy(update={"data": {**cancelled.data, "status": "cancelled"}})
    handle(services, cancelled)
    assert insights_doc(services, NEIGHBOURS_ID, product_key("B"))["counts"] == {"A": 1}


def test_orders_imported_through_the_importer_reach_the_consumer(
    services: Services, relay: Relay
) -> None:
    from cloudcart.orders.importer import OrderImporter

    for p in ("A", "B"):
        add_product(services, p)
    importer = OrderImporter(services.documents, default_currency="INR")
    record = {
        "orderId": "h1",
        "customerId": "c1",
        "placedAt": timestamp(NOW - timedelta(days=3)),
        "lines": [{"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B", "quantity": 1}],
    }
    assert importer.import_record(record) == "imported"
    assert importer.import_record(record) == "unchanged"
    delivered = relay.deliver()
    assert [e.type for e in delivered].count("order.imported") == 1
    assert insights_doc(services, NEIGHBOURS_ID, product_key("A"))["counts"] == {"B": 1}
    assert ids(recommendations.order_again(services.documents, "c1")) == ["A", "B"]


# --- reads ----------------------------------------------------------------------------------


def test_a_cold_product_falls_back_to_its_category_then_the_shop(
    services: Services, relay: Relay
) -> None:
    for p in ("A", "B"):
        add_product(services, p)
    for p in ("L1", "L2", "L3"):
        add_product(services, p, category="laptops")
    relay.deliver()
    handle(
        services,
        paid_order(services, "o1", "c1", ["L1", "L2"]),
        paid_order(services, "o2", "c2", ["L2"]),
        paid_order(services, "o3", "c3", ["A", "B"]),
        paid_order(services, "o4", "c4", ["A"]),
    )
    # L3 was never ordered: its category's best sellers first, then the shop's.
    found = recommendations.also_bought(services.documents, "L3", limit=4)
    assert ids(found) == ["L2", "L1", "A", "B"]
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    # A product with one neighbour is topped up the same way, never with itself.
    assert ids(recommendations.also_bought(services.documents, "L1", limit=3)) == [
        "L2",
        "A",
        "B",
    ]
    assert "L1" not in ids(recommendations.also_bought(services.documents, "L1", limit=50))


def test_archived_and_out_of_stock_products_are_left_out(services: Services, relay: Relay) -> None:
    for p in ("A", "B", "C", "D"):
        add_product(services, p)
    add_product(services, "E", stock=0)
    relay.deliver()
    handle(services, paid_order(services, "o1", "c1", ["A", "B", "C", "D", "E"]))
    assert set(ids(recommendations.also_bought(services.documents, "A"))) == {"B", "C", "D"}
    catalog = CatalogService(services.documents)
    catalog.archive_product("B")
    catalog.set_inventory("SKU-C", available=0)
    relay.deliver()
    unavailable = recommendations.unavailable_products(services.documents)
    assert unavailable == {"B": "archived", "C": "out-of-stock", "E": "out-of-stock"}
    assert ids(recommendations.also_bought(services.documents, "A")) == ["D"]
    assert set(ids(recommendations.order_again(services.documents, "c1"))) == {"A", "D"}
    catalog.set_inventory("SKU-C", available=3)
    relay.deliver()
    assert set(ids(recommendations.also_bought(services.documents, "A"))) == {"C", "D"}


def test_a_redelivery_finishes_an_interrupted_unavailable_update(
    services: Services, relay: Relay
) -> None:
    add_product(services, "A")
    relay.deliver()
    CatalogService(services.documents).archive_product("A")
    (archived,) = relay.pending()
    with pytest.raises(Unavailable):
        recommendations.handle_event(failing_services(services, "unavailable"), archived)
    assert recommendations.unavailable_products(services.documents) == {}
    recommendations.handle_event(services, archived)
    assert recommendations.unavailable_products(services.documents) == {"A": "archived"}


def test_stock_events_in_any_order_keep_the_newest_figure(services: Services, relay: Relay) -> None:
    add_product(services, "A")
    relay.deliver()
    catalog = CatalogService(services.documents)
    catalog.set_inventory("SKU-A", available=0)
    catalog.set_inventory("SKU-A", available=2)
    emptied, restocked = relay.pending()
    handle(services, restocked, emptied)
    assert recommendations.unavailable_products(services.documents) == {}
    handle(services, emptied)
    assert recommendations.unavailable_products(services.documents) == {}


def test_order_again_ranks_by_repeat_frequency_and_recency(
    services: Services, relay: Relay
) -> None:
    for p in ("OLD", "OFTEN", "ONCE", "OTHER"):
        add_product(services, p)
    relay.deliver()
    long_ago = NOW - timedelta(days=200)
    lately = NOW - timedelta(days=2)
    handle(
        services,
        imported_order("h1", "c1", ["OLD"], long_ago),
        imported_order("h2", "c1", ["OLD"], long_ago + timedelta(days=1)),
        imported_order("h3", "c1", ["OLD"], long_ago + timedelta(days=2)),
        imported_order("h4", "c1", ["OFTEN", "ONCE"], lately),
        imported_order("h5", "c1", ["OFTEN"], lately + timedelta(days=1)),
        imported_order("h6", "c2", ["OTHER"], lately),
    )
    found = recommendations.order_again(services.documents, "c1", now=NOW)
    assert ids(found) == ["OFTEN", "ONCE", "OLD"]
    assert {f.reason for f in found} == {"bought-before"}
    assert 1.8 < found[0].score < 2.0  # two purchases a day or two ago
    assert found[2].score < 0.1  # three purchases 200 days ago
    assert recommendations.order_again(services.documents, "nobody") == []


def test_for_you_leaves_out_what_was_just_bought(services: Services, relay: Relay) -> None:
    for p in ("A", "B", "C", "D", "P"):
        add_product(services, p)
    relay.deliver()
    earlier = NOW - timedelta(days=10)
    handle(
        services,
        # Other customers: C goes with A, B goes with C and A, P is simply popular.
        imported_order("x1", "c2", ["A", "C"], earlier),
        imported_order("x2", "c3", ["A", "C", "B"], earlier),
        imported_order("x3", "c4", ["P"], earlier),
        imported_order("x4", "c5", ["P"], earlier),
        imported_order("x5", "c6", ["P", "D"], earlier),
        # The customer buys A regularly, bought D once, and B just now.
        imported_order("m0", "c1", ["A"], NOW - timedelta(days=20)),
        imported_order("m1", "c1", ["A"], NOW - timedelta(days=5)),
        imported_order("m3", "c1", ["D"], NOW - timedelta(days=4)),
    )
    handle(services, paid_order(services, "m2", "c1", ["B"]))
    found = recommendations.for_you(services.documents, "c1", limit=4)
    assert "B" not in ids(found)
    # A is both a habit of the customer's and bought with B, so the blend puts it first;
    # C is bought with A and B; D, bought once, is not suggested again for itself.
    assert ids(found)[:2] == ["A", "C"]
    assert found[0].reason == "bought-before"
    assert found[1].reason in ("bought-with:A", "bought-with:B")
    assert found[0].score > found[1].score
    assert all(f.reason != "bought-before" for f in found if f.product_id == "D")
    assert found[2].product_id == "P"
    # A day later B is no longer "just bought" (it was bought once: no habit yet).
    later = recommendations.for_you(services.documents, "c1", limit=4, now=NOW + timedelta(days=2))
    assert "B" not in {f.product_id for f in later if f.reason == "bought-before"}
    # A customer without purchases gets the shop's best sellers.
    assert ids(recommendations.for_you(services.documents, "new", limit=1)) == ["A"]


def views_event(customer_id: str | None, views: Sequence[tuple[str, datetime]]) -> Event:
    owner = customer_id or "v:visitor-0123456789abcdef"
    return Event(
        type="storefront.events_recorded",
        subject=owner,
        data={
            "ownerId": owner,
            "customerId": customer_id,
            "visitorId": None if customer_id else "visitor-0123456789abcdef",
            "events": [
                {"type": "product_viewed", "productId": p, "at": timestamp(at)} for p, at in views
            ],
        },
    )


def test_for_you_follows_the_latest_views(services: Services, relay: Relay) -> None:
    for p in ("A", "B", "C", "D", "P"):
        add_product(services, p)
    relay.deliver()
    earlier = NOW - timedelta(days=10)
    handle(
        services,
        imported_order("x1", "c2", ["A", "C"], earlier),
        imported_order("x2", "c3", ["B", "D"], earlier),
        imported_order("x3", "c4", ["P"], earlier),
        imported_order("x4", "c5", ["P"], earlier),
    )
    # Nothing bought yet: the shop's best sellers.
    assert recommendations.for_you(services.documents, "c1", limit=1)[0].reason == "popular"
    viewed = views_event("c1", [("B", NOW - timedelta(days=3)), ("A", NOW)])
    handle(services, viewed)
    found = recommendations.for_you(services.documents, "c1", limit=2)
    # A was viewed last, so its neighbour C comes before B's neighbour D.
    assert [(f.product_id, f.reason) for f in found] == [
        ("C", "viewed-with:A"),
        ("D", "viewed-with:B"),
    ]
    profile = insights_doc(services, PROFILE_ID, customer_key("c1"))
    handle(services, viewed)  # a redelivery changes nothing
    assert insights_doc(services, PROFILE_ID, customer_key("c1"))["_etag"] == profile["_etag"]
    exported = recommendations.export_customer(services.documents, "c1")
    assert [v["productId"] for v in exported["views"]] == ["A", "B"]
    # An anonymous visitor's views are not anybody's profile.
    handle(services, views_event(None, [("D", NOW)]))
    # Turning personalization off forgets the views, and later views are not recorded.
    customers = CustomerService(services.documents)
    customers.update_preferences("c1", PreferencesUpdate(personalization=False), "api")
    privacy.personalization_withdrawn(services.documents, "c1")
    handle(services, views_event("c1", [("B", NOW + timedelta(minutes=1))]))
    assert recommendations.export_customer(services.documents, "c1")["views"] == []
    assert recommendations.for_you(services.documents, "c1", limit=1)[0].reason == "popular"


def test_erasure_deletes_the_purchase_profile(services: Services, relay: Relay) -> None:
    add_product(services, "A")
    relay.deliver()
    handle(services, paid_order(services, "o1", "c1", ["A"]))
    assert (
        recommendations.export_customer(services.documents, "c1")["purchases"][0]["productId"]
        == "A"
    )
    assert recommendations.erase_customer(services.documents, "c1") == 2  # profile + marker
    assert recommendations.export_customer(services.documents, "c1") == {
        "purchases": [],
        "views": [],
    }
    assert recommendations.order_again(services.documents, "c1") == []


# --- routes ---------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "app")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/api/me/recommendations" for r in app.routes):
        app.include_router(recommendation_routes.router)
        app.openapi_schema = None
    app.state.services.documents.ensure_containers()
    with TestClient(app) as test_client:
        yield test_client


def auth(settings: Settings, sub: str) -> dict[str, str]:
    token, _ = mint_token(settings, sub)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def shop(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    catalog = CatalogService(services.documents)
    catalog.create_category(CategoryIn.model_validate({"id": "phones", "name": "Phones"}))
    for p in ("A", "B", "C"):
        add_product(services, p)
    Relay(services).deliver()
    # cust-1's for-you list is computed when their order is handled, from the neighbours
    # known then: cust-2's order comes first.
    handle(
        services,
        paid_order(services, "o1", "cust-2", ["A", "C"]),
        paid_order(services, "o2", "cust-1", ["A", "B"]),
    )
    return services


def test_also_bought_is_public(client: TestClient, shop: Services) -> None:
    response = client.get("/api/catalog/products/A/also-bought", params={"limit": 2})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {i["productId"] for i in items} == {"B", "C"}
    assert all(set(i) == {"productId", "score"} for i in items)


def test_personal_recommendations_need_a_token(
    client: TestClient, settings: Settings, shop: Services
) -> None:
    for kind in ("for-you", "order-again"):
        response = client.get("/api/me/recommendations", params={"kind": kind})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith(PROBLEM)
    headers = auth(settings, "cust-1")
    again = client.get("/api/me/recommendations?kind=order-again", headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["cache-control"] == "private, no-store"
    assert {i["productId"] for i in again.json()["items"]} == {"A", "B"}
    assert {i["reason"] for i in again.json()["items"]} == {"bought-before"}
    for_you = client.get("/api/me/recommendations?kind=for-you&limit=5", headers=headers)
    assert for_you.status_code == 200, for_you.text
    items = for_you.json()["items"]
    # Bought A and B just now: C (bought with A) is what is left to suggest.
    assert [i["productId"] for i in items] == ["C"]
    assert items[0]["reason"] == "bought-with:A"


@pytest.mark.parametrize("limit", ["0", "51", "ten"])
def test_limits_outside_1_to_50_are_refused(
    client: TestClient, settings: Settings, limit: str
) -> None:
    response = client.get(f"/api/catalog/products/A/also-bought?limit={limit}")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    mine = client.get(
        f"/api/me/recommendations?kind=for-you&limit={limit}", headers=auth(settings, "cust-1")
    )
    assert mine.status_code == 422


def test_an_unknown_kind_is_refused(client: TestClient, settings: Settings) -> None:
    response = client.get(
        "/api/me/recommendations?kind=everything", headers=auth(settings, "cust-1")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)


def test_limit_fifty_is_accepted(client: TestClient, shop: Services) -> None:
    response = client.get("/api/catalog/products/A/also-bought?limit=50")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 2
