"""The payment gateway contract: the embedded test gateway and the Stripe adapter (against
the loopback Stripe fake) behave the same wherever orders could tell them apart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudcart.core.documents.embedded import from_settings as embedded_documents
from cloudcart.core.ports.payments import (
    IdempotencyMismatch,
    InvalidWebhook,
    Payment,
    PaymentError,
    PaymentGateway,
    PaymentNotFound,
)
from cloudcart.core.settings import Settings
from cloudcart.integrations.payments import test_gateway
from cloudcart.integrations.payments.stripe_gateway import StripeGateway
from tests.fakes import stripe_server

WEBHOOK_SECRET = "whsec_contract_secret"


@dataclass
class Kit:
    gateway: PaymentGateway
    settle: Callable[[str], None]
    """The customer pays the payment successfully."""
    succeeded_event: Callable[[Payment], bytes]
    """A `payment.succeeded` webhook body for the payment, in the provider's format."""
    sign: Callable[[bytes, int, str], dict[str, str]]
    """Signature headers for a body at a timestamp with a secret."""


def _ignore(_: object) -> None:
    """Settling returns something; the kit's `settle` does not."""


def _test_kit(tmp_path: Path) -> Iterator[Kit]:
    store = embedded_documents(Settings(data_dir=tmp_path))
    gateway = test_gateway.EmbeddedTestGateway(
        store,
        secret=WEBHOOK_SECRET.encode(),
        public_base_url="http://127.0.0.1:9",
        duplicate_probability=0.0,
        max_delay_ms=0,
        send=lambda url, body, headers: 200,
    )

    def event(payment: Payment) -> bytes:
        data: dict[str, object] = {
            "paymentId": payment.payment_id,
            "orderId": payment.order_id,
            "amount": payment.amount,
            "currency": payment.currency,
        }
        return json.dumps({"id": "tevt_1", "type": "payment.succeeded", "data": data}).encode()

    yield Kit(
        gateway=gateway,
        settle=lambda pid: _ignore(gateway.confirm(pid, test_gateway.CARD_SUCCEEDS)),
        succeeded_event=event,
        sign=lambda body, ts, secret: {
            "Cloudcart-Signature": test_gateway.sign(secret.encode(), body, ts)
        },
    )
    gateway.drain()
    store.close()


def _stripe_kit() -> Iterator[Kit]:
    with stripe_server.running_stripe_fake() as fake:
        gateway = StripeGateway(
            secret_key="sk_test_contract",
            webhook_secret=WEBHOOK_SECRET,
            api_base=fake.base_url,
            max_network_retries=0,
        )

        def event(payment: Payment) -> bytes:
            intent = dict(fake.intents[payment.payment_id])
            return stripe_server.webhook_event("payment_intent.succeeded", intent, "evt_1")

        yield Kit(
            gateway=gateway,
            settle=lambda pid: _ignore(fake.succeed(pid)),
            succeeded_event=event,
            sign=lambda body, ts, secret: {
                "Stripe-Signature": stripe_server.sign_webhook(body, secret, ts)
            },
        )


