"""The storefront's account pages through the browser: profile, addresses, preferences,
export and erasure, the notifications feed and recently viewed. State is arranged and
checked through the public API (`site.bearer`), except what only a consumer creates (in-app
notifications, browsing history), which is arranged by running that consumer's function."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient
from markupsafe import escape

from cloudcart.core.events import Event
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.insights import history
from cloudcart.notifications import service as notifications
from cloudcart.web.security import CSRF_COOKIE, SESSION_COOKIE
from tests.unit.web.conftest import Site, csrf

PRODUCT = "wildcraft-hiking-backpack-45-l"
PRODUCT_TITLE = "Wildcraft Hiking Backpack 45 L"
ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "line2": "Flat 4B",
    "city": "Pune",
    "region": "Maharashtra",
    "postalCode": "411001",
    "country": "in",
    "phone": "",
}


def shopper(site: Site, sub: str = "asha") -> TestClient:
    """A browser signed in as `sub`, whose profile exists (the account page made it)."""
    browser = site.browser()
    site.sign_in(browser, sub)
    assert browser.get("/account").status_code == 200
    return browser


def post(browser: TestClient, url: str, data: dict[str, str] | None = None) -> Any:
    """Submit a form of the account page with the page's CSRF token."""
    token = csrf(browser, "/account")
    return browser.post(url, data={"csrf": token, **(data or {})})


def api(site: Site, sub: str, path: str) -> Any:
    """What the API holds for `sub` at `path`."""
    answer = site.browser().get(path, headers=site.bearer(sub))
    assert answer.status_code == 200, answer.text
    return answer.json()


def main(html: str) -> str:
    """The page's main content (without the header and footer)."""
    return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def notify(site: Site, sub: str, order: str) -> None:
    """An `order.paid` event handled by the notifications area, as its consumer does."""
    event = Event(
        type="order.paid",
        subject=order,
        data={
            "orderId": order,
            "customerId": sub,
            "paymentId": f"pay_{order}",
            "provider": "test",
            "amount": 129900,
            "currency": "INR",
        },
    )
    notifications.handle_event(site.services, event)


def deliver_history(site: Site) -> int:
    """Run the browsing-history consumer on every waiting storefront batch."""
    broker = site.services.messages
    assert isinstance(broker, SqliteBroker)
    count = 0
    while received := broker.receive("events", history.SUBSCRIPTION, max_messages=10):
        for message in received:
            history.handle_event(site.services.documents, Event.from_message_body(message.body))
            broker.complete(message.lock_token)
            count += 1
    return count


# --- signing in -----------------------------------------------------------------------------


def test_the_account_pages_send_an_anonymous_visitor_to_sign_in(site: Site) -> None:
    browser = site.browser()
    for path in ("/account", "/notifications", "/account/export"):
        answer = browser.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/auth/login?returnTo=")
    assert browser.get("/account").headers["location"] == "/auth/login?returnTo=%2Faccount"
    # A form posted without a session goes to sign in too, and changes nothing (the token
    # comes from a form an anonymous visitor has: adding to the cart).
    token = csrf(browser, f"/products/{PRODUCT}")
    answer = browser.post("/account/addresses", data={"csrf": token, **ADDRESS})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/auth/login?")


def test_the_account_page_has_every_section(site: Site) -> None:
    browser = shopper(site)
    page = browser.get("/account")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = main(page.text)
    assert html.count("<h1>") == 1
    for heading in (
        "Profile",
        "Addresses",
        "Preferences and consent",
        "Back-in-stock alerts",
        "Your data",
    ):
        assert f">{heading}</h2>" in html
    assert 'value="asha@example.com"' in html
    assert 'href="/account/export"' in html
    assert 'action="/account/delete"' in html and "data-confirm=" in html
    # Every channel and kind of the API's preferences has a labelled checkbox.
    prefs = api(site, "asha", "/api/me/preferences")
    for channel, kinds in prefs["channels"].items():
        for kind in kinds:
            assert f'name="{channel}.{kind}"' in html
            assert f'id="pref-{channel}-{kind}"' in html
    assert 'name="personalization"' in html


# --- profile --------------------------------------------------------------------------------


