"""Abandoned cart: one reminder per cart left alone, only with marketing consent, none
after an order, and never a second one under redelivery, replay or a retried send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudcart.core.ports.channels import ProviderBusy
from cloudcart.marketing import abandoned_cart
from cloudcart.notifications.service import NotificationsPending
from tests.unit.marketing.conftest import Shop, build


@pytest.fixture
def later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    """A shop with the default 60-minute wait."""
    yield from build(tmp_path, monkeypatch)


def _prepared(shop: Shop, sub: str = "asha", *, marketing: bool = True) -> None:
    shop.product("p1", {"KURTA-M": 129900, "KURTA-L": 129900})
    shop.customer(sub, marketing=marketing)
    shop.add_to_cart(sub, "KURTA-M", 2)


def test_an_abandoned_cart_sends_one_reminder(shop: Shop) -> None:
    _prepared(shop)
    delivered = shop.deliver()
    assert [e.type for e in delivered if e.type == "cart.updated"] == ["cart.updated"]
    assert len(shop.run_reminders()) == 1
    assert shop.sent("asha", "abandoned-cart") == 1
    [mail] = [m for m in shop.email.sent if m.template == "abandoned-cart"]
    assert "2 items" in mail.text and "Kurta p1" in mail.text
    assert "/cart" in mail.text
    # The in-app item is there too (the customer allowed marketing in the app).
    feed = shop.client.get("/api/me/notifications", headers=shop.auth("asha")).json()
    assert [i["type"] for i in feed["items"]].count("abandoned-cart") == 1


def test_redelivery_and_replay_send_nothing_more(shop: Shop) -> None:
    _prepared(shop)
    events = shop.deliver()
    shop.run_reminders()
    # The reminder message delivered again.
    for body in shop.reminders():
        assert abandoned_cart.handle_due(shop.services, body) == "done"
    # The cart event replayed after the duplicate-detection window: a second reminder
    # message is scheduled, and finds the first one's decision.
    shop.replay([e for e in events if e.type == "cart.updated"])
    shop.run_reminders()
    assert len(shop.reminders()) == 2
    assert shop.sent("asha", "abandoned-cart") == 1


def test_no_reminder_without_marketing_consent(shop: Shop) -> None:
    _prepared(shop, marketing=False)
    shop.deliver()
    shop.run_reminders()
    assert [m.template for m in shop.email.sent if m.template == "abandoned-cart"] == []
    feed = shop.client.get("/api/me/notifications", headers=shop.auth("asha")).json()
    assert "abandoned-cart" not in [i["type"] for i in feed["items"]]
    for body in shop.reminders():
        assert abandoned_cart.handle_due(shop.services, body) == "no-consent"


def test_no_reminder_after_an_order(later: Shop) -> None:
    _prepared(later)
    later.deliver()
    later.checkout("asha")
    later.deliver()
    [body] = later.reminders()
    due = datetime.now(UTC) + timedelta(minutes=61)
    # Checkout emptied the cart.
    assert abandoned_cart.handle_due(later.services, body, now=due) == "empty"
    assert later.sent("asha", "abandoned-cart") == 0


def test_an_order_after_the_cart_cancels_its_reminder_even_if_the_cart_remains(
    shop: Shop,
) -> None:
    _prepared(shop)
    shop.deliver()
    [body] = shop.reminders()
    cart_time = json.loads(body)["cartUpdatedAt"]
    # An order from this cart that left the cart behind (say, another device's checkout).
    from cloudcart.core.events import Event

    placed = Event(
        type="order.placed",
        subject="ord_1",
        time=datetime.fromisoformat(cart_time) + timedelta(seconds=1),
        data={"orderId": "ord_1", "customerId": "asha"},
    )
    assert abandoned_cart.record_order(shop.services.documents, placed) == "recorded"
    assert abandoned_cart.record_order(shop.services.documents, placed) == "kept"
    assert abandoned_cart.handle_due(shop.services, body) == "ordered"
    assert shop.sent("asha", "abandoned-cart") == 0


def test_the_reminder_waits_for_the_setting_and_follows_the_last_change(later: Shop) -> None:
    _prepared(later)
    later.add_to_cart("asha", "KURTA-L")
    later.deliver()
    first, second = later.reminders()
    scheduled = [m.scheduled_enqueue_time for m in later.publisher.to("marketing-reminders")]
    assert all(s is not None for s in scheduled)
    # Due an hour after each change: nothing to receive yet.
    assert later.run_reminders() == []
    now = datetime.now(UTC)
    assert all(s is not None and s > now + timedelta(minutes=59) for s in scheduled)
    due = now + timedelta(minutes=61)
    assert abandoned_cart.handle_due(later.services, first, now=due) == "changed"
    assert abandoned_cart.handle_due(later.services, second, now=due) == "sent"
    assert later.sent("asha", "abandoned-cart") == 1
    [mail] = later.email.sent
    assert "3 items" in mail.text


def test_one_reminder_per_contents_and_at_most_one_a_day(later: Shop) -> None:
    _prepared(later)
    later.deliver()
    now = datetime.now(UTC) + timedelta(minutes=61)
    assert abandoned_cart.handle_due(later.services, later.reminders()[-1], now=now) == "sent"
    # The customer changes the cart and comes back to the same contents: not again.
    later.add_to_cart("asha", "KURTA-L")
    r = later.client.delete("/api/cart/items/KURTA-L", headers=later.auth("asha"))
    assert r.status_code == 200, r.text
    later.deliver()
    body = later.reminders()[-1]
    assert abandoned_cart.handle_due(later.services, body, now=now) == "already-reminded"
    # New contents within a day: too soon; a day later: a second reminder.
    later.add_to_cart("asha", "KURTA-L")
    later.deliver()
    body = later.reminders()[-1]
    assert (
        abandoned_cart.handle_due(later.services, body, now=now + timedelta(hours=2)) == "too-soon"
    )
    later.add_to_cart("asha", "KURTA-L")
    later.deliver()
    body = later.reminders()[-1]
    assert (
        abandoned_cart.handle_due(later.services, body, now=now + timedelta(days=1, minutes=1))
        == "sent"
    )
    assert later.sent("asha", "abandoned-cart") == 2


def test_a_send_that_must_be_retried_is_sent_once(shop: Shop) -> None:
    _prepared(shop)
    shop.deliver()
    [body] = shop.reminders()
    # The provider stays busy through this delivery: the decision is recorded, the
    # message must come back.
    shop.email.failures = [ProviderBusy("busy", retry_after=0), ProviderBusy("busy", retry_after=0)]
    with pytest.raises(NotificationsPending):
        abandoned_cart.handle_due(shop.services, body)
    assert shop.sent("asha", "abandoned-cart") == 0
    assert abandoned_cart.handle_due(shop.services, body) == "sent"
    assert abandoned_cart.handle_due(shop.services, body) == "done"
    assert shop.sent("asha", "abandoned-cart") == 1


def test_anonymous_carts_schedule_nothing(shop: Shop) -> None:
    shop.product("p1", {"KURTA-M": 129900})
    r = shop.client.post("/api/cart/items", json={"sku": "KURTA-M", "quantity": 1})
    assert r.status_code == 200, r.text
    assert [e.type for e in shop.deliver()].count("cart.updated") == 0
    assert shop.reminders() == []


def test_a_malformed_reminder_is_refused_at_once(shop: Shop) -> None:
    from cloudcart.core.ports.messages import InvalidMessage

    with pytest.raises(InvalidMessage):
        abandoned_cart.handle_due(shop.services, b'{"customerId": 1}')
