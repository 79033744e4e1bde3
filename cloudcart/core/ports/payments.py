"""The payment gateway port: what orders may ask of a payment provider.

Money is always integer minor units (paise, cents) with an ISO 4217 currency code in
upper case. Two adapters implement it: the embedded test gateway (test cards, signed
webhooks sent to this app) and Stripe (PaymentIntents and Refunds). When the shop takes no
payments (`CLOUDCART_PAYMENTS_PROVIDER=disabled`, or Stripe without usable credentials) the
gateway is a `DisabledGateway`: every call raises `PaymentsDisabled` (503
`payments-disabled`) and nothing reaches a provider.

Orders use the order id as the idempotency key of `create_payment`, so a retried checkout
never creates a second payment; refunds use keys such as `f"{order_id}:refund:{n}"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NoReturn, Protocol, runtime_checkable

from cloudcart.core.errors import CloudcartError, DomainError

PaymentStatus = Literal["requires_confirmation", "processing", "succeeded", "failed", "cancelled"]
"""Where a payment stands. `succeeded`, `failed` and `cancelled` are final."""

RefundStatus = Literal["pending", "succeeded", "failed"]

PaymentEventType = Literal[
    "payment.succeeded",
    "payment.failed",
    "payment.cancelled",
    "refund.succeeded",
    "refund.failed",
    "payout.paid",
]


@dataclass(frozen=True)
class Payment:
    """A payment as the gateway sees it.

    `client_secret` is what a storefront needs to confirm the payment with the provider's
    client SDK (Stripe); `confirm_url` is where a client confirms with the embedded test
    gateway (None for real gateways).
    """

    provider: str
    payment_id: str
    order_id: str
    amount: int
    currency: str
    status: PaymentStatus
    client_secret: str | None = None
    failure_reason: str | None = None
    confirm_url: str | None = None


@dataclass(frozen=True)
class Refund:
    """A refund of (part of) a payment."""

    provider: str
    refund_id: str
    payment_id: str
    amount: int
    currency: str
    status: RefundStatus


@dataclass(frozen=True)
class PaymentEvent:
    """A verified webhook, normalised. `event_id` is the provider's id, stable across
    redeliveries, so consumers can deduplicate on it."""

    provider: str
    event_id: str
    type: PaymentEventType
    payment_id: str
    order_id: str
    amount: int
    currency: str
    failure_reason: str | None = None
    refund_id: str | None = None
    fee: int | None = None
    """The gateway's fee for a succeeded payment, when the gateway reports it."""
    payout_id: str | None = None
    """For `payout.paid` (no payment or order then: both are empty strings)."""
    occurred_at: datetime | None = None
    """When the gateway says it happened (stable across redeliveries)."""
    card_country: str | None = None
    """ISO 3166 alpha-2 country that issued the card, when the gateway reports it."""
    card_fingerprint: str | None = None
    """The gateway's stable id of the card number (the same card gives the same value),
    when it reports one; never the number itself."""


class PaymentError(CloudcartError):
    """A gateway call failed (unknown payment, provider error, idempotency misuse)."""


class PaymentNotFound(PaymentError):
    """The gateway has no payment with that id."""


class IdempotencyMismatch(PaymentError):
    """An idempotency key was reused with different parameters."""


class InvalidWebhook(CloudcartError):
    """A webhook failed verification (signature, timestamp) or could not be understood."""


class PaymentDeclined(CloudcartError):
    """The gateway declined a payment synchronously (the test gateway never does: declines
    arrive as `failed` payments and `payment.failed` webhooks)."""


@runtime_checkable
class PaymentGateway(Protocol):
    """A payment provider. Every mutating call takes an idempotency key: the same key
    returns the same result, never a second charge or refund."""

    provider: str

    def create_payment(
        self, *, order_id: str, customer_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Payment:
        """Create a payment awaiting the customer's confirmation."""
        ...

    def get_payment(self, payment_id: str) -> Payment:
        """The payment's current state. Raises PaymentNotFound."""
        ...

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> Payment:
        """Cancel a payment that has not succeeded. Raises PaymentNotFound, PaymentError."""
        ...

    def refund(
        self, payment_id: str, *, amount: int, idempotency_key: str, reason: str | None = None
    ) -> Refund:
        """Refund `amount` (minor units) of a succeeded payment, fully or partly."""
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """Verify a webhook's signature and timestamp, then normalise it.

        Raises InvalidWebhook when verification fails, or its subclass IgnoredWebhook for
        a correctly signed event of a type this port does not model (the route answers 200
        to those so the provider stops retrying).
        """
        ...


class IgnoredWebhook(InvalidWebhook):
    """A correctly signed webhook of an event type Cloudcart does not act on; the route
    answers 200 so the provider stops retrying."""


DISABLED_PROVIDER: Final = "disabled"
"""`CLOUDCART_PAYMENTS_PROVIDER` value of a shop that takes no payments."""


class PaymentsDisabled(PaymentError, DomainError):
    """The shop takes no payments: switched off, or the provider's credentials are missing.

    The message says why (for logs); clients get a fixed 503 `payments-disabled` problem,
    since the reason names configuration.
    """

    problem_type = "payments-disabled"

    def problem_detail(self) -> str | None:
        """A detail that names no configuration."""
        return "This shop is not taking payments at the moment; try again later."


class DisabledGateway:
    """The gateway of a shop that takes no payments: every call raises `PaymentsDisabled`,
    so nothing is ever sent to a provider.

    `provider` is the configured one (`disabled`, or `stripe` whose credentials are not
    usable, so its webhook route still answers 503 and the provider retries later);
    `reason` says why, for the logs.
    """

    def __init__(self, provider: str, reason: str) -> None:
        self.provider = provider
        self.reason = reason

    def _refuse(self) -> NoReturn:
        raise PaymentsDisabled(self.reason)

    def create_payment(
        self, *, order_id: str, customer_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Payment:
        """Refuse: payments are disabled."""
        self._refuse()

    def get_payment(self, payment_id: str) -> Payment:
        """Refuse: payments are disabled."""
        self._refuse()

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> Payment:
        """Refuse: payments are disabled."""
        self._refuse()

    def refund(
        self, payment_id: str, *, amount: int, idempotency_key: str, reason: str | None = None
    ) -> Refund:
        """Refuse: payments are disabled."""
        self._refuse()

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """Refuse: payments are disabled (the provider redelivers once they are on)."""
        self._refuse()
