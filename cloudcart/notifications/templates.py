"""Our notification templates (Jinja2) and their renderer.

Files live in `templates/<locale>/<name>/`, one per part of a channel:

- email: `email_subject.txt.j2`, `email.txt.j2`, `email.html.j2` (the HTML extends
  `templates/<locale>/_layout.html.j2`);
- SMS: `sms.txt.j2`; WhatsApp: `whatsapp.txt.j2` (the session-message body);
- in-app: `inapp_title.txt.j2`, `inapp_body.txt.j2`.

Shared HTML pieces live in `templates/_components.html.j2`. Import them (and any macro)
into `.html.j2` files only and never import text macros into HTML: a macro's output takes
the escaping of the template that calls it, so a text macro would bypass autoescaping.

A file missing in a locale falls back to the `DEFAULT_LOCALE` file of the same template.
Only `.html` templates are autoescaped; undefined variables raise (`StrictUndefined`), and
so does printing `None`, so a context that lacks what a template needs fails loudly
instead of sending "Hi None".

Besides the caller's context (`shop`, `customer`, `links`, `data`), templates see:
`first_name` (the customer's first name, or None), `recipient` (the first name, or a
generic form of address in the template's locale), `locale` (of the file being rendered),
`kind` (`transactional` or `marketing`) and, in the email HTML, `subject`.

WhatsApp messages outside the 24-hour session window must use a pre-approved template with
positional placeholders; `WHATSAPP_VARIABLES` fixes what goes in each placeholder, per
template, and `Rendered.variables` carries the values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import quote

import jinja2

__all__ = [
    "DEFAULT_LOCALE",
    "INAPP_LINKS",
    "LOCALES",
    "TEMPLATES",
    "WHATSAPP_VARIABLES",
    "Channel",
    "Kind",
    "Rendered",
    "TemplateSpec",
    "UnknownTemplate",
    "money",
    "render",
    "resolve_locale",
]

Channel = Literal["email", "sms", "whatsapp", "inApp"]
Kind = Literal["transactional", "marketing"]

LOCALES: tuple[str, ...] = ("en", "hi")
DEFAULT_LOCALE = "en"

_TEMPLATE_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class TemplateSpec:
    """One notification template: what it is for and which channels it exists for.

    `sample` is a realistic context that renders every channel in every locale; treat it
    as read-only (copy it before changing anything).
    """

    name: str
    kind: Kind
    channels: tuple[Channel, ...]
    description: str
    sample: Mapping[str, Any]


@dataclass(frozen=True)
class Rendered:
    """A template rendered for one channel.

    `subject` and `html` are set for email only, `title` and `link` for in-app only, and
    `variables` (positional WhatsApp template values, see `WHATSAPP_VARIABLES`) for
    WhatsApp only; otherwise they are None (or empty). `locale` is the locale of the file
    that produced `text`, after fallback.
    """

    template: str
    channel: Channel
    locale: str
    subject: str | None
    text: str
    html: str | None
    title: str | None
    link: str | None
    variables: Mapping[str, str]


class UnknownTemplate(LookupError):
    """No such template, or the template does not exist for the requested channel."""


# ---------------------------------------------------------------------------------------
# Filters


# Symbols we are confident customers recognise; anything else is shown as "CODE 12.34".
_CURRENCY_SYMBOLS: Mapping[str, str] = {
    "INR": "₹",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
}

# ISO 4217 minor-unit exponents that differ from the usual 2.
_CURRENCY_EXPONENTS: Mapping[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def _require_defined(value: object) -> None:
    # Filters receive Undefined objects unchecked; make them fail like a printed variable.
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()


def money(amount_minor_units: int, currency: str) -> str:
    """Format an amount in minor units: `money(129900, "INR")` -> "₹1,299.00", JPY has no
    decimals ("¥1,500"), unknown currencies read "CHF 12.34"."""
    _require_defined(amount_minor_units)
    _require_defined(currency)
    if isinstance(amount_minor_units, bool) or not isinstance(amount_minor_units, int):
        raise TypeError(
            f"money() needs an integer amount in minor units, not {amount_minor_units!r}"
        )
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise ValueError(f"money() needs an ISO 4217 currency code, not {currency!r}")
    code = currency.upper()
    exponent = _CURRENCY_EXPONENTS.get(code, 2)
    major = Decimal(abs(amount_minor_units)).scaleb(-exponent)
    digits = f"{major:,.{exponent}f}"
    sign = "-" if amount_minor_units < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{code} {digits}"


def _item_label(line: Mapping[str, Any]) -> str:
    """A line's product name when the event carries one, else its SKU."""
    _require_defined(line)
    name = line.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    if "sku" not in line:
        raise jinja2.UndefinedError("an order line has neither a name nor a sku")
    return str(line["sku"])


