"""Reading what a browser sends: path parameters on their way into API URLs, posted whole
numbers, and the API's validation errors mapped back to the form's fields."""

from __future__ import annotations

import re

from fastapi import HTTPException

from cloudcart.web import client
from cloudcart.web.client import ApiError

# The shapes the API gives SKUs and product ids: a value of another shape names nothing in
# the shop, so it is a 404 before any API call.
SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PRODUCT_ID = re.compile(r"(?!\.+$)[A-Za-z0-9_.-]{1,128}")

ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postalCode", "country", "phone")
"""The fields of an address as the API names them (and the address forms' inputs)."""


def segment(value: str, pattern: re.Pattern[str] | None = None) -> str:
    """A path parameter as one segment of an API URL. A value that cannot be one (empty, a
    dot segment, or not matching `pattern`) is a 404, like any address of nothing."""
    if pattern is not None and not pattern.fullmatch(value):
        raise HTTPException(404)
    try:
        return client.segment(value)
    except ValueError:
        raise HTTPException(404) from None


def whole_number(text: str | None, low: int, high: int) -> int | None:
    """A posted whole number from `low` to `high`, or None when it is not one."""
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def field_errors(exc: ApiError, under: str = "body") -> dict[str, str]:
    """The API's validation errors (its problem's `errors`) of the fields below `under`, by
    field: `body.line1` is `line1`, and with `under="body.shippingAddress"`,
    `body.shippingAddress.city` is `city`. The first message of a field wins."""
    prefix = under.split(".")
    errors: dict[str, str] = {}
    for item in exc.problem.get("errors") or []:
        if not isinstance(item, dict):
            continue
        parts = str(item.get("location") or "").split(".")
        name = ".".join(parts[len(prefix) :]) if parts[: len(prefix)] == prefix else ""
        if name and name not in errors:
            errors[name] = _readable(str(item.get("message") or "is not valid"))
    return errors


def _readable(message: str) -> str:
    """A validation message without pydantic's "Value error, " prefix, capitalised."""
    text = message.removeprefix("Value error, ").strip()
    return text[:1].upper() + text[1:]
