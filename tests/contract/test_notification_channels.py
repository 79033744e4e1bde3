"""The provider adapters of the notification channels, driven through the real `sendgrid`
and `twilio` packages against loopback fakes of the two APIs: what reaches the provider,
how batches are split, and how every provider answer maps onto ProviderBusy and
ProviderRejected."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from cloudcart.core.ports.channels import (
    EmailMessage,
    ProviderBusy,
    ProviderRejected,
    TextMessage,
)
from cloudcart.core.settings import Settings
from cloudcart.notifications.sendgrid_adapter import SendGridEmail
from cloudcart.notifications.twilio_adapter import TwilioText
from tests.fakes import sendgrid_server, twilio_server
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.fakes.twilio_server import FakeTwilio

SENDER = "shop@cloudcart.example"
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "+14155238886"
CALLBACK = "https://shop.example/api/notifications/twilio/status"


def _closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- SendGrid -------------------------------------------------------------------------------


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with sendgrid_server.running_sendgrid() as fake:
        yield fake


@pytest.fixture
def email(sendgrid: FakeSendGrid) -> SendGridEmail:
    return SendGridEmail(
        api_key=sendgrid.api_key,
        from_email=SENDER,
        from_name="Cloudcart",
        api_base=sendgrid.base_url,
        timeout=2.0,
    )


def _email(n: int, to: str | None = None, **changes: Any) -> EmailMessage:
    message = EmailMessage(
        notification_id=f"ntf-{n}",
        customer_id=f"cus-{n}",
        to=to or f"customer{n}@example.com",
        subject="Your order has shipped",
        text="Your order is on its way.",
        html="<p>Your order is on its way.</p>",
        template="order-shipped",
    )
    return replace(message, **changes)


def test_send_returns_the_message_id_and_carries_our_ids(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    message_id = email.send(_email(1, to_name="Ada Lovelace", categories=("orders",)))

    [request] = sendgrid.requests
    assert message_id == request.message_id != ""
    assert request.body["from"] == {"email": SENDER, "name": "Cloudcart"}
    assert request.body["subject"] == "Your order has shipped"
    assert [c["type"] for c in request.body["content"]] == ["text/plain", "text/html"]
    assert request.body["categories"] == ["orders"]
    assert request.personalizations == [
        {
            "to": [{"email": "customer1@example.com", "name": "Ada Lovelace"}],
            "custom_args": {
                "notificationId": "ntf-1",
                "customerId": "cus-1",
                "template": "order-shipped",
            },
        }
    ]
    assert request.authorization == f"Bearer {sendgrid.api_key}"


def test_a_dynamic_template_replaces_subject_and_content(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    email.send(
        _email(1, dynamic_template_id="d-123", dynamic_template_data={"order": {"number": 7}})
    )

    [request] = sendgrid.requests
    assert request.body["template_id"] == "d-123"
    assert "content" not in request.body
    assert "subject" not in request.body
    assert request.personalizations[0]["dynamic_template_data"] == {"order": {"number": 7}}


def test_a_batch_of_2500_goes_in_three_requests_of_at_most_1000(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    messages = [_email(n) for n in range(2500)]

    outcomes = email.send_batch(messages)

    assert [len(r.personalizations) for r in sendgrid.requests] == [1000, 1000, 500]
    assert [o.notification_id for o in outcomes] == [m.notification_id for m in messages]
    assert all(o.error is None for o in outcomes)
    ids = {r.message_id for r in sendgrid.requests}
    assert {o.provider_message_id for o in outcomes} == ids
    assert sendgrid.sent_to() == [m.to for m in messages]
    for n, personalization in enumerate(sendgrid.requests[0].personalizations):
        assert personalization["custom_args"]["notificationId"] == f"ntf-{n}"


def test_a_repeated_address_goes_into_a_later_request(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    messages = [
        _email(1, to="same@example.com"),
        _email(2),
        _email(3, to="SAME@example.com"),
        _email(4),
        _email(5, to="same@example.com"),
    ]

    outcomes = email.send_batch(messages)

    assert [r.recipients for r in sendgrid.requests] == [
        ["same@example.com", "customer2@example.com", "customer4@example.com"],
        ["SAME@example.com"],
        ["same@example.com"],
    ]
    assert [o.notification_id for o in outcomes] == [f"ntf-{n}" for n in range(1, 6)]
    first, second, third = (r.message_id for r in sendgrid.requests)
    assert [o.provider_message_id for o in outcomes] == [first, first, second, first, third]


def test_messages_with_different_content_are_grouped_by_content(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    messages = [
        _email(1),
        _email(2, subject="Your refund"),
        _email(3),
        _email(4, subject="Your refund"),
        _email(5, dynamic_template_id="d-1", dynamic_template_data={"a": 1}),
        _email(6, dynamic_template_id="d-1", dynamic_template_data={"a": 1}),
        _email(7, dynamic_template_id="d-1", dynamic_template_data={"a": 2}),
    ]

    outcomes = email.send_batch(messages)

    assert [r.recipients for r in sendgrid.requests] == [
        ["customer1@example.com", "customer3@example.com"],
        ["customer2@example.com", "customer4@example.com"],
        ["customer5@example.com", "customer6@example.com"],
        ["customer7@example.com"],
    ]
    assert sendgrid.requests[1].body["subject"] == "Your refund"
    assert all(o.error is None for o in outcomes)
    assert [o.notification_id for o in outcomes] == [m.notification_id for m in messages]


def test_a_failing_request_fails_only_its_own_messages(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    messages = [_email(1), _email(2, subject="Other"), _email(3)]
    sendgrid.fail_next(500)

    outcomes = email.send_batch(messages)

    assert isinstance(outcomes[0].error, ProviderBusy)
    assert isinstance(outcomes[2].error, ProviderBusy)
    assert outcomes[0].provider_message_id is None
    assert outcomes[1].error is None
    assert outcomes[1].provider_message_id == sendgrid.requests[0].message_id


def test_an_invalid_address_in_a_batch_fails_only_that_message(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    sendgrid.invalid_addresses.add("bounced@example.com")
    messages = [_email(1), _email(2, to="bounced@example.com"), _email(3), _email(4, to="nope")]

    outcomes = email.send_batch(messages)

    for outcome in (outcomes[1], outcomes[3]):
        assert isinstance(outcome.error, ProviderRejected)
        assert outcome.error.suppress
    assert outcomes[0].error is None
    assert outcomes[2].error is None
    assert sendgrid.sent_to() == ["customer1@example.com", "customer3@example.com"]
    # Refused once, then sent without the two named recipients.
    assert sendgrid.attempts == 2


def test_an_invalid_address_the_provider_does_not_locate_is_found_by_splitting(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    sendgrid.name_invalid_fields = False
    sendgrid.invalid_addresses.add("bounced@example.com")
    messages = [_email(n) for n in range(7)] + [_email(7, to="bounced@example.com")]

    outcomes = email.send_batch(messages)

    rejected = [o for o in outcomes if o.error is not None]
    assert [o.notification_id for o in rejected] == ["ntf-7"]
    assert isinstance(rejected[0].error, ProviderRejected)
    assert rejected[0].error.suppress
    assert sorted(sendgrid.sent_to()) == sorted(m.to for m in messages[:7])
    assert [o.notification_id for o in outcomes] == [m.notification_id for m in messages]


def test_an_empty_batch_sends_nothing(sendgrid: FakeSendGrid, email: SendGridEmail) -> None:
    assert email.send_batch([]) == []
    assert sendgrid.attempts == 0


def test_429_is_busy_with_retry_after(sendgrid: FakeSendGrid, email: SendGridEmail) -> None:
    sendgrid.fail_next(429, retry_after=7)

    with pytest.raises(ProviderBusy) as raised:
        email.send(_email(1))

    assert raised.value.retry_after == 7
    assert raised.value.code == "429"
    assert email.send(_email(1))


def test_429_without_retry_after_waits_for_the_rate_limit_reset(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    sendgrid.fail_next(429)

    with pytest.raises(ProviderBusy) as raised:
        email.send(_email(1))

    assert raised.value.retry_after is not None
    assert 0 <= raised.value.retry_after <= 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_busy(sendgrid: FakeSendGrid, email: SendGridEmail, status: int) -> None:
    sendgrid.fail_next(status)

    with pytest.raises(ProviderBusy) as raised:
        email.send(_email(1))

    assert raised.value.code == str(status)
    assert raised.value.retry_after is None


def test_an_invalid_address_is_rejected_for_good(
    sendgrid: FakeSendGrid, email: SendGridEmail
) -> None:
    sendgrid.invalid_addresses.add("gone@example.com")

    with pytest.raises(ProviderRejected) as raised:
        email.send(_email(1, to="gone@example.com"))

    assert raised.value.suppress
    assert raised.value.code == "400"


def test_a_bad_sender_is_rejected_without_suppressing_the_customer(
    sendgrid: FakeSendGrid,
) -> None:
    email = SendGridEmail(
        api_key=sendgrid.api_key, from_email="not-an-address", api_base=sendgrid.base_url
    )

    with pytest.raises(ProviderRejected) as raised:
        email.send(_email(1))
    outcomes = email.send_batch([_email(1), _email(2)])

    assert not raised.value.suppress
    assert all(isinstance(o.error, ProviderRejected) and not o.error.suppress for o in outcomes)


def test_a_bad_key_is_busy_never_rejected(sendgrid: FakeSendGrid) -> None:
    email = SendGridEmail(api_key="SG.wrong.key", from_email=SENDER, api_base=sendgrid.base_url)

    with pytest.raises(ProviderBusy) as raised:
        email.send(_email(1))
    [outcome] = email.send_batch([_email(1)])

    assert raised.value.code == "401"
    assert isinstance(outcome.error, ProviderBusy)


def test_a_server_that_is_down_is_busy() -> None:
    email = SendGridEmail(api_key="SG.k.k", from_email=SENDER, api_base=_closed_port_url())

    with pytest.raises(ProviderBusy) as raised:
        email.send(_email(1))

    assert raised.value.code == "network"


def test_a_slow_server_times_out_as_busy(sendgrid: FakeSendGrid) -> None:
    email = SendGridEmail(
        api_key=sendgrid.api_key, from_email=SENDER, api_base=sendgrid.base_url, timeout=0.2
    )
    sendgrid.stall_next(5)

    with pytest.raises(ProviderBusy):
        email.send(_email(1))


def test_sendgrid_from_settings(sendgrid: FakeSendGrid) -> None:
    settings = Settings(
        sendgrid_api_key=SecretStr(sendgrid.api_key),
        sendgrid_api_base=sendgrid.base_url,
        notifications_from_email=SENDER,
        notifications_from_name="Shop",
    )

    SendGridEmail.from_settings(settings).send(_email(1))

    assert sendgrid.requests[0].body["from"] == {"email": SENDER, "name": "Shop"}


@pytest.mark.parametrize(
    "key", [None, "", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/sg)"]
)
def test_sendgrid_from_settings_refuses_a_missing_key(key: str | None) -> None:
    settings = Settings(sendgrid_api_key=None if key is None else SecretStr(key))

    with pytest.raises(ValueError, match="SENDGRID_API_KEY"):
        SendGridEmail.from_settings(settings)


# --- Twilio ---------------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with twilio_server.running_twilio() as fake:
        yield fake


@pytest.fixture
def text(twilio: FakeTwilio) -> TwilioText:
    return _text(twilio)


def _text(twilio: FakeTwilio, **overrides: Any) -> TwilioText:
    options: dict[str, Any] = {
        "account_sid": twilio.account_sid,
        "auth_token": twilio.auth_token,
        "sms_from": SMS_FROM,
        "whatsapp_from": WHATSAPP_FROM,
        "api_base": twilio.base_url,
        "timeout": 2.0,
    }
    options.update(overrides)
    return TwilioText(**options)


def _sms(to: str = "+447700900123", **changes: Any) -> TextMessage:
    message = TextMessage(
        notification_id="ntf-1",
        customer_id="cus-1",
        channel="sms",
        to=to,
        body="Your order has shipped.",
        template="order-shipped",
        status_callback=CALLBACK,
    )
    return replace(message, **changes)


def test_sms_returns_the_sid_and_carries_the_status_callback(
    twilio: FakeTwilio, text: TwilioText
) -> None:
    sid = text.send(_sms())

    [sent] = twilio.messages
    assert sid == sent.sid
    assert sid.startswith("SM")
    assert (sent.to, sent.from_, sent.body) == (
        "+447700900123",
        SMS_FROM,
        "Your order has shipped.",
    )
    assert sent.status_callback == CALLBACK
    assert sent.messaging_service_sid is None
    assert sent.content_sid is None


def test_a_messaging_service_sender_goes_as_messaging_service_sid(twilio: FakeTwilio) -> None:
    service = "MG" + "1" * 32

    _text(twilio, sms_from=service).send(_sms(status_callback=None))

    [sent] = twilio.messages
    assert sent.messaging_service_sid == service
    assert sent.from_ is None
    assert sent.status_callback is None


def test_whatsapp_templates_carry_content_sid_and_variables(
    twilio: FakeTwilio, text: TwilioText
) -> None:
    text.send(
        _sms(
            channel="whatsapp",
            content_sid="HX" + "a" * 32,
            content_variables={"1": "Ada", "2": "#1001"},
        )
    )

    [sent] = twilio.messages
    assert sent.to == "whatsapp:+447700900123"
    assert sent.from_ == f"whatsapp:{WHATSAPP_FROM}"
    assert sent.content_sid == "HX" + "a" * 32
    assert sent.variables == {"1": "Ada", "2": "#1001"}
    assert sent.body is None


def test_whatsapp_free_form_text_inside_the_session_window(
    twilio: FakeTwilio, text: TwilioText
) -> None:
    twilio.whatsapp_sessions.add("+447700900123")

    text.send(_sms(channel="whatsapp"))

    assert twilio.messages[0].body == "Your order has shipped."


def test_whatsapp_free_form_text_outside_the_window_is_rejected_without_suppressing(
    twilio: FakeTwilio, text: TwilioText
) -> None:
    with pytest.raises(ProviderRejected) as raised:
        text.send(_sms(channel="whatsapp"))

    assert raised.value.code == "63016"
    assert not raised.value.suppress


def test_an_invalid_number_is_rejected_for_good(twilio: FakeTwilio, text: TwilioText) -> None:
    twilio.invalid_numbers.add("+15005550001")

    for number in ("+15005550001", "12345"):
        with pytest.raises(ProviderRejected) as raised:
            text.send(_sms(to=number))
        assert raised.value.code == "21211"
        assert raised.value.suppress


@pytest.mark.parametrize("code", [21610, 21612, 21614, 63003])
def test_numbers_twilio_condemns_are_suppressed(
    twilio: FakeTwilio, text: TwilioText, code: int
) -> None:
    twilio.fail_next(400, code)

    with pytest.raises(ProviderRejected) as raised:
        text.send(_sms())

    assert raised.value.suppress
    assert raised.value.code == str(code)


def test_other_client_errors_are_rejected_without_suppressing(
    twilio: FakeTwilio, text: TwilioText
) -> None:
    twilio.fail_next(400, 21606)

    with pytest.raises(ProviderRejected) as raised:
        text.send(_sms())

    assert not raised.value.suppress


def test_twilio_429_is_busy_with_retry_after(twilio: FakeTwilio, text: TwilioText) -> None:
    twilio.fail_next(429, retry_after=3)

    with pytest.raises(ProviderBusy) as raised:
        text.send(_sms())

    assert raised.value.retry_after == 3
    assert raised.value.code == "20429"
    assert text.send(_sms())


@pytest.mark.parametrize("status", [500, 503])
def test_twilio_5xx_is_busy(twilio: FakeTwilio, text: TwilioText, status: int) -> None:
    twilio.fail_next(status)

    with pytest.raises(ProviderBusy) as raised:
        text.send(_sms())

    assert raised.value.retry_after is None


def test_a_bad_auth_token_is_busy_never_rejected(twilio: FakeTwilio) -> None:
    with pytest.raises(ProviderBusy) as raised:
        _text(twilio, auth_token="wrong").send(_sms())

    assert raised.value.code == "20003"


def test_twilio_down_is_busy(twilio: FakeTwilio) -> None:
    with pytest.raises(ProviderBusy) as raised:
        _text(twilio, api_base=_closed_port_url()).send(_sms())

    assert raised.value.code == "network"


def test_a_slow_twilio_times_out_as_busy(twilio: FakeTwilio) -> None:
    twilio.stall_next(5)

    with pytest.raises(ProviderBusy):
        _text(twilio, timeout=0.2).send(_sms())


def test_a_channel_without_a_sender_is_busy(twilio: FakeTwilio) -> None:
    with pytest.raises(ProviderBusy) as raised:
        _text(twilio, whatsapp_from=None).send(_sms(channel="whatsapp"))

    assert raised.value.code == "no-sender"
    assert twilio.attempts == 0


def test_twilio_from_settings(twilio: FakeTwilio) -> None:
    settings = Settings(
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=SecretStr(twilio.auth_token),
        twilio_api_base=twilio.base_url,
        twilio_sms_from=SMS_FROM,
    )

    TwilioText.from_settings(settings).send(_sms())

    assert twilio.messages[0].from_ == SMS_FROM


@pytest.mark.parametrize(
    "overrides",
    [
        {"twilio_auth_token": None},
        {"twilio_account_sid": None},
        {"twilio_auth_token": SecretStr("@Microsoft.KeyVault(VaultName=kv;SecretName=twilio)")},
        {"twilio_sms_from": None},
    ],
)
def test_twilio_from_settings_refuses_incomplete_settings(overrides: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "twilio_account_sid": "AC" + "1" * 32,
        "twilio_auth_token": SecretStr("token"),
        "twilio_sms_from": SMS_FROM,
    }
    values.update(overrides)

    with pytest.raises(ValueError, match="TWILIO_"):
        TwilioText.from_settings(Settings(**values))


# --- cold start -----------------------------------------------------------------------------


def test_importing_the_adapters_does_not_import_the_sdks() -> None:
    code = (
        "import sys\n"
        "import cloudcart.notifications.sendgrid_adapter\n"
        "import cloudcart.notifications.twilio_adapter\n"
        "import cloudcart.notifications.signatures\n"
        "loaded = sorted(m for m in ('sendgrid', 'python_http_client', 'twilio') "
        "if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