def test_the_profile_is_edited_and_shown_again(site: Site) -> None:
    browser = shopper(site)
    answer = post(
        browser,
        "/account/profile",
        {
            "name": "Asha Rao",
            "email": "asha@example.com",
            "phone": "+91 98765 43210",
            "locale": "en-in",
            "timeZone": "Asia/Kolkata",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account?done=profile#profile"
    profile = api(site, "asha", "/api/me/profile")
    assert profile["name"] == "Asha Rao"
    assert profile["phone"] == "+919876543210"
    assert profile["locale"] == "en-IN"
    assert profile["timeZone"] == "Asia/Kolkata"
    page = browser.get("/account?done=profile")
    assert "Your profile is saved." in page.text
    assert 'value="Asha Rao"' in page.text and 'value="+919876543210"' in page.text
    # Submitting the same values changes nothing at the API.
    same = post(
        browser,
        "/account/profile",
        {"name": "Asha Rao", "email": "asha@example.com", "phone": "+919876543210"},
    )
    assert same.headers["location"] == "/account?done=profile-unchanged#profile"
    assert api(site, "asha", "/api/me/profile")["updatedAt"] == profile["updatedAt"]
    # An emptied field is cleared.
    post(browser, "/account/profile", {"phone": ""})
    assert api(site, "asha", "/api/me/profile")["phone"] is None


def test_an_invalid_profile_shows_the_api_message_and_keeps_the_values(site: Site) -> None:
    browser = shopper(site)
    before = api(site, "asha", "/api/me/profile")
    answer = post(browser, "/account/profile", {"name": "Asha Rao", "phone": "12345"})
    assert answer.status_code == 422
    html = main(answer.text)
    assert 'role="alert"' in html
    assert "Phone must be in E.164 form" in html
    assert 'value="12345"' in html and 'value="Asha Rao"' in html
    assert 'id="profile-phone" name="phone" type="tel" value="12345"' in html
    assert 'aria-invalid="true"' in html
    # Nothing was changed, not even the valid field.
    assert api(site, "asha", "/api/me/profile") == before


def test_a_profile_changed_elsewhere_meanwhile_is_not_overwritten(site: Site) -> None:
    browser = shopper(site)
    stale = re.search(r'name="etag" value="([^"]+)"', browser.get("/account").text)
    assert stale
    changed = site.browser().patch(
        "/api/me/profile", json={"name": "Changed in the app"}, headers=site.bearer("asha")
    )
    assert changed.status_code == 200
    token = csrf(browser, "/account")
    answer = browser.post(
        "/account/profile",
        data={"csrf": token, "etag": stale.group(1), "phone": "+919876543210"},
    )
    assert answer.status_code == 409
    assert "changed elsewhere" in answer.text
    profile = api(site, "asha", "/api/me/profile")
    assert (profile["name"], profile["phone"]) == ("Changed in the app", None)


# --- addresses ------------------------------------------------------------------------------


def test_an_address_is_added_edited_and_deleted(site: Site) -> None:
    browser = shopper(site)
    added = post(browser, "/account/addresses", ADDRESS)
    assert added.status_code == 303
    assert added.headers["location"] == "/account?done=address-added#addresses"
    [stored] = api(site, "asha", "/api/me/addresses")["items"]
    assert stored["line1"] == "12 MG Road" and stored["country"] == "IN"
    assert stored["phone"] is None and stored["isDefault"] is True
    page = browser.get("/account?done=address-added").text
    assert "The address is added." in page
    assert "12 MG Road" in page and f'action="/account/addresses/{stored["id"]}"' in page

    edited = post(
        browser,
        f"/account/addresses/{stored['id']}",
        {**ADDRESS, "line1": "14 FC Road", "line2": "", "isDefault": "true"},
    )
    assert edited.headers["location"] == "/account?done=address-saved#addresses"
    [after] = api(site, "asha", "/api/me/addresses")["items"]
    assert (after["id"], after["line1"], after["line2"]) == (stored["id"], "14 FC Road", None)

    deleted = post(browser, f"/account/addresses/{stored['id']}/delete")
    assert deleted.headers["location"] == "/account?done=address-deleted#addresses"
    assert api(site, "asha", "/api/me/addresses")["items"] == []
    assert "You have no saved addresses yet." in browser.get("/account").text


def test_a_second_address_can_become_the_default(site: Site) -> None:
    browser = shopper(site)
    post(browser, "/account/addresses", ADDRESS)
    post(browser, "/account/addresses", {**ADDRESS, "line1": "9 Park Street", "isDefault": "true"})
    items = api(site, "asha", "/api/me/addresses")["items"]
    assert [(a["line1"], a["isDefault"]) for a in items] == [
        ("9 Park Street", True),
        ("12 MG Road", False),
    ]


def test_an_invalid_address_shows_the_api_message_and_stores_nothing(site: Site) -> None:
    browser = shopper(site)
    answer = post(browser, "/account/addresses", {**ADDRESS, "line1": "   ", "country": "XX"})
    assert answer.status_code == 422
    html = main(answer.text)
    assert "Please correct the marked fields." in html
    assert 'id="address-new-line1-error" class="field-error">Must not be blank<' in html
    assert "Country must be an ISO 3166-1 alpha-2 code" in html
    # The entered values are shown again in the add form.
    assert 'id="address-new-city" name="city" type="text" value="Pune"' in html
    assert 'id="address-new-country" name="country" type="text" value="XX"' in html
    assert api(site, "asha", "/api/me/addresses")["items"] == []


def test_an_invalid_edit_keeps_the_stored_address(site: Site) -> None:
    browser = shopper(site)
    post(browser, "/account/addresses", ADDRESS)
    [stored] = api(site, "asha", "/api/me/addresses")["items"]
    answer = post(browser, f"/account/addresses/{stored['id']}", {**ADDRESS, "city": ""})
    assert answer.status_code == 422
    assert f'id="address-{stored["id"]}-city-error"' in answer.text
    assert "<details open>" in answer.text
    assert api(site, "asha", "/api/me/addresses")["items"] == [stored]


# --- preferences ----------------------------------------------------------------------------


def test_preferences_are_saved_whole_and_persist(site: Site) -> None:
    browser = shopper(site)
    answer = post(
        browser,
        "/account/preferences",
        # Email offers on, in-app messages off, personalisation off (unticked).
        {"email.transactional": "on", "email.marketing": "on", "sms.transactional": "on"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account?done=preferences#preferences"
    prefs = api(site, "asha", "/api/me/preferences")
    assert prefs["channels"]["email"] == {"transactional": True, "marketing": True}
    assert prefs["channels"]["sms"] == {"transactional": True, "marketing": False}
    assert prefs["channels"]["inApp"] == {"transactional": False, "marketing": False}
    assert prefs["personalization"] is False
    assert prefs["consents"]["email"]["marketing"]["source"] == "web"
    page = browser.get("/account?done=preferences").text
    assert "Your preferences are saved." in page
    assert re.search(r'name="email\.marketing" value="on" checked', page)
    assert re.search(r'name="inApp\.transactional" value="on"\s*>', page)
    assert not re.search(r'name="personalization" value="on"[^>]*checked', page)
    # And back on.
    post(browser, "/account/preferences", {"personalization": "on", "inApp.transactional": "on"})
    prefs = api(site, "asha", "/api/me/preferences")
    assert prefs["personalization"] is True
    assert prefs["channels"]["email"]["transactional"] is False
    assert prefs["channels"]["inApp"]["transactional"] is True


# --- back in stock --------------------------------------------------------------------------


def test_a_back_in_stock_alert_is_listed_and_ended(site: Site) -> None:
    product = api(site, "asha", f"/api/catalog/products/{PRODUCT}")
    sku = product["variants"][0]["sku"]
    subscribed = site.browser().post(
        f"/api/catalog/products/{PRODUCT}/notify-me", json={"sku": sku}, headers=site.bearer("asha")
    )
    assert subscribed.status_code == 201, subscribed.text
    browser = shopper(site)
    html = main(browser.get("/account").text)
    assert PRODUCT_TITLE in html and f'action="/account/notify-me/{sku}/delete"' in html
    ended = post(browser, f"/account/notify-me/{sku}/delete")
    assert ended.headers["location"] == "/account?done=notify-ended#alerts"
    assert api(site, "asha", "/api/me/notify-me")["items"] == []
    # Ending it again is not an error: it is ended.
    assert post(browser, f"/account/notify-me/{sku}/delete").status_code == 303


# --- your data ------------------------------------------------------------------------------


def test_the_export_downloads_as_a_json_attachment(site: Site) -> None:
    browser = shopper(site)
    post(browser, "/account/addresses", ADDRESS)
    answer = browser.get("/account/export")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"] == 'attachment; filename="cloudcart-export.json"'
    assert answer.headers["cache-control"] == "no-store"
    exported = json.loads(answer.content)
    assert exported["customerId"] == "asha"
    assert [a["line1"] for a in exported["sections"]["addresses"]] == ["12 MG Road"]


def test_deleting_the_account_needs_the_box_then_erases_and_signs_out(site: Site) -> None:
    browser = shopper(site)
    post(browser, "/account/addresses", ADDRESS)
    post(browser, "/account/profile", {"name": "Asha Rao"})

    refused = post(browser, "/account/delete")
    assert refused.status_code == 422
    assert "Tick the box to confirm" in refused.text
    assert api(site, "asha", "/api/me/addresses")["items"] != []

    answer = post(browser, "/account/delete", {"confirm": "yes"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?done=deleted"
    cleared = [c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    assert cleared and "Max-Age=0" in cleared[0]
    # Signed out: the account page asks to sign in again.
    assert browser.get("/account").status_code == 303
    # The data is gone: the next call starts an empty profile.
    assert api(site, "asha", "/api/me/addresses")["items"] == []
    assert api(site, "asha", "/api/me/profile")["name"] is None


# --- CSRF ---------------------------------------------------------------------------------


CSRF_FORMS: list[tuple[str, dict[str, str]]] = [
    ("/account/profile", {"name": "Mallory"}),
    ("/account/addresses", ADDRESS),
    ("/account/preferences", {"email.marketing": "on"}),
    ("/account/delete", {"confirm": "yes"}),
    ("/notifications/read-all", {}),
    ("/recent/clear", {}),
]


def test_a_form_without_the_right_csrf_token_is_refused(site: Site) -> None:
    browser = shopper(site)
    before = {
        path: api(site, "asha", path)
        for path in ("/api/me/profile", "/api/me/addresses", "/api/me/preferences")
    }
    assert browser.cookies.get(CSRF_COOKIE)
    for url, data in CSRF_FORMS:
        missing = browser.post(url, data=data)
        wrong = browser.post(url, data={"csrf": "x" * 43, **data})
        for answer in (missing, wrong):
            assert answer.status_code == 403, url
            assert "This form has expired" in answer.text
    after = {path: api(site, "asha", path) for path in before}
    assert after == before
    assert browser.get("/account").status_code == 200  # still signed in


# --- notifications --------------------------------------------------------------------------


def test_the_feed_shows_notifications_and_marks_them_read(site: Site) -> None:
    browser = shopper(site)
    notify(site, "asha", "ord_1")
    notify(site, "asha", "ord_2")
    page = browser.get("/notifications")
    assert page.status_code == 200
    html = main(page.text)
    assert "2 unread" in html
    assert 'href="/orders/ord_1"' in html and 'href="/orders/ord_2"' in html
    assert html.count('class="unread"') == 2
    feed = api(site, "asha", "/api/me/notifications")
    first = feed["items"][0]
    assert str(escape(first["title"])) in html and str(escape(first["body"])) in html

    answer = post(browser, f"/notifications/{first['id']}/read")
    assert answer.headers["location"] == "/notifications?done=read"
    feed = api(site, "asha", "/api/me/notifications")
    assert feed["unread"] == 1 and feed["items"][0]["readAt"] is not None
    html = main(browser.get("/notifications?done=read").text)
    assert "The notification is marked as read." in html
    assert html.count('class="unread"') == 1

    answer = post(browser, "/notifications/read-all")
    assert answer.headers["location"] == "/notifications?done=read-all"
    assert api(site, "asha", "/api/me/notifications")["unread"] == 0
    assert "Nothing unread" in browser.get("/notifications").text


def test_the_feed_pages_with_the_api_cursor(site: Site) -> None:
    browser = shopper(site)
    for n in range(22):
        notify(site, "asha", f"ord_{n:02d}")
    html = main(browser.get("/notifications").text)
    assert html.count("<article") == 20
    older = re.search(r'href="(/notifications\?cursor=[^"]+)">Older notifications', html)
    assert older
    second = main(browser.get(older.group(1).replace("&amp;", "&")).text)
    assert second.count("<article") == 2
    assert "Older notifications" not in second and 'href="/notifications">Newest' in second


# --- recently viewed ------------------------------------------------------------------------


def test_recent_shows_viewed_products_and_clear_empties_it(site: Site) -> None:
    browser = shopper(site)
    assert "Nothing yet." in browser.get("/recent").text
    # Viewing the product page sends the view after the answer.
    assert browser.get(f"/products/{PRODUCT}").status_code == 200
    assert deliver_history(site) >= 1
    page = browser.get("/recent")
    assert page.status_code == 200
    html = main(page.text)
    assert PRODUCT_TITLE in html and f'href="/products/{PRODUCT}"' in html

    answer = post(browser, "/recent/clear")
    assert answer.headers["location"] == "/recent?done=cleared"
    assert api(site, "asha", "/api/me/history")["items"] == []
    html = main(browser.get("/recent?done=cleared").text)
    assert "Your browsing history is cleared." in html and PRODUCT_TITLE not in html


def test_recent_leaves_out_products_no_longer_on_sale(site: Site) -> None:
    browser = shopper(site)
    gone = "spalding-nba-basketball-size-7"
    events = [
        {"type": "product_viewed", "productId": PRODUCT},
        {"type": "product_viewed", "productId": gone},
    ]
    sent = site.browser().post("/api/events", json={"events": events}, headers=site.bearer("asha"))
    assert sent.status_code == 202, sent.text
    deliver_history(site)
    assert "Spalding NBA Basketball" in browser.get("/recent").text
    archived = site.browser().delete(
        f"/api/admin/products/{gone}", headers=site.bearer("admin", admin=True)
    )
    assert archived.status_code in (200, 204), archived.text
    html = main(browser.get("/recent").text)
    assert PRODUCT_TITLE in html and "Spalding NBA Basketball" not in html


def test_recent_explains_itself_to_an_anonymous_visitor(site: Site) -> None:
    page = site.browser().get("/recent")
    assert page.status_code == 200
    html = main(page.text)
    assert "Sign in to see the products you viewed" in html
    assert 'href="/auth/login?returnTo=%2Frecent"' in html


def test_recent_says_when_history_is_off(site: Site) -> None:
    browser = shopper(site)
    post(browser, "/account/preferences", {"email.transactional": "on"})
    assert "Your browsing history is off" in browser.get("/recent").text


# --- other customers ------------------------------------------------------------------------


def test_another_customers_data_never_appears(site: Site) -> None:
    asha = shopper(site, "asha")
    post(asha, "/account/addresses", ADDRESS)
    notify(site, "asha", "ord_asha")
    [address] = api(site, "asha", "/api/me/addresses")["items"]
    [note] = api(site, "asha", "/api/me/notifications")["items"]

    ravi = shopper(site, "ravi")
    account = main(ravi.get("/account").text)
    assert "12 MG Road" not in account and address["id"] not in account
    assert "asha@example.com" not in account
    feed = main(ravi.get("/notifications").text)
    assert "ord_asha" not in feed and note["id"] not in feed
    # Ravi cannot change, delete or read Asha's things by their ids.
    assert post(ravi, f"/account/addresses/{address['id']}", ADDRESS).status_code == 404
    assert post(ravi, f"/account/addresses/{address['id']}/delete").status_code == 404
    assert post(ravi, f"/notifications/{note['id']}/read").status_code == 404
    assert api(site, "asha", "/api/me/addresses")["items"] == [address]
    assert api(site, "asha", "/api/me/notifications")["unread"] == 1


def test_an_id_that_cannot_be_ours_is_not_found(site: Site) -> None:
    browser = shopper(site)
    post(browser, "/account/addresses", ADDRESS)
    for url in ("/account/addresses/a.b/delete", "/notifications/a.b/read"):
        answer = post(browser, url)
        assert answer.status_code == 404, url
        assert "Not found" in answer.text
    assert len(api(site, "asha", "/api/me/addresses")["items"]) == 1
