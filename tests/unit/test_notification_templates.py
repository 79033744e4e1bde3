"""Notification templates: every template renders in every channel and locale, escaping,
strictness, money formatting, locale fallback, SMS length, links and WhatsApp variables."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jinja2
import pytest

from cloudcart.notifications import templates as tpl
from cloudcart.notifications.templates import (
    DEFAULT_LOCALE,
    LOCALES,
    TEMPLATES,
    WHATSAPP_VARIABLES,
    Rendered,
    UnknownTemplate,
    money,
    render,
    resolve_locale,
)

TEMPLATE_DIR = Path(tpl.__file__).with_name("templates")

PARTS = {
    "email": {"email_subject.txt.j2", "email.txt.j2", "email.html.j2"},
    "sms": {"sms.txt.j2"},
    "whatsapp": {"whatsapp.txt.j2"},
    "inApp": {"inapp_title.txt.j2", "inapp_body.txt.j2"},
}
# Templates we deliberately keep in English only.
ENGLISH_ONLY = {"ops-alert"}

ALL_CASES = [
    pytest.param(name, channel, locale, id=f"{name}-{channel}-{locale}")
    for name, spec in TEMPLATES.items()
    for channel in spec.channels
    for locale in LOCALES
]


def sample(name: str) -> dict[str, Any]:
    """A private copy of a template's sample context, safe to change."""
    return copy.deepcopy(dict(TEMPLATES[name].sample))


def with_data(name: str, **changes: Any) -> dict[str, Any]:
    context = sample(name)
    context["data"].update(changes)
    return context


def without_data(name: str, key: str) -> dict[str, Any]:
    context = sample(name)
    del context["data"][key]
    return context


# ---------------------------------------------------------------------------------------
# The catalogue and the files


def test_catalogue_lists_the_agreed_templates() -> None:
    assert set(TEMPLATES) == {
        "welcome",
        "verify-email",
        "verify-phone",
        "order-placed",
        "order-paid",
        "payment-failed",
        "order-shipped",
        "order-delivered",
        "delivery-failed",
        "order-cancelled",
        "return-received",
        "refund-issued",
        "back-in-stock",
        "abandoned-cart",
        "price-drop",
        "ops-alert",
    }
    assert LOCALES == ("en", "hi")
    assert DEFAULT_LOCALE == "en"
    assert {name for name, spec in TEMPLATES.items() if spec.kind == "marketing"} == {
        "abandoned-cart",
        "price-drop",
    }
    for name, spec in TEMPLATES.items():
        assert spec.name == name
        assert spec.channels and len(set(spec.channels)) == len(spec.channels)
        assert set(spec.channels) <= set(PARTS)
        assert spec.description


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_samples_have_the_common_context_and_serialize(name: str) -> None:
    context = TEMPLATES[name].sample
    assert {"shop", "customer", "links", "data"} <= set(context)
    assert {"name", "url"} <= set(context["shop"])
    if TEMPLATES[name].kind == "marketing":
        assert context["links"]["unsubscribe"].startswith("https://")
    json.dumps(context)  # previews send samples as JSON


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_locale_has_exactly_the_files_of_the_template_channels(name: str, locale: str) -> None:
    directory = TEMPLATE_DIR / locale / name
    if locale != DEFAULT_LOCALE and name in ENGLISH_ONLY:
        assert not directory.exists()
        return
    expected = set().union(*(PARTS[channel] for channel in TEMPLATES[name].channels))
    assert {path.name for path in directory.iterdir()} == expected


def test_no_template_directory_without_a_spec() -> None:
    for locale in LOCALES:
        directories = {p.name for p in (TEMPLATE_DIR / locale).iterdir() if p.is_dir()}
        assert directories <= set(TEMPLATES)


# ---------------------------------------------------------------------------------------
# Every template, channel and locale


