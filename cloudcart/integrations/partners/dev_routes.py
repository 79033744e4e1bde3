"""Dev routes of the partner simulators (embedded messages only, admin token, not in the
OpenAPI document): what the simulated fulfilment centre received, outages, manual
shipping, and putting a message on a partner's inbound queue as the partner would."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.core.messages.topology import TOPOLOGY, Queue, Topic
from cloudcart.core.ports.messages import OutboundMessage, UnknownEntity
from cloudcart.identity.dependencies import Admin
from cloudcart.integrations.partners.simulators import wiring
from cloudcart.integrations.partners.simulators.accounting import AccountingSimulator
from cloudcart.integrations.partners.simulators.crm import CrmSimulator
from cloudcart.integrations.partners.simulators.fulfilment import FulfilmentSimulator
from cloudcart.integrations.partners.simulators.server import PartnerSimulator

router = APIRouter(prefix="/dev/partners", include_in_schema=False)

MAX_MESSAGE_BYTES = 256 * 1024
"""Service Bus Standard's message size limit."""


class OutageIn(BaseModel):
    """How long the simulator answers 503."""

    seconds: float = Field(ge=0, le=3600)


class AutoIn(BaseModel):
    """Whether the simulated fulfilment centre ships and delivers on its own."""

    ship: bool


def _simulator(partner: str) -> PartnerSimulator:
    found = wiring.running.get(partner)
    if found is None:
        raise Problem.of(
            "simulator-not-running",
            f"no {partner} simulator runs in this process (started by `cloudcart serve` "
            "without --no-partners when no partner URL is configured)",
        )
    return found


def _fulfilment() -> FulfilmentSimulator:
    simulator = _simulator("fulfilment")
    assert isinstance(simulator, FulfilmentSimulator)
    return simulator


@router.get("/fulfilment/requests")
def fulfilment_requests(
    _: Admin, order_id: Annotated[str | None, Query(alias="orderId", max_length=128)] = None
) -> dict[str, Any]:
    """What the simulated fulfilment centre received (for one order, or all)."""
    items = _fulfilment().requests(order_id)
    return {
        "items": [
            {k: r[k] for k in ("orderId", "requestId", "idempotencyKey", "lines", "receivedAt")}
            | {"status": r.get("status")}
            for r in items
        ]
    }


@router.post("/{partner}/outage")
def outage(
    partner: Annotated[Literal["fulfilment", "inventory", "accounting", "crm"], Path()],
    body: OutageIn,
    _: Admin,
) -> dict[str, Any]:
    """The simulator answers 503 for `seconds`."""
    _simulator(partner).outage(body.seconds)
    return {"partner": partner, "seconds": body.seconds}


@router.post("/{partner}/latency")
def latency(
    partner: Annotated[Literal["fulfilment", "inventory", "accounting", "crm"], Path()],
    body: OutageIn,
    _: Admin,
) -> dict[str, Any]:
    """The simulator holds each answer for `seconds` after storing its effect."""
    _simulator(partner).latency(body.seconds)
    return {"partner": partner, "seconds": body.seconds}


@router.put("/fulfilment/auto")
def auto(body: AutoIn, _: Admin) -> dict[str, Any]:
    """Turn automatic shipping and delivery on or off (off: a test drives them)."""
    _fulfilment().set_auto_ship(body.ship)
    return {"ship": body.ship}


@router.get("/accounting/trial-balance")
def accounting_trial_balance(
    _: Admin, currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None
) -> dict[str, Any]:
    """The simulated accounting system's own books, in the shape of ours."""
    simulator = _simulator("accounting")
    assert isinstance(simulator, AccountingSimulator)
    try:
        return simulator.trial_balance(currency)
    except ValueError as exc:
        raise Problem.of("currency-required", str(exc)) from None


@router.get("/crm/contacts/{customer_id}")
def crm_contact(customer_id: Annotated[str, Path(max_length=128)], _: Admin) -> dict[str, Any]:
    """The simulated CRM's contact of a customer (404 once erased)."""
    simulator = _simulator("crm")
    assert isinstance(simulator, CrmSimulator)
    found = simulator.contact(customer_id)
    if found is None:
        raise Problem.of("no-contact", f"the CRM has no contact {customer_id!r}")
    return found


@router.post("/queues/{queue}/messages", status_code=status.HTTP_202_ACCEPTED)
async def put_message(
    queue: Annotated[str, Path(max_length=50)],
    body: Annotated[Any, Body()],
    services: ServicesDep,
    _: Admin,
    message_id: Annotated[str | None, Header(alias="X-Message-Id", max_length=128)] = None,
) -> dict[str, Any]:
    """Put the JSON body on a partner's inbound queue, as the partner would; nothing else
    changes here (the queue's function validates and applies it)."""
    try:
        declared: Queue | Topic | None = TOPOLOGY.entity(queue)
    except UnknownEntity:
        declared = None
    if not isinstance(declared, Queue):
        raise Problem.of("unknown-queue", f"no queue {queue!r}")
    raw = json.dumps(body, separators=(",", ":")).encode()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Problem.of("too-large", "the message is over 256 KiB")
    subject = body.get("type") if isinstance(body, dict) else None
    message = OutboundMessage(
        body=raw,
        message_id=message_id or f"dev-{wiring.new_message_id()}",
        subject=subject if isinstance(subject, str) else None,
        content_type="application/json",
    )
    await run_in_threadpool(services.messages.publish, queue, [message])
    return {"queue": queue, "messageId": message.message_id}
