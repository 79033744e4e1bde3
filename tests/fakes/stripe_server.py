"""A loopback fake of the few Stripe API endpoints the Stripe adapter calls.

The real `stripe` library talks HTTP to it (its API base pointed here), so the adapter's
requests are exercised end to end: form-encoded bodies, `Authorization: Bearer`,
`Idempotency-Key` (same key -> the same response replayed; same key with other
parameters -> 400 `idempotency_error`, as Stripe does) and Stripe's error shape.

Endpoints: POST /v1/payment_intents, GET /v1/payment_intents/{id},
POST /v1/payment_intents/{id}/cancel, POST /v1/refunds. Tests move an intent on as the
customer would with `succeed()` / `fail()`, read `requests`, and sign webhook payloads
with `sign_webhook()` (Stripe's `t=...,v1=...` scheme).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; `params` are the decoded form fields (flat keys such
    as `metadata[order_id]`)."""

    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    authorization: str | None


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, "code": code}}


class FakeStripe:
    """State and HTTP server of the fake; use `running_stripe_fake()`."""

    def __init__(self) -> None:
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self._idempotency: dict[str, tuple[str, int, bytes]] = {}
        self._lock = threading.Lock()
        self._keyed = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- what a customer or Stripe itself would do ------------------------------------

    def succeed(self, intent_id: str) -> dict[str, Any]:
        """The customer paid: the intent succeeds."""
        with self._lock:
            intent = self.intents[intent_id]
            intent.update(status="succeeded", amount_received=intent["amount"])
            intent["last_payment_error"] = None
            return dict(intent)

    def fail(self, intent_id: str, decline_code: str = "card_declined") -> dict[str, Any]:
        """The customer's card was declined (Stripe goes back to requires_payment_method)."""
        with self._lock:
            intent = self.intents[intent_id]
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
            }
            return dict(intent)

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        """Recorded requests by method and path prefix."""
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # --- the API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if method == "POST" and path == "/v1/payment_intents":
                return self._create_intent(params)
            if path.startswith("/v1/payment_intents/"):
                rest = path.removeprefix("/v1/payment_intents/")
                intent_id, _, action = rest.partition("/")
                intent = self.intents.get(intent_id)
                if intent is None:
                    raise StripeError(
                        404,
                        "invalid_request_error",
                        f"No such payment_intent: '{intent_id}'",
                        "resource_missing",
                    )
                if method == "GET" and not action:
                    return dict(intent)
                if method == "POST" and action == "cancel":
                    if intent["status"] in ("succeeded", "canceled"):
                        raise StripeError(
                            400,
                            "invalid_request_error",
                            f"You cannot cancel this PaymentIntent because it has a status of "
                            f"{intent['status']}.",
                            "payment_intent_unexpected_state",
                        )
                    intent["status"] = "canceled"
                    return dict(intent)
            if method == "POST" and path == "/v1/refunds":
                return self._create_refund(params)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _create_intent(self, params: dict[str, str]) -> dict[str, Any]:
        for required in ("amount", "currency"):
            if required not in params:
                raise StripeError(
                    400, "invalid_request_error", f"Missing required param: {required}."
                )
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": 0,
            "currency": params["currency"],
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "metadata": _nested(params, "metadata"),
            "last_payment_error": None,
            "created": int(time.time()),
            "refunded": 0,
        }
        self.intents[intent_id] = intent
        return dict(intent)

    def _create_refund(self, params: dict[str, str]) -> dict[str, Any]:
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            raise StripeError(
                404, "invalid_request_error", "No such payment_intent", "resource_missing"
            )
        if intent["status"] != "succeeded":
            raise StripeError(
                400,
                "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
                "charge_not_refundable",
            )
        remaining = intent["amount"] - intent["refunded"]
        amount = int(params.get("amount", remaining))
        if amount <= 0 or amount > remaining:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount ({remaining}).",
                "amount_too_large",
            )
        intent["refunded"] += amount
        refund = {
            "id": "re_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "metadata": _nested(params, "metadata"),
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        return dict(refund)

    def respond(
        self, method: str, path: str, raw_body: str, idempotency_key: str | None
    ) -> tuple[int, bytes, bool]:
        """(status, body, replayed) for one request, honouring Idempotency-Key."""
        params = dict(parse_qsl(raw_body, keep_blank_values=True))
        if idempotency_key is None:
            return (*self._result(method, path, params), False)
        fingerprint = f"{method} {path} {sorted(params.items())}"
        # One keyed request at a time, so concurrent retries with one key see one result.
        with self._keyed:
            seen = self._idempotency.get(idempotency_key)
            if seen is None:
                status, body = self._result(method, path, params)
                # Stripe keeps the first result for the key, errors included, except 5xx.
                if status < 500:
                    self._idempotency[idempotency_key] = (fingerprint, status, body)
                return status, body, False
        if seen[0] != fingerprint:
            error = StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same "
                "parameters they were first used with.",
            )
            return error.status, json.dumps(error.body).encode(), False
        return seen[1], seen[2], True

    def _result(self, method: str, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        try:
            return 200, json.dumps(self.handle(method, path, params)).encode()
        except StripeError as error:
            return error.status, json.dumps(error.body).encode()


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    """`metadata[order_id]=x` form fields -> {"order_id": "x"}."""
    prefix = f"{name}["
    return {k[len(prefix) : -1]: v for k, v in params.items() if k.startswith(prefix)}


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            if self.command == "GET" and query:
                raw = query
            key = self.headers.get("Idempotency-Key")
            auth = self.headers.get("Authorization")
            fake.requests.append(
                RecordedRequest(
                    self.command, path, dict(parse_qsl(raw, keep_blank_values=True)), key, auth
                )
            )
            if not (auth or "").startswith("Bearer sk_"):
                error = StripeError(401, "invalid_request_error", "Invalid API Key provided")
                status, body, replayed = 401, json.dumps(error.body).encode(), False
            else:
                status, body, replayed = fake.respond(self.command, path, raw, key)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", "req_" + secrets.token_hex(6))
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(body)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_stripe_fake() -> Iterator[FakeStripe]:
    """Start the fake on a free loopback port; stop it afterwards."""
    fake = FakeStripe()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def sign_webhook(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`, as Stripe computes it."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def webhook_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """A Stripe event body (`{"id", "object": "event", "type", "data": {"object"}}`)."""
    event = {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "type": event_type,
        "data": {"object": obj},
        "livemode": False,
    }
    return json.dumps(event).encode()