@pytest.mark.parametrize(("name", "channel", "locale"), ALL_CASES)
def test_sample_renders(name: str, channel: Any, locale: str) -> None:
    rendered = render(name, channel, locale, TEMPLATES[name].sample)

    assert isinstance(rendered, Rendered)
    assert (rendered.template, rendered.channel) == (name, channel)
    expected_locale = DEFAULT_LOCALE if name in ENGLISH_ONLY else locale
    assert rendered.locale == expected_locale
    assert rendered.text and rendered.text == rendered.text.strip()
    assert "None" not in rendered.text
    assert "\n\n\n" not in rendered.text
    if expected_locale == "hi":
        assert any("\u0900" <= char <= "\u097f" for char in rendered.text), "not translated"

    if channel == "email":
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html and rendered.html.startswith("<!DOCTYPE html>")
        assert f'<html lang="{expected_locale}">' in rendered.html
        assert "Saffron &amp; Sage" in rendered.html  # the shop name, escaped
        assert "None" not in rendered.subject + rendered.html
    else:
        assert rendered.subject is None and rendered.html is None
    if channel == "inApp":
        assert rendered.title and "\n" not in rendered.title
        assert rendered.link and rendered.link.startswith("/")
    else:
        assert rendered.title is None and rendered.link is None
    if channel == "whatsapp":
        assert list(rendered.variables) == [
            str(i) for i in range(1, len(WHATSAPP_VARIABLES[name]) + 1)
        ]
        assert all(value and "\n" not in value for value in rendered.variables.values())
    else:
        assert dict(rendered.variables) == {}


@pytest.mark.parametrize(
    ("name", "locale"),
    [(name, locale) for name, s in TEMPLATES.items() if "sms" in s.channels for locale in LOCALES],
)
def test_sms_fits_two_segments(name: str, locale: str) -> None:
    assert len(render(name, "sms", locale, TEMPLATES[name].sample).text) <= 320


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_without_tracking_url_fits_and_shows_the_number(locale: str) -> None:
    context = with_data("order-shipped", trackingUrl=None, partial=False)
    text = render("order-shipped", "sms", locale, context).text
    assert len(text) <= 320
    assert "DLV1234567890" in text
    assert context["links"]["order"] in text


# ---------------------------------------------------------------------------------------
# Strictness


@pytest.mark.parametrize("channel", ["email", "sms", "whatsapp", "inApp"])
def test_missing_field_raises(channel: Any) -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("order-paid", channel, "en", without_data("order-paid", "amount"))


@pytest.mark.parametrize("channel", ["email", "sms", "whatsapp", "inApp"])
def test_missing_order_id_raises(channel: Any) -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("order-shipped", channel, "hi", without_data("order-shipped", "orderId"))


def test_missing_line_field_raises() -> None:
    context = sample("order-placed")
    del context["data"]["lines"][0]["unitPrice"]
    with pytest.raises(jinja2.UndefinedError):
        render("order-placed", "email", "en", context)


def test_missing_link_raises() -> None:
    context = sample("order-delivered")
    del context["links"]["order"]
    with pytest.raises(jinja2.UndefinedError):
        render("order-delivered", "sms", "en", context)


def test_marketing_without_unsubscribe_link_raises() -> None:
    context = sample("abandoned-cart")
    del context["links"]["unsubscribe"]
    with pytest.raises(jinja2.UndefinedError):
        render("abandoned-cart", "email", "en", context)


def test_printing_none_raises() -> None:
    with pytest.raises(jinja2.TemplateRuntimeError):
        render("order-shipped", "sms", "en", with_data("order-shipped", carrier=None))


def test_empty_whatsapp_variable_raises() -> None:
    with pytest.raises(jinja2.TemplateRuntimeError):
        render("order-shipped", "whatsapp", "en", with_data("order-shipped", carrier=" "))


# ---------------------------------------------------------------------------------------
# Escaping


@pytest.mark.parametrize(
    ("name", "locale"),
    [
        (name, locale)
        for name, s in TEMPLATES.items()
        if "email" in s.channels
        for locale in LOCALES
    ],
)
def test_html_escapes_the_customer_name_and_text_keeps_it(name: str, locale: str) -> None:
    context = sample(name)
    context["customer"]["name"] = "<script>alert(1)</script>"
    rendered = render(name, "email", locale, context)
    assert rendered.html is not None
    assert "<script>" not in rendered.html
    if name != "ops-alert":  # operators are not greeted by name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
        assert "<script>alert(1)</script>" in rendered.text


