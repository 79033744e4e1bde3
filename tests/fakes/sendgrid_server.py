"""A loopback fake of SendGrid's v3 mail send, and a signer for its Event Webhook.

The real `sendgrid` library talks HTTP to it (its host pointed here), so the adapter's
requests are exercised end to end. `POST /v3/mail/send` checks `Authorization: Bearer
<key>` and validates the body roughly as SendGrid does, answering in SendGrid's error shape
(`{"errors": [{"message", "field", "help"}]}`):

- 1 to 1,000 personalizations, each with a non-empty `to`;
- every recipient a plausible address and not in `invalid_addresses` (400, field
  `personalizations.N.to.M.email`);
- no address twice in one request, compared case-insensitively (400, field
  `personalizations.N.to`);
- `from.email`; `content` (text/plain first) or a `template_id`; a `subject` unless a
  template is used; `custom_args` values that are strings.

An accepted request is answered 202 with an `X-Message-Id` and recorded in `requests`.
`fail_next()` makes the next requests fail (429/5xx, optionally with Retry-After);
`stall_next()` delays the next answer (timeouts).

`WebhookSigner` holds an ECDSA P-256 key pair: `public_key` is the base64 DER SubjectPublicKey
Info Mail Settings shows, `sign(body, timestamp)` the base64 DER signature SendGrid puts in
`X-Twilio-Email-Event-Webhook-Signature`. The fake has one (`sign_event_webhook`).
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_API_KEY = "SG.fake-key.contract"
MAX_PERSONALIZATIONS = 1000
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class SentRequest:
    """One accepted mail-send request."""

    message_id: str
    body: dict[str, Any]
    authorization: str | None

    @property
    def personalizations(self) -> list[dict[str, Any]]:
        """The request's personalizations, as sent."""
        return list(self.body["personalizations"])

    @property
    def recipients(self) -> list[str]:
        """Every `to` address of the request, in order."""
        return [to["email"] for p in self.personalizations for to in p["to"]]


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: float | None


class MailSendError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = [{"message": message, "field": field, "help": None}]


class WebhookSigner:
    """Signs Event Webhook bodies as SendGrid does (ECDSA P-256, SHA-256)."""

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        """The signature header of `body` posted at `timestamp` (unix seconds, as text)."""
        signature = self._private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()


