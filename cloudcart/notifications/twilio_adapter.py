"""The Twilio adapter of the text port: SMS and WhatsApp through the `twilio` package.

One `Messages.create` per message. WhatsApp addresses get the `whatsapp:` prefix; a sender
that is a Messaging Service SID (`MG...`) goes in `MessagingServiceSid` instead of `From`.
An approved template (`content_sid`) travels with its variables as JSON.

Errors become the port's: 429, 5xx, timeouts and connection errors are `ProviderBusy` (with
Retry-After when Twilio sends one); so are 401/403 and error 20003 (bad credentials are a
configuration problem: retrying lets the message dead-letter and alert instead of failing
customers for it). Errors that condemn the number itself are
`ProviderRejected(suppress=True)`; 63016 (WhatsApp free-form text outside the 24-hour
session window) and any other 4xx are `ProviderRejected(suppress=False)`.

The `twilio` package is imported lazily (in the constructor), so code that never sends a
text does not pay for it at cold start.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from cloudcart.core.ports.channels import (
    ProviderBusy,
    ProviderError,
    ProviderRejected,
    TextMessage,
)

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

DEFAULT_API_BASE: Final = "https://api.twilio.com"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
UNRESOLVED_KEY_VAULT_REFERENCE: Final = "@Microsoft.KeyVault("
"""How an app setting starts whose Key Vault reference the platform could not resolve."""
WHATSAPP_PREFIX: Final = "whatsapp:"

SUPPRESSING_CODES: Final = frozenset({21211, 21610, 21612, 21614, 63003})
"""Twilio errors that make the destination unusable: invalid To (21211), opted out with
STOP (21610), number unreachable from our sender (21612), not a mobile number (21614), not a
WhatsApp user (63003). Not 21408 (the number's country is not enabled in our geo
permissions): that is ours to fix, and the customers must not stay suppressed after."""
AUTH_CODES: Final = frozenset({20003})
"""Authentication failed: our credentials, never the customer's fault."""
OUTSIDE_SESSION_WINDOW: Final = 63016
"""WhatsApp free-form text outside the customer's 24-hour session window."""


class TwilioText:
    """SMS and WhatsApp through Twilio's Messages API. One client (and its connection pool),
    shared by threads."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sms_from: str | None,
        whatsapp_from: str | None,
        api_base: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`sms_from`/`whatsapp_from`: an E.164 number or a Messaging Service SID (`MG...`),
        None when that channel is not set up. `api_base` overrides https://api.twilio.com
        (tests use a loopback fake); `timeout` bounds each request in seconds."""
        if not account_sid or not auth_token:
            raise ValueError("the Twilio account SID and auth token are required")
        from twilio.rest import Client  # type: ignore[import-untyped]

        self._http = _http_client(api_base, timeout)
        self._client: Any = Client(account_sid, auth_token, http_client=self._http)
        self._senders: dict[str, str | None] = {"sms": sms_from, "whatsapp": whatsapp_from}
        self._clock = clock

    def send(self, message: TextMessage) -> str:
        """Create the Twilio message; returns its SID (`SM...`)."""
        from requests import RequestException
        from twilio.base.exceptions import (  # type: ignore[import-untyped]
            TwilioRestException,
            TwilioServiceException,
        )

        sender = self._senders[message.channel]
        if not sender:
            # A configuration problem, not the customer's: retry until it dead-letters.
            raise ProviderBusy(
                f"no Twilio sender is configured for {message.channel}", code="no-sender"
            )
        whatsapp = message.channel == "whatsapp"
        params: dict[str, Any] = {"to": _address(message.to, whatsapp=whatsapp)}
        if sender.startswith("MG"):
            params["messaging_service_sid"] = sender
        else:
            params["from_"] = _address(sender, whatsapp=whatsapp)
        if message.content_sid:
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(dict(message.content_variables))
        else:
            params["body"] = message.body
        if message.status_callback:
            params["status_callback"] = message.status_callback
        try:
            created = self._client.messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as error:
            raise self._error(error) from None
        except RequestException as error:
            # Connection refused/reset, timeouts, TLS failures.
            raise ProviderBusy(f"Twilio unreachable: {error}", code="network") from None
        return str(created.sid)

    def _error(self, error: Any) -> ProviderError:
        status = int(error.status)
        code = _int_or_none(error.code)
        text = str(getattr(error, "msg", None) or getattr(error, "detail", None) or "")
        message = f"Twilio answered {status} (error {code}): {text}"
        label = str(code if code is not None else status)
        if status == 429:
            retry_after = _retry_after(self._http.last_headers(), self._clock)
            return ProviderBusy(message, code=label, retry_after=retry_after)
        if status >= 500 or status in (401, 403) or code in AUTH_CODES:
            return ProviderBusy(message, code=label)
        if code in SUPPRESSING_CODES:
            return ProviderRejected(message, code=label, suppress=True)
        if code == OUTSIDE_SESSION_WINDOW:
            # The number is fine: a template message (content_sid) would get through.
            return ProviderRejected(message, code=label, suppress=False)
        return ProviderRejected(message, code=label, suppress=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioText:
        """The adapter from `TWILIO_*` settings.

        Raises ValueError when the account SID or auth token is unset, the token is an
        unresolved Key Vault reference, or neither sender is set.
        """
        secret = settings.twilio_auth_token
        token = secret.get_secret_value().strip() if secret is not None else ""
        if not settings.twilio_account_sid or not token:
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
        if token.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
            raise ValueError(
                "TWILIO_AUTH_TOKEN is an unresolved Key Vault reference: store the secret in "
                "the vault and grant the app's identity access to it"
            )
        if not settings.twilio_sms_from and not settings.twilio_whatsapp_from:
            raise ValueError("set TWILIO_SMS_FROM or TWILIO_WHATSAPP_FROM (or both)")
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=token,
            sms_from=settings.twilio_sms_from,
            whatsapp_from=settings.twilio_whatsapp_from,
            api_base=settings.twilio_api_base,
        )


def _address(number: str, *, whatsapp: bool) -> str:
    if whatsapp and not number.startswith(WHATSAPP_PREFIX):
        return WHATSAPP_PREFIX + number
    return number


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _http_client(api_base: str | None, timeout: float) -> Any:
    """A `TwilioHttpClient` that sends `https://api.twilio.com` requests to `api_base` and
    remembers, per thread, the headers of the last response (the SDK's exception drops
    them, and a 429's Retry-After is among them)."""
    from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]

    base = (api_base or DEFAULT_API_BASE).rstrip("/")

    class RoutedHttpClient(TwilioHttpClient):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(timeout=timeout)
            self._local = threading.local()

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base != DEFAULT_API_BASE and url.startswith(DEFAULT_API_BASE):
                url = base + url[len(DEFAULT_API_BASE) :]
            self._local.headers = None
            response = super().request(method, url, *args, **kwargs)
            self._local.headers = response.headers
            return response

        def last_headers(self) -> Mapping[str, str] | None:
            headers: Mapping[str, str] | None = getattr(self._local, "headers", None)
            return headers

    return RoutedHttpClient()


def _retry_after(headers: Mapping[str, str] | None, clock: Callable[[], float]) -> float | None:
    if headers is None:
        return None
    from cloudcart.core.throttling import retry_after_seconds

    return retry_after_seconds(headers, now=clock())
