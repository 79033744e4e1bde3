"""A scripted shop day through the real services and the analytics consumer: orders placed
and paid through checkout, a partial refund, a cancellation, an abandoned cart, a
stock-out, imported orders and a late event give exact figures from the summary API; a
replay of every event changes none of them; verify finds a tampered roll-up and rebuild
repairs it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cloudcart.analytics import journal, rollups
from cloudcart.analytics.consumer import handle_events, record_events
from cloudcart.analytics.facts import EVENTS
from cloudcart.analytics.rebuild import rebuild, verify
from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import PatchOp
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.insights import history
from cloudcart.inventory import reserve_stock, set_stock, stock_level
from cloudcart.local.cli import cli
from cloudcart.orders import lifecycle
from cloudcart.orders.documents import OrderDocument
from cloudcart.orders.importer import OrderImporter
from cloudcart.orders.payments import apply_payment_event
from cloudcart.orders.service import get_order
from tests.fakes.payments import FakeGateway

ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}
VISITOR = "visitor-0123456789abcdef"
LATE_VISITOR = "visitor-fedcba9876543210"


@dataclass
class Day:
    client: TestClient
    services: Services
    settings: Settings
    now: datetime
    checkpoints: dict[str, str | None]
    delivered: list[Event]
    journal_checkpoint: str | None = None

    def headers(self, sub: str, *, admin: bool = False) -> dict[str, str]:
        token, _ = mint_token(self.settings, sub, roles=("Admin",) if admin else ())
        return {"Authorization": f"Bearer {token}"}

    def stock(self, sku: str, product: str, available: int, price: int) -> None:
        store = self.services.documents
        catalog = store.container("catalog")
        catalog.upsert(
            {
                "id": product,
                "pk": product,
                "type": "product",
                "title": f"Product {product}",
                "status": "active",
                "categoryId": "phones",
                "variants": [{"sku": sku, "price": {"amount": price, "currency": "INR"}}],
            }
        )
        store.container("inventory").upsert(
            {
                "id": sku,
                "sku": sku,
                "productId": product,
                "available": available,
                "reserved": 0,
                "sold": 0,
                "received": available,
            }
        )

    def buy(self, sub: str, sku: str, quantity: int) -> dict[str, Any]:
        r = self.client.post(
            "/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=self.headers(sub)
        )
        assert r.status_code == 200, r.text
        r = self.client.post(
            "/api/checkout",
            json={"shippingAddress": ADDRESS, "shippingMethod": "standard"},
            headers={**self.headers(sub), "Idempotency-Key": f"key-{sub}-{sku}"},
        )
        assert r.status_code in (200, 201), r.text
        order: dict[str, Any] = r.json()
        return order

    def pay(self, sub: str, order_id: str) -> OrderDocument:
        """Settle the payment at the gateway and apply its webhook, as the route would."""
        order = get_order(self.services.documents, sub, order_id)
        gateway = self.services.payments
        assert isinstance(gateway, FakeGateway)
        payment = order["payment"]
        assert payment is not None
        event = gateway.settle(str(payment["paymentId"]), "succeeded")
        apply_payment_event(self.services, event)
        return get_order(self.services.documents, sub, order_id)

    def storefront(self, owner: str, visitor: str | None, events: list[dict[str, Any]]) -> Event:
        customer = None if owner.startswith("v:") else owner
        event = new_event(
            "storefront.events_recorded",
            owner,
            {"ownerId": owner, "customerId": customer, "visitorId": visitor, "events": events},
        )
        history.handle_event(self.services.documents, event)  # insights keeps the batch
        return event

    def outbox(self) -> list[Event]:
        found: list[Event] = []
        for name in self.checkpoints:
            container = self.services.documents.container(name)
            while True:
                page = container.change_feed(self.checkpoints[name], max_items=500)
                self.checkpoints[name] = page.checkpoint
                if not page.items:
                    break
                found.extend(
                    Event.model_validate(d["event"])
                    for d in page.items
                    if d.get("kind") == "outbox" and d["event"]["type"] in EVENTS
                )
        return found

    def deliver(self, events: list[Event]) -> None:
        # As the functions would: concurrent handlers write each event's facts to the
        # journal, then its change feed is folded page by page (a few at once too).
        store = self.services.documents
        handle_events(store, events[:2])
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda event: record_events(store, [event]), events[2:]))
        self.fold()
        self.delivered.extend(events)

    def fold(self, *, from_the_start: bool = False) -> None:
        """Fold the facts journal's change feed, as `analytics_fold` does."""
        journal_container = self.services.documents.container(journal.JOURNAL)
        checkpoint = None if from_the_start else self.journal_checkpoint
        while True:
            page = journal_container.change_feed(checkpoint, max_items=7)
            checkpoint = page.checkpoint
            if not page.items:
                break
            journal.fold(self.services.documents, page.items)
        self.journal_checkpoint = checkpoint

    def summary(self, granularity: str = "day") -> dict[str, Any]:
        r = self.client.get(
            "/api/admin/analytics/summary",
            params={
                "from": (self.now - timedelta(days=3)).isoformat(),
                "to": (self.now + timedelta(hours=1)).isoformat(),
                "granularity": granularity,
            },
            headers=self.headers("admin-1", admin=True),
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def day(tmp_path: Path) -> Iterator[Day]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    services = Services(settings, adapters={"payments": FakeGateway()})
    app.state.services = services
    services.documents.ensure_containers()
    with TestClient(app) as client:
        yield Day(
            client,
            services,
            settings,
            datetime.now(UTC),
            dict.fromkeys(("catalog", "inventory", "orders")),
            [],
        )
    services.close()


def run_shop_day(day: Day) -> dict[str, Any]:
    """The day's script; returns the orders and figures the expectations need."""
    day.stock("SKU-A", "p1", 10, 10000)
    day.stock("SKU-B", "p2", 1, 5000)
    now = day.now
    stamp = timestamp(now - timedelta(minutes=1))
    events = [
        day.storefront(
            "cus-1",
            None,
            [
                {"type": "product_viewed", "productId": "p1", "at": stamp},
                {"type": "add_to_cart", "productId": "p1", "sku": "SKU-A", "at": stamp},
                {"type": "checkout_started", "at": stamp},
            ],
        ),
        # The abandoned cart: a visitor added to the cart two days ago and never paid.
        day.storefront(
            f"v:{VISITOR}",
            VISITOR,
            [
                {
                    "type": "product_viewed",
                    "productId": "p2",
                    "at": timestamp(now - timedelta(days=2)),
                },
                {
                    "type": "add_to_cart",
                    "productId": "p2",
                    "at": timestamp(now - timedelta(days=2)),
                },
                {"type": "search", "query": "Blue  Phone", "resultsCount": 0, "at": stamp},
            ],
        ),
    ]
    first = day.buy("cus-1", "SKU-A", 2)
    second = day.buy("cus-2", "SKU-B", 1)  # the last unit: SKU-B goes out of stock
    third = day.buy("cus-3", "SKU-A", 1)
    paid_first = day.pay("cus-1", first["orderId"])
    paid_second = day.pay("cus-2", second["orderId"])
    lifecycle.cancel_order(day.services, "cus-3", third["orderId"], reason="changed_mind")
    refunded = lifecycle.issue_refund(
        day.services, paid_first, amount=3000, lines=[], reason="goodwill"
    )
    importer = OrderImporter(day.services.documents, default_currency="INR")
    placed = (now - timedelta(days=1)).replace(microsecond=0)
    results = importer.import_records(
        [
            {
                "orderId": "hist-1",
                "customerId": "cus-9",
                "placedAt": placed.isoformat(),
                "status": "delivered",
                "currency": "INR",
                "lines": [{"sku": "SKU-A", "quantity": 3, "unitPrice": 9000}],
            },
            {
                "orderId": "hist-2",
                "customerId": "cus-9",
                "placedAt": placed.isoformat(),
                "status": "cancelled",
                "currency": "INR",
                "lines": [{"sku": "SKU-B", "quantity": 1, "unitPrice": 5000}],
            },
        ]
    )
    assert results == ["imported", "imported"], results
    day.deliver(events + day.outbox())
    # A late event: a search two days ago, delivered after everything else.
    late = day.storefront(
        f"v:{LATE_VISITOR}",
        LATE_VISITOR,
        [
            {
                "type": "search",
                "query": "charger",
                "resultsCount": 4,
                "at": timestamp(now - timedelta(days=2)),
            }
        ],
    )
    day.deliver([late])
    return {
        "gross": int(paid_first["totals"]["total"]) + int(paid_second["totals"]["total"]) + 27000,
        "refunded": int(refunded["refundedAmount"]),
    }


def test_shop_day_gives_exact_figures_and_a_replay_changes_none(day: Day) -> None:
    expected = run_shop_day(day)
    summary = day.summary()

    assert expected["refunded"] == 3000
    assert summary["revenue"] == {
        "INR": {
            "gross": expected["gross"],
            "refunded": 3000,
            "net": expected["gross"] - 3000,
        }
    }
    assert summary["orders"] == 5  # three checkouts and two imported orders
    assert summary["importedOrders"] == 2
    assert summary["paidOrders"] == 3
    assert summary["cancelledOrders"] == 2
    assert summary["units"] == 2 + 1 + 3
    assert summary["aov"] == {"INR": round(expected["gross"] / 3, 2)}
    assert summary["visitors"] == 3
    assert summary["funnel"] == {
        "views": 2,
        "addToCart": 2,
        "checkoutStarted": 1,
        "placed": 5,
        "paid": 3,
    }
    assert summary["abandonment"]["carts"] == {
        "started": 2,
        "converted": 1,
        "abandoned": 1,
        "pending": 0,
        "rate": 0.5,
    }
    assert summary["abandonmentRate"] == 0.5
    assert summary["abandonment"]["checkouts"]["converted"] == 1
    assert summary["returnsRate"] == 0.0
    assert summary["customers"] == {"new": 3, "returning": 0}
    assert summary["searches"] == {"total": 2, "zeroResults": 1}
    # The late search landed in the bucket of its own time, two days ago.
    late_day = timestamp(
        (day.now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    bucket = next(p for p in summary["series"] if p["start"] == late_day)
    assert bucket["searches"] == 1 and bucket["addToCart"] == 1 and bucket["visitors"] == 2
    hourly = day.summary("hour")
    assert {k: hourly[k] for k in ("revenue", "orders", "paidOrders", "units", "visitors")} == {
        k: summary[k] for k in ("revenue", "orders", "paidOrders", "units", "visitors")
    }

    admin = day.headers("admin-1", admin=True)
    inventory = day.client.get("/api/admin/analytics/inventory", headers=admin).json()
    assert [e["sku"] for e in inventory["outOfStock"]] == ["SKU-B"]
    search = day.client.get(
        "/api/admin/analytics/search",
        params={"from": (day.now - timedelta(days=3)).isoformat()},
        headers=admin,
    ).json()
    assert search["zeroResultQueries"] == [{"query": "blue phone", "count": 1}]
    products = day.client.get(
        "/api/admin/analytics/products",
        params={"from": (day.now - timedelta(days=3)).isoformat(), "sort": "units"},
        headers=admin,
    ).json()
    assert products["items"][0]["productId"] == "p1"
    assert products["items"][0]["units"] == 5
    assert products["categories"][0]["categoryId"] == "phones"

    # Every event again, in one batch and one by one, and the whole journal folded again:
    # nothing changes.
    handle_events(day.services.documents, day.delivered)
    for event in day.delivered:
        handle_events(day.services.documents, [event])
    day.fold(from_the_start=True)
    assert day.summary() == summary


def test_verify_finds_a_tampered_roll_up_and_rebuild_repairs_it(day: Day) -> None:
    run_shop_day(day)
    before = day.summary()
    store = day.services.documents
    report = verify(store, low_stock=day.settings.analytics_low_stock)
    assert report.ok, report.to_dict()

    bucket = rollups.day_key(day.now - timedelta(minutes=1))
    hour = rollups.hour_key(day.now - timedelta(minutes=1))
    rollups.container(store).patch(
        rollups.TOTALS_ID, bucket, [PatchOp("incr", f"hours.{hour}.views", 5)]
    )
    report = verify(store, low_stock=day.settings.analytics_low_stock)
    assert not report.ok
    assert any(d["path"] == f"hours.{hour}.views" for d in report.differences)
    data_dir = str(day.settings.data_dir)
    result = CliRunner().invoke(cli, ["analytics", "verify", "--data-dir", data_dir])
    assert result.exit_code == 1, result.output

    rebuild(store)
    assert verify(store, low_stock=day.settings.analytics_low_stock).ok
    after = day.summary()
    assert after == before
    # Replays after a rebuild still count nothing.
    handle_events(store, day.delivered)
    assert day.summary() == before


def test_bad_ranges_are_refused_with_a_problem(day: Day) -> None:
    admin = day.headers("admin-1", admin=True)
    r = day.client.get(
        "/api/admin/analytics/summary",
        params={"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
        headers=admin,
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    r = day.client.get(
        "/api/admin/analytics/summary",
        params={
            "from": "2030-01-01T00:00:00Z",
            "to": "2030-03-01T00:00:00Z",
            "granularity": "hour",
        },
        headers=admin,
    )
    assert r.status_code == 422
    r = day.client.get(
        "/api/admin/analytics/summary", params={"granularity": "week"}, headers=admin
    )
    assert r.status_code == 422
    r = day.client.get("/api/admin/analytics/summary", headers=day.headers("cus-1"))
    assert r.status_code == 403
    assert day.client.get("/api/admin/analytics/summary").status_code == 401


def test_verify_does_not_depend_on_the_history_a_customer_clears(day: Day) -> None:
    run_shop_day(day)
    assert history.clear_history(day.services.documents, "cus-1") > 0
    report = verify(day.services.documents, low_stock=day.settings.analytics_low_stock)
    assert report.ok, report.to_dict()


def test_storefront_figures_older_than_the_journal_are_left_as_stored(day: Day) -> None:
    run_shop_day(day)
    store = day.services.documents
    old = day.now - timedelta(days=journal.STOREFRONT_DAYS + 5)
    event = day.storefront(
        f"v:{VISITOR}",
        VISITOR,
        [{"type": "product_viewed", "productId": "p1", "at": timestamp(old)}],
    )
    day.deliver([event])
    # The journal no longer holds the old batch, as its ttl would have it.
    bucket, hour = rollups.day_key(old), rollups.hour_key(old)
    journal_container = store.container(journal.JOURNAL)
    journal_container.delete(f"sf:{event.id}", rollups.day_key(event.time))
    assert verify(store, low_stock=day.settings.analytics_low_stock).ok

    totals = rollups.container(store)
    totals.patch(rollups.TOTALS_ID, bucket, [PatchOp("incr", f"hours.{hour}.paid", 1)])
    report = verify(store, low_stock=day.settings.analytics_low_stock)
    assert [d["path"] for d in report.differences] == [f"hours.{hour}.paid"]

    rebuild(store)
    assert verify(store, low_stock=day.settings.analytics_low_stock).ok
    rebuilt = totals.read(rollups.TOTALS_ID, bucket)
    assert rebuilt["hours"][hour]["views"] == 1  # kept, though nothing recounts it
    assert rebuilt["hours"][hour]["paid"] == 0
    # The old batch's marker survives the rebuild: delivered again, it counts nothing.
    day.deliver([event])
    assert totals.read(rollups.TOTALS_ID, bucket)["hours"][hour]["views"] == 1


def test_ended_stock_outs_are_exact_in_any_order_and_verified(day: Day) -> None:
    run_shop_day(day)
    store = day.services.documents
    # SKU-B went out of stock during the day; two restocks and a sale in between end
    # two periods, and their events arrive newest first.
    set_stock(store, "SKU-B", on_hand=2)
    reserve_stock(store, "att-late", {"SKU-B": 2})
    set_stock(store, "SKU-B", on_hand=5)
    moves = [e for e in day.outbox() if e.type == "inventory.changed"]
    day.deliver(list(reversed(moves)))
    level = stock_level(store, "SKU-B")
    assert level is not None and len(level.stock_outs) == 2
    r = day.client.get("/api/admin/analytics/inventory", headers=day.headers("admin-1", admin=True))
    assert r.status_code == 200, r.text
    ended = r.json()["stockOuts"]["recent"]
    assert sorted((s["from"], s["to"]) for s in ended) == sorted(
        (p["from"], p["to"]) for p in level.stock_outs
    )
    assert verify(store, low_stock=day.settings.analytics_low_stock).ok

    rollups.container(store).patch(
        rollups.STOCKOUTS_ID, rollups.INVENTORY_BUCKET, [PatchOp("set", "items", {})]
    )
    report = verify(store, low_stock=day.settings.analytics_low_stock)
    assert report.count == 2
    assert {d["document"] for d in report.differences} == {rollups.STOCKOUTS_ID}
    rebuild(store)
    assert verify(store, low_stock=day.settings.analytics_low_stock).ok