def _http_url(value: object) -> str:
    """The value if it is an http(s) URL, else "" (partner-supplied URLs end up in `href`s,
    so a `javascript:` one must never get through)."""
    _require_defined(value)
    if isinstance(value, str) and re.match(r"https?://", value.strip(), re.IGNORECASE):
        return value.strip()
    return ""


def _path_segment(value: object) -> str:
    """The value quoted for use as one segment of a URL path."""
    _require_defined(value)
    return quote(str(value), safe="")


def _finalize(value: object) -> object:
    # `{{ x }}` with x None would print "None" to a customer: guard optional values instead.
    if value is None:
        raise jinja2.TemplateRuntimeError(
            "a template printed None; guard optional values with {% if %}"
        )
    return value


def _make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"),
            disabled_extensions=(),
            default_for_string=False,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the code; never stat files on every render.
        auto_reload=False,
        finalize=_finalize,
    )
    env.filters["money"] = money
    env.filters["item_label"] = _item_label
    env.filters["http_url"] = _http_url
    env.filters["path_segment"] = _path_segment
    return env


_ENV = _make_environment()

# ---------------------------------------------------------------------------------------
# Per-template data that is not copy


def _compile(expression: str) -> jinja2.environment.TemplateExpression:
    # undefined_to_none=False keeps StrictUndefined strict: a missing field raises.
    return _ENV.compile_expression(expression, undefined_to_none=False)


# The relative storefront link of each in-app notification, as a Jinja expression.
INAPP_LINKS: Mapping[str, str] = MappingProxyType(
    {
        "welcome": '"/account"',
        **dict.fromkeys(
            (
                "order-placed",
                "order-paid",
                "payment-failed",
                "order-shipped",
                "order-delivered",
                "delivery-failed",
                "order-cancelled",
                "return-received",
                "refund-issued",
            ),
            '"/orders/" ~ (data.orderId | path_segment)',
        ),
        "back-in-stock": '"/products/" ~ (data.productId | path_segment)',
        "abandoned-cart": '"/cart"',
        "price-drop": '"/products/" ~ (data.productId | path_segment)',
    }
)

# What goes in each placeholder of the approved WhatsApp template, in order ({{1}}, {{2}},
# ...): (meaning, Jinja expression). The approved templates must use the same order.
# `recipient` is the customer's first name, or a generic form of address ("there" / "ग्राहक").
WHATSAPP_VARIABLES: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        # Meta's authentication templates carry the code only; the expiry is a setting.
        "verify-phone": (("verification code", "data.code"),),
        "order-placed": (
            ("customer first name or generic greeting", "recipient"),
            ("order id", "data.orderId"),
            ("order total", "data.totals.total | money(data.totals.currency)"),
            ("order page URL", "links.order"),
        ),
        "order-paid": (
            ("customer first name or generic greeting", "recipient"),
            ("order id", "data.orderId"),
            ("amount paid", "data.amount | money(data.currency)"),
            ("order page URL", "links.order"),
        ),
        "order-shipped": (
            ("customer first name or generic greeting", "recipient"),
            ("order id", "data.orderId"),
            ("carrier", "data.carrier"),
            (
                "tracking URL, or the tracking number when there is none",
                "(data.trackingUrl | default(none) | http_url) or data.trackingNumber",
            ),
        ),
        "order-delivered": (
            ("customer first name or generic greeting", "recipient"),
            ("order id", "data.orderId"),
            ("order page URL", "links.order"),
        ),
        "delivery-failed": (
            ("customer first name or generic greeting", "recipient"),
            ("order id", "data.orderId"),
            ("the delivery partner's reason", "data.reason"),
            ("order page URL", "links.order"),
        ),
        "back-in-stock": (
            ("customer first name or generic greeting", "recipient"),
            ("product name", "data.name"),
            ("product page URL", "data.url"),
        ),
        "abandoned-cart": (
            ("customer first name or generic greeting", "recipient"),
            ("number of items in the cart", "data.itemCount"),
            ("cart URL", "data.cartUrl"),
        ),
    }
)

# Compiled on first use, not at import: importing the notifications area (every instance
# that sends one) should not pay for compiling expressions it may never evaluate.


