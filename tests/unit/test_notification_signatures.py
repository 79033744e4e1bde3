"""Webhook signature checks: SendGrid's signed Event Webhook and Twilio's
X-Twilio-Signature, and the public URL Twilio signed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloudcart.notifications.signatures import public_url, verify_sendgrid, verify_twilio
from tests.fakes.sendgrid_server import WebhookSigner
from tests.fakes.twilio_server import sign as twilio_sign

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOLERANCE = 300
BODY = json.dumps(
    [{"email": "a@example.com", "event": "delivered", "notificationId": "ntf-1"}]
).encode()


@pytest.fixture(scope="module")
def signer() -> WebhookSigner:
    return WebhookSigner()


def _stamp(at: datetime = NOW) -> str:
    return str(int(at.timestamp()))


def _verify(
    signer: WebhookSigner,
    signature: str | None,
    timestamp: str | None,
    body: bytes = BODY,
    key: str | None = None,
) -> bool:
    return verify_sendgrid(
        signer.public_key if key is None else key,
        signature,
        timestamp,
        body,
        now=NOW,
        tolerance_seconds=TOLERANCE,
    )


def test_a_sendgrid_signature_is_accepted(signer: WebhookSigner) -> None:
    stamp = _stamp()
    assert _verify(signer, signer.sign(BODY, stamp), stamp)


def test_sendgrid_accepts_timestamps_within_the_tolerance_either_way(
    signer: WebhookSigner,
) -> None:
    for offset in (-TOLERANCE, TOLERANCE):
        stamp = _stamp(NOW + timedelta(seconds=offset))
        assert _verify(signer, signer.sign(BODY, stamp), stamp)


def test_a_tampered_sendgrid_body_is_rejected(signer: WebhookSigner) -> None:
    stamp = _stamp()
    signature = signer.sign(BODY, stamp)

    assert not _verify(signer, signature, stamp, BODY.replace(b"delivered", b"bounce"))


def test_another_timestamp_than_the_signed_one_is_rejected(signer: WebhookSigner) -> None:
    signature = signer.sign(BODY, _stamp())

    assert not _verify(signer, signature, _stamp(NOW + timedelta(seconds=1)))


def test_a_signature_by_another_key_is_rejected(signer: WebhookSigner) -> None:
    stamp = _stamp()

    assert not _verify(signer, WebhookSigner().sign(BODY, stamp), stamp)


@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1, -86_400])
def test_sendgrid_timestamps_outside_the_window_are_rejected(
    signer: WebhookSigner, offset: int
) -> None:
    stamp = _stamp(NOW + timedelta(seconds=offset))

    assert not _verify(signer, signer.sign(BODY, stamp), stamp)


@pytest.mark.parametrize("missing", [None, ""])
def test_missing_sendgrid_headers_are_rejected(signer: WebhookSigner, missing: str | None) -> None:
    stamp = _stamp()
    signature = signer.sign(BODY, stamp)

    assert not _verify(signer, missing, stamp)
    assert not _verify(signer, signature, missing)
    assert not _verify(signer, missing, missing)


@pytest.mark.parametrize("timestamp", ["abc", "1.5e9", "-1", "١٧٤٠٨٣٠٤٠٠", "9" * 5000])
def test_non_numeric_sendgrid_timestamps_are_rejected(
    signer: WebhookSigner, timestamp: str
) -> None:
    assert not _verify(signer, signer.sign(BODY, timestamp), timestamp)


@pytest.mark.parametrize("signature", ["***not base64***", "QUJD", base64.b64encode(b"x" * 70)])
def test_malformed_sendgrid_signatures_are_rejected(
    signer: WebhookSigner, signature: str | bytes
) -> None:
    text = signature.decode() if isinstance(signature, bytes) else signature

    assert not _verify(signer, text, _stamp())


def test_unusable_sendgrid_keys_are_rejected(signer: WebhookSigner) -> None:
    stamp = _stamp()
    signature = signer.sign(BODY, stamp)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    rsa_der = rsa_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    for key in ("not a key", base64.b64encode(rsa_der).decode(), " "):
        assert not _verify(signer, signature, stamp, key=key)


def test_a_body_that_is_not_utf8_is_rejected(signer: WebhookSigner) -> None:
    body = b"\xff\xfe[]"
    stamp = _stamp()
    signature = base64.b64encode(b"irrelevant").decode()

    assert not _verify(signer, signature, stamp, body)


# --- Twilio ---------------------------------------------------------------------------------

TOKEN = "twilio-auth-token"
URL = "https://shop.example/api/notifications/twilio/status?channel=sms"
PARAMS = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": "+447700900123"}


def test_a_twilio_signature_is_accepted() -> None:
    assert verify_twilio(TOKEN, URL, PARAMS, twilio_sign(TOKEN, URL, PARAMS))


def test_a_twilio_signature_with_another_token_is_rejected() -> None:
    assert not verify_twilio(TOKEN, URL, PARAMS, twilio_sign("other-token", URL, PARAMS))


def test_tampered_twilio_params_or_url_are_rejected() -> None:
    signature = twilio_sign(TOKEN, URL, PARAMS)

    assert not verify_twilio(TOKEN, URL, {**PARAMS, "MessageStatus": "failed"}, signature)
    assert not verify_twilio(TOKEN, URL.replace("sms", "whatsapp"), PARAMS, signature)
    assert not verify_twilio(
        TOKEN, "http://10.0.0.4/api/notifications/twilio/status", PARAMS, signature
    )


@pytest.mark.parametrize("signature", [None, "", "bm90IGl0"])
def test_missing_or_wrong_twilio_signatures_are_rejected(signature: str | None) -> None:
    assert not verify_twilio(TOKEN, URL, PARAMS, signature)


def test_an_empty_twilio_token_verifies_nothing() -> None:
    assert not verify_twilio("", URL, PARAMS, twilio_sign("", URL, PARAMS))


# --- the URL Twilio signed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "query", "expected"),
    [
        (
            "https://shop.example",
            "/api/notifications/twilio/status",
            "channel=sms",
            "https://shop.example/api/notifications/twilio/status?channel=sms",
        ),
        (
            "https://shop.example/",
            "api/notifications/twilio/status",
            "",
            "https://shop.example/api/notifications/twilio/status",
        ),
        (
            "https://shop.example:8443/store",
            "/api/hook",
            "?a=1&b=%20x",
            "https://shop.example:8443/store/api/hook?a=1&b=%20x",
        ),
    ],
)
def test_public_url_rebuilds_the_signed_url(
    base: str, path: str, query: str, expected: str
) -> None:
    assert public_url(base, path, query) == expected


def test_a_signature_checks_out_against_the_rebuilt_public_url() -> None:
    signed = "https://shop.example/api/notifications/twilio/status?channel=sms"
    signature = twilio_sign(TOKEN, signed, PARAMS)
    # Behind Front Door the app sees its internal host, with the same path and query.
    rebuilt = public_url("https://shop.example", "/api/notifications/twilio/status", "channel=sms")

    assert verify_twilio(TOKEN, rebuilt, PARAMS, signature)
    assert not verify_twilio(
        TOKEN,
        "http://cloudcart-func.azurewebsites.net/api/notifications/twilio/status?channel=sms",
        PARAMS,
        signature,
    )
