"""The storefront's account pages: profile, addresses, preferences, data, notifications
and recently viewed.

Everything here belongs to the signed-in customer and is read and changed through
`/api/me/...` only, so another customer's data cannot appear: the API answers only the
caller's own partition. A form the API refuses for its values (422 with `errors`) shows
the account page again with each message next to its field and the values as entered.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Path, Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web.client import ApiClient, ApiError
from cloudcart.web.forms import ADDRESS_FIELDS, PRODUCT_ID, SKU, field_errors, segment
from cloudcart.web.pages import Page, notices, open_form, open_page, web_router
from cloudcart.web.security import (
    CART_COOKIE,
    SESSION_COOKIE,
    VISITOR_COOKIE,
    clear_cookie,
)

router = web_router()

ACCOUNT = "/account"
EXPORT_FILENAME = "cloudcart-export.json"
FEED_PAGE_SIZE = 20
RECENT_LIMIT = 24
CONSENT_HISTORY_SHOWN = 10

PROFILE_FIELDS = ("name", "email", "phone", "locale", "timeZone")
# Optional on the API: a blank input means "none" there, not an empty string.
_ADDRESS_OPTIONAL = frozenset({"line2", "region", "postalCode", "phone"})
_API_TRIMS = frozenset({"name", "line1", "city"})

# The shape of the ids the API gives addresses and notifications: any other is a 404.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

ACCOUNT_DONE: Mapping[str, str] = {
    "profile": "Your profile is saved.",
    "profile-unchanged": "Nothing to save: your profile is as it was.",
    "address-added": "The address is added.",
    "address-saved": "The address is saved.",
    "address-deleted": "The address is deleted.",
    "preferences": "Your preferences are saved.",
    "notify-ended": "That back-in-stock alert is ended.",
}
NOTIFICATIONS_DONE: Mapping[str, str] = {
    "read": "The notification is marked as read.",
    "read-all": "All notifications are marked as read.",
}
RECENT_DONE: Mapping[str, str] = {"cleared": "Your browsing history is cleared."}

CHANNEL_LABELS: Mapping[str, str] = {
    "email": "Email",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "push": "Push notifications",
    "inApp": "In the shop and app",
}
KIND_LABELS: Mapping[str, str] = {
    "transactional": "Orders and account",
    "marketing": "Offers and reminders",
}
SOURCE_LABELS: Mapping[str, str] = {
    "default": "default",
    "web": "on the website",
    "app": "in the app",
    "api": "through the API",
    "support": "by customer support",
    "provider": "by replying or unsubscribing",
}


@dataclass
class Refusal:
    """A form the API (or this page) refused: which form, why, and what was entered."""

    form: str
    message: str
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def refusal_of(form: str, exc: ApiError, values: Mapping[str, str]) -> Refusal:
    """The API's refusal of `form`: its `errors` by field name (`body.line1` -> `line1`),
    else its detail as the form's message."""
    errors = field_errors(exc)
    if errors:
        message = "Please correct the marked field" + ("s." if len(errors) > 1 else ".")
    elif exc.status == 412:
        message = (
            "Your profile was changed elsewhere since this page was opened. "
            "Check it below and save again."
        )
    else:
        message = exc.message
    return Refusal(form, message, errors, dict(values))


async def _save(
    page: Page, form: str, values: Mapping[str, str], call: Awaitable[Any], after: str
) -> Response:
    """Make the API call a form of the account page asks for, then go to `after`. A refusal
    of what was entered shows the account page again, with the API's message by field and
    the values as entered; any other failure is an error page."""
    try:
        await call
    except ApiError as exc:
        if exc.status not in (400, 409, 412, 422):
            raise
        # A stale If-Match is a conflict to the shopper, whatever the API calls it.
        status = 409 if exc.status == 412 else exc.status
        return await account_page(page, status=status, refusal=refusal_of(form, exc, values))
    return page.redirect(after)


def _local_link(link: Any) -> str | None:
    """A notification's link if it is a path on this site (never another origin)."""
    if not isinstance(link, str) or not link.startswith("/") or link.startswith("//"):
        return None
    return None if "\\" in link else link


def _link_label(link: str) -> str:
    if link.startswith("/orders/"):
        return "View the order"
    if link.startswith("/products/"):
        return "View the product"
    if link.startswith("/cart"):
        return "Open your cart"
    if link.startswith("/account"):
        return "Go to your account"
    return "Open"