@cache
def _link_expression(name: str) -> jinja2.environment.TemplateExpression:
    return _compile(INAPP_LINKS[name])


@cache
def _whatsapp_expressions(name: str) -> tuple[jinja2.environment.TemplateExpression, ...]:
    return tuple(_compile(expression) for _, expression in WHATSAPP_VARIABLES[name])


# How to address a customer whose name we do not know, per locale (WhatsApp {{1}}).
_GENERIC_RECIPIENT: Mapping[str, str] = MappingProxyType({"en": "there", "hi": "ग्राहक"})

# ---------------------------------------------------------------------------------------
# Samples

_SHOP = {"name": "Saffron & Sage", "url": "https://shop.example.com"}
_CUSTOMER = {"name": "Asha Verma", "email": "asha.verma@example.com"}
_ORDER_ID = "ord_01jbq8x6m3t5v7w9y2a4c6e8g0"
_CUSTOMER_ID = "cus_01jbq7r2k4m6p8s0u2w4y6a8c0"


def _sample(
    data: Mapping[str, Any], *, order: bool = True, marketing: bool = False
) -> Mapping[str, Any]:
    links: dict[str, str] = {"account": f"{_SHOP['url']}/account"}
    if order:
        links["order"] = f"{_SHOP['url']}/orders/{_ORDER_ID}"
    if marketing:
        links["unsubscribe"] = f"{_SHOP['url']}/unsubscribe?token=u_9f2c4e6a8b"
    return {"shop": dict(_SHOP), "customer": dict(_CUSTOMER), "links": links, "data": dict(data)}


def _order_data(**fields: Any) -> dict[str, Any]:
    return {"orderId": _ORDER_ID, "customerId": _CUSTOMER_ID, **fields}


_ORDER_CHANNELS: tuple[Channel, ...] = ("email", "sms", "whatsapp", "inApp")

