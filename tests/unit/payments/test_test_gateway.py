"""The embedded test gateway: test cards, webhook delivery (loopback), duplicates, retries."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cloudcart.core.documents.embedded import from_settings as embedded_documents
from cloudcart.core.ports.documents import DocumentStore
from cloudcart.core.ports.payments import InvalidWebhook, PaymentError
from cloudcart.core.settings import Settings
from cloudcart.integrations.payments import test_gateway as tg

SECRET = b"unit-test-secret"


class CaptureServer:
    """A loopback HTTP server standing in for the app's webhook route."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        self._statuses = list(statuses or [])
        self.arrived = threading.Event()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                capture.received.append((self.path, body, dict(self.headers.items())))
                status = capture._statuses.pop(0) if capture._statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                capture.arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sent(list[bytes]):
    """A WebhookSender that keeps the bodies and answers 200."""

    def __call__(self, url: str, body: bytes, headers: Any) -> int:
        self.append(body)
        return 200


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DocumentStore]:
    documents = embedded_documents(Settings(data_dir=tmp_path))
    yield documents
    documents.close()


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer()
    yield server
    server.close()


def _gateway(store: DocumentStore, base_url: str, **kwargs: Any) -> tg.EmbeddedTestGateway:
    options: dict[str, Any] = {"duplicate_probability": 0.0, "max_delay_ms": 0}
    options.update(kwargs)
    return tg.EmbeddedTestGateway(store, secret=SECRET, public_base_url=base_url, **options)


def _pay(gateway: tg.EmbeddedTestGateway, order_id: str = "ord-1", amount: int = 5_000) -> str:
    return gateway.create_payment(
        order_id=order_id, customer_id="c1", amount=amount, currency="INR",
        idempotency_key=order_id,
    ).payment_id  # fmt: skip


@pytest.mark.parametrize(
    ("card", "status", "reason", "event_type"),
    [
        (tg.CARD_SUCCEEDS, "succeeded", None, "payment.succeeded"),
        (tg.CARD_DECLINED, "failed", "card_declined", "payment.failed"),
        (tg.CARD_INSUFFICIENT_FUNDS, "failed", "insufficient_funds", "payment.failed"),
    ],
)
def test_each_test_card_settles_and_sends_a_signed_webhook(
    store: DocumentStore,
    capture: CaptureServer,
    card: str,
    status: str,
    reason: str | None,
    event_type: str,
) -> None:
    gateway = _gateway(store, capture.base_url)
    payment_id = _pay(gateway)
    payment = gateway.confirm(payment_id, card)
    assert (payment.status, payment.failure_reason, payment.confirm_url) == (status, reason, None)
    assert gateway.drain(5)
    [(path, body, headers)] = capture.received
    assert path == "/api/webhooks/payments/test"
    event = gateway.parse_webhook(body, headers)
    assert (event.type, event.payment_id, event.order_id) == (event_type, payment_id, "ord-1")
    assert (event.amount, event.currency, event.failure_reason) == (5_000, "INR", reason)


def test_unknown_card_is_refused_and_changes_nothing(store: DocumentStore) -> None:
    gateway = _gateway(store, "http://127.0.0.1:9", send=lambda *a: 200)
    payment_id = _pay(gateway)
    with pytest.raises(tg.UnknownTestCard):
        gateway.confirm(payment_id, "4111111111111111")
    assert gateway.get_payment(payment_id).status == "requires_confirmation"


def test_confirm_is_idempotent_and_notifies_once(store: DocumentStore) -> None:
    sent = Sent()
    gateway = _gateway(store, "http://127.0.0.1:9", send=sent)
    payment_id = _pay(gateway)
    assert gateway.confirm(payment_id, tg.CARD_SUCCEEDS).status == "succeeded"
    # A second confirm, even with a declining card, reports the settled state.
    assert gateway.confirm(payment_id, tg.CARD_DECLINED).status == "succeeded"
    assert gateway.drain(5)
    assert len(sent) == 1


def test_confirm_url_points_at_the_dev_route(store: DocumentStore) -> None:
    gateway = _gateway(store, "http://shop.local:7071/", send=lambda *a: 200)
    payment = gateway.get_payment(_pay(gateway))
    assert (
        payment.confirm_url == f"http://shop.local:7071/dev/payments/{payment.payment_id}/confirm"
    )


