"""The storefront's cart, checkout, payment and order pages, driven as a browser would.

Payments go through the embedded test gateway: the pay page posts the card to the
payment's confirm URL, and the gateway tells the app the outcome by a signed webhook. Here
no server listens for it, so the site keeps what the gateway sends and
`site.deliver_payment_webhooks()` posts it to the app's webhook route, exactly as the
gateway would have.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.web.security import CART_COOKIE
from tests.unit.web.conftest import Site, csrf, form_value

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "line2": "",
    "city": "Pune",
    "region": "Maharashtra",
    "postalCode": "411001",
    "country": "IN",
    "phone": "",
}
_KEY = re.compile(r'name="idempotencyKey" value="([^"]+)"')


def form_token(browser: TestClient, page: str, action: str) -> str:
    """The CSRF token inside the form posting to `action` on `page`, as a browser would
    send it (so a form that lost its token fails here, not only in a browser)."""
    return form_value(browser.get(page).text, "csrf", action)


def _in_stock(site: Site, at_least: int = 5) -> tuple[str, str, str, int]:
    """(product id, title, SKU, units available) of a demo product with stock."""
    client = TestClient(site.app)
    for item in client.get("/api/catalog/products", params={"limit": 20}).json()["items"]:
        product = client.get(f"/api/catalog/products/{item['productId']}").json()
        for variant in product["variants"]:
            if (variant.get("available") or 0) >= at_least:
                return product["productId"], product["title"], variant["sku"], variant["available"]
    raise AssertionError("no demo product in stock")


def _add(browser: TestClient, product_id: str, sku: str, qty: int = 1) -> Any:
    token = form_token(browser, f"/products/{product_id}", "/cart/items")
    return browser.post(
        "/cart/items", data={"csrf": token, "sku": sku, "productId": product_id, "qty": str(qty)}
    )


def _checkout_form(browser: TestClient, **changes: str) -> dict[str, str]:
    page = browser.get("/checkout")
    assert page.status_code == 200, page.text
    match = _KEY.search(page.text)
    assert match
    token = form_token(browser, "/checkout", "/checkout")
    return {
        "csrf": token,
        "idempotencyKey": match.group(1),
        "addressId": "new",
        "shippingMethod": "standard",
        **ADDRESS,
        **changes,
    }


def _place_order(site: Site, browser: TestClient, sub: str) -> str:
    """Sign in as `sub`, fill the cart and check out with a new address; the order id."""
    site.sign_in(browser, sub)
    product_id, _, sku, _ = _in_stock(site)
    assert _add(browser, product_id, sku).status_code == 303
    placed = browser.post("/checkout", data=_checkout_form(browser))
    assert placed.status_code == 303, placed.text
    match = re.fullmatch(r"/orders/([^/]+)/pay", placed.headers["location"])
    assert match, placed.headers["location"]
    return match.group(1)


def _pay(browser: TestClient, order_id: str, card: str) -> Any:
    token = form_token(browser, f"/orders/{order_id}/pay", f"/orders/{order_id}/pay")
    return browser.post(f"/orders/{order_id}/pay", data={"csrf": token, "card": card})


def _api_cart(site: Site, sub: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        TestClient(site.app).get("/api/cart", headers=site.bearer(sub)).json()["items"]
    )
    return items


# --- cart --------------------------------------------------------------------------------


def test_anonymous_add_to_cart_keeps_the_cart_in_a_cookie(site: Site) -> None:
    browser = site.browser()
    product_id, title, sku, _ = _in_stock(site)
    added = _add(browser, product_id, sku, 2)
    assert added.status_code == 303
    assert added.headers["location"] == "/cart?done=added"
    cookie = next(c for c in added.headers.get_list("set-cookie") if c.startswith(CART_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert browser.cookies.get(CART_COOKIE)
    cart = browser.get("/cart?done=added")
    assert cart.status_code == 200
    assert title in cart.text and sku in cart.text
    assert "Added to your cart." in cart.text
    assert 'name="qty" type="number" min="0" max="99" value="2"' in cart.text
    assert 'href="/checkout"' in cart.text


def test_signing_in_merges_the_anonymous_cart_and_forgets_its_cookie(site: Site) -> None:
    browser = site.browser()
    product_id, title, sku, _ = _in_stock(site)
    _add(browser, product_id, sku)
    assert browser.cookies.get(CART_COOKIE)
    site.sign_in(browser, "merger")
    cart = browser.get("/cart")
    assert cart.status_code == 200
    assert title in cart.text
    assert any(
        c.startswith(f'{CART_COOKIE}=""') or "Max-Age=0" in c
        for c in cart.headers.get_list("set-cookie")
        if c.startswith(CART_COOKIE)
    )
    assert browser.cookies.get(CART_COOKIE) is None
    assert [i["sku"] for i in _api_cart(site, "merger")] == [sku]


def test_quantity_change_and_removal(site: Site) -> None:
    browser = site.browser()
    site.sign_in(browser, "changer")
    product_id, title, sku, _ = _in_stock(site)
    _add(browser, product_id, sku)
    token = form_token(browser, "/cart", f"/cart/items/{sku}")
    changed = browser.post(f"/cart/items/{sku}", data={"csrf": token, "qty": "3"})
    assert changed.headers["location"] == "/cart?done=updated"
    assert [i["quantity"] for i in _api_cart(site, "changer")] == [3]
    assert 'value="3"' in browser.get("/cart").text
    removed = browser.post(
        f"/cart/items/{sku}", data={"csrf": token, "qty": "0", "productId": product_id}
    )
    assert removed.headers["location"] == "/cart?done=removed"
    assert _api_cart(site, "changer") == []
    page = browser.get("/cart?done=removed")
    assert "Your cart is empty." in page.text and title not in page.text


def test_a_refused_add_shows_the_api_message_on_the_cart_page(site: Site) -> None:
    browser = site.browser()
    product_id, _, sku, _ = _in_stock(site)
    available = 4
    stocked = TestClient(site.app).put(
        f"/api/admin/inventory/{sku}",
        json={"available": available},
        headers=site.bearer("stock-admin", admin=True),
    )
    assert stocked.status_code == 200, stocked.text
    refused = _add(browser, product_id, sku, available + 1)
    assert refused.status_code == 409
    assert f"only {available} unit(s)" in refused.text
    assert f'href="/products/{product_id}"' in refused.text
    assert "<h1>Your cart</h1>" in refused.text


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    browser = site.browser()
    site.sign_in(browser, "forged")
    product_id, _, sku, _ = _in_stock(site)
    csrf(browser, "/cart")
    forged = browser.post("/cart/items", data={"sku": sku, "productId": product_id, "qty": "1"})
    assert forged.status_code == 403
    assert "This form has expired" in forged.text
    assert _api_cart(site, "forged") == []


# --- checkout and payment ----------------------------------------------------------------


def test_checkout_needs_sign_in(site: Site) -> None:
    answer = site.browser().get("/checkout")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/auth/login?returnTo=%2Fcheckout"


def test_checkout_with_a_new_address_then_paying_makes_the_order_paid(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "payer")
    pay_page = browser.get(f"/orders/{order_id}/pay")
    assert pay_page.status_code == 200
    assert 'autocomplete="cc-number"' in pay_page.text and 'inputmode="numeric"' in pay_page.text
    assert '<label for="card-number">Card number</label>' in pay_page.text
    assert "4242 4242 4242 4242" in pay_page.text
    paid = _pay(browser, order_id, CARD_OK)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"/orders/{order_id}?done=paid"
    # The order learns of the payment from the gateway's webhook, which has not come yet.
    before = browser.get(f"/orders/{order_id}?done=paid")
    assert "Payment received" in before.text and "Awaiting payment" in before.text
    site.deliver_payment_webhooks()
    after = browser.get(f"/orders/{order_id}?done=paid")
    assert after.status_code == 200
    assert "Payment received" in after.text
    assert '<span class="badge ok">Paid</span>' in after.text
    assert "12 MG Road" in after.text
    # Paid now: the pay page sends the customer to the order.
    assert browser.get(f"/orders/{order_id}/pay").headers["location"] == f"/orders/{order_id}"


def test_a_double_submitted_checkout_places_one_order(site: Site) -> None:
    browser = site.browser()
    site.sign_in(browser, "double")
    product_id, _, sku, _ = _in_stock(site)
    _add(browser, product_id, sku)
    form = _checkout_form(browser)
    first = browser.post("/checkout", data=form)
    second = browser.post("/checkout", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    orders = TestClient(site.app).get("/api/orders", headers=site.bearer("double")).json()
    assert len(orders["items"]) == 1


def test_checkout_offers_the_saved_addresses(site: Site) -> None:
    browser = site.browser()
    site.sign_in(browser, "saver")
    saved = TestClient(site.app).post(
        "/api/me/addresses",
        json={"name": "Ravi K", "line1": "7 Park Street", "city": "Kolkata",
              "postalCode": "700016", "country": "IN"},
        headers=site.bearer("saver"),
    )  # fmt: skip
    assert saved.status_code == 201, saved.text
    address_id = saved.json()["id"]
    product_id, _, sku, _ = _in_stock(site)
    _add(browser, product_id, sku)
    page = browser.get("/checkout")
    assert f'name="addressId" value="{address_id}" checked' in page.text
    assert "7 Park Street" in page.text
    blank = {name: "" for name in ADDRESS}
    placed = browser.post("/checkout", data=_checkout_form(browser, addressId=address_id, **blank))
    assert placed.status_code == 303, placed.text
    [order] = TestClient(site.app).get("/api/orders", headers=site.bearer("saver")).json()["items"]
    assert order["shippingAddress"]["line1"] == "7 Park Street"


def test_checkout_shows_what_is_missing_and_keeps_the_entered_values(site: Site) -> None:
    browser = site.browser()
    site.sign_in(browser, "forgetful")
    product_id, _, sku, _ = _in_stock(site)
    _add(browser, product_id, sku)
    answer = browser.post("/checkout", data=_checkout_form(browser, city=""))
    assert answer.status_code == 422
    assert "Enter the city." in answer.text
    assert 'value="12 MG Road"' in answer.text
    assert (
        TestClient(site.app).get("/api/orders", headers=site.bearer("forgetful")).json()["items"]
        == []
    )


def test_a_declined_card_shows_the_decline(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "declined")
    answer = _pay(browser, order_id, CARD_DECLINED)
    assert answer.status_code == 402
    assert "Your card was declined." in answer.text
    assert 'role="alert"' in answer.text


def test_the_stripe_pay_page_renders_the_payment_element(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "striped")
    # The same shop with Stripe configured (fake keys: the pay page only reads the order,
    # nothing here calls Stripe).
    settings = Settings(
        data_dir=site.settings.data_dir,
        payments_provider="stripe",
        stripe_secret_key=SecretStr("sk_test_fake"),
        stripe_webhook_secret=SecretStr("whsec_fake"),
        stripe_publishable_key="pk_test_fake",
    )
    app = create_app(settings)
    try:
        stripe_browser = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
        stripe_browser.cookies.update(browser.cookies)
        page = stripe_browser.get(f"/orders/{order_id}/pay")
        assert page.status_code == 200, page.text
        order = TestClient(site.app).get(f"/api/orders/{order_id}", headers=site.bearer("striped"))
        secret = order.json()["payment"]["clientSecret"]
        assert 'id="payment-element"' in page.text
        assert 'data-publishable-key="pk_test_fake"' in page.text
        assert f'data-client-secret="{secret}"' in page.text
        assert '<script src="https://js.stripe.com/v3/" defer></script>' in page.text
        assert "/stripe-payment.js" in page.text
        assert 'name="card"' not in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self' https://js.stripe.com;" in policy
        assert "connect-src 'self' https://api.stripe.com;" in policy
        # The script loads on the pay page only.
        assert "stripe-payment.js" not in stripe_browser.get(f"/orders/{order_id}").text
    finally:
        app.state.services.close()


# --- orders ------------------------------------------------------------------------------


def test_another_customers_order_is_not_found(site: Site) -> None:
    order_id = _place_order(site, site.browser(), "owner")
    stranger = site.browser()
    site.sign_in(stranger, "stranger")
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/pay"):
        answer = stranger.get(path)
        assert answer.status_code == 404
        assert "Not found" in answer.text
        assert "12 MG Road" not in answer.text


def test_the_orders_list_shows_the_order(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "lister")
    page = browser.get("/orders")
    assert page.status_code == 200
    assert f'href="/orders/{order_id}"' in page.text
    assert "Awaiting payment" in page.text
    assert browser.get("/orders?cursor=not-a-cursor").status_code == 400


def test_cancelling_an_unpaid_order(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "canceller")
    page = browser.get(f"/orders/{order_id}")
    assert 'data-confirm="Cancel this order?' in page.text
    token = form_token(browser, f"/orders/{order_id}", f"/orders/{order_id}/cancel")
    cancelled = browser.post(f"/orders/{order_id}/cancel", data={"csrf": token})
    assert cancelled.headers["location"] == f"/orders/{order_id}?done=cancelled"
    after = browser.get(f"/orders/{order_id}?done=cancelled")
    assert "Order cancelled" in after.text
    assert '<span class="badge bad">Cancelled</span>' in after.text
    assert "Cancel order</button>" not in after.text


def test_returning_lines_of_a_delivered_order(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "returner")
    _pay(browser, order_id, CARD_OK)
    site.deliver_payment_webhooks()
    admin = TestClient(site.app)
    for status in ("fulfilling", "shipped", "delivered"):
        moved = admin.post(
            f"/api/admin/orders/{order_id}/status",
            json={"status": status},
            headers=site.bearer("boss", admin=True),
        )
        assert moved.status_code == 200, moved.text
    page = browser.get(f"/orders/{order_id}")
    assert "Request a return" in page.text and "Cancel order</button>" not in page.text
    token = form_token(browser, f"/orders/{order_id}", f"/orders/{order_id}/returns")
    nothing = browser.post(
        f"/orders/{order_id}/returns", data={"csrf": token, "reason": "Too small"}
    )
    assert nothing.status_code == 422 and "Choose the items to return." in nothing.text
    asked = browser.post(
        f"/orders/{order_id}/returns",
        data={"csrf": token, "return-0": "yes", "qty-0": "1", "reason": "Too small"},
    )
    assert asked.headers["location"] == f"/orders/{order_id}?done=returned"
    after = browser.get(f"/orders/{order_id}?done=returned")
    assert "Return requested" in after.text and "Too small" in after.text
    assert "Request a return</button>" not in after.text


def test_outcome_codes_show_fixed_messages_only(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "prober")
    page = browser.get(f"/orders/{order_id}?done=%3Cscript%3Ealert(1)%3C/script%3E")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" not in page.text


def test_shopping_pages_carry_no_inline_script_style_or_handlers(site: Site) -> None:
    browser = site.browser()
    order_id = _place_order(site, browser, "strict")
    for path in ("/cart", "/checkout", f"/orders/{order_id}/pay", f"/orders/{order_id}", "/orders"):
        text = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+=", text), path
        assert " style=" not in text, path
