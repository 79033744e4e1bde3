"""The Stripe adapter of the payment gateway port: PaymentIntents, Refunds, signed webhooks.

The `stripe` library is imported lazily (in the constructor), so an app that never takes
a payment does not pay for the import at cold start. `STRIPE_API_BASE` points the library
at another base URL; the tests use it to talk to a loopback fake of the Stripe API.

Status mapping (PaymentIntent -> Payment): `requires_payment_method` with a
`last_payment_error` is `failed` (Stripe lets the customer retry with another card, and a
later success still arrives as `payment.succeeded`), without one `requires_confirmation`;
`requires_confirmation`/`requires_action` are `requires_confirmation`;
`processing`/`requires_capture` are `processing`; `canceled` is `cancelled`.

Webhooks handled: `payment_intent.succeeded`, `payment_intent.payment_failed`,
`payment_intent.canceled`, `refund.created`/`refund.updated` (final states only) and
`charge.refunded` (when the charge carries its refunds). Other signed events raise
IgnoredWebhook, which the route answers with 200.

Without usable credentials (a secret unset, or an app setting still holding the literal
`@Microsoft.KeyVault(...)` reference because the secret is not in the vault yet) the
gateway is a `DisabledGateway`: checkout answers 503 `payments-disabled` and the reference
text is never sent to Stripe as a key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from cloudcart.core.errors import Unavailable
from cloudcart.core.ports.payments import (
    DisabledGateway,
    IdempotencyMismatch,
    IgnoredWebhook,
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
    import stripe
    from pydantic import SecretStr

    from cloudcart.core.settings import Settings

logger = logging.getLogger(__name__)

PROVIDER: Final = "stripe"
UNRESOLVED_KEY_VAULT_REFERENCE: Final = "@Microsoft.KeyVault("
"""How an app setting starts whose Key Vault reference the platform could not resolve."""
SIGNATURE_HEADER: Final = "Stripe-Signature"
TOLERANCE_SECONDS: Final = 300

_PAYMENT_STATUS: Final[Mapping[str, PaymentStatus]] = {
    "requires_payment_method": "requires_confirmation",
    "requires_confirmation": "requires_confirmation",
    "requires_action": "requires_confirmation",
    "processing": "processing",
    "requires_capture": "processing",
    "succeeded": "succeeded",
    "canceled": "cancelled",
}
_REFUND_STATUS: Final[Mapping[str, RefundStatus]] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}
_PAYMENT_EVENTS: Final[Mapping[str, PaymentEventType]] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.canceled": "payment.cancelled",
}


class StripeGateway:
    """Payments through Stripe PaymentIntents. One client, built once, shared by threads
    (the Stripe client is thread-safe)."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        max_network_retries: int = 2,
    ) -> None:
        import stripe  # lazy: see the module docstring

        self._stripe = stripe
        self._webhook_secret = webhook_secret
        self._client: stripe.StripeClient = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else {},
            # Retries are safe: every mutating call carries an idempotency key.
            max_network_retries=max_network_retries,
        )

    def create_payment(
        self, *, order_id: str, customer_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Payment:
        """Create a PaymentIntent; the client confirms it with `client_secret`."""
        intent = self._call(
            lambda: self._client.v1.payment_intents.create(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "metadata": {"order_id": order_id, "customer_id": customer_id},
                    "automatic_payment_methods": {"enabled": True},
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        return _payment(intent.to_dict())

    def get_payment(self, payment_id: str) -> Payment:
        """Retrieve the PaymentIntent."""
        intent = self._call(lambda: self._client.v1.payment_intents.retrieve(payment_id))
        return _payment(intent.to_dict())

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> Payment:
        """Cancel the PaymentIntent (Stripe refuses once it has succeeded)."""
        intent = self._call(
            lambda: self._client.v1.payment_intents.cancel(
                payment_id, options={"idempotency_key": idempotency_key}
            )
        )
        return _payment(intent.to_dict())

    def refund(
        self, payment_id: str, *, amount: int, idempotency_key: str, reason: str | None = None
    ) -> Refund:
        """Refund `amount` of the PaymentIntent's charge.

        The intent is read first so the refund carries the order id in its metadata: refund
        webhooks then name their order without another API call.
        """
        intent = self.get_payment(payment_id)
        metadata = {"order_id": intent.order_id}
        if reason:
            # Stripe's own `reason` is an enum; free text goes to metadata.
            metadata["reason"] = reason[:500]
        refund = self._call(
            lambda: self._client.v1.refunds.create(
                params={"payment_intent": payment_id, "amount": amount, "metadata": metadata},
                options={"idempotency_key": idempotency_key},
            )
        )
        return _refund(refund.to_dict())

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """Verify `Stripe-Signature` with `Webhook.construct_event`, then normalise."""
        header = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
        if not header:
            raise InvalidWebhook(f"missing {SIGNATURE_HEADER} header")
        try:
            event = self._client.construct_event(
                body, header, self._webhook_secret, tolerance=TOLERANCE_SECONDS
            )
        except self._stripe.SignatureVerificationError as error:
            raise InvalidWebhook(f"signature check failed: {error.user_message}") from None
        except ValueError:
            raise InvalidWebhook("body is not JSON") from None
        try:
            return _event(event.to_dict())
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidWebhook(f"malformed {event.type!r} event: {error!r}") from None

    def _call(self, call: Any) -> Any:
        """Run a Stripe call, turning its errors into the port's."""
        stripe = self._stripe
        try:
            return call()
        except stripe.IdempotencyError as error:
            raise IdempotencyMismatch(str(error.user_message)) from None
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":
                raise PaymentNotFound(str(error.user_message)) from None
            raise PaymentError(str(error.user_message)) from None
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise Unavailable(f"Stripe unreachable or throttling: {error!r}") from None
        except stripe.StripeError as error:
            raise PaymentError(f"Stripe error: {error.user_message or error!r}") from None


def _failure_reason(intent: Mapping[str, Any]) -> str | None:
    error = intent.get("last_payment_error")
    if not error:
        return None
    reason = error.get("decline_code") or error.get("code") or error.get("type")
    return str(reason) if reason else "payment_failed"


def _payment(intent: Mapping[str, Any]) -> Payment:
    raw = str(intent["status"])
    failure = _failure_reason(intent)
    status: PaymentStatus = (
        "failed"
        if raw == "requires_payment_method" and failure
        else _PAYMENT_STATUS.get(raw, "processing")
    )
    return Payment(
        provider=PROVIDER,
        payment_id=str(intent["id"]),
        order_id=str((intent.get("metadata") or {}).get("order_id", "")),
        amount=int(intent["amount"]),
        currency=str(intent["currency"]).upper(),
        status=status,
        client_secret=intent.get("client_secret"),
        failure_reason=failure if status == "failed" else None,
    )


def _refund(refund: Mapping[str, Any]) -> Refund:
    return Refund(
        provider=PROVIDER,
        refund_id=str(refund["id"]),
        payment_id=str(refund.get("payment_intent") or ""),
        amount=int(refund["amount"]),
        currency=str(refund["currency"]).upper(),
        status=_REFUND_STATUS.get(str(refund.get("status")), "pending"),
    )


def _card(intent: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The card's country and fingerprint where the event carries them: a declined intent's
    `last_payment_error.payment_method`, or an expanded `latest_charge` (or the `charges`
    list of API versions before 2022-11-15). Anything else reports neither."""
    candidates: list[Any] = []
    error = intent.get("last_payment_error")
    if isinstance(error, Mapping):
        method = error.get("payment_method")
        if isinstance(method, Mapping):
            candidates.append(method.get("card"))
    charge = intent.get("latest_charge")
    listed = intent.get("charges")
    charges = listed.get("data") if isinstance(listed, Mapping) else None
    for item in [charge, *(charges or [])]:
        if isinstance(item, Mapping):
            details = item.get("payment_method_details")
            if isinstance(details, Mapping):
                candidates.append(details.get("card"))
    for card in candidates:
        if isinstance(card, Mapping) and (card.get("country") or card.get("fingerprint")):
            country = card.get("country")
            fingerprint = card.get("fingerprint")
            return (
                str(country).upper() if country else None,
                str(fingerprint) if fingerprint else None,
            )
    return None, None


def _event(event: Mapping[str, Any]) -> PaymentEvent:
    kind = str(event["type"])
    obj = event["data"]["object"]
    if kind in _PAYMENT_EVENTS:
        payment = _payment(obj)
        return PaymentEvent(
            provider=PROVIDER,
            event_id=str(event["id"]),
            type=_PAYMENT_EVENTS[kind],
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            amount=payment.amount,
            currency=payment.currency,
            failure_reason=_failure_reason(obj) if kind.endswith("payment_failed") else None,
            card_country=_card(obj)[0],
            card_fingerprint=_card(obj)[1],
        )
    if kind in ("refund.created", "refund.updated"):
        return _refund_event(str(event["id"]), obj)
    if kind == "charge.refunded":
        # Newer API versions leave `refunds` out of the charge; refund.updated covers those.
        refunds = (obj.get("refunds") or {}).get("data") or []
        if not refunds:
            raise IgnoredWebhook("charge.refunded without its refunds; handled by refund.updated")
        latest = max(refunds, key=lambda r: int(r.get("created", 0)))
        latest.setdefault("payment_intent", obj.get("payment_intent"))
        if not (latest.get("metadata") or {}).get("order_id"):
            latest["metadata"] = obj.get("metadata") or {}
        return _refund_event(str(event["id"]), latest)
    if kind == "payout.paid":
        return PaymentEvent(
            provider=PROVIDER,
            event_id=str(event["id"]),
            type="payout.paid",
            payment_id="",
            order_id="",
            amount=int(obj["amount"]),
            currency=str(obj["currency"]).upper(),
            payout_id=str(obj["id"]),
            occurred_at=datetime.fromtimestamp(int(event["created"]), UTC),
        )
    raise IgnoredWebhook(f"event type {kind!r} is not used by Cloudcart")


def _refund_event(event_id: str, refund: Mapping[str, Any]) -> PaymentEvent:
    status = _REFUND_STATUS.get(str(refund.get("status")))
    if status is None:
        raise IgnoredWebhook(f"refund is still {refund.get('status')!r}")
    return PaymentEvent(
        provider=PROVIDER,
        event_id=event_id,
        type="refund.succeeded" if status == "succeeded" else "refund.failed",
        payment_id=str(refund["payment_intent"]),
        order_id=str((refund.get("metadata") or {}).get("order_id", "")),
        amount=int(refund["amount"]),
        currency=str(refund["currency"]).upper(),
        failure_reason=refund.get("failure_reason"),
        refund_id=str(refund["id"]),
    )


def usable_secret(value: SecretStr | None) -> str | None:
    """The secret's text, or None when it is unset, blank or an unresolved Key Vault
    reference (the platform passes the reference through as text when the secret is
    missing from the vault or the app's identity cannot read it)."""
    text = value.get_secret_value().strip() if value is not None else ""
    if not text or text.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
        return None
    return text


def from_settings(settings: Settings) -> StripeGateway | DisabledGateway:
    """The Stripe gateway of these settings, or a `DisabledGateway` naming the Stripe
    secrets that are not usable (both are needed: without the webhook secret no payment
    would ever be confirmed)."""
    secret_key = usable_secret(settings.stripe_secret_key)
    webhook_secret = usable_secret(settings.stripe_webhook_secret)
    if secret_key is None or webhook_secret is None:
        missing = [
            name
            for name, value in (
                ("STRIPE_SECRET_KEY", secret_key),
                ("STRIPE_WEBHOOK_SECRET", webhook_secret),
            )
            if value is None
        ]
        reason = (
            f"CLOUDCART_PAYMENTS_PROVIDER=stripe but {' and '.join(missing)} "
            "is unset or an unresolved Key Vault reference: payments are disabled"
        )
        logger.error(reason)
        return DisabledGateway(PROVIDER, reason)
    return StripeGateway(
        secret_key=secret_key, webhook_secret=webhook_secret, api_base=settings.stripe_api_base
    )