_SPECS: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        name="welcome",
        kind="transactional",
        channels=("email", "inApp"),
        description="A new customer account was created.",
        sample=_sample({"customerId": _CUSTOMER_ID}, order=False),
    ),
    TemplateSpec(
        name="verify-email",
        kind="transactional",
        channels=("email",),
        description="A code that proves the customer owns an email address.",
        sample=_sample({"code": "483920", "minutes": 10}, order=False),
    ),
    TemplateSpec(
        name="verify-phone",
        kind="transactional",
        channels=("sms", "whatsapp"),
        description="A code that proves the customer owns a phone number. "
        "WhatsApp variables: 1 code.",
        sample=_sample({"code": "271845", "minutes": 10}, order=False),
    ),
    TemplateSpec(
        name="order-placed",
        kind="transactional",
        channels=_ORDER_CHANNELS,
        description="The order was placed and awaits payment. "
        "WhatsApp variables: 1 recipient, 2 order id, 3 total, 4 order URL.",
        sample=_sample(
            _order_data(
                status="pending_payment",
                lines=[
                    {
                        "sku": "KURTA-IND-M",
                        "quantity": 1,
                        "unitPrice": 129900,
                        "name": "Indigo block-print kurta (M)",
                    },
                    {"sku": "SCARF-SLK-01", "quantity": 2, "unitPrice": 49900},
                ],
                totals={
                    "currency": "INR",
                    "subtotal": 229700,
                    "shipping": 9900,
                    "tax": 35039,
                    "taxInclusive": True,
                    "total": 239600,
                },
            )
        ),
    ),
    TemplateSpec(
        name="order-paid",
        kind="transactional",
        channels=_ORDER_CHANNELS,
        description="The order's payment was captured. "
        "WhatsApp variables: 1 recipient, 2 order id, 3 amount, 4 order URL.",
        sample=_sample(
            _order_data(
                paymentId="pay_01jbq9a1b2c3d4e5f6g7h8j9k0",
                provider="stripe",
                amount=239600,
                currency="INR",
            )
        ),
    ),
    TemplateSpec(
        name="payment-failed",
        kind="transactional",
        channels=("email", "sms", "inApp"),
        description="The order's payment failed; the order will not proceed.",
        sample=_sample(_order_data(reason="Your card was declined.")),
    ),
    TemplateSpec(
        name="order-shipped",
        kind="transactional",
        channels=_ORDER_CHANNELS,
        description="A parcel of the order left the warehouse. "
        "WhatsApp variables: 1 recipient, 2 order id, 3 carrier, 4 tracking URL or number.",
        sample=_sample(
            _order_data(
                shipmentId="shp_7731904",
                carrier="Delhivery",
                trackingNumber="DLV1234567890",
                trackingUrl="https://www.delhivery.com/track/package/DLV1234567890",
                lines=[{"sku": "KURTA-IND-M", "quantity": 1}],
                partial=True,
            )
        ),
    ),
    TemplateSpec(
        name="order-delivered",
        kind="transactional",
        channels=_ORDER_CHANNELS,
        description="A parcel of the order was delivered. "
        "WhatsApp variables: 1 recipient, 2 order id, 3 order URL.",
        sample=_sample(_order_data(shipmentId="shp_7731904")),
    ),
    TemplateSpec(
        name="delivery-failed",
        kind="transactional",
        channels=_ORDER_CHANNELS,
        description="The delivery partner could not deliver a parcel. "
        "WhatsApp variables: 1 recipient, 2 order id, 3 reason, 4 order URL.",
        sample=_sample(
            _order_data(shipmentId="shp_7731904", reason="Customer not available at address")
        ),
    ),
    TemplateSpec(
        name="order-cancelled",
        kind="transactional",
        channels=("email", "sms", "inApp"),
        description="The order was cancelled.",
        sample=_sample(_order_data(reason="Cancelled at your request")),
    ),
    TemplateSpec(
        name="return-received",
        kind="transactional",
        channels=("email", "inApp"),
        description="Returned items reached the warehouse.",
        sample=_sample(
            _order_data(lines=[{"sku": "SCARF-SLK-01", "quantity": 1}], condition="resellable")
        ),
    ),
    TemplateSpec(
        name="refund-issued",
        kind="transactional",
        channels=("email", "sms", "inApp"),
        description="Money went back to the customer (a return, or a cancellation after payment).",
        sample=_sample(
            _order_data(
                refundId="re_01jbqb5c7d9f1h3k5m7p9r1t3v",
                amount=49900,
                currency="INR",
                reason="Returned item",
                kind="refund",
            )
        ),
    ),
    TemplateSpec(
        name="back-in-stock",
        kind="transactional",
        channels=_ORDER_CHANNELS,
        description="A product the customer asked about is available again. "
        "WhatsApp variables: 1 recipient, 2 product name, 3 product URL.",
        sample=_sample(
            {
                "productId": "prd_01jbq2n4p6r8t0v2x4z6b8d0f2",
                "sku": "KURTA-IND-M",
                "name": "Indigo block-print kurta",
                "url": "https://shop.example.com/products/indigo-block-print-kurta",
                "price": 129900,
                "currency": "INR",
            },
            order=False,
        ),
    ),
    TemplateSpec(
        name="abandoned-cart",
        kind="marketing",
        channels=("email", "whatsapp", "inApp"),
        description="A reminder about items left in the cart. "
        "WhatsApp variables: 1 recipient, 2 item count, 3 cart URL.",
        sample=_sample(
            {
                "cartUrl": "https://shop.example.com/cart",
                "lines": [
                    {"sku": "KURTA-IND-M", "name": "Indigo block-print kurta (M)", "quantity": 1},
                    {"sku": "SCARF-SLK-01", "quantity": 2},
                ],
                "itemCount": 3,
            },
            order=False,
            marketing=True,
        ),
    ),
    TemplateSpec(
        name="price-drop",
        kind="marketing",
        channels=("email", "inApp"),
        description="A product the customer viewed in the last 30 days got cheaper "
        "(at most one a week per customer).",
        sample=_sample(
            {
                "productId": "prd_01jbq2n4p6r8t0v2x4z6b8d0f2",
                "sku": "KURTA-IND-M",
                "name": "Indigo block-print kurta",
                "url": "https://shop.example.com/products/prd_01jbq2n4p6r8t0v2x4z6b8d0f2",
                "price": 109900,
                "previousPrice": 129900,
                "currency": "INR",
            },
            order=False,
            marketing=True,
        ),
    ),
    TemplateSpec(
        name="ops-alert",
        kind="transactional",
        channels=("email",),
        description="An alert for the shop's operators (English only).",
        sample={
            "shop": dict(_SHOP),
            "customer": {"name": None, "email": "ops@shop.example.com"},
            "links": {"account": f"{_SHOP['url']}/account"},
            "data": {
                "alertType": "ops.dead_lettered",
                "subject": "A message was dead-lettered on events/notifications",
                "summary": "The notifications subscription gave up on an order.paid event "
                "after 10 deliveries.",
                "details": {
                    "entity": "events",
                    "subscription": "notifications",
                    "messageId": "evt_01jbqc0d2f4h6k8m0p2r4t6v8x",
                    "reason": "MaxDeliveryCountExceeded",
                    "deliveryCount": "10",
                },
            },
        },
    ),
)

