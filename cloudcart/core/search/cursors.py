"""Search result cursors, the same for every search adapter: an opaque base64url token of
the result offset, bound to the query it came from (a fingerprint of its text, filters and
sort), so a cursor cannot be replayed with other filters."""

from __future__ import annotations

import hashlib
import json
import re

from cloudcart.core.cursors import decode_token, encode_token
from cloudcart.core.ports.search import InvalidCursor, SearchQuery

CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{40,}={0,2})?$"
"""Every cursor `encode_cursor` makes (unpadded base64url of at least 30 bytes), or empty
for the first page."""
_CURSOR = re.compile(CURSOR_PATTERN)


def query_fingerprint(query: SearchQuery) -> str:
    """What a cursor is bound to: the query's text, filters and sort."""
    parts = [
        query.text,
        query.category,
        query.brand,
        query.min_price,
        query.max_price,
        query.in_stock,
        query.sort,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def encode_cursor(offset: int, fingerprint: str) -> str:
    """The cursor of the page that starts at `offset` of the query with `fingerprint`."""
    return encode_token({"o": offset, "q": fingerprint}, padded=False)


def decode_cursor(cursor: str | None, fingerprint: str) -> int:
    """The offset a cursor names (0 without one); InvalidCursor when it is not a cursor of
    this query."""
    if not cursor:
        return 0
    # The base64 decoder would skip characters outside the alphabet.
    if _CURSOR.fullmatch(cursor) is None:
        raise InvalidCursor("cursor does not belong to this query")
    try:
        data = decode_token(cursor)
        offset = data["o"]
        if not isinstance(offset, int) or offset < 0 or data["q"] != fingerprint:
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("cursor does not belong to this query") from exc
    return offset
