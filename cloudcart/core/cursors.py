"""Opaque cursors and tokens: JSON objects written as base64url text.

Every paging API hands its callers a cursor that means nothing to them and is safe in a URL
(the store's continuation, an offset, the fingerprint of the query it belongs to). One codec
writes them all, so that they are read back, and refused, the same way everywhere. Each
user keeps its own wire shape: which keys, with or without `=` padding, compact or spaced
JSON (cursors already handed out stay valid), and its own pattern and error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

CONTINUATION_CURSOR_PATTERN = r"^[A-Za-z0-9_-]{12,}={0,2}$"
"""Every cursor `encode_continuation` makes: padded base64url of at least 9 bytes."""
_CONTINUATION_CURSOR = re.compile(CONTINUATION_CURSOR_PATTERN)


def encode_token(data: Mapping[str, Any], *, padded: bool = True, compact: bool = True) -> str:
    """`data` as JSON in base64url; without the `=` padding unless `padded`, and with
    `json.dumps`'s default separators (`", "`, `": "`) unless `compact`."""
    text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data)
    token = base64.urlsafe_b64encode(text.encode()).decode()
    return token if padded else token.rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    """The JSON object of an `encode_token` token, padded or not; ValueError when `token`
    is not base64url JSON of an object.

    Characters outside the base64url alphabet are not refused here (the decoder skips
    them): a caller that wants exact tokens checks a pattern first.
    """
    try:
        data = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError("malformed token") from exc
    if not isinstance(data, dict):
        raise ValueError("malformed token")
    return data


def encode_continuation(continuation: str | None) -> str | None:
    """The API cursor of a documents continuation (`{"c": continuation}`, padded, the
    JSON spaced), None for None (the last page)."""
    if continuation is None:
        return None
    return encode_token({"c": continuation}, compact=False)


def decode_continuation(cursor: str | None) -> str | None:
    """The continuation an `encode_continuation` cursor carries (None for None); ValueError
    when `cursor` is not such a cursor."""
    if cursor is None:
        return None
    # The base64 decoder would skip characters outside the alphabet.
    if _CONTINUATION_CURSOR.fullmatch(cursor) is None:
        raise ValueError("the cursor is not one this API returned")
    try:
        continuation = decode_token(cursor)["c"]
    except (ValueError, KeyError):
        raise ValueError("the cursor is not one this API returned") from None
    if not isinstance(continuation, str):
        raise ValueError("the cursor is not one this API returned")
    return continuation