TEMPLATES: Mapping[str, TemplateSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})

# ---------------------------------------------------------------------------------------
# Rendering


def resolve_locale(requested: str | None) -> str:
    """The supported locale for a requested one: 'hi-IN' -> 'hi'; 'en-GB' -> 'en';
    unknown or None -> DEFAULT_LOCALE. An Accept-Language value counts by its first tag."""
    if not requested:
        return DEFAULT_LOCALE
    first = re.split(r"[,;]", requested, maxsplit=1)[0]
    language = re.split(r"[-_]", first.strip(), maxsplit=1)[0].lower()
    return language if language in LOCALES else DEFAULT_LOCALE


@lru_cache(maxsize=1024)
def _load(locale: str, name: str, part: str) -> tuple[jinja2.Template, str]:
    """The template of one part, and the locale it is in (after fallback)."""
    for candidate in dict.fromkeys((locale, DEFAULT_LOCALE)):
        try:
            return _ENV.get_template(f"{candidate}/{name}/{part}"), candidate
        except jinja2.TemplateNotFound:
            continue
    raise jinja2.TemplateNotFound(f"{DEFAULT_LOCALE}/{name}/{part}")


def _first_name(context: Mapping[str, Any]) -> str | None:
    customer = context.get("customer")
    name = customer.get("name") if isinstance(customer, Mapping) else None
    if not isinstance(name, str) or not name.split():
        return None
    return name.split()[0]


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines left by template logic."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _evaluate(expression: jinja2.environment.TemplateExpression, context: Mapping[str, Any]) -> str:
    value = expression(**context)
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    text = "" if value is None else _one_line(str(value))
    if not text:
        # Twilio rejects empty content variables; a link to nowhere is no better.
        raise jinja2.TemplateRuntimeError("a template value evaluated to nothing")
    # WhatsApp template parameters may not hold newlines, tabs or runs of spaces.
    return text


def render(name: str, channel: Channel, locale: str | None, context: Mapping[str, Any]) -> Rendered:
    """Render template `name` for `channel` in `locale` (resolved with `resolve_locale`;
    a translation missing a file falls back to the `DEFAULT_LOCALE` file).

    Raises UnknownTemplate for an unknown name or a channel the template does not have,
    and jinja2.UndefinedError (or TemplateRuntimeError) when the context lacks something
    the template needs.
    """
    spec = TEMPLATES.get(name)
    if spec is None:
        raise UnknownTemplate(f"no notification template {name!r}")
    if channel not in spec.channels:
        raise UnknownTemplate(f"template {name!r} has no {channel!r} channel")
    requested = resolve_locale(locale)
    first_name = _first_name(context)

    def values(used: str, **extra: Any) -> dict[str, Any]:
        generic = _GENERIC_RECIPIENT.get(used, _GENERIC_RECIPIENT[DEFAULT_LOCALE])
        return {
            **context,
            "first_name": first_name,
            "recipient": first_name or generic,
            "locale": used,
            "kind": spec.kind,
            **extra,
        }

    def part(filename: str, **extra: Any) -> tuple[str, str]:
        template, used = _load(requested, name, filename)
        return template.render(values(used, **extra)), used

    subject = html = title = link = None
    variables: Mapping[str, str] = MappingProxyType({})
    if channel == "email":
        subject = _one_line(part("email_subject.txt.j2")[0])
        body, used = part("email.txt.j2")
        html = part("email.html.j2", subject=subject)[0].strip()
    elif channel == "sms":
        body, used = part("sms.txt.j2")
    elif channel == "whatsapp":
        body, used = part("whatsapp.txt.j2")
        scope = values(used)
        variables = MappingProxyType(
            {
                str(position): _evaluate(expression, scope)
                for position, expression in enumerate(_whatsapp_expressions(name), start=1)
            }
        )
    else:
        title = _one_line(part("inapp_title.txt.j2")[0])
        body, used = part("inapp_body.txt.j2")
        link = _evaluate(_link_expression(name), values(used))
    return Rendered(
        template=name,
        channel=channel,
        locale=used,
        subject=subject,
        text=_tidy(body),
        html=html,
        title=title,
        link=link,
        variables=variables,
    )
