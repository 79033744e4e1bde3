"""`GET /api/admin/integrations`: how each partner link is doing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.responses import problem_responses
from cloudcart.identity.dependencies import Admin
from cloudcart.integrations.partners.links import link_status

router = APIRouter(prefix="/api/admin/integrations", tags=["operations"])


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class LinkEvent(_Model):
    """When the link last worked or failed."""

    at: str
    direction: str = Field(description="`outbound` (a call to the partner) or `inbound`.")
    reason: str | None = None


class LinkQueue(_Model):
    """Counts of one Service Bus entity of the link (null when the broker cannot say)."""

    subscription: str | None = None
    queue: str | None = None
    waiting: int | None
    dead_letters: int | None


class PartnerLink(_Model):
    """One partner link."""

    partner: str
    enabled: bool = Field(description="Whether the partner's API is configured.")
    last_success: LinkEvent | None
    last_failure: LinkEvent | None
    messages_waiting: int | None
    dead_letters: int | None
    outbound: LinkQueue
    inbound: LinkQueue | None = Field(description="Null for a partner that sends nothing.")


class PartnerLinks(_Model):
    """Every partner link."""

    items: list[PartnerLink]


@router.get(
    "",
    response_model=PartnerLinks,
    response_model_by_alias=True,
    responses=problem_responses(401, 403),
    summary="Partner links' status",
)
def get_integrations(services: ServicesDep, _: Admin) -> dict[str, Any]:
    """Each partner link: enabled, last success, last failure with its reason, messages
    waiting and dead letters (outbound subscription and inbound queue)."""
    return {"items": link_status(services)}
