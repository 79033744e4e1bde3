"""`POST /api/webhooks/payments/{provider}`: where payment gateways report what happened.

Public (no bearer token): the gateway's signature authenticates the request, and it is
checked on the raw body before anything else is read. A verified event goes to
`cloudcart.orders.payments.apply_payment_event`, which is idempotent, so redeliveries and
duplicates are harmless; the route answers 200 so the gateway stops retrying.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.api.responses import problem_responses
from cloudcart.core.clock import utcnow
from cloudcart.core.ports.payments import DISABLED_PROVIDER, IgnoredWebhook, InvalidWebhook

log = logging.getLogger(__name__)

# Real gateway events are a few KB; refuse anything absurd before hashing it.
MAX_WEBHOOK_BYTES = 256 * 1024

router = APIRouter(prefix="/api/webhooks/payments", tags=["webhooks"])


class WebhookReceipt(BaseModel):
    """The acknowledgement a gateway expects."""

    received: bool = Field(True, description="Always true: the event was verified and handled.")


@router.post(
    "/{provider}",
    response_model=WebhookReceipt,
    summary="Receive a payment gateway webhook",
    description="Called by the payment gateway, never by clients. The body is verified with "
    "the provider's signature header (`Stripe-Signature` for `stripe`, `Cloudcart-Signature` "
    "for the embedded `test` gateway); unsigned, tampered or stale (> 5 min) requests get 400.",
    responses=problem_responses(400, 404, 413, 503),
)
async def receive_payment_webhook(
    provider: Annotated[str, Path(description="The gateway: `stripe` or `test`.")],
    request: Request,
    services: ServicesDep,
) -> WebhookReceipt:
    """Verify, then apply one gateway event."""
    gateway = services.payments
    # With payments disabled the gateway answers 503 below, so the provider retries the
    # event once payments are on instead of dropping it on a 404.
    if provider != gateway.provider and gateway.provider != DISABLED_PROVIDER:
        raise Problem(
            404,
            "Unknown payment provider",
            f"This shop takes payments through {gateway.provider!r}.",
        )
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Problem(413, "Webhook too large", f"At most {MAX_WEBHOOK_BYTES} bytes.")
    try:
        event = gateway.parse_webhook(body, request.headers)
    except IgnoredWebhook as ignored:
        log.info("payment webhook ignored: %s", ignored)
        return WebhookReceipt()
    except InvalidWebhook as invalid:
        raise Problem.of("invalid-webhook-signature", str(invalid), status=400) from None
    if event.type == "payout.paid":
        # Money left the gateway for the bank: only the journal records it. Imported here,
        # like orders below: the route must not pull the ledger in at import.
        from cloudcart.ledger.posting import post_payout

        await run_in_threadpool(
            lambda: post_payout(
                services,
                event_id=event.event_id,
                payout_id=event.payout_id or event.event_id,
                amount=event.amount,
                currency=event.currency,
                at=event.occurred_at or utcnow(),
            )
        )
        return WebhookReceipt()
    # Imported here: orders is a sibling domain, and the route must not pull it in at import.
    from cloudcart.orders.payments import apply_payment_event

    await run_in_threadpool(apply_payment_event, services, event)
    return WebhookReceipt()