@dataclass
class FakeSendGrid:
    """State and HTTP server of the fake; use `running_sendgrid()`."""

    api_key: str = DEFAULT_API_KEY
    invalid_addresses: set[str] = field(default_factory=set)
    requests: list[SentRequest] = field(default_factory=list)
    attempts: int = 0
    """Requests received, accepted or not."""
    name_invalid_fields: bool = True
    """False: invalid addresses are reported without a `field` (the request is still
    refused), as some SendGrid validation errors are."""

    def __post_init__(self) -> None:
        self.signer = WebhookSigner()
        self._faults: list[_Fault] = []
        self._stall = 0.0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- programming the fake ------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """The next `times` requests get `status` (429 or 5xx), with Retry-After if given."""
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after))

    def stall_next(self, seconds: float) -> None:
        """The next request waits `seconds` before it is answered (released on shutdown)."""
        with self._lock:
            self._stall = seconds

    @property
    def public_key(self) -> str:
        """The Event Webhook verification key (base64 DER), as Mail Settings shows it."""
        return self.signer.public_key

    def sign_event_webhook(self, body: bytes, timestamp: str) -> str:
        """`X-Twilio-Email-Event-Webhook-Signature` for `body` at `timestamp`."""
        return self.signer.sign(body, timestamp)

    def sent_to(self) -> list[str]:
        """Every accepted recipient address, in order."""
        return [address for request in self.requests for address in request.recipients]

    # --- the API -------------------------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            while self._faults and self._faults[0].times <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.times -= 1
            return _Fault(fault.status, 1, fault.retry_after)

    def _take_stall(self) -> float:
        with self._lock:
            stall, self._stall = self._stall, 0.0
            return stall

    def respond(
        self, path: str, authorization: str | None, raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request."""
        with self._lock:
            self.attempts += 1
        stall = self._take_stall()
        if stall:
            self._released.wait(stall)
        try:
            if path != "/v3/mail/send":
                raise MailSendError(404, "resource not found")
            if authorization != f"Bearer {self.api_key}":
                raise MailSendError(
                    401, "The provided authorization grant is invalid, expired, or revoked"
                )
            fault = self._next_fault()
            if fault is not None:
                headers = {}
                if fault.status == 429:
                    # SendGrid's own rate-limit headers; Retry-After only when asked for.
                    wait = math.ceil(fault.retry_after or 1)
                    headers["X-RateLimit-Limit"] = "600"
                    headers["X-RateLimit-Remaining"] = "0"
                    headers["X-RateLimit-Reset"] = str(math.ceil(time.time()) + wait)
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(int(fault.retry_after))
                message = "too many requests" if fault.status == 429 else "internal error"
                body = {"errors": [{"message": message, "field": None, "help": None}]}
                return fault.status, headers, json.dumps(body).encode()
            try:
                request = json.loads(raw)
            except ValueError:
                raise MailSendError(400, "Bad Request", None) from None
            self._validate(request)
        except MailSendError as error:
            return error.status, {}, json.dumps({"errors": error.errors}).encode()
        message_id = secrets.token_urlsafe(16)[:22]
        with self._lock:
            self.requests.append(SentRequest(message_id, request, authorization))
        return 202, {"X-Message-Id": message_id}, b""

    def _validate(self, request: Any) -> None:
        if not isinstance(request, dict):
            raise MailSendError(400, "Bad Request")
        sender = request.get("from")
        if not isinstance(sender, dict) or not _ADDRESS.match(str(sender.get("email", ""))):
            raise MailSendError(
                400, "The from object must be provided for every email send.", "from.email"
            )
        personalizations = request.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            raise MailSendError(
                400,
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        if len(personalizations) > MAX_PERSONALIZATIONS:
            raise MailSendError(
                400,
                "The personalizations field must have no more than 1000 personalizations.",
                "personalizations",
            )
        template = request.get("template_id")
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        invalid = {address.lower() for address in self.invalid_addresses}
        for n, personalization in enumerate(personalizations):
            tos = personalization.get("to") if isinstance(personalization, dict) else None
            if not isinstance(tos, list) or not tos:
                raise MailSendError(
                    400,
                    "The to array is required for all personalization objects, and must "
                    "have at least one email object with a valid email address.",
                    f"personalizations.{n}.to",
                )
            for m, to in enumerate(tos):
                address = str(to.get("email", "")) if isinstance(to, dict) else ""
                if not _ADDRESS.match(address) or address.lower() in invalid:
                    errors.append(
                        {
                            "message": "Does not contain a valid address.",
                            "field": f"personalizations.{n}.to.{m}.email"
                            if self.name_invalid_fields
                            else None,
                            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/"
                            "Mail/errors.html#message.personalizations.to",
                        }
                    )
                    continue
                if address.lower() in seen:
                    raise MailSendError(
                        400,
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{address}] in the personalizations.{n}.to field.",
                        f"personalizations.{n}.to",
                    )
                seen.add(address.lower())
            for key, value in (personalization.get("custom_args") or {}).items():
                if not isinstance(value, str):
                    raise MailSendError(
                        400,
                        "Invalid type. Expected: string, given: " + type(value).__name__,
                        f"personalizations.{n}.custom_args.{key}",
                    )
        if errors:
            error = MailSendError(400, "")
            error.errors = errors
            raise error
        if not template:
            content = request.get("content")
            if not isinstance(content, list) or not content:
                raise MailSendError(
                    400,
                    "Unless a valid template_id is provided, the content parameter is required.",
                    "content",
                )
            types = [c.get("type") for c in content]
            if "text/plain" in types and types[0] != "text/plain":
                raise MailSendError(
                    400,
                    "If present, text/plain content must be first, followed by any other content.",
                    "content",
                )
            if any(not c.get("value") for c in content):
                raise MailSendError(
                    400,
                    "The content value must be a string at least one character long.",
                    "content.0.value",
                )
            if not request.get("subject") and not all(p.get("subject") for p in personalizations):
                raise MailSendError(
                    400,
                    "The subject is required. You can get around this requirement if you use "
                    "a template with a subject defined or if every personalization has a "
                    "subject defined.",
                    "subject",
                )


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.partition("?")[0]
            status, headers, body = fake.respond(path, self.headers.get("Authorization"), raw)
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_sendgrid(api_key: str = DEFAULT_API_KEY) -> Iterator[FakeSendGrid]:
    """Start the fake on a free loopback port; stop it afterwards."""
    fake = FakeSendGrid(api_key=api_key)
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake._released.set()
        fake.server.shutdown()
        fake.server.server_close()
