"""A small in-memory payment gateway for orders' unit tests (the real embedded test gateway
belongs to PAYMENTS). It honours idempotency keys like a real gateway and can be told to
fail the next `create_payment`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import replace

from cloudcart.core.ports.payments import (
    InvalidWebhook,
    Payment,
    PaymentError,
    PaymentEvent,
    PaymentNotFound,
    Refund,
)


class FakeGateway:
    """Payments and refunds in dicts; `succeed`/`fail` settle a payment and return the
    webhook event a gateway would send."""

    provider = "fake"

    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self.by_key: dict[str, str] = {}
        self.create_calls = 0
        self.fail_next_create = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def create_payment(
        self, *, order_id: str, customer_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Payment:
        with self._lock:
            self.create_calls += 1
            if self.fail_next_create:
                self.fail_next_create = False
                raise PaymentError("gateway unavailable")
            if idempotency_key in self.by_key:
                return self.payments[self.by_key[idempotency_key]]
            payment = Payment(
                self.provider,
                f"pay_{next(self._ids)}",
                order_id,
                amount,
                currency,
                "requires_confirmation",
                client_secret="secret",
            )
            self.payments[payment.payment_id] = payment
            self.by_key[idempotency_key] = payment.payment_id
            return payment

    def get_payment(self, payment_id: str) -> Payment:
        try:
            return self.payments[payment_id]
        except KeyError:
            raise PaymentNotFound(payment_id) from None

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> Payment:
        payment = self.get_payment(payment_id)
        if payment.status == "succeeded":
            raise PaymentError("cannot cancel a succeeded payment")
        self.payments[payment_id] = replace(payment, status="cancelled")
        return self.payments[payment_id]

    def refund(
        self, payment_id: str, *, amount: int, idempotency_key: str, reason: str | None = None
    ) -> Refund:
        with self._lock:
            if idempotency_key in self.by_key:
                return self.refunds[self.by_key[idempotency_key]]
            payment = self.get_payment(payment_id)
            if payment.status != "succeeded":
                raise PaymentError("only succeeded payments can be refunded")
            refund = Refund(
                self.provider,
                f"re_{next(self._ids)}",
                payment_id,
                amount,
                payment.currency,
                "succeeded",
            )
            self.refunds[refund.refund_id] = refund
            self.by_key[idempotency_key] = refund.refund_id
            return refund

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        raise InvalidWebhook("the fake gateway sends no webhooks over HTTP")

    def settle(
        self,
        payment_id: str,
        status: str,
        event_id: str | None = None,
        *,
        card_country: str | None = None,
        card_fingerprint: str | None = None,
    ) -> PaymentEvent:
        """Settle a payment (`succeeded`/`failed`) and return its webhook event (with the
        card's country and fingerprint when given, as a gateway reports them)."""
        payment = replace(self.get_payment(payment_id), status=status)  # type: ignore[arg-type]
        self.payments[payment_id] = payment
        kind = "payment.succeeded" if status == "succeeded" else "payment.failed"
        return PaymentEvent(
            self.provider,
            event_id or f"evt_{next(self._ids)}",
            kind,  # type: ignore[arg-type]
            payment_id,
            payment.order_id,
            payment.amount,
            payment.currency,
            failure_reason=None if status == "succeeded" else "card_declined",
            card_country=card_country,
            card_fingerprint=card_fingerprint,
        )

    def captured_total(self) -> int:
        """Succeeded payments minus refunds (what the shop holds)."""
        paid = sum(p.amount for p in self.payments.values() if p.status == "succeeded")
        return paid - sum(r.amount for r in self.refunds.values())