def test_html_escapes_event_data_and_drops_non_http_tracking_links() -> None:
    context = with_data(
        "order-shipped", carrier='<b onclick="x">Evil</b>', trackingUrl="javascript:alert(1)"
    )
    rendered = render("order-shipped", "email", "en", context)
    assert rendered.html is not None
    assert "<b onclick" not in rendered.html
    assert "&lt;b onclick=&#34;x&#34;&gt;Evil&lt;/b&gt;" in rendered.html
    assert "javascript:" not in rendered.html
    assert "javascript:" not in rendered.text
    whatsapp = render("order-shipped", "whatsapp", "en", context)
    assert whatsapp.variables["4"] == "DLV1234567890"


def test_text_parts_are_not_escaped() -> None:
    rendered = render("welcome", "email", "en", sample("welcome"))
    assert rendered.subject == "Welcome to Saffron & Sage"
    assert "Saffron & Sage" in rendered.text
    assert "&amp;" not in rendered.text


# ---------------------------------------------------------------------------------------
# money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (129900, "INR", "₹1,299.00"),
        (4200, "EUR", "€42.00"),
        (1050, "USD", "$10.50"),
        (99, "GBP", "£0.99"),
        (0, "INR", "₹0.00"),
        (1234, "CHF", "CHF 12.34"),
        (1500, "JPY", "¥1,500"),
        (1500000, "KRW", "KRW 1,500,000"),
        (1234, "KWD", "KWD 1.234"),
        (-2500, "USD", "-$25.00"),
        (12345678901, "INR", "₹123,456,789.01"),
        (1050, "usd", "$10.50"),
    ],
)
def test_money(amount: int, currency: str, expected: str) -> None:
    assert money(amount, currency) == expected


@pytest.mark.parametrize("amount", [12.5, "1299", True, None])
def test_money_rejects_non_integer_amounts(amount: Any) -> None:
    with pytest.raises(TypeError):
        money(amount, "INR")


@pytest.mark.parametrize("currency", ["", "RUPEE", "₹", None])
def test_money_rejects_bad_currency_codes(currency: Any) -> None:
    with pytest.raises(ValueError, match="currency"):
        money(100, currency)


# ---------------------------------------------------------------------------------------
# Locales


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("hi-IN", "hi"),
        ("hi_IN", "hi"),
        ("HI", "hi"),
        ("hi", "hi"),
        ("en-GB", "en"),
        ("en", "en"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
        ("hi-IN,en;q=0.8", "hi"),
        ("  hi-in ", "hi"),
    ],
)
def test_resolve_locale(requested: str | None, expected: str) -> None:
    assert resolve_locale(requested) == expected


def test_unknown_locale_renders_english() -> None:
    rendered = render("order-paid", "sms", "fr-FR", sample("order-paid"))
    assert rendered.locale == "en"
    assert "Payment of" in rendered.text


def test_missing_translation_falls_back_to_english_file() -> None:
    rendered = render("ops-alert", "email", "hi-IN", sample("ops-alert"))
    assert rendered.locale == "en"
    assert rendered.html is not None and '<html lang="en">' in rendered.html


def test_hindi_is_hindi() -> None:
    rendered = render("order-shipped", "email", "hi", sample("order-shipped"))
    assert rendered.locale == "hi"
    assert rendered.subject is not None and "रास्ते में है" in rendered.subject
    assert rendered.html is not None and '<html lang="hi">' in rendered.html


# ---------------------------------------------------------------------------------------
# Greetings, links, WhatsApp variables, marketing


@pytest.mark.parametrize(("locale", "greeting"), [("en", "Hello,"), ("hi", "नमस्ते,")])
def test_customer_without_name_is_greeted_generically(locale: str, greeting: str) -> None:
    context = sample("order-paid")
    context["customer"]["name"] = None
    rendered = render("order-paid", "email", locale, context)
    assert rendered.text.startswith(greeting + "\n")
    assert rendered.html is not None and f">{greeting}</p>" in rendered.html


