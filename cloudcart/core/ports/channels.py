"""The provider ports: email, and text (SMS and WhatsApp).

Adapters: `sendgrid_adapter.SendGridEmail` and `twilio_adapter.TwilioText` (Azure path),
`capture.CaptureEmail`/`capture.CaptureText` (local: they keep what would have been sent).
Every adapter raises only the errors below, so the dispatcher never sees an SDK exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

TextChannelName = Literal["sms", "whatsapp"]


class ProviderError(Exception):
    """A provider did not accept a message."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        """`code`: the provider's own error code (`21211`, `63016`, an HTTP status...)."""
        super().__init__(message)
        self.code = code


class ProviderBusy(ProviderError):
    """Worth retrying: 429, 5xx, a timeout or a connection error. The message was not
    accepted (or it is unknown whether it was: a timeout after the request left)."""

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        """`retry_after`: seconds the provider asked us to wait (its Retry-After header)."""
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    """Never worth retrying this message (a permanent error).

    `suppress` is True when the destination itself is bad (invalid or unreachable number,
    bounced or invalid address, an opted-out number): it must not be used again. False
    when only this message is wrong (e.g. WhatsApp free-form text outside the 24-hour
    session window, error 63016).
    """

    def __init__(self, message: str, *, code: str | None = None, suppress: bool = False) -> None:
        """See the class docstring for `suppress`."""
        super().__init__(message, code=code)
        self.suppress = suppress


@dataclass(frozen=True)
class EmailMessage:
    """One email to one address. `notification_id` and `customer_id` travel with it to the
    provider (SendGrid `custom_args`) so delivery events find their record."""

    notification_id: str
    customer_id: str
    to: str
    subject: str
    text: str
    html: str
    template: str
    to_name: str | None = None
    # A SendGrid dynamic template used instead of our rendered subject/text/html.
    dynamic_template_id: str | None = None
    dynamic_template_data: Mapping[str, object] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmailOutcome:
    """What the provider said about one message of a batch: its message id when accepted,
    else the error."""

    notification_id: str
    provider_message_id: str | None = None
    error: ProviderError | None = None


class EmailChannel(Protocol):
    """Sends email."""

    def send(self, message: EmailMessage) -> str:
        """Send one message; returns the provider's message id. Raises ProviderBusy or
        ProviderRejected."""
        ...

    def send_batch(self, messages: Sequence[EmailMessage]) -> list[EmailOutcome]:
        """Send many messages in as few requests as the provider allows (SendGrid: one
        personalization per message, at most 1,000 per request, each address at most once
        per request; messages with identical content share a request).

        Returns one outcome per message, in order. A request that fails makes every
        message in it fail with that error; other requests are unaffected.
        """
        ...


@dataclass(frozen=True)
class TextMessage:
    """One SMS or WhatsApp message to one E.164 number.

    WhatsApp outside the customer's 24-hour session window needs an approved template:
    `content_sid` with `content_variables` ({"1": "...", "2": "..."}); `body` is then
    ignored by the provider. `status_callback` is the URL the provider posts status
    changes to."""

    notification_id: str
    customer_id: str
    channel: TextChannelName
    to: str
    body: str
    template: str
    status_callback: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] = field(default_factory=dict)


class TextChannel(Protocol):
    """Sends SMS and WhatsApp messages."""

    def send(self, message: TextMessage) -> str:
        """Send one message; returns the provider's message id (a Twilio SID). Raises
        ProviderBusy or ProviderRejected."""
        ...


class Unconfigured:
    """The channel of a provider whose settings are missing (a key not yet in Key Vault):
    every send is refused as busy, so the message is retried, dead-letters and raises an
    alert, and is sent once the settings exist, instead of failing the function."""

    def __init__(self, reason: str) -> None:
        """`reason` names what is missing."""
        self.reason = reason

    def send(self, message: EmailMessage | TextMessage) -> str:
        """Refuse the message (ProviderBusy)."""
        raise ProviderBusy(self.reason, code="not-configured")

    def send_batch(self, messages: Sequence[EmailMessage]) -> list[EmailOutcome]:
        """Refuse every message (ProviderBusy)."""
        error = ProviderBusy(self.reason, code="not-configured")
        return [EmailOutcome(m.notification_id, error=error) for m in messages]
