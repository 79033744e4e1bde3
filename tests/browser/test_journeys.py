"""Whole journeys through the shop and its management pages in real Chromium.

A shopper searches, picks an option, fills the cart anonymously, signs in at checkout (the
cart follows), ships to a new address, pays with a test card and follows the order until it
ships; then looks at their orders, notifications, recently viewed products and account. An
admin watches the day's revenue on the dashboard, approves an order the fraud rules held and
resubmits a dead letter. The shopper's journey runs again on a phone, where no page may
scroll sideways.

Every page on the way is screenshotted (`.artifacts/browser/journey-*.png`) and scanned with
axe. What the admin acts on is arranged through the public API first, so each test stands
alone. The payment webhook, the fulfilment partner (shipping within seconds: see the `shop`
fixture), the notifications and the analytics all run in the server's trigger host, so the
tests reload a page until the outcome shows, within a deadline.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.conftest import (
    PHONE,
    Shop,
    axe,
    screenshot,
    sign_in,
    sign_in_at_provider,
    watch,
)

pytestmark = pytest.mark.browser

TEST_CARD = "4242 4242 4242 4242"
API_CARD = "4242424242424242"
# Long enough for the trigger host's next poll, the partner's SHIP_SECONDS and a slow CI
# machine; a journey only ever waits this long when something is broken.
OUTCOME_TIMEOUT_S = 30.0
RELOAD_PAUSE_MS = 300
PHONE_WIDTH: int = PHONE["viewport"]["width"]
CHEAP_SKU = "OPPO-A38-128-GB-GLOWING-BLACK"
# Far above RISK_HIGH_VALUE_FIRST_ORDER's INR 50,000: a new customer's order is held.
EXPENSIVE_SKU = "IPHONE-15-PRO-MAX-256-GB-WHITE-TITANIUM"
DEAD_LETTER_SUBJECT = "diagnostics.pinged"
# The diagnostics subscription's max delivery count (3): failing that often dead-letters.
FAIL_ATTEMPTS = 3


# --- what the journeys need ----------------------------------------------------------------


@dataclass(frozen=True)
class Shopper:
    """Who shops, what they look for and where it goes."""

    email: str
    name: str
    query: str
    product: str
    option: str
    """Words of the product option to choose (a colour)."""
    city: str
    postal_code: str


@dataclass
class Visit:
    """One browser going through the shop: every page it looks at is checked the same way."""

    page: Page
    device: str

    def look(self, name: str) -> None:
        """Screenshot the page as `journey-<device>-<name>`, scan it with axe and, on a
        phone, check that nothing sticks out sideways."""
        screenshot(self.page, f"journey-{self.device}-{name}")
        axe(self.page)
        if self.device == "phone":
            # A mobile browser widens its layout viewport to fit wide content, so
            # window.innerWidth grows with the page: compare with the screen's width.
            width: int = self.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE_WIDTH, f"{self.page.url} is {width}px wide on the phone"


def unique(prefix: str) -> str:
    """A name no other test (or earlier run against the same data) has used."""
    return f"{prefix}-{secrets.token_hex(4)}"


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    """Reload `page` until `ready()` holds; fail after OUTCOME_TIMEOUT_S naming `what`."""
    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not show within {OUTCOME_TIMEOUT_S:.0f} s on {page.url}")
        page.wait_for_timeout(RELOAD_PAUSE_MS)
        page.reload()


def history_step(page: Page, label: str) -> Locator:
    """The entry `label` (e.g. "Paid") of the storefront order page's history."""
    return (
        page.get_by_role("region", name="History")
        .get_by_role("listitem")
        .filter(has_text=re.compile(rf": {re.escape(label)}$"))
    )


def account_nav(page: Page, name: str) -> Locator:
    """A link of the storefront header's account navigation."""
    return page.get_by_role("navigation", name="Account").get_by_role("link", name=name)


def admin_nav(page: Page, name: str) -> Locator:
    """A link of the management navigation."""
    return page.get_by_role("navigation", name="Management").get_by_role(
        "link", name=name, exact=True
    )


