"""The diagnostics canary's HTTP routes (the ping itself: `cloudcart.ops.diagnostics`).

Apart from the trigger's module so that importing the trigger, on an instance that only
handles Service Bus messages, does not import FastAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.problems import Problem
from cloudcart.api.responses import problem_responses
from cloudcart.core.errors import NotFound
from cloudcart.identity.dependencies import Admin
from cloudcart.ops.diagnostics import PingRequest, PingView, create_ping, read_ping

router = APIRouter(prefix="/api/admin/diagnostics", tags=["operations"])


PingId = Annotated[
    str, Path(min_length=1, max_length=100, description="Id of the ping, as created.")
]


@router.post(
    "/pings",
    response_model=PingView,
    status_code=status.HTTP_201_CREATED,
    summary="Send a diagnostic ping through the event pipeline",
    responses=problem_responses(401, 403, 422, 503),
)
def create_ping_route(
    _: Admin, services: ServicesDep, request: PingRequest | None = None
) -> PingView:
    """Write a ping and its `diagnostics.pinged` event through the outbox; poll the ping
    until `status` is `processed` (normally within a second or two)."""
    asked = request or PingRequest()
    document, _event = create_ping(
        services.documents,
        fail_attempts=asked.fail_attempts,
        hold_ms=asked.hold_ms,
        correlation=correlation_id.get(),
    )
    return PingView.of(document)


@router.get(
    "/pings/{ping_id}",
    response_model=PingView,
    summary="Show a diagnostic ping",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def read_ping_route(_: Admin, services: ServicesDep, ping_id: PingId) -> PingView:
    """A ping with its delivery attempts and effects; 404 for an unknown id."""
    try:
        return PingView.of(read_ping(services.documents, ping_id))
    except NotFound as exc:
        raise Problem.of("ping-not-found", f"no ping with id {ping_id!r}") from exc
