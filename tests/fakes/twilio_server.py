"""A loopback fake of Twilio's Messages API, and Twilio's webhook signature.

The real `twilio` library talks HTTP to it, so the adapter's requests are exercised end to
end. `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` takes form fields and HTTP Basic
auth (account SID : auth token; anything else is 401 with error 20003) and answers as Twilio
does: 201 with the message resource (`sid` `SM...`, `status` `queued`, or `accepted` when
sent through a Messaging Service), or an error `{"code", "message", "more_info",
"status"}`:

- To missing (21604), From and MessagingServiceSid both missing (21603), Body and
  ContentSid both missing (21602);
- To not E.164 or in `invalid_numbers` (21211);
- a WhatsApp To with a non-WhatsApp From (21910);
- WhatsApp free-form text (no ContentSid) to a number outside `whatsapp_sessions` (63016;
  Twilio reports this one through the status callback, the fake answers it at once).

Accepted messages are recorded in `messages`. `fail_next()` makes the next requests fail
(429/5xx with an error code and optionally Retry-After); `stall_next()` delays the next
answer (timeouts). `sign(url, params)` computes `X-Twilio-Signature` with the auth token.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
WHATSAPP = "whatsapp:"
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class SentMessage:
    """One accepted message: the form fields the client sent, by Twilio's names."""

    sid: str
    to: str
    from_: str | None
    body: str | None
    status_callback: str | None
    content_sid: str | None
    content_variables: str | None
    messaging_service_sid: str | None
    params: dict[str, str]

    @property
    def variables(self) -> dict[str, str]:
        """`ContentVariables`, decoded."""
        decoded: dict[str, str] = json.loads(self.content_variables or "{}")
        return decoded


class TwilioApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": str(self),
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


@dataclass
class _Fault:
    status: int
    code: int
    times: int
    retry_after: float | None


@dataclass
class FakeTwilio:
    """State and HTTP server of the fake; use `running_twilio()`."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    invalid_numbers: set[str] = field(default_factory=set)
    whatsapp_sessions: set[str] = field(default_factory=set)
    """Numbers that wrote to us in the last 24 hours: free-form WhatsApp text may go there."""
    messages: list[SentMessage] = field(default_factory=list)
    attempts: int = 0
    """Requests received, accepted or not."""

    def __post_init__(self) -> None:
        self._faults: list[_Fault] = []
        self._stall = 0.0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- programming the fake ------------------------------------------------------------

    def fail_next(
        self, status: int, code: int | None = None, times: int = 1, retry_after: float | None = None
    ) -> None:
        """The next `times` requests get `status` with Twilio error `code` (default: 20429
        for 429, 20500 otherwise), with Retry-After if given."""
        default = 20429 if status == 429 else 20500
        with self._lock:
            self._faults.append(_Fault(status, code or default, times, retry_after))

    def stall_next(self, seconds: float) -> None:
        """The next request waits `seconds` before it is answered (released on shutdown)."""
        with self._lock:
            self._stall = seconds

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """`X-Twilio-Signature` of a webhook to `url` with form `params`."""
        return sign(self.auth_token, url, params)

    # --- the API -------------------------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            while self._faults and self._faults[0].times <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.times -= 1
            return fault

    def respond(
        self, method: str, path: str, authorization: str | None, raw: str
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request."""
        with self._lock:
            self.attempts += 1
            stall, self._stall = self._stall, 0.0
        if stall:
            self._released.wait(stall)
        headers: dict[str, str] = {}
        try:
            match = _MESSAGES_PATH.match(path)
            if method != "POST" or match is None:
                raise TwilioApiError(404, 20404, "The requested resource was not found")
            if not self._authorized(authorization) or match[1] != self.account_sid:
                raise TwilioApiError(401, 20003, "Authenticate")
            fault = self._next_fault()
            if fault is not None:
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(int(fault.retry_after))
                text = "Too Many Requests" if fault.status == 429 else "Internal Server Error"
                raise TwilioApiError(fault.status, fault.code, text)
            message = self._create(dict(parse_qsl(raw, keep_blank_values=True)))
        except TwilioApiError as error:
            return error.status, headers, json.dumps(error.body()).encode()
        return 201, headers, json.dumps(message).encode()

    def _authorized(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded).decode()
        except ValueError:
            return False
        return decoded == f"{self.account_sid}:{self.auth_token}"

    def _create(self, params: dict[str, str]) -> dict[str, Any]:
        to = params.get("To")
        sender = params.get("From")
        service = params.get("MessagingServiceSid")
        body = params.get("Body")
        content_sid = params.get("ContentSid")
        if not to:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if not body and not content_sid:
            raise TwilioApiError(400, 21602, "Message body is required.")
        whatsapp = to.startswith(WHATSAPP)
        number = to.removeprefix(WHATSAPP)
        if not _E164.match(number) or number in self.invalid_numbers:
            raise TwilioApiError(400, 21211, f"Invalid 'To' Phone Number: {number}")
        if whatsapp and sender and not sender.startswith(WHATSAPP):
            raise TwilioApiError(
                400, 21910, "Invalid From and To pair. From and To should be of the same channel"
            )
        if whatsapp and not content_sid and number not in self.whatsapp_sessions:
            raise TwilioApiError(
                400,
                63016,
                "Failed to send freeform message because you are outside the allowed window. "
                "If you are using WhatsApp, please use a Message Template.",
            )
        sid = "SM" + secrets.token_hex(16)
        sent = SentMessage(
            sid=sid,
            to=to,
            from_=sender,
            body=body,
            status_callback=params.get("StatusCallback"),
            content_sid=content_sid,
            content_variables=params.get("ContentVariables"),
            messaging_service_sid=service,
            params=params,
        )
        with self._lock:
            self.messages.append(sent)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": service,
            "to": to,
            "from": sender,
            "body": body or "",
            "status": "queued" if sender else "accepted",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "date_updated": formatdate(usegmt=True),
            "date_sent": None,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            path = self.path.partition("?")[0]
            status, headers, body = fake.respond(
                self.command, path, self.headers.get("Authorization"), raw
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_twilio(
    account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
) -> Iterator[FakeTwilio]:
    """Start the fake on a free loopback port; stop it afterwards."""
    fake = FakeTwilio(account_sid=account_sid, auth_token=auth_token)
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake._released.set()
        fake.server.shutdown()
        fake.server.server_close()


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """`X-Twilio-Signature` as Twilio computes it for a webhook to `url` with `params`."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature
