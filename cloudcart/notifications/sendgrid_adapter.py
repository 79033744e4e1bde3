"""The SendGrid adapter of the email port: v3 mail send through the `sendgrid` package.

Every personalization carries `custom_args` (`notificationId`, `customerId`, `template`);
SendGrid echoes them on every Event Webhook event, which is how delivery events find their
notification record. All messages of one request share its `X-Message-Id` (SendGrid's
per-recipient `sg_message_id` starts with it), so the id alone does not tell them apart.

The request body is built as the documented v3 JSON rather than with `sendgrid.helpers.mail`:
that helper rewrites `Name <address>` strings, silently merges duplicate recipients, prepends
personalizations unless given an index and refuses content that merely looks like an API
key, each of which would hide a problem the provider should report per message.

Errors become the port's: 429, 5xx, timeouts and connection errors are `ProviderBusy`;
401/403 too (a bad or under-privileged key is a configuration problem: retrying lets the
message dead-letter and alert instead of failing customers for it); a 400 naming a
recipient address is `ProviderRejected(suppress=True)`; any other 4xx is
`ProviderRejected(suppress=False)`.

The `sendgrid` package is imported lazily (in the constructor), so code that never sends
email does not pay for it at cold start.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, Final

from cloudcart.core.ports.channels import (
    EmailMessage,
    EmailOutcome,
    ProviderBusy,
    ProviderError,
    ProviderRejected,
)

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_API_BASE: Final = "https://api.sendgrid.com"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_PERSONALIZATIONS: Final = 1000
"""SendGrid's limit of personalizations (recipients, here) per mail-send request."""
UNRESOLVED_KEY_VAULT_REFERENCE: Final = "@Microsoft.KeyVault("
"""How an app setting starts whose Key Vault reference the platform could not resolve."""

_RECIPIENT_FIELD: Final = re.compile(r"^personalizations\.(\d+)\.(?:to|cc|bcc)\.\d+\.email$")
_INVALID_ADDRESS_PHRASES: Final = (
    "does not contain a valid address",
    "invalid email",
    "not a valid email",
)
_MAX_SPLIT_ROUNDS: Final = 20
"""Bound on re-sending a batch request without the recipients it was refused for."""


