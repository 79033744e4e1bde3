"""Identifiers: random, URL-safe, sortable by creation time where it helps."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str = "") -> str:
    """A new unique id: 48-bit millisecond time + 80 random bits, as 26 lowercase base32 chars.

    Time first keeps ids roughly ordered (nicer for logs and change feeds); the random part
    makes collisions practically impossible across processes.
    """
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(alphabet[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))
