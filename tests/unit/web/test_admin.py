"""The management pages under /admin, driven as a browser would, and their SVG charts.

State is arranged through the public API (checkouts, imports, stock), payments through the
embedded test gateway's signed webhooks, and the analytics roll-ups by folding the events
the app wrote (its outboxes and the storefront's broker messages) with the same functions
the analytics functions run.
"""

from __future__ import annotations

import datetime
import html
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.analytics.consumer import handle_events
from cloudcart.core.events import Event
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.ports.messages import OutboundMessage
from cloudcart.integrations.payments import test_gateway as tg
from cloudcart.web import charts
from cloudcart.web.admin.dashboard import Period, kpis, period_of
from cloudcart.web.admin.orders import minor_units
from tests.unit.web.conftest import Site, csrf, form_value

ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}
ROPE = "STRAUSS-SKIPPING-ROPE"  # 299.00 INR in the demo shop
ROPE_PRODUCT = "strauss-skipping-rope"
PHONE = "IPHONE-15-PRO-MAX-256-GB-BLUE-TITANIUM"  # over the high-value first order limit
PHONE_PRODUCT = "iphone-15-pro-max"
SVG = "{http://www.w3.org/2000/svg}"


# --- arranging state through the API ------------------------------------------------------


def api(site: Site) -> TestClient:
    return site.browser()