class SendGridEmail:
    """Email through SendGrid's v3 mail send. One client, shared by threads (each request
    opens its own connection)."""

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        api_base: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`api_base` overrides https://api.sendgrid.com (tests use a loopback fake);
        `timeout` bounds each request in seconds; `clock` reads epoch seconds (for
        `X-RateLimit-Reset`)."""
        if not api_key:
            raise ValueError("the SendGrid API key is empty")
        from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]

        self._client: Any = SendGridAPIClient(
            api_key=api_key, host=(api_base or DEFAULT_API_BASE).rstrip("/")
        )
        self._sender: dict[str, str] = {"email": from_email}
        if from_name:
            self._sender["name"] = from_name
        self._timeout = timeout
        self._clock = clock

    def send(self, message: EmailMessage) -> str:
        """Send one message in one request; returns SendGrid's `X-Message-Id`."""
        return self._post(self._body([message]))

    def send_batch(self, messages: Sequence[EmailMessage]) -> list[EmailOutcome]:
        """Send messages with identical content together: one personalization per message,
        at most 1,000 per request and each address at most once per request (a repeated
        address waits for a later request). Outcomes come back in input order.

        A 400 naming recipients fails only those messages (suppressed) and the request is
        sent again without them; a refusal that names no recipient, or a 413, splits the
        request in halves so that each message still gets its own outcome.
        """
        outcomes: list[EmailOutcome | None] = [None] * len(messages)
        for indexes in _requests(messages):
            for index, outcome in self._send_request([(i, messages[i]) for i in indexes]):
                outcomes[index] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    # --- requests ------------------------------------------------------------------------

    def _send_request(
        self, pending: list[tuple[int, EmailMessage]]
    ) -> Iterator[tuple[int, EmailOutcome]]:
        """Outcomes of one request's messages (by input index)."""
        rounds = 0
        while pending:
            messages = [message for _, message in pending]
            try:
                message_id = self._post(self._body(messages))
            except _Refused as refused:
                rounds += 1
                if rounds > _MAX_SPLIT_ROUNDS:
                    error: ProviderError = refused.error
                    yield from ((i, _failed(m, error)) for i, m in pending)
                    return
                if refused.positions:
                    # SendGrid refuses the whole request; only these recipients are bad.
                    bad = refused.positions
                    for position, (index, message) in enumerate(pending):
                        if position in bad:
                            yield index, _failed(message, _rejected_address(refused))
                    pending = [p for position, p in enumerate(pending) if position not in bad]
                    continue
                if len(pending) == 1:
                    yield pending[0][0], _failed(pending[0][1], refused.error)
                    return
                half = len(pending) // 2
                yield from self._send_request(pending[:half])
                yield from self._send_request(pending[half:])
                return
            except ProviderError as error:
                yield from ((i, _failed(m, error)) for i, m in pending)
                return
            for index, message in pending:
                yield index, EmailOutcome(message.notification_id, provider_message_id=message_id)
            return

    def _post(self, body: dict[str, Any]) -> str:
        """POST /v3/mail/send; the `X-Message-Id` of the accepted request.

        Raises `_Refused` (a ProviderRejected subclass) when a split or a removal of
        recipients may still get the other messages through.
        """
        from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]

        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self._timeout)
        except HTTPError as error:
            raise self._error(error, len(body["personalizations"])) from None
        except (OSError, HTTPException) as error:
            # URLError, connection refused/reset and socket timeouts are all OSErrors.
            raise ProviderBusy(f"SendGrid unreachable: {error}", code="network") from None
        return str(response.headers.get("X-Message-Id") or "")

    def _body(self, messages: Sequence[EmailMessage]) -> dict[str, Any]:
        """The v3 mail-send body: the first message's content, one personalization each."""
        first = messages[0]
        body: dict[str, Any] = {
            "from": self._sender,
            "personalizations": [_personalization(m) for m in messages],
        }
        if first.dynamic_template_id:
            body["template_id"] = first.dynamic_template_id
            try:
                # Messages of one body share their data (see `_content_key`): check it once
                # here rather than fail inside the HTTP client.
                json.dumps(first.dynamic_template_data)
            except (TypeError, ValueError) as error:
                raise ProviderRejected(
                    f"dynamic_template_data is not JSON: {error}", code="invalid-payload"
                ) from None
        else:
            body["subject"] = first.subject
            # SendGrid requires text/plain before text/html.
            body["content"] = [
                {"type": mime, "value": value}
                for mime, value in (("text/plain", first.text), ("text/html", first.html))
                if value
            ]
        if first.categories:
            body["categories"] = list(first.categories)
        return body

    def _error(self, error: Any, recipients: int) -> ProviderError:
        status = int(error.status_code)
        details = _error_details(error.body)
        text = "; ".join(message for message, _ in details) or str(error.reason)
        message = f"SendGrid answered {status}: {text}"
        code = str(status)
        if status == 429:
            retry_after = _retry_after(error.headers, self._clock)
            return ProviderBusy(message, code=code, retry_after=retry_after)
        if status >= 500 or status in (401, 403, 408):
            return ProviderBusy(message, code=code)
        if status == 400:
            positions, unplaced = _bad_recipients(details)
            if positions or unplaced:
                if recipients == 1:
                    return ProviderRejected(message, code=code, suppress=True)
                if positions and not unplaced and max(positions) < recipients:
                    return _Refused(message, code=code, positions=positions)
                return _Refused(message, code=code, positions=frozenset())
        if status == 413 and recipients > 1:
            return _Refused(message, code=code, positions=frozenset())
        return ProviderRejected(message, code=code, suppress=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridEmail:
        """The adapter from `SENDGRID_*` and `NOTIFICATIONS_FROM_*` settings.

        Raises ValueError when the API key is unset or is an unresolved Key Vault
        reference (which must never be sent to SendGrid as a key).
        """
        secret = settings.sendgrid_api_key
        key = secret.get_secret_value().strip() if secret is not None else ""
        if not key:
            raise ValueError("SENDGRID_API_KEY is not set")
        if key.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
            raise ValueError(
                "SENDGRID_API_KEY is an unresolved Key Vault reference: store the secret in "
                "the vault and grant the app's identity access to it"
            )
        return cls(
            api_key=key,
            from_email=settings.notifications_from_email,
            from_name=settings.notifications_from_name,
            api_base=settings.sendgrid_api_base,
        )


# --- request planning ----------------------------------------------------------------------


def _requests(messages: Sequence[EmailMessage]) -> Iterator[list[int]]:
    """Input indexes per request: grouped by content, then packed so that a request holds
    at most MAX_PERSONALIZATIONS messages and each address once."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, message in enumerate(messages):
        groups.setdefault(_content_key(message), []).append(index)
    for indexes in groups.values():
        # Each open request with the addresses it already holds; a message joins the
        # first one not yet full that lacks its address, so a repeat waits for a later one.
        open_requests: list[tuple[list[int], set[str]]] = []
        for index in indexes:
            address = _address_key(messages[index].to)
            for members, addresses in open_requests:
                if len(members) < MAX_PERSONALIZATIONS and address not in addresses:
                    members.append(index)
                    addresses.add(address)
                    break
            else:
                open_requests.append(([index], {address}))
        for members, _ in open_requests:
            yield members


def _content_key(message: EmailMessage) -> tuple[object, ...]:
    """Messages with equal keys can share one request body."""
    if message.dynamic_template_id:
        data = json.dumps(message.dynamic_template_data, sort_keys=True, default=repr)
        return ("template", message.dynamic_template_id, data, message.categories)
    return ("content", message.subject, message.text, message.html, message.categories)


def _address_key(address: str) -> str:
    # SendGrid compares recipients case-insensitively when it looks for duplicates.
    return address.strip().lower()


def _personalization(message: EmailMessage) -> dict[str, Any]:
    to: dict[str, str] = {"email": message.to}
    if message.to_name:
        to["name"] = message.to_name
    personalization: dict[str, Any] = {
        "to": [to],
        "custom_args": {
            "notificationId": message.notification_id,
            "customerId": message.customer_id,
            "template": message.template,
        },
    }
    if message.dynamic_template_id:
        personalization["dynamic_template_data"] = dict(message.dynamic_template_data)
    return personalization


# --- errors ----------------------------------------------------------------------------------


class _Refused(ProviderRejected):
    """A 400/413 for a request of several messages that need not fail them all:
    `positions` are the personalizations SendGrid named (empty: it named none)."""

    def __init__(self, message: str, *, code: str, positions: frozenset[int]) -> None:
        super().__init__(message, code=code, suppress=False)
        self.positions = positions

    @property
    def error(self) -> ProviderRejected:
        """The error a message gets when nothing narrower can be learned."""
        return ProviderRejected(str(self), code=self.code, suppress=False)


def _rejected_address(refused: _Refused) -> ProviderRejected:
    return ProviderRejected(str(refused), code=refused.code, suppress=True)


def _failed(message: EmailMessage, error: ProviderError) -> EmailOutcome:
    return EmailOutcome(message.notification_id, error=error)


def _error_details(body: object) -> list[tuple[str, str | None]]:
    """(message, field) of each entry of SendGrid's `{"errors": [...]}` body."""
    try:
        parsed = json.loads(body.decode() if isinstance(body, bytes) else str(body))
    except (ValueError, UnicodeDecodeError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list):
        return []
    details: list[tuple[str, str | None]] = []
    for entry in errors:
        if isinstance(entry, dict):
            message = entry.get("message")
            field = entry.get("field")
            details.append(
                (
                    message if isinstance(message, str) else "",
                    field if isinstance(field, str) else None,
                )
            )
    return details


def _bad_recipients(details: Sequence[tuple[str, str | None]]) -> tuple[frozenset[int], bool]:
    """The personalizations a 400 names as holding an invalid address, and whether it also
    reports an invalid recipient address without saying which one."""
    positions: set[int] = set()
    unplaced = False
    for message, field in details:
        if field and (match := _RECIPIENT_FIELD.match(field)):
            positions.add(int(match[1]))
        elif any(phrase in message.lower() for phrase in _INVALID_ADDRESS_PHRASES) and (
            # "The from email does not contain a valid address" is about our sender.
            field is None or field.startswith("personalizations.")
        ):
            unplaced = True
    return frozenset(positions), unplaced


def _retry_after(headers: Mapping[str, str] | None, clock: Callable[[], float]) -> float | None:
    """Seconds to wait: `Retry-After` (seconds or HTTP-date), else SendGrid's
    `X-RateLimit-Reset` (epoch seconds of the next window)."""
    if headers is None:
        return None
    from cloudcart.core.throttling import retry_after_seconds

    now = clock()
    seconds = retry_after_seconds(headers, now=now)
    if seconds is not None:
        return seconds
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if reset.isdigit():
        return max(0.0, float(reset) - now)
    return None