def test_customer_is_greeted_by_first_name() -> None:
    assert render("welcome", "email", "en", sample("welcome")).text.startswith("Hi Asha,\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("welcome", "/account"),
        ("order-placed", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("order-paid", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("payment-failed", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("order-shipped", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("order-delivered", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("delivery-failed", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("order-cancelled", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("return-received", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("refund-issued", "/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"),
        ("back-in-stock", "/products/prd_01jbq2n4p6r8t0v2x4z6b8d0f2"),
        ("abandoned-cart", "/cart"),
    ],
)
def test_inapp_links(name: str, expected: str) -> None:
    assert render(name, "inApp", "en", sample(name)).link == expected
    assert render(name, "inApp", "hi", sample(name)).link == expected


def test_inapp_link_quotes_the_id() -> None:
    context = with_data("order-paid", orderId="ord/1 2")
    assert render("order-paid", "inApp", "en", context).link == "/orders/ord%2F1%202"


def test_every_whatsapp_template_documents_its_variables() -> None:
    with_whatsapp = {name for name, spec in TEMPLATES.items() if "whatsapp" in spec.channels}
    assert set(WHATSAPP_VARIABLES) == with_whatsapp
    for variables in WHATSAPP_VARIABLES.values():
        assert all(meaning and expression for meaning, expression in variables)


def test_whatsapp_variables_order_shipped() -> None:
    rendered = render("order-shipped", "whatsapp", "en", sample("order-shipped"))
    assert dict(rendered.variables) == {
        "1": "Asha",
        "2": "ord_01jbq8x6m3t5v7w9y2a4c6e8g0",
        "3": "Delhivery",
        "4": "https://www.delhivery.com/track/package/DLV1234567890",
    }
    context = with_data("order-shipped", trackingUrl=None)
    context["customer"]["name"] = None
    rendered = render("order-shipped", "whatsapp", "en", context)
    assert rendered.variables["1"] == "there"
    assert rendered.variables["4"] == "DLV1234567890"
    assert "Tracking number: DLV1234567890" in rendered.text


def test_whatsapp_tracking_url_may_be_absent() -> None:
    context = without_data("order-shipped", "trackingUrl")
    assert render("order-shipped", "whatsapp", "en", context).variables["4"] == "DLV1234567890"


def test_whatsapp_generic_recipient_is_localized() -> None:
    context = sample("order-paid")
    context["customer"]["name"] = None
    rendered = render("order-paid", "whatsapp", "hi", context)
    assert rendered.variables["1"] == "ग्राहक"
    assert rendered.text.startswith("नमस्ते ग्राहक,")


def test_whatsapp_variables_other_templates() -> None:
    assert dict(render("verify-phone", "whatsapp", "en", sample("verify-phone")).variables) == {
        "1": "271845"
    }
    placed = render("order-placed", "whatsapp", "hi", sample("order-placed")).variables
    assert placed["3"] == "₹2,396.00"
    assert placed["4"] == "https://shop.example.com/orders/ord_01jbq8x6m3t5v7w9y2a4c6e8g0"
    paid = render("order-paid", "whatsapp", "en", sample("order-paid")).variables
    assert paid["3"] == "₹2,396.00"
    failed = with_data("delivery-failed", reason="Door locked.\nCalled twice")
    assert render("delivery-failed", "whatsapp", "en", failed).variables["3"] == (
        "Door locked. Called twice"
    )
    stock = render("back-in-stock", "whatsapp", "en", sample("back-in-stock")).variables
    assert stock["2"] == "Indigo block-print kurta"
    cart = render("abandoned-cart", "whatsapp", "en", sample("abandoned-cart")).variables
    assert dict(cart) == {"1": "Asha", "2": "3", "3": "https://shop.example.com/cart"}


@pytest.mark.parametrize("locale", LOCALES)
def test_marketing_email_has_unsubscribe_link(locale: str) -> None:
    context = sample("abandoned-cart")
    url = context["links"]["unsubscribe"]
    rendered = render("abandoned-cart", "email", locale, context)
    assert rendered.html is not None and f'href="{url}"' in rendered.html
    assert url in rendered.text


@pytest.mark.parametrize(
    "name",
    [n for n, s in TEMPLATES.items() if "email" in s.channels and s.kind == "transactional"],
)
def test_transactional_email_has_no_unsubscribe_link(name: str) -> None:
    rendered = render(name, "email", "en", sample(name))
    assert rendered.html is not None and "Unsubscribe" not in rendered.html
    assert "Unsubscribe" not in rendered.text


def test_marketing_whatsapp_says_how_to_opt_out() -> None:
    assert "STOP" in render("abandoned-cart", "whatsapp", "en", sample("abandoned-cart")).text
    assert "STOP" in render("abandoned-cart", "whatsapp", "hi", sample("abandoned-cart")).text


# ---------------------------------------------------------------------------------------
# Copy variants the samples do not cover


def test_order_placed_with_tax_on_top_and_free_shipping() -> None:
    context = sample("order-placed")
    context["data"]["totals"].update(shipping=0, taxInclusive=False, tax=4135, total=233835)
    rendered = render("order-placed", "email", "en", context)
    assert "Shipping: Free" in rendered.text
    assert "Tax: ₹41.35" in rendered.text
    assert "includes" not in rendered.text
    assert rendered.html is not None and "Free" in rendered.html
    del context["data"]["totals"]["taxInclusive"]
    assert "Tax: ₹41.35" in render("order-placed", "email", "en", context).text


def test_lines_show_names_when_present_and_skus_otherwise() -> None:
    text = render("order-placed", "email", "en", sample("order-placed")).text
    assert "1 \N{MULTIPLICATION SIGN} Indigo block-print kurta (M): ₹1,299.00" in text
    assert "2 \N{MULTIPLICATION SIGN} SCARF-SLK-01: ₹998.00" in text


def test_full_shipment_does_not_mention_the_rest() -> None:
    context = with_data("order-shipped", partial=False)
    rendered = render("order-shipped", "email", "en", context)
    assert rendered.subject == "Your order ord_01jbq8x6m3t5v7w9y2a4c6e8g0 is on its way"
    assert "separately" not in rendered.text
    partial = render("order-shipped", "email", "en", sample("order-shipped"))
    assert partial.subject is not None and partial.subject.startswith("Part of your order")


def test_refund_after_cancellation() -> None:
    context = with_data("refund-issued", kind="cancellation", amount=239600)
    rendered = render("refund-issued", "email", "en", context)
    assert "was cancelled, we've refunded ₹2,396.00" in rendered.text
    assert rendered.subject == "Your refund of ₹2,396.00 is on its way"


def test_damaged_return() -> None:
    context = with_data("return-received", condition="damaged")
    assert "damaged" in render("return-received", "email", "en", context).text
    assert "क्षतिग्रस्त" in render("return-received", "inApp", "hi", context).text


def test_back_in_stock_without_price() -> None:
    context = sample("back-in-stock")
    del context["data"]["price"], context["data"]["currency"]
    for locale in LOCALES:
        rendered = render("back-in-stock", "email", locale, context)
        assert "₹" not in rendered.text


def test_single_item_cart_is_singular() -> None:
    context = with_data(
        "abandoned-cart", itemCount=1, lines=[{"sku": "KURTA-IND-M", "quantity": 1}]
    )
    assert "1 item in your cart" in render("abandoned-cart", "email", "en", context).text
    assert "1 item waiting" in render("abandoned-cart", "inApp", "en", context).text


def test_verification_minutes() -> None:
    context = with_data("verify-email", minutes=1)
    assert "expires in 1 minute." in render("verify-email", "email", "en", context).text
    subject = render("verify-email", "email", "en", sample("verify-email")).subject
    assert subject == "483920 is your Saffron & Sage verification code"


# ---------------------------------------------------------------------------------------
# Unknown templates and channels


def test_unknown_template_raises() -> None:
    with pytest.raises(UnknownTemplate):
        render("order-teleported", "email", "en", sample("order-paid"))


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("verify-email", "sms"),
        ("welcome", "whatsapp"),
        ("ops-alert", "inApp"),
        ("order-paid", "fax"),
    ],
)
def test_unknown_channel_raises(name: str, channel: Any) -> None:
    with pytest.raises(UnknownTemplate):
        render(name, channel, "en", sample(name))


def test_unknown_template_is_a_lookup_error() -> None:
    assert issubclass(UnknownTemplate, LookupError)
