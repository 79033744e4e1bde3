"""Field rules shared by request models, stated once so that what the OpenAPI document
says and what the check behind it accepts agree on every value."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

WHITESPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""A regex character class body of every character that Python's `str.strip` or
ECMA-262's `\\s` (the regex dialect of JSON Schema) counts as white space."""

NOT_BLANK_PATTERN = f"[^{WHITESPACE}]"
"""Matches text that is more than white space (JSON Schema patterns match anywhere)."""

_VISIBLE = re.compile(NOT_BLANK_PATTERN)


def is_blank(value: str) -> bool:
    """Whether `value` is empty or only white space, by `NOT_BLANK_PATTERN`."""
    return _VISIBLE.search(value) is None


def json_integer(value: object) -> object:
    """Refuse what lax validation would read as an integer but JSON Schema does not: `false`
    as 0, "5" as 5 (1.0 is an integer to JSON Schema, and stays accepted).

    Use it after the bounds, `Annotated[int, Field(ge=0), BeforeValidator(json_integer)]`,
    so the document keeps `minimum` and `maximum`."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


JsonInteger = Annotated[int, BeforeValidator(json_integer)]
"""An unbounded integer as JSON Schema means it."""