def test_duplicate_mode_delivers_the_same_event_twice(
    store: DocumentStore, capture: CaptureServer
) -> None:
    gateway = _gateway(store, capture.base_url, duplicate_probability=1.0)
    gateway.confirm(_pay(gateway), tg.CARD_SUCCEEDS)
    assert gateway.drain(5)
    assert len(capture.received) == 2
    ids = {gateway.parse_webhook(body, headers).event_id for _, body, headers in capture.received}
    assert len(ids) == 1


def test_failed_delivery_is_retried_with_backoff(store: DocumentStore) -> None:
    server = CaptureServer(statuses=[500, 503])
    try:
        gateway = _gateway(store, server.base_url, backoff_seconds=0.01)
        gateway.confirm(_pay(gateway), tg.CARD_SUCCEEDS)
        assert gateway.drain(5)
        assert len(server.received) == 3  # two failures, then the 200
        bodies = {body for _, body, _ in server.received}
        assert len(bodies) == 1
    finally:
        server.close()


def test_delivery_gives_up_after_max_attempts(store: DocumentStore) -> None:
    calls: list[str] = []

    def unreachable(url: str, body: bytes, headers: Any) -> int:
        calls.append(url)
        raise ConnectionRefusedError

    gateway = _gateway(
        store, "http://127.0.0.1:9", send=unreachable, max_attempts=3, backoff_seconds=0.0
    )
    gateway.confirm(_pay(gateway), tg.CARD_SUCCEEDS)
    assert gateway.drain(5)
    assert len(calls) == 3


def test_cancel_sends_payment_cancelled(store: DocumentStore) -> None:
    sent = Sent()
    gateway = _gateway(store, "http://127.0.0.1:9", send=sent)
    payment_id = _pay(gateway)
    gateway.cancel_payment(payment_id, idempotency_key="k")
    assert gateway.confirm(payment_id, tg.CARD_SUCCEEDS).status == "cancelled"
    assert gateway.drain(5)
    assert [json.loads(b)["type"] for b in sent] == ["payment.cancelled"]


def test_refund_events_and_the_failing_amount(store: DocumentStore) -> None:
    sent = Sent()
    gateway = _gateway(store, "http://127.0.0.1:9", send=sent)
    payment_id = _pay(gateway)
    gateway.confirm(payment_id, tg.CARD_SUCCEEDS)
    failed = gateway.refund(payment_id, amount=tg.REFUND_FAILS_AMOUNT, idempotency_key="r1")
    assert failed.status == "failed"
    ok = gateway.refund(payment_id, amount=5_000, idempotency_key="r2")  # all of it still
    assert ok.status == "succeeded"
    assert gateway.drain(5)
    # Each event travels on its own thread, so arrival order is not guaranteed (as with
    # real gateways).
    events = {json.loads(b)["type"]: json.loads(b) for b in sent}
    assert len(sent) == 3
    assert set(events) == {"payment.succeeded", "refund.failed", "refund.succeeded"}
    assert events["refund.succeeded"]["data"]["refundId"] == ok.refund_id
    assert events["refund.succeeded"]["data"]["amount"] == 5_000
    assert events["refund.failed"]["data"]["refundId"] == failed.refund_id


def test_concurrent_refunds_never_exceed_the_payment(store: DocumentStore) -> None:
    gateway = _gateway(store, "http://127.0.0.1:9", send=lambda *a: 200)
    payment_id = _pay(gateway, amount=100)
    gateway.confirm(payment_id, tg.CARD_SUCCEEDS)
    outcomes: list[str] = []

    def refund(n: int) -> None:
        try:
            gateway.refund(payment_id, amount=30, idempotency_key=f"r{n}")
            outcomes.append("ok")
        except PaymentError:
            outcomes.append("refused")

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 5
    assert gateway.drain(5)


def test_secret_is_generated_once_with_owner_only_permissions(tmp_path: Path) -> None:
    first = tg.load_or_create_secret(tmp_path)
    assert tg.load_or_create_secret(tmp_path) == first
    mode = stat.S_IMODE(os.stat(tmp_path / tg.KEY_FILE).st_mode)
    assert mode == 0o600
    assert len(first) == 64


def test_signature_header_is_stripe_shaped() -> None:
    header = tg.sign(SECRET, b"{}", 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    tg.verify(SECRET, b"{}", header, now=1_700_000_100)
    with pytest.raises(InvalidWebhook):
        tg.verify(SECRET, b"{}", header, now=1_700_000_301)
    with pytest.raises(InvalidWebhook):
        tg.verify(SECRET, b"{}", "t=abc,v1=00", now=1_700_000_000)