@pytest.fixture(params=["test", "stripe"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    yield from (_test_kit(tmp_path) if request.param == "test" else _stripe_kit())


def _create(kit: Kit, order_id: str = "ord-1", amount: int = 10_000) -> Payment:
    return kit.gateway.create_payment(
        order_id=order_id, customer_id="cust-1", amount=amount, currency="inr",
        idempotency_key=order_id,
    )  # fmt: skip


def test_create_awaits_confirmation(kit: Kit) -> None:
    payment = _create(kit)
    assert payment.provider == kit.gateway.provider
    assert (payment.order_id, payment.amount, payment.currency) == ("ord-1", 10_000, "INR")
    assert payment.status == "requires_confirmation"
    assert payment.client_secret


def test_create_is_idempotent_on_the_key(kit: Kit) -> None:
    first = _create(kit)
    assert _create(kit).payment_id == first.payment_id
    assert _create(kit, order_id="ord-2").payment_id != first.payment_id


def test_same_key_with_another_amount_is_refused(kit: Kit) -> None:
    _create(kit)
    with pytest.raises(IdempotencyMismatch):
        _create(kit, amount=9_999)


def test_get_returns_the_current_state(kit: Kit) -> None:
    payment = _create(kit)
    assert kit.gateway.get_payment(payment.payment_id).status == "requires_confirmation"
    kit.settle(payment.payment_id)
    assert kit.gateway.get_payment(payment.payment_id).status == "succeeded"


def test_get_unknown_payment(kit: Kit) -> None:
    with pytest.raises(PaymentNotFound):
        kit.gateway.get_payment("pay_does_not_exist")


def test_cancel_unpaid_payment_is_idempotent(kit: Kit) -> None:
    payment = _create(kit)
    first = kit.gateway.cancel_payment(payment.payment_id, idempotency_key="ord-1:cancel")
    again = kit.gateway.cancel_payment(payment.payment_id, idempotency_key="ord-1:cancel")
    assert first.status == again.status == "cancelled"
    assert kit.gateway.get_payment(payment.payment_id).status == "cancelled"


def test_cancel_after_success_is_refused(kit: Kit) -> None:
    payment = _create(kit)
    kit.settle(payment.payment_id)
    with pytest.raises(PaymentError):
        kit.gateway.cancel_payment(payment.payment_id, idempotency_key="ord-1:cancel")


def test_partial_then_full_refund_and_no_more(kit: Kit) -> None:
    payment = _create(kit)
    kit.settle(payment.payment_id)
    first = kit.gateway.refund(payment.payment_id, amount=3_000, idempotency_key="ord-1:refund:1")
    assert (first.amount, first.currency, first.status) == (3_000, "INR", "succeeded")
    assert first.payment_id == payment.payment_id
    rest = kit.gateway.refund(payment.payment_id, amount=7_000, idempotency_key="ord-1:refund:2")
    assert rest.status == "succeeded" and rest.refund_id != first.refund_id
    with pytest.raises(PaymentError):
        kit.gateway.refund(payment.payment_id, amount=1, idempotency_key="ord-1:refund:3")


def test_refund_is_idempotent_on_the_key(kit: Kit) -> None:
    payment = _create(kit)
    kit.settle(payment.payment_id)
    a = kit.gateway.refund(payment.payment_id, amount=6_000, idempotency_key="ord-1:refund:1")
    b = kit.gateway.refund(payment.payment_id, amount=6_000, idempotency_key="ord-1:refund:1")
    assert a.refund_id == b.refund_id
    # Replaying did not refund twice: 4 000 are still refundable, 4 001 are not.
    with pytest.raises(PaymentError):
        kit.gateway.refund(payment.payment_id, amount=4_001, idempotency_key="ord-1:refund:2")
    kit.gateway.refund(payment.payment_id, amount=4_000, idempotency_key="ord-1:refund:3")


def test_refund_of_unpaid_payment_is_refused(kit: Kit) -> None:
    payment = _create(kit)
    with pytest.raises(PaymentError):
        kit.gateway.refund(payment.payment_id, amount=100, idempotency_key="ord-1:refund:1")


def _signed(kit: Kit) -> tuple[bytes, Payment]:
    payment = _create(kit)
    kit.settle(payment.payment_id)
    return kit.succeeded_event(kit.gateway.get_payment(payment.payment_id)), payment


def test_valid_webhook_is_normalised(kit: Kit) -> None:
    body, payment = _signed(kit)
    event = kit.gateway.parse_webhook(body, kit.sign(body, int(time.time()), WEBHOOK_SECRET))
    assert event.provider == kit.gateway.provider
    assert event.type == "payment.succeeded"
    assert (event.payment_id, event.order_id) == (payment.payment_id, "ord-1")
    assert (event.amount, event.currency) == (10_000, "INR")
    assert event.event_id


def test_header_names_are_case_insensitive(kit: Kit) -> None:
    body, _ = _signed(kit)
    headers = {k.lower(): v for k, v in kit.sign(body, int(time.time()), WEBHOOK_SECRET).items()}
    assert kit.gateway.parse_webhook(body, headers).type == "payment.succeeded"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body.replace(b"10000", b"1"), headers), id="body"),
        pytest.param(lambda body, headers: (body, {}), id="no-signature"),
        pytest.param(
            lambda body, headers: (body, {k: v[:-4] + "0000" for k, v in headers.items()}),
            id="signature",
        ),
    ],
)
def test_tampered_webhook_is_rejected(
    kit: Kit, tamper: Callable[[bytes, Mapping[str, str]], tuple[bytes, Mapping[str, str]]]
) -> None:
    body, _ = _signed(kit)
    headers = kit.sign(body, int(time.time()), WEBHOOK_SECRET)
    assert kit.gateway.parse_webhook(body, headers)  # the untampered one passes
    bad_body, bad_headers = tamper(body, headers)
    with pytest.raises(InvalidWebhook):
        kit.gateway.parse_webhook(bad_body, bad_headers)


def test_webhook_signed_with_another_secret_is_rejected(kit: Kit) -> None:
    body, _ = _signed(kit)
    with pytest.raises(InvalidWebhook):
        kit.gateway.parse_webhook(body, kit.sign(body, int(time.time()), "whsec_other"))


def test_replayed_old_webhook_is_rejected(kit: Kit) -> None:
    body, _ = _signed(kit)
    now = int(time.time())
    assert kit.gateway.parse_webhook(body, kit.sign(body, now - 240, WEBHOOK_SECRET))
    with pytest.raises(InvalidWebhook):
        kit.gateway.parse_webhook(body, kit.sign(body, now - 360, WEBHOOK_SECRET))
