"""Price drop: recent viewers with consent and personalization hear of a drop at most once
a week; export and erasure cover everything the marketing area holds about a customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloudcart.core.events import Event
from cloudcart.marketing import price_drop
from tests.unit.marketing.conftest import Shop


def _viewed(shop: Shop, *subs: str, marketing: bool = True) -> None:
    shop.product("p1", {"KURTA-M": 129900, "KURTA-L": 139900})
    shop.product("p2", {"SCARF-1": 49900})
    for sub in subs:
        shop.customer(sub, marketing=marketing)
        shop.view(sub, "p1")
    shop.deliver()


def test_a_price_drop_tells_recent_viewers_once(shop: Shop) -> None:
    _viewed(shop, "asha", "ravi")
    shop.customer("meera", marketing=True)  # never viewed it
    shop.reprice("p1", {"KURTA-M": 109900, "KURTA-L": 139900})
    events = shop.deliver()
    for sub in ("asha", "ravi"):
        assert shop.sent(sub, "price-drop") == 1
    assert shop.sent("meera", "price-drop") == 0
    [mail] = shop.email.to("asha@example.com")
    assert "₹1,099.00" in mail.text and "₹1,299.00" in mail.text
    # A redelivered or replayed product.updated sends nothing more.
    shop.replay([e for e in events if e.type == "product.updated"])
    assert shop.sent("asha", "price-drop") == 1


def test_at_most_one_price_drop_a_week(shop: Shop) -> None:
    _viewed(shop, "asha")
    shop.view("asha", "p2")
    shop.deliver()
    shop.reprice("p1", {"KURTA-M": 109900, "KURTA-L": 139900})
    shop.reprice("p2", {"SCARF-1": 39900})
    shop.deliver()
    assert shop.sent("asha", "price-drop") == 1
    # A week later the next drop gets through.
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    shop.reprice("p2", {"SCARF-1": 29900})
    [event] = [e for e in shop.deliver() if e.type == "product.updated"]
    assert shop.sent("asha", "price-drop") == 1
    assert price_drop.handle_price_change(shop.services, event, now=later) == 1
    assert shop.sent("asha", "price-drop") == 2


def test_no_price_drop_without_consent_personalization_or_a_drop(shop: Shop) -> None:
    _viewed(shop, "asha", marketing=False)
    shop.customer("ravi", marketing=True)
    r = shop.client.put(
        "/api/me/preferences", headers=shop.auth("ravi"), json={"personalization": False}
    )
    assert r.status_code == 200, r.text
    shop.view("ravi", "p1")  # not recorded: personalization is off
    shop.deliver()
    shop.reprice("p1", {"KURTA-M": 139900, "KURTA-L": 149900})  # dearer: no drop
    shop.reprice("p1", {"KURTA-M": 109900, "KURTA-L": 149900})
    shop.deliver()
    assert shop.email.sent == []
    assert [d["customerId"] for d in shop.records() if d["kind"] == "viewer"] == ["asha"]


def test_views_older_than_30_days_do_not_count(shop: Shop) -> None:
    _viewed(shop, "asha")
    dropped = Event(
        type="product.updated",
        subject="p1",
        data={
            "status": "active",
            "title": "Kurta p1",
            "variants": [{"sku": "KURTA-M", "price": {"amount": 99900, "currency": "INR"}}],
            "previousPrices": {"KURTA-M": {"amount": 129900, "currency": "INR"}},
        },
    )
    month_later = datetime.now(UTC) + timedelta(days=30, minutes=1)
    assert price_drop.handle_price_change(shop.services, dropped, now=month_later) == 0
    assert price_drop.handle_price_change(shop.services, dropped) == 1
    # In another currency, a smaller number is no drop.
    other = dropped.model_copy(
        update={
            "id": "evt_other",
            "data": {
                **dropped.data,
                "previousPrices": {"KURTA-M": {"amount": 129900, "currency": "USD"}},
            },
        }
    )
    assert price_drop.price_drop(other) is None


def test_export_and_erasure_cover_every_marketing_record(shop: Shop) -> None:
    _viewed(shop, "asha")
    shop.stock("KURTA-M", 0)
    r = shop.client.post(
        "/api/catalog/products/p1/notify-me", json={"sku": "KURTA-M"}, headers=shop.auth("asha")
    )
    assert r.status_code == 201, r.text
    shop.add_to_cart("asha", "KURTA-L")
    shop.deliver()
    shop.run_reminders()
    r = shop.client.get("/api/me/export", headers=shop.auth("asha"))
    assert r.status_code == 200, r.text
    section = r.json()["sections"]["marketing"]
    assert [s["sku"] for s in section["backInStock"]] == ["KURTA-M"]
    assert [v["productId"] for v in section["recentlyViewed"]] == ["p1"]
    assert {d["kind"] for d in section["records"]} >= {"abandoned-cart"}
    r = shop.client.delete("/api/me", headers=shop.auth("asha"))
    assert r.status_code in (202, 204), r.text
    assert [d for d in shop.records() if d["customerId"] == "asha"] == []


def test_turning_personalization_off_forgets_the_views(shop: Shop) -> None:
    _viewed(shop, "asha")
    assert [d["kind"] for d in shop.records()] == ["viewer"]
    r = shop.client.put(
        "/api/me/preferences", headers=shop.auth("asha"), json={"personalization": False}
    )
    assert r.status_code == 200, r.text
    assert shop.records() == []