def buy(site: Site, sub: str, sku: str, quantity: int = 1) -> dict[str, Any]:
    """Add to the cart and check out as `sub`, through the API."""
    client, headers = api(site), site.bearer(sub)
    r = client.post("/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(
        "/api/checkout",
        json={"shippingAddress": ADDRESS, "shippingMethod": "standard"},
        headers={**headers, "Idempotency-Key": f"key-{sub}-{sku}"},
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


def pay(site: Site, order: dict[str, Any]) -> None:
    """Pay with a test card; the gateway's signed webhook reaches the app's webhook route."""
    site.gateway.confirm(order["payment"]["paymentId"], tg.CARD_IN)
    assert site.deliver_payment_webhooks() >= 1


def admin_order(site: Site, order_id: str) -> dict[str, Any]:
    r = api(site).get(f"/api/admin/orders/{order_id}", headers=site.bearer("root", admin=True))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def stock(site: Site, sku: str) -> dict[str, Any]:
    r = api(site).get(f"/api/admin/inventory/{sku}", headers=site.bearer("root", admin=True))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def set_stock(site: Site, sku: str, available: int) -> None:
    r = api(site).put(
        f"/api/admin/inventory/{sku}",
        json={"available": available},
        headers=site.bearer("root", admin=True),
    )
    assert r.status_code == 200, r.text


def fold_analytics(site: Site) -> None:
    """Count everything so far into the roll-ups, as the analytics functions would: the
    domain events the outboxes hold and the storefront batches on the broker's
    `analytics` subscription, recorded and folded by `handle_events`."""
    store = site.services.documents
    events: list[Event] = []
    for name in ("catalog", "inventory", "orders"):
        checkpoint = None
        while True:
            page = store.container(name).change_feed(checkpoint, max_items=500)
            checkpoint = page.checkpoint
            if not page.items:
                break
            events.extend(
                Event.model_validate(d["event"]) for d in page.items if d.get("kind") == "outbox"
            )
    broker = site.services.messages
    assert isinstance(broker, SqliteBroker)
    while received := broker.receive("events", "analytics", max_messages=50):
        for message in received:
            events.append(Event.model_validate(message.json()))
            broker.complete(message.lock_token)
    handle_events(store, events)


def drawn(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action`: its CSRF token and what the
    page showed when it was drawn (`seen`)."""
    return {name: form_value(page, name, action) for name in ("csrf", "seen")}


def admin_browser(site: Site) -> TestClient:
    browser = site.browser()
    site.sign_in(browser, "admin-1", admin=True)
    return browser


# --- who may see the pages ----------------------------------------------------------------


def test_anonymous_browsers_are_sent_to_sign_in(site: Site) -> None:
    browser = site.browser()
    for path in ("/admin", "/admin/orders", "/admin/dead-letters"):
        page = browser.get(path)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/auth/login?returnTo=%2Fadmin")


def test_a_customer_is_not_allowed_to_see_or_change_anything(site: Site) -> None:
    held = buy(site, "big-spender", PHONE)
    browser = site.browser()
    site.sign_in(browser, "cus-1")
    page = browser.get("/admin")
    assert page.status_code == 403
    assert "Not allowed" in page.text
    assert "Gross revenue" not in page.text
    assert browser.get(f"/admin/orders/{held['orderId']}").status_code == 403
    token = csrf(browser, "/")
    answer = browser.post(
        f"/admin/orders/{held['orderId']}/review", data={"csrf": token, "decision": "approve"}
    )
    assert answer.status_code == 403
    assert "Not allowed" in answer.text
    assert admin_order(site, held["orderId"])["status"] == "on_hold"


def test_nothing_but_the_admin_check_is_asked_of_the_api_for_a_customer(
    site: Site, api_calls: list[str]
) -> None:
    browser = site.browser()
    site.sign_in(browser, "cus-1")
    for path in ("/admin", "/admin/orders", "/admin/dead-letters", "/admin/notifications"):
        api_calls.clear()
        assert browser.get(path).status_code == 403
        assert api_calls == ["GET /auth/session", "GET /api/admin/whoami"], path


def test_a_dot_segment_id_never_reaches_an_admin_api_path(site: Site, api_calls: list[str]) -> None:
    # `/api/admin/orders/../review` would be `/api/admin/review` once normalised.
    browser = admin_browser(site)
    assert browser.get("/admin/orders/%2E%2E").status_code == 404
    token = csrf(browser, "/admin/products")
    answer = browser.post("/admin/orders/%2E%2E/review", data={"csrf": token, "decision": "reject"})
    assert answer.status_code == 404
    assert browser.post("/admin/inventory/%2E%2E", data={"csrf": token}).status_code == 404
    assert [call for call in api_calls if ".." in call] == []


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    held = buy(site, "big-spender", PHONE)
    browser = admin_browser(site)
    browser.get(f"/admin/orders/{held['orderId']}")  # the CSRF cookie exists
    answer = browser.post(f"/admin/orders/{held['orderId']}/review", data={"decision": "approve"})
    assert answer.status_code == 403
    assert "This form has expired" in answer.text
    assert admin_order(site, held["orderId"])["status"] == "on_hold"
    before = stock(site, ROPE)
    answer = browser.post(f"/admin/inventory/{ROPE}", data={"value": "3", "csrf": "x" * 40})
    assert answer.status_code == 403
    assert stock(site, ROPE)["available"] == before["available"]


def test_every_page_renders_for_an_admin_without_inline_script_or_style(site: Site) -> None:
    browser = admin_browser(site)
    for path in (
        "/admin",
        "/admin?period=today",
        "/admin?period=30d",
        "/admin?period=month",
        "/admin?from=2030-01-01&to=2030-01-31",
        "/admin/orders",
        "/admin/products",
        f"/admin/products/{ROPE_PRODUCT}",
        "/admin/dead-letters",
        "/admin/integrations",
        "/admin/notifications",
    ):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert 'class="admin"' in page.text, path
        assert 'id="site-search"' not in page.text, path  # no storefront search box
        assert '<nav class="admin-nav" aria-label="Management">' in page.text, path
        assert len(re.findall(r"<h1[ >]", page.text)) == 1, path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), path
        assert not re.search(r"\sstyle\s*=", page.text), path
        assert not re.search(r"\son[a-z]+\s*=", page.text), path


# --- dashboard ----------------------------------------------------------------------------


def test_dashboard_compares_the_period_with_the_one_before(site: Site) -> None:
    today = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    admin = site.bearer("root", admin=True)
    # The period before (the 7 days before the last 7): an order imported from the old shop.
    placed = (today - datetime.timedelta(days=10)).isoformat()
    line = {
        "orderId": "hist-1",
        "customerId": "cus-9",
        "placedAt": placed,
        "status": "delivered",
        "currency": "INR",
        "lines": [{"sku": ROPE, "quantity": 3, "unitPrice": 29900}],
    }
    r = api(site).post(
        "/api/admin/import/orders",
        content=json.dumps(line) + "\n",
        headers={**admin, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    # This period: a shopper looks, searches in vain, adds to the cart, checks out and pays.
    shopper = site.browser()
    assert shopper.get(f"/products/{ROPE_PRODUCT}").status_code == 200
    assert shopper.get("/search", params={"q": "zzqqxx plumbus"}).status_code == 200
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    r = api(site).post(
        "/api/events",
        json={
            "events": [
                {"type": "add_to_cart", "productId": ROPE_PRODUCT, "sku": ROPE, "at": stamp},
                {"type": "checkout_started", "at": stamp},
            ]
        },
        headers=site.bearer("cus-1"),
    )
    assert r.status_code == 202, r.text
    order = buy(site, "cus-1", ROPE, 2)
    pay(site, order)
    # A SKU ran out and came back; another is out now.
    set_stock(site, "HERO-SPRINT-26T-BICYCLE", 0)
    set_stock(site, "HERO-SPRINT-26T-BICYCLE", 4)
    set_stock(site, "SPALDING-NBA-BASKETBALL-SIZE-7", 0)
    fold_analytics(site)

    page = admin_browser(site).get("/admin", params={"period": "7d"})
    assert page.status_code == 200
    text = page.text
    kpi = text[text.index('<section aria-labelledby="kpi-heading">') :]
    gross = kpi[kpi.index("Gross revenue") : kpi.index("Net revenue")]
    assert "INR 598.00" in gross and "Before: INR 897.00" in gross
    assert '<span class="delta down">' in gross and "Down 33.3%" in gross
    orders = kpi[kpi.index("Orders placed") : kpi.index("Paid orders")]
    assert '<span class="delta flat">' in orders and "No change" in orders
    # Charts: inline SVG with a title, bars for both periods, and the numbers in a table.
    assert text.count('<svg xmlns="http://www.w3.org/2000/svg"') >= 5
    assert 'aria-label="Gross revenue per day (INR), against the period before"' in text
    assert 'class="bar-rect"' in text and 'data-value="59800"' in text
    assert 'class="bar-prev"' in text and 'data-value="89700"' in text
    assert '<td class="num">598.00</td>' in text and '<td class="num">897.00</td>' in text
    funnel = text[text.index('id="funnel-heading"') : text.index('id="products-heading"')]
    assert "1 (100.0% of views)" in funnel  # views, cart, checkout and paid: one each
    assert "Carts abandoned" in funnel
    top = text[text.index('id="products-heading"') : text.index('id="stock-heading"')]
    assert "Strauss Skipping Rope" in top and "598.00" in top
    stock_outs = text[text.index('id="stock-heading"') : text.index('id="fulfilment-heading"')]
    assert "SPALDING-NBA-BASKETBALL-SIZE-7" in stock_outs
    assert "HERO-SPRINT-26T-BICYCLE" in stock_outs
    zero = text[text.index('id="search-heading"') :]
    assert "zzqqxx plumbus" in zero


def test_dashboard_refuses_a_bad_period_with_a_message(site: Site) -> None:
    browser = admin_browser(site)
    page = browser.get("/admin", params={"from": "2030-02-01", "to": "2030-01-01"})
    assert page.status_code == 400
    assert "The start date must not be after the end date." in page.text
    page = browser.get("/admin", params={"from": "2030-02-01"})
    assert page.status_code == 400 and "Give both a start date and an end date." in page.text


# --- orders -------------------------------------------------------------------------------


def test_a_held_order_is_approved_through_the_form(site: Site) -> None:
    held = buy(site, "big-spender", PHONE)
    pay(site, held)
    assert admin_order(site, held["orderId"])["status"] == "on_hold"
    browser = admin_browser(site)
    listing = browser.get("/admin/orders", params={"status": "on_hold"})
    assert held["orderId"] in listing.text
    page = browser.get(f"/admin/orders/{held['orderId']}")
    assert page.status_code == 200
    assert "high_value_first_order" in page.text
    action = f"/admin/orders/{held['orderId']}/review"
    answer = browser.post(
        action, data={"csrf": form_value(page.text, "csrf", action), "decision": "approve"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/orders/{held['orderId']}?done=approved"
    assert admin_order(site, held["orderId"])["status"] == "paid"
    after = browser.get(answer.headers["location"])
    assert "The order was approved and released." in after.text
    assert f'action="{action}"' not in after.text  # nothing left to review


def test_the_orders_list_filters_by_status(site: Site) -> None:
    held = buy(site, "big-spender", PHONE)
    plain = buy(site, "cus-2", ROPE)
    browser = admin_browser(site)
    every = browser.get("/admin/orders").text
    assert held["orderId"] in every and plain["orderId"] in every
    waiting = browser.get("/admin/orders", params={"status": "pending_payment"}).text
    assert plain["orderId"] in waiting and held["orderId"] not in waiting
    assert browser.get("/admin/orders", params={"status": "lost"}).status_code == 400


def test_a_double_submitted_refund_refunds_once(site: Site) -> None:
    order = buy(site, "cus-3", ROPE, 2)
    pay(site, order)
    browser = admin_browser(site)
    page = browser.get(f"/admin/orders/{order['orderId']}")
    action = f"/admin/orders/{order['orderId']}/refund"
    form = {**drawn(page.text, action), "amount": "1,00.50", "reason": "scratched"}
    first = browser.post(action, data=form)
    second = browser.post(action, data=form)
    assert first.headers["location"].endswith("?done=refunded")
    assert second.headers["location"].endswith("?done=refund-seen")
    seen = admin_order(site, order["orderId"])
    assert [r["amount"] for r in seen["refunds"]] == [10050]
    assert seen["refunded"]["amount"] == 10050
    after = browser.get(second.headers["location"]).text
    assert "nothing more was refunded" in after


def test_a_refund_form_with_a_bad_amount_shows_why(site: Site) -> None:
    order = buy(site, "cus-4", ROPE)
    pay(site, order)
    browser = admin_browser(site)
    page = browser.get(f"/admin/orders/{order['orderId']}")
    action = f"/admin/orders/{order['orderId']}/refund"
    form = {"csrf": form_value(page.text, "csrf", action), "seen": "0"}
    answer = browser.post(action, data={**form, "amount": "2.505"})
    assert answer.status_code == 422
    assert "at most two decimals" in answer.text
    answer = browser.post(action, data={**form, "amount": "5000"})
    assert answer.status_code == 422 and "can still be refunded" in answer.text
    answer = browser.post(action, data={**form, "amount": "1", f"qty-{ROPE}": "1"})
    assert answer.status_code == 422 and "not both" in answer.text
    assert admin_order(site, order["orderId"])["refunds"] == []


def test_cancel_and_status_change_go_through_the_api(site: Site) -> None:
    first = buy(site, "cus-5", ROPE)
    pay(site, first)
    second = buy(site, "cus-6", ROPE)
    pay(site, second)
    browser = admin_browser(site)
    page = browser.get(f"/admin/orders/{first['orderId']}")
    action = f"/admin/orders/{first['orderId']}/cancel"
    answer = browser.post(action, data={"csrf": form_value(page.text, "csrf", action)})
    assert answer.headers["location"].endswith("?done=cancelled")
    cancelled = admin_order(site, first["orderId"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["refunded"]["amount"] == cancelled["captured"]["amount"] > 0
    page = browser.get(f"/admin/orders/{second['orderId']}")
    action = f"/admin/orders/{second['orderId']}/status"
    token = form_value(page.text, "csrf", action)
    answer = browser.post(action, data={"csrf": token, "status": "fulfilling"})
    assert answer.headers["location"].endswith("?done=status")
    assert admin_order(site, second["orderId"])["status"] == "fulfilling"
    refused = browser.post(action, data={"csrf": token, "status": "delivered"})
    assert refused.status_code == 409  # fulfilling cannot jump to delivered
    assert "cannot go from" in refused.text
    assert admin_order(site, second["orderId"])["status"] == "fulfilling"


# --- products and stock -------------------------------------------------------------------


def test_the_stock_form_updates_stock_and_refuses_a_stale_form(site: Site) -> None:
    browser = admin_browser(site)
    listing = browser.get("/admin/products", params={"q": "skipping rope"})
    assert f'href="/admin/products/{ROPE_PRODUCT}"' in listing.text
    assert ROPE in listing.text
    page = browser.get(f"/admin/products/{ROPE_PRODUCT}")
    action = f"/admin/inventory/{ROPE}"
    form = {**drawn(page.text, action), "field": "available", "value": "7"}
    saved = browser.post(action, data=form)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/admin/products/{ROPE_PRODUCT}?done=stock#stock-{ROPE}"
    assert stock(site, ROPE)["available"] == 7
    # The same form again: the stock changed since it was drawn.
    stale = browser.post(action, data={**form, "value": "2"})
    assert stale.status_code == 412
    assert "changed after this page was opened" in stale.text
    assert stock(site, ROPE)["available"] == 7
    bad = browser.post(action, data={**form, "seen": stock(site, ROPE)["updatedAt"], "value": "-1"})
    assert bad.status_code == 422 and "whole number" in bad.text


def test_product_text_from_the_api_is_escaped(site: Site) -> None:
    r = api(site).post(
        "/api/admin/products",
        json={
            "title": "<script>alert(1)</script> Phone",
            "brand": "<b>Evil</b>",
            "categoryId": "phones",
            "variants": [{"sku": "EVIL-1", "price": {"amount": 1000, "currency": "INR"}}],
        },
        headers=site.bearer("root", admin=True),
    )
    assert r.status_code == 201, r.text
    page = admin_browser(site).get(f"/admin/products/{r.json()['productId']}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Phone" in page.text
    assert "<b>Evil</b>" not in page.text


# --- dead letters, integrations, notifications ---------------------------------------------


def dead_letter(site: Site, message_id: str, body: dict[str, Any]) -> str:
    """A message the fulfilment-updates handler refused as invalid; returns its id."""
    broker = site.services.messages
    assert isinstance(broker, SqliteBroker)
    broker.publish(
        "fulfilment-updates",
        [
            OutboundMessage(
                body=body,
                message_id=message_id,
                subject="shipment.shipped",
                content_type="application/json",
                correlation_id=f"corr-{message_id}",
                application_properties={},
            )
        ],
    )
    [message] = broker.receive("fulfilment-updates")
    broker.dead_letter(message.lock_token, "InvalidMessage", "sku is missing")
    [letter] = [
        d for d in broker.list_dead_letters("fulfilment-updates") if d.message_id == message_id
    ]
    return letter.id


def test_dead_letters_are_listed_shown_and_resubmitted(site: Site) -> None:
    letter_id = dead_letter(site, "msg-1", {"orderId": "ord-1", "note": "<b>bold</b>"})
    browser = admin_browser(site)
    listing = browser.get("/admin/dead-letters")
    assert f'href="/admin/dead-letters/{letter_id}"' in listing.text
    assert "fulfilment-updates" in listing.text and "InvalidMessage" in listing.text
    shown = browser.get(f"/admin/dead-letters/{letter_id}")
    assert shown.status_code == 200
    assert "sku is missing" in shown.text
    body = shown.text[shown.text.index("<pre>") + 5 : shown.text.index("</pre>")]
    assert "<b>" not in body and "&lt;b&gt;bold&lt;/b&gt;" in body  # escaped
    assert html.unescape(body) == json.dumps(
        {"note": "<b>bold</b>", "orderId": "ord-1"}, indent=2
    )  # pretty JSON
    action = f"/admin/dead-letters/{letter_id}/resubmit"
    token = form_value(shown.text, "csrf", action)
    answer = browser.post(action, data={"csrf": token})
    assert answer.headers["location"] == "/admin/dead-letters?done=resubmitted"
    after = browser.get(answer.headers["location"]).text
    assert "The message was put back on its queue." in after
    assert letter_id not in after
    broker = site.services.messages
    assert isinstance(broker, SqliteBroker)
    [back] = broker.receive("fulfilment-updates")
    assert back.json() == {"orderId": "ord-1", "note": "<b>bold</b>"}
    again = browser.post(action, data={"csrf": token})
    assert again.headers["location"] == "/admin/dead-letters?done=gone"


def test_a_dead_letter_is_purged(site: Site) -> None:
    letter_id = dead_letter(site, "msg-2", {"orderId": "ord-2"})
    later_id = dead_letter(site, "msg-3", {"orderId": "ord-3"})
    browser = admin_browser(site)
    first = browser.get("/admin/dead-letters", params={"limit": "1"}).text
    assert letter_id in first and later_id not in first
    assert 'href="?limit=51">Show more</a>' in first
    assert later_id in browser.get("/admin/dead-letters", params={"limit": "51"}).text
    shown = browser.get(f"/admin/dead-letters/{letter_id}")
    action = f"/admin/dead-letters/{letter_id}/purge"
    assert "data-confirm=" in shown.text[shown.text.index(f'action="{action}"') - 200 :]
    answer = browser.post(action, data={"csrf": form_value(shown.text, "csrf", action)})
    assert answer.headers["location"] == "/admin/dead-letters?done=purged"
    assert browser.get(f"/admin/dead-letters/{letter_id}").status_code == 404
    broker = site.services.messages
    assert isinstance(broker, SqliteBroker)
    assert broker.receive("fulfilment-updates") == []
    assert [d.id for d in broker.list_dead_letters("fulfilment-updates")] == [later_id]


def test_integrations_show_each_partner_link(site: Site) -> None:
    page = admin_browser(site).get("/admin/integrations")
    assert page.status_code == 200
    for partner in ("fulfilment", "inventory", "accounting", "crm"):
        assert f'<th scope="row">{partner}</th>' in page.text
    assert "Not configured" in page.text


def test_notifications_filters_are_checked(site: Site) -> None:
    browser = admin_browser(site)
    assert browser.get("/admin/notifications", params={"channel": "email"}).status_code == 200
    page = browser.get("/admin/notifications", params={"channel": "pigeon"})
    assert page.status_code == 400 and "Choose one of the channels offered." in page.text


# --- pure parts: periods, figures, charts -------------------------------------------------


def test_periods_and_the_period_before() -> None:
    today = datetime.date(2030, 3, 15)
    week = period_of("7d", "", "", today)
    assert (week.first, week.last, week.days) == (datetime.date(2030, 3, 9), today, 7)
    assert week.params() == {"from": "2030-03-09T00:00:00Z", "to": "2030-03-16T00:00:00Z"}
    before = week.previous()
    assert (before.first, before.last) == (datetime.date(2030, 3, 2), datetime.date(2030, 3, 8))
    assert period_of("today", "", "", today).granularity == "hour"
    month = period_of("month", "", "", today)
    assert month.first == datetime.date(2030, 3, 1) and month.previous().days == 15
    custom = period_of("custom", "2030-01-01", "2030-01-31", today)
    assert custom == Period("custom", datetime.date(2030, 1, 1), datetime.date(2030, 1, 31))
    with pytest.raises(ValueError, match="at most"):
        period_of("", "2028-01-01", "2030-01-01", today)
    with pytest.raises(ValueError, match="offered"):
        period_of("forever", "", "", today)


def test_figures_are_compared_with_words_not_only_colour() -> None:
    now = {
        "revenue": {"INR": {"gross": 15000, "refunded": 0, "net": 15000}},
        "orders": 3,
        "paidOrders": 3,
        "visitors": 0,
        "aov": {"INR": 5000.0},
        "abandonmentRate": 0.25,
    }
    before = {
        "revenue": {"INR": {"gross": 10000, "refunded": 500, "net": 9500}},
        "orders": 3,
        "paidOrders": 2,
        "visitors": 0,
        "aov": {"INR": 5000.0},
        "abandonmentRate": 0.5,
    }
    found = {k.label: k for k in kpis(now, before)}
    assert (found["Gross revenue"].change, found["Gross revenue"].css) == ("Up 50.0%", "delta up")
    assert found["Gross revenue"].value == "INR 150.00"
    assert found["Refunds"].css == "delta down inverse" and found["Refunds"].change == "Down 100.0%"
    assert found["Orders placed"].change == "No change"
    assert found["Cart abandonment"].change == "Down 25.0 pts"
    assert found["Cart abandonment"].css == "delta down inverse"


def test_amounts_are_read_in_major_units() -> None:
    assert minor_units("1,299.50") == 129950
    assert minor_units("7") == 700
    for bad in ("0", "-1", "abc", "1.001", "NaN"):
        with pytest.raises(ValueError):
            minor_units(bad)


def _bars(svg: str, css: str = "bar-rect") -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [e for e in root.iter(f"{SVG}rect") if e.get("class") == css]


def test_bar_chart_scales_bars_to_the_largest_value() -> None:
    svg = charts.bar_chart([("Mon", 50), ("Tue", 100), ("Wed", 0)], title="Orders", height=240)
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "Orders"
    assert root.findtext(f"{SVG}title") == "Orders"
    heights = [float(bar.get("height", "")) for bar in _bars(svg)]
    assert heights[1] == pytest.approx(240 - 16 - 28)  # the largest fills the plot
    assert heights[0] == pytest.approx(heights[1] / 2)
    assert heights[2] == 0
    assert [bar.findtext(f"{SVG}title") for bar in _bars(svg)] == ["Mon: 50", "Tue: 100", "Wed: 0"]


def test_bar_chart_draws_the_previous_period_on_the_same_scale() -> None:
    svg = charts.bar_chart([("1 Mar", 10)], title="Revenue", previous=[40])
    [now], [before] = _bars(svg), _bars(svg, "bar-prev")
    assert float(before.get("height", "")) == pytest.approx(4 * float(now.get("height", "")))
    assert "previous period: 40" in (before.findtext(f"{SVG}title") or "")


def test_charts_without_data_say_so() -> None:
    for svg in (
        charts.bar_chart([("Mon", 0), ("Tue", 0)], title="Orders", empty_text="Nothing yet"),
        charts.bar_chart([], title="Orders", empty_text="Nothing yet"),
        charts.hbar_chart([("Views", 0)], title="Funnel", empty_text="Nothing yet"),
    ):
        root = ET.fromstring(svg)
        assert _bars(svg) == []
        assert [t.text for t in root.iter(f"{SVG}text")] == ["Nothing yet"]


def test_chart_labels_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    svg = charts.hbar_chart([(evil, 3), ("ok", 6)], title=f"Top {evil}")
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # still well-formed XML
    assert root.get("aria-label") == f"Top {evil}"
    widths = [float(bar.get("width", "")) for bar in _bars(svg)]
    assert widths[0] == pytest.approx(widths[1] / 2)
    assert evil in [t.findtext(f"{SVG}title") for t in root.iter(f"{SVG}text")]
    bars = charts.bar_chart([(evil, 1)], title=evil)
    assert "<script>" not in bars and "&lt;script&gt;" in bars


def test_durations_read_as_words() -> None:
    assert [charts.duration(s) for s in (None, 45, 720, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        charts.DASH,
        "45 s",
        "12 min",
        "3 h 5 min",
        "2 d 4 h",
    ]