# --- arranging through the API -------------------------------------------------------------


@dataclass
class ShopApi:
    """The shop's public HTTP API, the way the apps and scripts use it."""

    http: httpx.Client

    def token(self, sub: str, *, admin: bool = False, email: str | None = None) -> str:
        """An access token minted by the dev identity provider."""
        form = {"sub": sub, **({"roles": "Admin"} if admin else {})}
        if email:
            form["email"] = email
        answer = self.http.post("/dev/idp/token", data=form)
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token

    def call(self, token: str, method: str, path: str, **options: Any) -> Any:
        """One API call as the token's holder; the decoded answer (it must succeed)."""
        headers = {"authorization": f"Bearer {token}", **options.pop("headers", {})}
        answer = self.http.request(method, path, headers=headers, **options)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def paid_order(self, sku: str) -> tuple[str, dict[str, Any]]:
        """A new customer's order of one `sku`, paid with the test card; returns the
        customer's id and the order as they see it after the payment."""
        customer = unique("api-buyer")
        token = self.token(customer, email=f"{customer}@example.com")
        self.call(token, "POST", "/api/cart/items", json={"sku": sku, "quantity": 1})
        address = {
            "name": "Api Buyer",
            # Its own street: orders to one address are counted by the fraud rules.
            "line1": f"{secrets.randbelow(900) + 100} {customer} Road",
            "city": "Pune",
            "postalCode": "411001",
            "country": "IN",
        }
        order = self.call(
            token,
            "POST",
            "/api/checkout",
            json={"shippingAddress": address, "shippingMethod": "standard"},
            headers={"Idempotency-Key": secrets.token_urlsafe(24)},
        )
        confirm = urlsplit(order["payment"]["confirmUrl"]).path
        paid = self.call(token, "POST", confirm, json={"card": API_CARD})
        assert paid["status"] == "succeeded", paid
        placed: dict[str, Any] = self.call(token, "GET", f"/api/orders/{order['orderId']}")
        return customer, placed


@pytest.fixture
def api(shop: Shop) -> Iterator[ShopApi]:
    """The shop's API over HTTP, for arranging what a journey acts on."""
    with httpx.Client(base_url=shop.base_url, timeout=20.0) as http:
        yield ShopApi(http)


# --- the shopper's steps -------------------------------------------------------------------


