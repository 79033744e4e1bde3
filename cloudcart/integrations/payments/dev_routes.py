"""`POST /dev/payments/{paymentId}/confirm`: the customer's side of the embedded test gateway.

A storefront sends the customer here (the payment's `confirm_url`) the way it would hand
them to a real gateway's payment page. Mounted only when the test gateway is in use, and
kept out of the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.composition import Services
from cloudcart.core.ports.payments import PaymentNotFound
from cloudcart.integrations.payments.test_gateway import (
    TEST_CARDS,
    EmbeddedTestGateway,
    UnknownTestCard,
)

router = APIRouter(prefix="/dev/payments", include_in_schema=False)


class ConfirmRequest(BaseModel):
    """The test card to pay with."""

    card: str = Field(description=f"One of the test cards: {', '.join(TEST_CARDS)}.")


class ConfirmedPayment(BaseModel):
    """The payment after confirmation; the order learns the outcome from the webhook."""

    paymentId: str
    orderId: str
    status: str
    amount: int
    currency: str
    failureReason: str | None = None


def _gateway(services: Services) -> EmbeddedTestGateway:
    gateway = services.payments
    if not isinstance(gateway, EmbeddedTestGateway):
        raise Problem(404, "Not found", "The dev payment page serves only the test gateway.")
    return gateway


class PayoutRequest(BaseModel):
    """Which balance to pay out."""

    currency: str = Field("INR", pattern=r"^[A-Z]{3}$")


class PayoutResult(BaseModel):
    """The payout made, or null when the balance was nothing."""

    payout: dict[str, Any] | None


@router.post("/payouts", response_model=PayoutResult)
async def make_payout(request: PayoutRequest, services: ServicesDep) -> PayoutResult:
    """Pay the test gateway's balance in a currency out to the shop's bank (sends
    `payout.paid`), as a real gateway does on its schedule."""
    gateway = _gateway(services)
    return PayoutResult(payout=await run_in_threadpool(gateway.payout, request.currency))


@router.post("/{payment_id}/confirm", response_model=ConfirmedPayment)
async def confirm_payment(
    payment_id: Annotated[str, Path()], request: ConfirmRequest, services: ServicesDep
) -> ConfirmedPayment:
    """Pay with a test card; confirming a settled payment returns its state."""
    gateway = _gateway(services)
    try:
        payment = await run_in_threadpool(gateway.confirm, payment_id, request.card)
    except UnknownTestCard as error:
        raise Problem.of("unknown-test-card", str(error)) from None
    except PaymentNotFound:
        raise Problem(404, "Payment not found", f"No payment {payment_id!r}.") from None
    return ConfirmedPayment(
        paymentId=payment.payment_id,
        orderId=payment.order_id,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        failureReason=payment.failure_reason,
    )
