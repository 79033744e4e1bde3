"""Signature checks of the providers' webhooks: SendGrid's signed Event Webhook (ECDSA
P-256 over timestamp + raw body) and Twilio's `X-Twilio-Signature` (HMAC over the URL and
the form fields). Pure functions: they read no settings and never raise on bad input.

Twilio signs the URL it was configured with; behind Front Door the URL the app sees has
another host (and maybe scheme), so `public_url` rebuilds the signed one from the public
base URL setting.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

SENDGRID_SIGNATURE_HEADER: Final = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER: Final = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE_HEADER: Final = "X-Twilio-Signature"


def verify_sendgrid(
    public_key: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: datetime,
    tolerance_seconds: int,
) -> bool:
    """True when `signature` is SendGrid's signature of `timestamp` + `body` under
    `public_key` (base64 DER, as Mail Settings shows it) and the timestamp (unix seconds)
    is within `tolerance_seconds` of `now` either way (a replay guard).

    Missing headers, a non-numeric or out-of-window timestamp, a body that is not UTF-8,
    bad base64 and an unusable key all give False.
    """
    if not public_key or not signature or not timestamp:
        return False
    stamp = timestamp.strip()
    # Eleven digits reach the year 5138; longer text is not a timestamp (and a huge one
    # would make int() raise).
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 11:
        return False
    if abs(now.timestamp() - int(stamp)) > tolerance_seconds:
        return False
    try:
        # The helper signs text; SendGrid posts UTF-8 JSON, which round-trips exactly.
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    key = _sendgrid_key(public_key.strip())
    if key is None:
        return False

    from cryptography.exceptions import InvalidSignature

    try:
        return bool(_event_webhook().verify_signature(payload, signature, stamp, key))
    except (binascii.Error, ValueError, InvalidSignature):
        return False


@lru_cache(maxsize=4)
def _sendgrid_key(public_key: str) -> Any | None:
    """The P-256 public key, or None when the text is not one (parsed once per key)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = _event_webhook().convert_public_key_to_ecdsa(public_key)
    except (ValueError, TypeError):
        return None
    # Only an EC key can verify ECDSA: another key type would raise inside `verify`.
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


def _event_webhook() -> Any:
    """The `sendgrid` package's verifier, imported on first use."""
    from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]

    return EventWebhook()


def verify_twilio(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when `signature` (the `X-Twilio-Signature` header) is Twilio's signature of
    `url` (exactly as Twilio requested it, query string included) and the form `params`
    under the account's `auth_token`."""
    if not auth_token or not signature:
        return False
    from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def public_url(public_base_url: str, path: str, query: str) -> str:
    """The URL a client outside used: `public_base_url` (scheme, host and any path
    prefix) + the request's `path` + `?query` when there is one. The query is kept
    byte for byte, since Twilio signs it as it was configured."""
    base = public_base_url.rstrip("/")
    suffix = path if path.startswith("/") else f"/{path}"
    query = query.removeprefix("?")
    return f"{base}{suffix}?{query}" if query else f"{base}{suffix}"
