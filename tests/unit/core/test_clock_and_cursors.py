"""`cloudcart.core.clock` timestamps and the `cloudcart.core.cursors` codec."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloudcart.core.clock import now_timestamp, parse_utc, timestamp
from cloudcart.core.cursors import (
    CONTINUATION_CURSOR_PATTERN,
    decode_continuation,
    decode_token,
    encode_continuation,
    encode_token,
)


def test_timestamp_is_fixed_width_utc_with_microseconds_and_z() -> None:
    oslo = timezone(timedelta(hours=2))
    assert timestamp(datetime(2030, 1, 2, 5, 6, 7, tzinfo=oslo)) == "2030-01-02T03:06:07.000000Z"
    assert timestamp(datetime(2030, 1, 2, 3, 4, 5, 12, tzinfo=UTC)) == "2030-01-02T03:04:05.000012Z"


def test_timestamp_order_is_time_order() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(microseconds=n * 999) for n in range(50)]
    stamps = [timestamp(m) for m in moments]
    assert sorted(stamps) == stamps and len({len(s) for s in stamps}) == 1


def test_now_timestamp_reads_back_as_now() -> None:
    before = datetime.now(UTC)
    stamp = now_timestamp()
    parsed = parse_utc(stamp)
    assert parsed is not None and before <= parsed <= datetime.now(UTC)


def test_token_round_trips_padded_or_not() -> None:
    data = {"c": "x" * 8, "n": 3}
    padded = encode_token(data)
    bare = encode_token(data, padded=False)
    assert padded.endswith("=") and not bare.endswith("=")
    assert decode_token(padded) == decode_token(bare) == data


def test_token_shapes_are_those_cursors_already_use() -> None:
    assert encode_token({"o": 1}) == base64.urlsafe_b64encode(b'{"o":1}').decode()
    spaced = encode_token({"c": "a"}, compact=False)
    assert spaced == base64.urlsafe_b64encode(json.dumps({"c": "a"}).encode()).decode()


@pytest.mark.parametrize("token", ["", "!!!!", "bm90IGpzb24", encode_token({"a": 1})[:-3]])
def test_decode_token_refuses_what_is_not_base64url_json(token: str) -> None:
    with pytest.raises(ValueError):
        decode_token(token)


def test_decode_token_refuses_json_that_is_not_an_object() -> None:
    with pytest.raises(ValueError):
        decode_token(base64.urlsafe_b64encode(b"[1, 2]").decode())


def test_continuation_cursor_round_trips_and_matches_its_pattern() -> None:
    cursor = encode_continuation('{"token":"+RID:~abc","range":{"min":"","max":"FF"}}')
    assert cursor is not None and re.fullmatch(CONTINUATION_CURSOR_PATTERN, cursor)
    assert decode_continuation(cursor) == '{"token":"+RID:~abc","range":{"min":"","max":"FF"}}'
    assert encode_continuation(None) is None and decode_continuation(None) is None
    assert decode_continuation(encode_continuation("")) == ""


@pytest.mark.parametrize(
    "cursor",
    [
        "short",
        "not a cursor at all!",
        encode_token({"x": "no continuation"}),
        encode_token({"c": 5}),
        base64.urlsafe_b64encode(b'["c", "a list"]').decode(),
    ],
)
def test_decode_continuation_refuses_foreign_cursors(cursor: str) -> None:
    with pytest.raises(ValueError, match="not one this API returned"):
        decode_continuation(cursor)
