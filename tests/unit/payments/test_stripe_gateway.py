"""The Stripe adapter's requests as the loopback Stripe fake records them, and its events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudcart.composition import Services
from cloudcart.core.ports.payments import (
    DisabledGateway,
    IgnoredWebhook,
    PaymentError,
    PaymentsDisabled,
)
from cloudcart.core.settings import Settings
from cloudcart.integrations.payments.stripe_gateway import StripeGateway, from_settings
from tests.fakes import stripe_server

SECRET = "whsec_unit"


@pytest.fixture
def fake() -> Iterator[stripe_server.FakeStripe]:
    with stripe_server.running_stripe_fake() as server:
        yield server


@pytest.fixture
def gateway(fake: stripe_server.FakeStripe) -> StripeGateway:
    return StripeGateway(
        secret_key="sk_test_unit", webhook_secret=SECRET, api_base=fake.base_url,
        max_network_retries=0,
    )  # fmt: skip


def _event(gateway: StripeGateway, kind: str, obj: dict[str, Any]) -> Any:
    body = stripe_server.webhook_event(kind, obj)
    header = stripe_server.sign_webhook(body, SECRET, int(time.time()))
    return gateway.parse_webhook(body, {"Stripe-Signature": header})


def test_create_sends_amount_currency_metadata_and_key(
    fake: stripe_server.FakeStripe, gateway: StripeGateway
) -> None:
    gateway.create_payment(
        order_id="ord-9", customer_id="cust-3", amount=129_900, currency="INR",
        idempotency_key="ord-9",
    )  # fmt: skip
    [request] = fake.requests_to("POST", "/v1/payment_intents")
    assert request.params == {
        "amount": "129900",
        "currency": "inr",
        "metadata[order_id]": "ord-9",
        "metadata[customer_id]": "cust-3",
        "automatic_payment_methods[enabled]": "true",
    }
    assert request.idempotency_key == "ord-9"
    assert request.authorization == "Bearer sk_test_unit"


def test_refund_sends_intent_amount_order_and_key(
    fake: stripe_server.FakeStripe, gateway: StripeGateway
) -> None:
    payment = gateway.create_payment(
        order_id="ord-9", customer_id="c", amount=1_000, currency="usd", idempotency_key="ord-9"
    )
    fake.succeed(payment.payment_id)
    gateway.refund(payment.payment_id, amount=400, idempotency_key="ord-9:refund:1", reason="late")
    [request] = fake.requests_to("POST", "/v1/refunds")
    assert request.params == {
        "payment_intent": payment.payment_id,
        "amount": "400",
        "metadata[order_id]": "ord-9",
        "metadata[reason]": "late",
    }
    assert request.idempotency_key == "ord-9:refund:1"


def test_declined_intent_reads_as_failed(
    fake: stripe_server.FakeStripe, gateway: StripeGateway
) -> None:
    payment = gateway.create_payment(
        order_id="o", customer_id="c", amount=500, currency="eur", idempotency_key="o"
    )
    fake.fail(payment.payment_id, "insufficient_funds")
    got = gateway.get_payment(payment.payment_id)
    assert (got.status, got.failure_reason) == ("failed", "insufficient_funds")


def test_payment_failed_event_carries_the_decline(
    fake: stripe_server.FakeStripe, gateway: StripeGateway
) -> None:
    payment = gateway.create_payment(
        order_id="o", customer_id="c", amount=500, currency="eur", idempotency_key="o"
    )
    intent = fake.fail(payment.payment_id, "card_declined")
    event = _event(gateway, "payment_intent.payment_failed", intent)
    assert (event.type, event.order_id, event.failure_reason) == (
        "payment.failed",
        "o",
        "card_declined",
    )


def test_refund_events(fake: stripe_server.FakeStripe, gateway: StripeGateway) -> None:
    payment = gateway.create_payment(
        order_id="o", customer_id="c", amount=500, currency="eur", idempotency_key="o"
    )
    fake.succeed(payment.payment_id)
    refund = gateway.refund(payment.payment_id, amount=200, idempotency_key="o:refund:1")
    obj = dict(fake.refunds[refund.refund_id])
    event = _event(gateway, "refund.updated", obj)
    assert (event.type, event.refund_id, event.amount) == (
        "refund.succeeded",
        refund.refund_id,
        200,
    )
    assert (event.payment_id, event.order_id, event.currency) == (payment.payment_id, "o", "EUR")
    charge = {"id": "ch_1", "object": "charge", "payment_intent": payment.payment_id,
              "metadata": {}, "refunds": {"data": [obj]}}  # fmt: skip
    assert _event(gateway, "charge.refunded", charge).refund_id == refund.refund_id
    with pytest.raises(IgnoredWebhook):
        _event(gateway, "refund.updated", obj | {"status": "pending"})


def test_unused_event_types_are_ignored_not_invalid(gateway: StripeGateway) -> None:
    with pytest.raises(IgnoredWebhook):
        _event(gateway, "customer.created", {"id": "cus_1", "object": "customer"})


def test_from_settings_without_secrets_disables_payments(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, payments_provider="stripe")
    gateway = from_settings(settings)
    assert isinstance(gateway, DisabledGateway) and gateway.provider == "stripe"
    with pytest.raises(PaymentsDisabled, match="STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"):
        gateway.create_payment(
            order_id="o", customer_id="c", amount=1, currency="INR", idempotency_key="o"
        )


UNRESOLVED = (
    "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/stripe-secret-key/)"
)


@pytest.mark.parametrize(
    ("secret_key", "webhook_secret", "missing"),
    [
        (UNRESOLVED, "whsec_x", "STRIPE_SECRET_KEY is"),
        ("sk_test_x", UNRESOLVED.replace("secret-key", "webhook-secret"), "STRIPE_WEBHOOK_SECRET"),
        ("  ", "whsec_x", "STRIPE_SECRET_KEY is"),
    ],
)
def test_an_unresolved_key_vault_reference_is_never_sent_to_stripe(
    tmp_path: Path, fake: stripe_server.FakeStripe, secret_key: str, webhook_secret: str,
    missing: str,
) -> None:  # fmt: skip
    settings = Settings(
        data_dir=tmp_path,
        payments_provider="stripe",
        stripe_secret_key=secret_key,  # type: ignore[arg-type]
        stripe_webhook_secret=webhook_secret,  # type: ignore[arg-type]
        stripe_api_base=fake.base_url,
    )
    gateway = Services(settings).payments
    assert isinstance(gateway, DisabledGateway)
    with pytest.raises(PaymentsDisabled, match=missing) as refused:
        gateway.create_payment(
            order_id="o", customer_id="c", amount=1, currency="INR", idempotency_key="o"
        )
    assert isinstance(refused.value, PaymentError)  # callers' gateway-failure handling holds
    for call in (
        lambda: gateway.get_payment("pi_1"),
        lambda: gateway.cancel_payment("pi_1", idempotency_key="k"),
        lambda: gateway.refund("pi_1", amount=1, idempotency_key="k"),
        lambda: gateway.parse_webhook(b"{}", {"Stripe-Signature": "t=1,v1=x"}),
    ):
        with pytest.raises(PaymentsDisabled):
            call()
    assert fake.requests == []


def test_services_builds_the_configured_gateway(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        payments_provider="stripe",
        stripe_secret_key="sk_test_x",  # type: ignore[arg-type]
        stripe_webhook_secret="whsec_x",  # type: ignore[arg-type]
    )
    assert Services(settings).payments.provider == "stripe"
    assert Services(Settings(data_dir=tmp_path)).payments.provider == "test"