async def _products(api: ApiClient, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Products by id, fetched concurrently; ones no longer on sale are missing."""
    found = await api.each("/api/catalog/products/{}", filter(PRODUCT_ID.fullmatch, ids))
    return {
        pid: product
        for pid, product in found.items()
        if isinstance(product, dict) and product.get("status", "active") == "active"
    }


async def _alerts(api: ApiClient) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The open back-in-stock alerts, each with its product (None once it is off sale)."""
    answer = await api.optional("/api/me/notify-me", {"items": []})
    subscriptions = answer.get("items", []) if isinstance(answer, dict) else []
    products = await _products(api, [str(s.get("productId") or "") for s in subscriptions])
    return [(s, products.get(str(s.get("productId")))) for s in subscriptions]


async def _viewed(api: ApiClient) -> list[dict[str, Any]]:
    """The products of the browsing history, newest first, without those off sale."""
    history = await api.get("/api/me/history", limit=RECENT_LIMIT)
    ids = [str(item.get("productId") or "") for item in history.get("items", [])]
    found = await _products(api, ids)
    return [found[pid] for pid in ids if pid in found]


# --- the account page ---------------------------------------------------------------------


async def account_page(
    page: Page,
    *,
    status: int = 200,
    refusal: Refusal | None = None,
    notices: list[str] | None = None,
) -> Response:
    """The account page: profile, addresses, preferences, back-in-stock alerts, data."""
    api = page.api
    profile, addresses, preferences, alerts = await api.gather(
        api.send("GET", "/api/me/profile"),
        api.get("/api/me/addresses"),
        api.get("/api/me/preferences"),
        _alerts(api),
    )
    channels = [
        (key, CHANNEL_LABELS.get(key, key), kinds)
        for key, kinds in preferences.get("channels", {}).items()
    ]
    kind_keys = list(channels[0][2]) if channels else list(KIND_LABELS)
    history = list(reversed(preferences.get("history", [])))[:CONSENT_HISTORY_SHOWN]
    return page.render(
        "account.html",
        status=status,
        notices=notices or [],
        refusal=refusal,
        profile=profile.body,
        etag=profile.headers.get("etag", ""),
        addresses=addresses.get("items", []),
        max_addresses=addresses.get("maxAddresses"),
        preferences=preferences,
        channels=channels,
        kinds=[(key, KIND_LABELS.get(key, key)) for key in kind_keys],
        consent_history=history,
        channel_labels=CHANNEL_LABELS,
        kind_labels=KIND_LABELS,
        source_labels=SOURCE_LABELS,
        subscriptions=alerts,
    )


@router.get(ACCOUNT)
async def account(
    request: Request, done: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """The signed-in customer's account; anyone else is sent to sign in."""
    page = await open_page(request)
    page.require_sign_in()
    return await account_page(page, notices=notices(ACCOUNT_DONE, done))


@router.post("/account/profile")
async def save_profile(request: Request) -> Response:
    """PATCH the fields that differ from the stored profile (a blank one clears it),
    conditional on the profile the page showed."""
    page, fields = await open_form(request)
    page.require_sign_in(ACCOUNT)
    values = {name: fields[name].strip() for name in PROFILE_FIELDS if name in fields}
    current = await page.api.send("GET", "/api/me/profile")
    changes = {
        name: value or None
        for name, value in values.items()
        if (value or None) != current.body.get(name)
    }
    if not changes:
        return page.redirect(f"{ACCOUNT}?done=profile-unchanged#profile")
    shown = fields.get("etag") or current.headers.get("etag") or "*"
    patch = page.api.send("PATCH", "/api/me/profile", json=changes, headers={"if-match": shown})
    return await _save(page, "profile", values, patch, f"{ACCOUNT}?done=profile#profile")


def _address_body(fields: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's address from the form, and the values as entered (to show them again)."""
    values = {name: fields.get(name, "") for name in ADDRESS_FIELDS}
    body: dict[str, Any] = {
        # The API trims the required text itself and says "must not be blank" of spaces.
        name: value if name in _API_TRIMS else value.strip()
        for name, value in values.items()
        if value.strip() or name not in _ADDRESS_OPTIONAL
    }
    body["isDefault"] = fields.get("isDefault") == "true"
    values["isDefault"] = "true" if body["isDefault"] else ""
    return body, values


@router.post("/account/addresses")
async def add_address(request: Request) -> Response:
    """Add an address."""
    page, fields = await open_form(request)
    page.require_sign_in(ACCOUNT)
    body, values = _address_body(fields)
    add = page.api.send("POST", "/api/me/addresses", json=body)
    return await _save(page, "address-new", values, add, f"{ACCOUNT}?done=address-added#addresses")


@router.post("/account/addresses/{addressId}")
async def save_address(
    request: Request, address_id: Annotated[str, Path(alias="addressId")]
) -> Response:
    """Replace an address with what the form holds."""
    page, fields = await open_form(request)
    page.require_sign_in(ACCOUNT)
    body, values = _address_body(fields)
    put = page.api.send("PUT", f"/api/me/addresses/{segment(address_id, _ID)}", json=body)
    after = f"{ACCOUNT}?done=address-saved#addresses"
    return await _save(page, f"address-{address_id}", values, put, after)


@router.post("/account/addresses/{addressId}/delete")
async def delete_address(
    request: Request, address_id: Annotated[str, Path(alias="addressId")]
) -> Response:
    """Delete an address (the oldest remaining one becomes the default if it was)."""
    page, _ = await open_form(request)
    page.require_sign_in(ACCOUNT)
    await page.api.send("DELETE", f"/api/me/addresses/{segment(address_id, _ID)}")
    return page.redirect(f"{ACCOUNT}?done=address-deleted#addresses")


@router.post("/account/preferences")
async def save_preferences(request: Request) -> Response:
    """PUT every channel and kind the API has (an unticked box is off) and
    personalisation, as given on the web."""
    page, fields = await open_form(request)
    page.require_sign_in(ACCOUNT)
    current = await page.api.get("/api/me/preferences")
    channels = {
        channel: {kind: fields.get(f"{channel}.{kind}") == "on" for kind in kinds}
        for channel, kinds in current.get("channels", {}).items()
    }
    body = {
        "channels": channels,
        "personalization": fields.get("personalization") == "on",
        "source": "web",
    }
    put = page.api.send("PUT", "/api/me/preferences", json=body)
    return await _save(page, "preferences", fields, put, f"{ACCOUNT}?done=preferences#preferences")


@router.post("/account/notify-me/{sku}/delete")
async def end_alert(request: Request, sku: str) -> Response:
    """End a back-in-stock alert. One already ended (sent, or ended elsewhere) counts as
    ended: the outcome the customer asked for."""
    page, _ = await open_form(request)
    page.require_sign_in(ACCOUNT)
    try:
        await page.api.send("DELETE", f"/api/me/notify-me/{segment(sku, SKU)}")
    except ApiError as exc:
        if exc.status != 404:
            raise
    return page.redirect(f"{ACCOUNT}?done=notify-ended#alerts")


@router.get("/account/export")
async def export(request: Request) -> Response:
    """Everything the shop holds about the customer, as the API's JSON, to download."""
    page = await open_page(request)
    page.require_sign_in()
    exported = await page.api.get("/api/me/export")
    response = Response(
        json.dumps(exported, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"'},
    )
    return page.finish(response)


@router.post("/account/delete")
async def delete_account(request: Request) -> Response:
    """Erase the customer (only with the confirmation box ticked), then end the web
    session in this browser: the API has already deleted it server-side."""
    page, fields = await open_form(request)
    page.require_sign_in(ACCOUNT)
    if fields.get("confirm") != "yes":
        refusal = Refusal(
            "delete",
            "Your account was not deleted.",
            {"confirm": "Tick the box to confirm that you want your account deleted."},
        )
        return await account_page(page, status=422, refusal=refusal)
    await page.api.send("DELETE", "/api/me")
    response = page.redirect("/?done=deleted")
    # The visitor id too: this browser's views were merged into the erased history, and a
    # fresh id keeps what it browses next from being tied to the old account.
    for cookie in (SESSION_COOKIE, CART_COOKIE, VISITOR_COOKIE):
        clear_cookie(response, page.settings, cookie)
    return response


# --- notifications ------------------------------------------------------------------------


@router.get("/notifications")
async def notifications(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The in-app notifications, newest first, a page at a time."""
    page = await open_page(request)
    page.require_sign_in()
    feed = await page.api.get("/api/me/notifications", cursor=cursor, limit=FEED_PAGE_SIZE)
    items = []
    for item in feed.get("items", []):
        link = _local_link(item.get("link"))
        items.append({**item, "link": link, "linkLabel": _link_label(link) if link else None})
    return page.render(
        "notifications.html",
        notices=notices(NOTIFICATIONS_DONE, done),
        items=items,
        unread=int(feed.get("unread") or 0),
        next_cursor=feed.get("cursor"),
        cursor=cursor,
    )


def _back_to_feed(fields: Mapping[str, str], done: str) -> str:
    """The feed page the form was posted from (its cursor), with the outcome."""
    params = {"cursor": fields.get("cursor") or None, "done": done}
    return "/notifications?" + urllib.parse.urlencode({k: v for k, v in params.items() if v})


@router.post("/notifications/read-all")
async def read_all(request: Request) -> Response:
    """Mark every notification read."""
    page, fields = await open_form(request)
    page.require_sign_in("/notifications")
    await page.api.post("/api/me/notifications/read-all")
    return page.redirect(_back_to_feed(fields, "read-all"))


@router.post("/notifications/{notificationId}/read")
async def read_one(
    request: Request, notification_id: Annotated[str, Path(alias="notificationId")]
) -> Response:
    """Mark one notification read."""
    page, fields = await open_form(request)
    page.require_sign_in("/notifications")
    await page.api.post(f"/api/me/notifications/{segment(notification_id, _ID)}/read")
    return page.redirect(_back_to_feed(fields, "read"))


# --- recently viewed ----------------------------------------------------------------------


@router.get("/recent")
async def recent(
    request: Request, done: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """The products the customer viewed on any device. History across devices needs an
    account, so a visitor who is not signed in is told so rather than redirected."""
    page = await open_page(request)
    if not page.signed_in:
        return page.render("recent.html", products=[], personalization=True)
    api = page.api
    products, preferences = await api.gather(_viewed(api), api.optional("/api/me/preferences", {}))
    return page.render(
        "recent.html",
        notices=notices(RECENT_DONE, done),
        products=products,
        personalization=bool(preferences.get("personalization", True)),
    )


@router.post("/recent/clear")
async def clear_recent(request: Request) -> Response:
    """Clear the browsing history (this browser's anonymous views too)."""
    page, _ = await open_form(request)
    page.require_sign_in("/recent")
    await page.api.send("DELETE", "/api/me/history")
    return page.redirect("/recent?done=cleared")
