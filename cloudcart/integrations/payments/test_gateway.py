"""The embedded test gateway: a payment provider that lives inside the app, for local runs
and tests, with test cards and signed webhooks.

It behaves like a real gateway where orders can tell the difference:
- payments and refunds are stored (documents port, `payments` container), and every
  mutating call is idempotent on its key;
- the customer confirms a payment out of band (`POST /dev/payments/{paymentId}/confirm`
  with a test card), and the outcome reaches the app only as a webhook;
- webhooks are signed (HMAC-SHA256, `Cloudcart-Signature: t=<ts>,v1=<hex>`, Stripe's
  scheme), delivered from a background thread after a random delay so they can race the
  checkout response, retried with backoff on failure, and sometimes delivered twice.

Test cards: 4242424242424242 succeeds; 4000000000000002 fails with `card_declined`;
4000000000009995 fails with `insufficient_funds` (all three issued in the US, as at
Stripe); 4000003560000008 (IN), 4000008260000000 (GB) and 4000002760000016 (DE) succeed.
Payment webhooks carry the card's country and a fingerprint (the same card number gives the
same value), as a real gateway reports them after authorisation. A refund of exactly
`REFUND_FAILS_AMOUNT` minor units fails (`refund.failed`); every other refund within the
refundable balance succeeds at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast, get_args

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.files import create_private_file_once
from cloudcart.core.ports.documents import (
    BatchOp,
    Document,
    DocumentStore,
    Filter,
    PatchOp,
    Query,
    each,
)
from cloudcart.core.ports.payments import (
    IdempotencyMismatch,
    InvalidWebhook,
    Payment,
    PaymentError,
    PaymentEvent,
    PaymentEventType,
    PaymentNotFound,
    PaymentStatus,
    Refund,
    RefundStatus,
)

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

log = logging.getLogger(__name__)

PROVIDER: Final = "test"
CONTAINER: Final = "payments"
SIGNATURE_HEADER: Final = "Cloudcart-Signature"
TOLERANCE_SECONDS: Final = 300
KEY_FILE: Final = Path("keys") / "test-gateway-webhook.key"

CARD_SUCCEEDS: Final = "4242424242424242"
CARD_DECLINED: Final = "4000000000000002"
CARD_INSUFFICIENT_FUNDS: Final = "4000000000009995"
CARD_IN: Final = "4000003560000008"
CARD_GB: Final = "4000008260000000"
CARD_DE: Final = "4000002760000016"
TEST_CARDS: Final[Mapping[str, str | None]] = {
    CARD_SUCCEEDS: None,
    CARD_DECLINED: "card_declined",
    CARD_INSUFFICIENT_FUNDS: "insufficient_funds",
    CARD_IN: None,
    CARD_GB: None,
    CARD_DE: None,
}
"""Test card number -> failure reason (None: the payment succeeds)."""
CARD_COUNTRIES: Final[Mapping[str, str]] = {
    CARD_SUCCEEDS: "US",
    CARD_DECLINED: "US",
    CARD_INSUFFICIENT_FUNDS: "US",
    CARD_IN: "IN",
    CARD_GB: "GB",
    CARD_DE: "DE",
}
"""Test card number -> the ISO 3166 country that issued it (the numbers and countries of
Stripe's test cards, so a storefront tested here behaves the same against Stripe)."""

REFUND_FAILS_AMOUNT: Final = 1313
FEE_BASIS_POINTS: Final = 200
FEE_FIXED: Final = 300
"""The test gateway's fee on a succeeded payment: 2% plus 3.00 (in minor units), like a
card processor's, reported in the `payment.succeeded` webhook."""


def payment_fee(amount: int) -> int:
    """The test gateway's fee on a payment of `amount` (never more than the amount)."""
    return min(amount, amount * FEE_BASIS_POINTS // 10_000 + FEE_FIXED)


"""A refund of exactly this many minor units fails, to exercise `refund.failed`."""

WebhookSender = Callable[[str, bytes, Mapping[str, str]], int]
"""Posts a webhook body with headers to a URL and returns the HTTP status (raises OSError
when the URL cannot be reached)."""


class UnknownTestCard(PaymentError):
    """The card number is not one of the test cards."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The `Cloudcart-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check a `Cloudcart-Signature` header; raises InvalidWebhook.

    The timestamp is signed with the body, so an old delivery replayed later fails the
    tolerance check even though its signature is genuine.
    """
    if not header:
        raise InvalidWebhook(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidWebhook("malformed signature timestamp") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidWebhook("signature header needs t= and v1=")
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    # Any v1 may match: during a secret rotation a sender signs with both secrets.
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidWebhook("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidWebhook("signature timestamp outside the tolerance (replay?)")


def post_webhook(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """Default WebhookSender: a plain HTTP POST (stdlib, no extra dependency)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL must be http(s): {url!r}")
    # Scheme checked above; the URL is this app's own public base URL.
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def load_or_create_secret(data_dir: Path) -> bytes:
    """The webhook secret in `data_dir/keys/test-gateway-webhook.key`, created (0600) on
    first use; concurrent first starts agree on one key."""
    path = data_dir / KEY_FILE
    create_private_file_once(path, lambda: secrets.token_hex(32).encode())
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise PaymentError(f"test gateway webhook key file {path} is empty")
    return key.encode("ascii")


class EmbeddedTestGateway:
    """The test gateway (provider `test`); see the module docstring for its behaviour.

    `duplicate_probability` is the chance a webhook is delivered twice and `max_delay_ms`
    bounds the random delay before delivery; tests pass a seeded `rng` (or 0.0/1.0) for
    determinism and a `send` that captures deliveries. `drain()` waits for deliveries in
    flight.
    """

    provider = PROVIDER

    def __init__(
        self,
        store: DocumentStore,
        *,
        secret: bytes,
        public_base_url: str,
        duplicate_probability: float = 0.3,
        max_delay_ms: int = 250,
        send: WebhookSender = post_webhook,
        rng: random.Random | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
    ) -> None:
        self._store = store
        self._secret = secret
        base = public_base_url.rstrip("/")
        self.webhook_url = f"{base}/api/webhooks/payments/{PROVIDER}"
        self._confirm_base = f"{base}/dev/payments"
        self.duplicate_probability = duplicate_probability
        self.max_delay_ms = max_delay_ms
        self._send = send
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._in_flight = 0
        self._idle = threading.Condition()

    # --- the port ----------------------------------------------------------------------

    def create_payment(
        self, *, order_id: str, customer_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Payment:
        """Create a payment awaiting confirmation; the same key returns the same payment."""
        if amount <= 0:
            raise PaymentError("amount must be a positive number of minor units")
        currency = currency.upper()
        # The id is derived from the key, so a retry lands on the same document and the
        # create's Conflict is the idempotency check: one write, no lookup table.
        payment_id = "tpay_" + self._derive(f"payment:{idempotency_key}")
        doc: Document = {
            "id": payment_id,
            "paymentId": payment_id,
            "kind": "payment",
            "orderId": order_id,
            "customerId": customer_id,
            "amount": amount,
            "currency": currency,
            "status": "requires_confirmation",
            "failureReason": None,
            "refunded": 0,
            "clientSecret": f"{payment_id}_secret_{self._derive(f'client:{payment_id}')}",
            "createdAt": utcnow().isoformat(),
        }
        try:
            stored = self._container().create(doc)
        except Conflict:
            stored = self._read_payment(payment_id)
            same = (stored["orderId"], stored["customerId"], stored["amount"], stored["currency"])
            if same != (order_id, customer_id, amount, currency):
                raise IdempotencyMismatch(
                    f"idempotency key {idempotency_key!r} was used for a different payment"
                ) from None
        return self._payment(stored)

    def get_payment(self, payment_id: str) -> Payment:
        """The payment's current state."""
        return self._payment(self._read_payment(payment_id))

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> Payment:
        """Cancel a payment that has not succeeded; cancelling twice returns it unchanged.

        The idempotency key is accepted for the port's sake: cancelling is naturally
        idempotent here because the state change is conditional on the stored ETag.
        """
        del idempotency_key
        while True:
            doc = self._read_payment(payment_id)
            if doc["status"] == "cancelled":
                return self._payment(doc)
            if doc["status"] == "succeeded":
                raise PaymentError(f"payment {payment_id} has succeeded; refund it instead")
            doc["status"] = "cancelled"
            try:
                stored = self._container().replace(doc, if_match=doc["_etag"])
            except PreconditionFailed:
                continue  # changed under us (a confirm): decide again on the new state
            self._emit("payment.cancelled", stored, event_key="cancelled")
            return self._payment(stored)

    def refund(
        self, payment_id: str, *, amount: int, idempotency_key: str, reason: str | None = None
    ) -> Refund:
        """Refund part or all of a succeeded payment; the same key returns the same refund."""
        payment = self._read_payment(payment_id)
        refund_id = "tref_" + self._derive(f"refund:{payment_id}:{idempotency_key}")
        with contextlib.suppress(NotFound):
            return self._replayed_refund(payment_id, refund_id, amount, idempotency_key)
        if amount <= 0:
            raise PaymentError("refund amount must be a positive number of minor units")
        if payment["status"] != "succeeded":
            raise PaymentError(f"payment {payment_id} is {payment['status']}, not refundable")
        status: RefundStatus = "failed" if amount == REFUND_FAILS_AMOUNT else "succeeded"
        doc: Document = {
            "id": refund_id,
            "paymentId": payment_id,
            "kind": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "status": status,
            "reason": reason,
            "createdAt": utcnow().isoformat(),
        }
        operations = [BatchOp("create", document=doc)]
        if status == "succeeded":
            # The balance check and the refund record commit together, so concurrent
            # refunds can never exceed the captured amount.
            operations.append(
                BatchOp(
                    "patch",
                    id=payment_id,
                    patch=[PatchOp("incr", "refunded", amount)],
                    condition=[
                        Filter("status", "eq", "succeeded"),
                        Filter("refunded", "le", payment["amount"] - amount),
                    ],
                )
            )
        try:
            results = self._container().batch(payment_id, operations)
        except BatchFailed as failed:
            if failed.index == 0 and isinstance(failed.cause, Conflict):
                return self._replayed_refund(payment_id, refund_id, amount, idempotency_key)
            if isinstance(failed.cause, PreconditionFailed):
                raise PaymentError(
                    f"refund of {amount} exceeds what is left to refund on {payment_id}"
                ) from None
            raise
        event_type: PaymentEventType = (
            "refund.succeeded" if status == "succeeded" else "refund.failed"
        )
        self._emit(event_type, payment, event_key=refund_id, amount=amount, refund_id=refund_id)
        return self._refund(results[0])

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """Verify the `Cloudcart-Signature` header, then normalise the event."""
        verify(self._secret, body, _header(headers, SIGNATURE_HEADER))
        try:
            event = json.loads(body)
            data = event["data"]
            created = event.get("created")
            occurred = None if created is None else datetime.fromtimestamp(int(created), UTC)
            if event["type"] == "payout.paid":
                return PaymentEvent(
                    provider=PROVIDER,
                    event_id=str(event["id"]),
                    type="payout.paid",
                    payment_id="",
                    order_id="",
                    amount=int(data["amount"]),
                    currency=str(data["currency"]),
                    payout_id=str(data["payoutId"]),
                    occurred_at=occurred,
                )
            return PaymentEvent(
                provider=PROVIDER,
                event_id=str(event["id"]),
                type=_event_type(event["type"]),
                payment_id=str(data["paymentId"]),
                order_id=str(data["orderId"]),
                amount=int(data["amount"]),
                currency=str(data["currency"]),
                failure_reason=data.get("failureReason"),
                refund_id=data.get("refundId"),
                fee=None if data.get("fee") is None else int(data["fee"]),
                occurred_at=occurred,
                card_country=data.get("cardCountry"),
                card_fingerprint=data.get("cardFingerprint"),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidWebhook(f"malformed event: {error!r}") from None

    # --- test gateway only ---------------------------------------------------------------

    def confirm(self, payment_id: str, card: str) -> Payment:
        """Pay with a test card. Confirming a settled payment returns its state unchanged
        (and sends no webhook); an unknown card raises UnknownTestCard."""
        if card not in TEST_CARDS:
            raise UnknownTestCard(f"unknown test card; use one of {', '.join(sorted(TEST_CARDS))}")
        failure = TEST_CARDS[card]
        while True:
            doc = self._read_payment(payment_id)
            if doc["status"] != "requires_confirmation":
                return self._payment(doc)
            doc["status"] = "failed" if failure else "succeeded"
            doc["failureReason"] = failure
            doc["fee"] = 0 if failure else payment_fee(int(doc["amount"]))
            doc["cardCountry"] = CARD_COUNTRIES[card]
            doc["cardFingerprint"] = "tfp_" + self._derive(f"card:{card}")[:16]
            try:
                stored = self._container().replace(doc, if_match=doc["_etag"])
            except PreconditionFailed:
                continue  # a concurrent confirm or cancel won: report what it decided
            kind: PaymentEventType = "payment.failed" if failure else "payment.succeeded"
            self._emit(
                kind,
                stored,
                event_key=stored["status"],
                failure_reason=failure,
                fee=None if failure else int(stored["fee"]),
            )
            return self._payment(stored)

    def payout(self, currency: str) -> dict[str, Any] | None:
        """Pay the balance in `currency` out to the shop's bank, as a real gateway does on
        its schedule: what succeeded payments brought in, less fees and refunds, less what
        was paid out before. Sends `payout.paid`; None when there is nothing to pay."""
        currency = currency.upper()
        container = self._container()
        balance_id = f"payouts:{currency}"
        query = Query(
            filters=(
                Filter("kind", "eq", "payment"),
                Filter("status", "eq", "succeeded"),
                Filter("currency", "eq", currency),
            ),
            limit=500,
        )
        while True:
            earned = sum(
                int(doc["amount"]) - int(doc.get("fee", 0)) - int(doc["refunded"])
                for doc in each(container, query)
            )
            try:
                state: Document | None = container.read(balance_id, balance_id)
            except NotFound:
                state = None
            paid = int(state["paidOut"]) if state else 0
            amount = earned - paid
            if amount <= 0:
                return None
            count = (int(state["count"]) if state else 0) + 1
            payout_id = "tpo_" + self._derive(f"payout:{currency}:{count}")
            new_state = {
                "id": balance_id,
                "paymentId": balance_id,
                "kind": "payout-balance",
                "currency": currency,
                "paidOut": paid + amount,
                "count": count,
            }
            try:
                if state is None:
                    container.create(new_state)
                else:
                    container.replace(new_state, if_match=state["_etag"])
            except (Conflict, PreconditionFailed):
                continue  # a concurrent payout won: count again
            data = {"payoutId": payout_id, "amount": amount, "currency": currency}
            self._send_event(payout_id, "payout.paid", data)
            return data

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no webhook delivery is in flight; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def close(self) -> None:
        """Give deliveries in flight a moment to finish (Services.close calls this)."""
        self.drain(timeout=2.0)

    # --- internals -----------------------------------------------------------------------

    def _container(self) -> Any:
        return self._store.container(CONTAINER)

    def _derive(self, text: str) -> str:
        # Keyed, so ids cannot be guessed from an order id by someone without the secret.
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:24]

    def _read_payment(self, payment_id: str) -> Document:
        try:
            doc = cast(Document, self._container().read(payment_id, payment_id))
        except NotFound:
            raise PaymentNotFound(f"no payment {payment_id!r}") from None
        if doc.get("kind") != "payment":
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return doc

    def _replayed_refund(
        self, payment_id: str, refund_id: str, amount: int, idempotency_key: str
    ) -> Refund:
        doc = cast(Document, self._container().read(refund_id, payment_id))
        if doc["amount"] != amount:
            raise IdempotencyMismatch(
                f"idempotency key {idempotency_key!r} was used for a refund of {doc['amount']}"
            )
        return self._refund(doc)

    def _payment(self, doc: Document) -> Payment:
        status = cast(PaymentStatus, doc["status"])
        return Payment(
            provider=PROVIDER,
            payment_id=doc["id"],
            order_id=doc["orderId"],
            amount=doc["amount"],
            currency=doc["currency"],
            status=status,
            client_secret=doc["clientSecret"],
            failure_reason=doc.get("failureReason"),
            confirm_url=(
                f"{self._confirm_base}/{doc['id']}/confirm"
                if status == "requires_confirmation"
                else None
            ),
        )

    @staticmethod
    def _refund(doc: Document) -> Refund:
        return Refund(
            provider=PROVIDER,
            refund_id=doc["id"],
            payment_id=doc["paymentId"],
            amount=doc["amount"],
            currency=doc["currency"],
            status=doc["status"],
        )

    def _emit(
        self,
        event_type: PaymentEventType,
        payment: Document,
        *,
        event_key: str,
        amount: int | None = None,
        refund_id: str | None = None,
        failure_reason: str | None = None,
        fee: int | None = None,
    ) -> None:
        payment_id = payment["id"]
        data: dict[str, Any] = {
            "paymentId": payment_id,
            "orderId": payment["orderId"],
            "amount": payment["amount"] if amount is None else amount,
            "currency": payment["currency"],
            "failureReason": failure_reason,
            "refundId": refund_id,
        }
        if fee is not None:
            data["fee"] = fee
        if event_type in ("payment.succeeded", "payment.failed") and payment.get("cardCountry"):
            data["cardCountry"] = payment["cardCountry"]
            data["cardFingerprint"] = payment.get("cardFingerprint")
        self._send_event(f"{payment_id}:{event_key}", event_type, data)

    def _send_event(self, key: str, event_type: PaymentEventType, data: dict[str, Any]) -> None:
        # The event id is derived from what happened, so every delivery of one event (retry
        # or duplicate) carries the same id and consumers can deduplicate on it.
        event = {
            "id": "tevt_" + self._derive(f"event:{key}"),
            "type": event_type,
            "created": int(time.time()),
            "data": data,
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        with self._rng_lock:
            copies = 2 if self._rng.random() < self.duplicate_probability else 1
            delay = self._rng.uniform(0, self.max_delay_ms) / 1000
        with self._idle:
            self._in_flight += 1
        thread = threading.Thread(
            target=self._deliver, args=(body, copies, delay), name="test-gateway-webhook"
        )
        thread.daemon = True  # never keep the process alive for a webhook
        thread.start()

    def _deliver(self, body: bytes, copies: int, delay: float) -> None:
        try:
            time.sleep(delay)
            for _ in range(copies):
                self._deliver_once(body)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _deliver_once(self, body: bytes) -> None:
        for attempt in range(self._max_attempts):
            # A fresh timestamp per attempt, like Stripe: a retry is a new signed delivery.
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
            }
            try:
                status = self._send(self.webhook_url, body, headers)
            except OSError as error:
                status, detail = 0, repr(error)
            else:
                detail = f"HTTP {status}"
            if 200 <= status < 300:
                return
            log.warning(
                "test gateway webhook delivery failed (%s), attempt %d of %d",
                detail,
                attempt + 1,
                self._max_attempts,
            )
            if attempt + 1 < self._max_attempts:
                time.sleep(min(self._backoff * 2**attempt, 5.0))
        log.error("test gateway gave up delivering a webhook to %s", self.webhook_url)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Framework header maps are case-insensitive, plain dicts are not: accept both.
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


_EVENT_TYPES: Final[frozenset[str]] = frozenset(get_args(PaymentEventType))


def _event_type(value: object) -> PaymentEventType:
    if value not in _EVENT_TYPES:
        raise InvalidWebhook(f"unknown event type {value!r}")
    return cast(PaymentEventType, value)


def from_settings(settings: Settings, documents: DocumentStore) -> EmbeddedTestGateway:
    """The test gateway of these settings, storing payments in the app's documents port."""
    configured = settings.test_gateway_webhook_secret
    secret = (
        configured.get_secret_value().encode()
        if configured is not None
        else load_or_create_secret(Path(settings.data_dir))
    )
    return EmbeddedTestGateway(
        documents,
        secret=secret,
        public_base_url=settings.public_base_url,
        duplicate_probability=settings.test_gateway_duplicate_webhooks,
        max_delay_ms=settings.test_gateway_webhook_max_delay_ms,
    )
