"""A loopback fake of a partner's HTTP API whose answers a test scripts, plus its OAuth2
token endpoint.

It records every request (method, path, query, headers, decoded body) and answers each
path from a queue of `Scripted` answers (status, headers, JSON, optional delay before the
answer, to provoke client timeouts); an empty queue answers `default`. When `api_key` is
set, partner paths answer 401 without a matching `X-Api-Key`; when `require_bearer` is
set, they answer 401 unless `Authorization` carries a token this fake issued and did not
revoke (authentication is checked before a scripted answer is used). `POST /oauth2/token`
runs the client-credentials grant, issuing `tok-1`, `tok-2`, ... valid for `expires_in`
seconds (the fake never expires them itself: clients decide when to renew, and tests
revoke with `revoke_tokens()`); its answers can be scripted like any path.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

TOKEN_PATH = "/oauth2/token"


@dataclass(frozen=True)
class Scripted:
    """One answer: status, headers, JSON body (None: empty), seconds to wait first."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; header names are lower case; `body` is the decoded
    JSON, the form fields of a token request, or None."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FakePartnerApi:
    """State and HTTP server of the fake; use `running_partner_api()`."""

    def __init__(
        self,
        *,
        client_id: str = "cloudcart",
        client_secret: str = "s3cret",
        expires_in: int = 60,
        api_key: str | None = None,
        require_bearer: bool = False,
        token_delay: float = 0.0,
        default: Scripted | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.api_key = api_key
        self.require_bearer = require_bearer
        self.token_delay = token_delay
        self.accept_tokens = True
        """False: partner paths refuse every bearer token, even a fresh one."""
        self.default = default or Scripted(200, json={})
        self.requests: list[RecordedRequest] = []
        self.issued_tokens: list[str] = []
        self._valid_tokens: set[str] = set()
        self._scripts: dict[tuple[str, str], deque[Scripted]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.token_url = self.base_url + TOKEN_PATH

    # --- what tests do -----------------------------------------------------------------

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        """Queue answers for `method path` (used in order, then `default`)."""
        with self._lock:
            self._scripts[(method.upper(), path)].extend(answers)

    def revoke_tokens(self) -> None:
        """Every token issued so far becomes invalid (partner paths answer 401)."""
        with self._lock:
            self._valid_tokens.clear()

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests with this method and path."""
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path == path]

    @property
    def token_requests(self) -> list[RecordedRequest]:
        return self.requests_to("POST", TOKEN_PATH)

    @property
    def partner_requests(self) -> list[RecordedRequest]:
        """Requests to anything but the token endpoint."""
        with self._lock:
            return [r for r in self.requests if r.path != TOKEN_PATH]

    # --- answers -----------------------------------------------------------------------

    def answer(self, request: RecordedRequest) -> Scripted:
        with self._lock:
            self.requests.append(request)
            if request.path != TOKEN_PATH:
                # Authentication first: a refused request does not use up a scripted answer.
                if self.api_key is not None and request.header("X-Api-Key") != self.api_key:
                    return _problem(401, "a valid X-Api-Key header is required")
                if self.require_bearer:
                    token = (request.header("Authorization") or "").removeprefix("Bearer ")
                    if token not in self._valid_tokens or not self.accept_tokens:
                        return _problem(401, "the access token is invalid or expired")
            queued = self._scripts.get((request.method, request.path))
            if queued:
                return queued.popleft()
            if request.path == TOKEN_PATH:
                return self._grant(request)
            return self.default

    def _grant(self, request: RecordedRequest) -> Scripted:
        form = request.body if isinstance(request.body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return Scripted(400, json={"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return Scripted(401, json={"error": "invalid_client"})
        token = f"tok-{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(token)
        self._valid_tokens.add(token)
        return Scripted(
            200,
            json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in},
            delay=self.token_delay,
        )


def _problem(status: int, detail: str) -> Scripted:
    return Scripted(
        status,
        {"Content-Type": "application/problem+json"},
        {"type": "about:blank", "status": status, "detail": detail},
    )


def _handler_for(fake: FakePartnerApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; Nagle would hold the second one back.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            content_type = self.headers.get("Content-Type") or ""
            body: Any = None
            if raw and content_type.startswith("application/x-www-form-urlencoded"):
                body = dict(parse_qsl(raw, keep_blank_values=True))
            elif raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
            recorded = RecordedRequest(
                self.command,
                path,
                dict(parse_qsl(query, keep_blank_values=True)),
                {name.lower(): value for name, value in self.headers.items()},
                body,
            )
            scripted = fake.answer(recorded)
            if scripted.delay:
                time.sleep(scripted.delay)
            payload = b"" if scripted.json is None else json.dumps(scripted.json).encode()
            # The client may have given up (timeout) while we slept.
            with suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(scripted.status)
                headers = {"Content-Type": "application/json", **scripted.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve
        do_PUT = _serve
        do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_partner_api(**options: Any) -> Iterator[FakePartnerApi]:
    """Start the fake on a free loopback port (options as FakePartnerApi); stop it after."""
    fake = FakePartnerApi(**options)
    # A short poll interval: shutdown() waits for the serving loop to notice.
    thread = threading.Thread(
        target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