def browse_to_product(visit: Visit, shopper: Shopper) -> None:
    """Home, a search from the search box, a product from the results, one of its options."""
    page = visit.page
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Cloudcart")
    visit.look("home")

    box = page.get_by_role("combobox", name="Search products")
    box.fill(shopper.query)
    box.press("Enter")
    page.wait_for_url("**/search?**")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Results for “{shopper.query}”")
    results = page.get_by_role("region", name="Results")
    expect(results.get_by_role("status")).to_contain_text("product")
    visit.look("search")

    results.get_by_role("link", name=shopper.product, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(shopper.product)
    options = page.get_by_label("Choose an option")
    if options.count():
        choices = options.get_by_role("option").filter(has_text=shopper.option)
        sku = choices.first.get_attribute("value") or ""
        assert sku, f"{shopper.product} has no option “{shopper.option}”"
        # The list sends its form when it changes (site.js); the "Show" button does
        # without JavaScript.
        options.select_option(sku)
        page.wait_for_url(re.compile(rf"[?&]sku={re.escape(sku)}(&|$)"))
        expect(page.get_by_label("Choose an option")).to_have_value(sku)
    expect(page.get_by_role("button", name="Add to cart")).to_be_enabled()
    visit.look("product")


def add_to_cart(visit: Visit, shopper: Shopper) -> None:
    """Add the product; the cart lists it with the chosen option."""
    page = visit.page
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart?done=added")
    expect(page.get_by_role("status").filter(has_text="Added to your cart.")).to_be_visible()
    lines = page.get_by_role("table", name="Items in your cart").get_by_role("row")
    line = lines.filter(has=page.get_by_role("link", name=shopper.product, exact=True))
    expect(line).to_have_count(1)
    expect(line).to_contain_text(shopper.option)
    expect(line.get_by_role("spinbutton")).to_have_value("1")
    visit.look("cart")


def check_out(visit: Visit, shopper: Shopper) -> str:
    """Checkout asks the anonymous shopper to sign in, comes back with the cart merged,
    ships to a new address and pays with the test card; returns the order id."""
    page = visit.page
    page.get_by_role("link", name="Checkout", exact=True).click()
    sign_in_at_provider(page, shopper.email, shopper.name)
    expect(page).to_have_url(re.compile(r"/checkout$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    expect(account_nav(page, "Orders")).to_be_visible()  # signed in now
    summary = page.get_by_role("table", name="Items to order")
    expect(summary.get_by_role("row").filter(has_text=shopper.product)).to_contain_text(
        shopper.option
    )
    visit.look("checkout")

    street = f"{secrets.randbelow(900) + 100} {shopper.name} Street"
    page.get_by_label("Recipient name").fill(shopper.name)
    page.get_by_label("Address line 1").fill(street)
    page.get_by_label("City").fill(shopper.city)
    page.get_by_label("Postal code").fill(shopper.postal_code)
    page.get_by_label("Country code").fill("IN")
    page.get_by_label("Phone for the courier").fill("+919876543210")
    expect(page.get_by_role("radio", name=re.compile(r"^Standard"))).to_be_checked()
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url(re.compile(r"/orders/[^/]+/pay$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pay for your order")
    order_id = urlsplit(page.url).path.split("/")[2]
    visit.look("pay")

    page.get_by_label("Card number").fill(TEST_CARD)
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(f"**/orders/{order_id}?done=paid")
    expect(page.get_by_role("status").filter(has_text="Payment received")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order_id}")
    expect(page.get_by_text(street)).to_be_visible()
    return order_id


def follow_order(visit: Visit, shopper: Shopper) -> None:
    """The order page shows the payment once its webhook is through, then the parcel's
    tracking once the fulfilment partner shipped it."""
    page = visit.page
    reload_until(page, lambda: history_step(page, "Paid").count() == 1, "the payment")
    # Not held for review: the order went on to the fulfilment partner.
    expect(history_step(page, "On hold")).to_have_count(0)
    payment = page.get_by_role("region", name="Payment").get_by_role("definition").first
    expect(payment).to_have_text(re.compile(r"^\s*Paid (INR|₹) ?[\d,]+\.\d\d\s*$"))
    visit.look("order-paid")

    delivery = page.get_by_role("region", name="Delivery")
    tracking = delivery.get_by_role("link", name=re.compile(r"^Track parcel \w+"))
    reload_until(
        page,
        lambda: history_step(page, "Shipped").count() == 1 and tracking.count() == 1,
        "the shipment with its tracking link",
    )
    expect(tracking).to_have_attribute("href", re.compile(r"^https://"))
    expect(delivery.get_by_role("listitem")).to_contain_text(
        re.compile(r"^\s*(Shipped|Delivered)\b")
    )
    visit.look("order-shipped")


def look_around(visit: Visit, shopper: Shopper, order_id: str) -> None:
    """The shopper's orders, notifications, recently viewed products and account."""
    page = visit.page
    account_nav(page, "Orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your orders")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=order_id))
    expect(row).to_contain_text(shopper.product)
    expect(row).to_contain_text(re.compile(r"Shipped|Delivered"))
    visit.look("orders")

    account_nav(page, "Notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    titles = ("Order received", "Payment received", "Your order is on its way")
    reload_until(
        page,
        lambda: all(page.get_by_role("heading", name=t).count() == 1 for t in titles),
        "the order's notifications",
    )
    for title in titles:
        note = page.get_by_role("article", name=re.compile(re.escape(title)))
        expect(note).to_contain_text(order_id)
        # The link's name ends with the notification's title (visually hidden).
        link = note.get_by_role("link", name=re.compile(rf"^View the order\b.*{title}$"))
        expect(link).to_have_attribute("href", f"/orders/{order_id}")
    visit.look("notifications")

    account_nav(page, "Recently viewed").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Recently viewed")
    reload_until(
        page,
        lambda: page.get_by_role("link", name=shopper.product, exact=True).count() == 1,
        "the viewed product",
    )
    visit.look("recent")

    account_nav(page, "Account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    profile = page.get_by_role("region", name="Profile")
    expect(profile.get_by_label("Email")).to_have_value(shopper.email)
    expect(profile.get_by_label("Name")).to_have_value(shopper.name)
    visit.look("account")


def stray(visit: Visit) -> None:
    """Where a shopper finds nothing: a product that does not exist, and the management
    pages, which are not for customers. Both answer with a page of the shop."""
    page = visit.page
    # Chromium logs the 404 and 403 statuses as console errors.
    watch(page).allow(r"status of 40[34]")
    answer = page.goto("/products/no-such-phone")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_role("link", name="Back to the shop")).to_be_visible()
    visit.look("not-found")

    answer = page.goto("/admin")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_role("navigation", name="Management")).to_have_count(0)
    visit.look("not-allowed")


def shop_and_follow(visit: Visit, shopper: Shopper) -> None:
    """The shopper's whole journey."""
    browse_to_product(visit, shopper)
    add_to_cart(visit, shopper)
    order_id = check_out(visit, shopper)
    follow_order(visit, shopper)
    look_around(visit, shopper, order_id)
    stray(visit)


# --- the journeys --------------------------------------------------------------------------


def test_a_shopper_buys_and_follows_the_order_until_it_ships(page: Page) -> None:
    who = unique("asha")
    shopper = Shopper(
        email=f"{who}@example.com",
        name="Asha Journey",
        query="oppo a92",
        # INR 24,990: under the high-value first-order threshold, so it is not held.
        product="OPPO A92",
        option="Shining White",
        city="Bengaluru",
        postal_code="560001",
    )
    shop_and_follow(Visit(page, "desktop"), shopper)


def test_the_same_journey_on_a_phone(phone: Page) -> None:
    who = unique("ravi")
    shopper = Shopper(
        email=f"{who}@example.com",
        name="Ravi Phone",
        query="oppo a92",
        product="OPPO A92",
        option="Twilight Black",
        city="Chennai",
        postal_code="600001",
    )
    shop_and_follow(Visit(phone, "phone"), shopper)


def gross_revenue(page: Page) -> int:
    """The dashboard's gross revenue in INR, in paise (0 while there is none)."""
    figure = page.locator(".kpi").filter(has=page.get_by_text("Gross revenue", exact=True))
    if not figure.count():
        return 0
    value = figure.get_by_text(re.compile(r"^INR [\d,]+\.\d\d$")).inner_text()
    return int(re.sub(r"\D", "", value))


def test_an_admin_sees_revenue_approves_a_held_order_and_resubmits_a_dead_letter(
    page: Page, api: ShopApi
) -> None:
    visit = Visit(page, "desktop")
    page.goto("/")
    sign_in(page, f"{unique('meera')}@example.com", "Meera Admin", admin=True)

    # Dashboard: today's revenue takes in an order paid now.
    page.goto("/admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    page.get_by_role("combobox", name="Period").select_option(label="Today")
    page.get_by_role("button", name="Show", exact=True).click()
    page.wait_for_url("**/admin?period=today")
    before = gross_revenue(page)
    _, paid = api.paid_order(CHEAP_SKU)
    expected = before + int(paid["total"]["amount"])
    reload_until(page, lambda: gross_revenue(page) >= expected, f"gross revenue ≥ {expected}")
    expect(page.get_by_role("status").filter(has_text="(1 day)")).to_be_visible()
    visit.look("admin-dashboard")

    # A new customer's expensive first order is held; the admin finds it and approves it.
    held_customer, held = api.paid_order(EXPENSIVE_SKU)
    held_id = held["orderId"]
    assert held["status"] == "on_hold", held["status"]
    admin_nav(page, "Orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    page.get_by_label("Status").select_option(label="On hold")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/orders?status=on_hold")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=held_id))
    expect(row).to_contain_text("On hold")
    expect(row).to_contain_text("review")
    visit.look("admin-orders-on-hold")

    row.get_by_role("link", name=held_id).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {held_id}")
    risk = page.get_by_role("region", name="Fraud check")
    expect(risk.get_by_role("table", name="Rules that fired")).to_contain_text(
        "high_value_first_order"
    )
    visit.look("admin-order-held")

    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"**/admin/orders/{held_id}?done=approved")
    expect(page.get_by_role("status")).to_have_text("The order was approved and released.")
    history = page.get_by_role("region", name="Status history").get_by_role("listitem")
    expect(history.last).to_have_text(re.compile(r"^(Paid|Fulfilling|Shipped|Delivered) "))
    expect(history.filter(has_text=re.compile(r"^Paid "))).not_to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    visit.look("admin-order-approved")

    # A message whose handler keeps failing ends in the dead letters; resubmitted, it goes.
    admin_token = api.token(unique("ops"), admin=True)
    ping = api.call(
        admin_token, "POST", "/api/admin/diagnostics/pings", json={"failAttempts": FAIL_ATTEMPTS}
    )
    letter_link = page.get_by_role("link", name=DEAD_LETTER_SUBJECT)
    admin_nav(page, "Dead letters").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dead letters")
    reload_until(page, lambda: letter_link.count() > 0, "the dead-lettered ping")
    letters = api.call(
        admin_token,
        "GET",
        "/api/admin/dead-letters",
        params={"entity": "events", "subscription": "diagnostics"},
    )["items"]
    [letter] = [d for d in letters if d["body"]["data"]["pingId"] == ping["pingId"]]
    ours = page.get_by_role("row").filter(
        has=page.locator(f'a[href="/admin/dead-letters/{quote(letter["id"], safe="")}"]')
    )
    expect(ours).to_contain_text("MaxDeliveryCountExceeded")
    visit.look("admin-dead-letters")

    ours.get_by_role("link", name=DEAD_LETTER_SUBJECT).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dead letter: {DEAD_LETTER_SUBJECT}")
    expect(page.get_by_text(ping["pingId"]).first).to_be_visible()
    visit.look("admin-dead-letter")

    confirmations: list[str] = []

    def accept(dialog: Dialog) -> None:
        confirmations.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Resubmit").click()
    page.wait_for_url("**/admin/dead-letters?done=resubmitted")
    assert confirmations == ["Put this message back on its queue?"]
    expect(page.get_by_role("status")).to_have_text("The message was put back on its queue.")
    expect(ours).to_have_count(0)
    # Back on its subscription, the ping's handler runs a fourth time and succeeds.
    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    while (
        api.call(admin_token, "GET", f"/api/admin/diagnostics/pings/{ping['pingId']}")["status"]
        != "processed"
    ):
        assert time.monotonic() < deadline, "the resubmitted ping was not processed"
        page.wait_for_timeout(RELOAD_PAUSE_MS)

    # The rest of the management pages.
    admin_nav(page, "Products & stock").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Products & stock")
    page.get_by_label("Find products").fill("iPhone 15 Pro Max")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url("**/admin/products?q=*")
    visit.look("admin-products")
    page.get_by_role("link", name="iPhone 15 Pro Max", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("iPhone 15 Pro Max")
    expect(page.get_by_role("heading", name=re.compile(EXPENSIVE_SKU))).to_be_visible()
    visit.look("admin-product")

    admin_nav(page, "Integrations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrations")
    links = page.get_by_role("table", name="Partner links").get_by_role("row")
    # The orders paid above went to the fulfilment partner.
    fulfilment = links.filter(has=page.get_by_role("rowheader", name="fulfilment", exact=True))
    expect(fulfilment).to_contain_text("Healthy")
    visit.look("admin-integrations")

    admin_nav(page, "Notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    page.get_by_label("Customer id").fill(held_customer)
    page.get_by_label("Channel").select_option(label="In app")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/notifications?**")
    sent = page.get_by_role("table", name="Notifications, newest first").get_by_role("row")
    expect(sent.filter(has_text="order-placed")).to_contain_text(held_customer)
    visit.look("admin-notifications")
