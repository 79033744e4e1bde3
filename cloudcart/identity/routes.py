"""Who am I: the signed-in caller as the API sees them."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.responses import problem_responses
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import Admin, CurrentCustomer

router = APIRouter(prefix="/api", tags=["identity"])


class Me(BaseModel):
    """The caller, from their access token."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    customer_id: str = Field(description="Stable id of the customer (the token's subject).")
    email: str | None = Field(description="Sign-in email address, when the token carries one.")
    name: str | None = Field(description="Display name, when the token carries one.")
    roles: list[str] = Field(description="Roles granted to the caller.")
    is_admin: bool = Field(description="Whether the caller may use the admin API.")

    @classmethod
    def of(cls, caller: Caller) -> Me:
        """The public view of `caller`."""
        return cls(
            customer_id=caller.customer_id,
            email=caller.email,
            name=caller.name,
            roles=list(caller.roles),
            is_admin=caller.is_admin,
        )


@router.get(
    "/me",
    response_model=Me,
    summary="The signed-in customer",
    responses=problem_responses(401, 503),
)
def read_me(caller: CurrentCustomer) -> Me:
    """Who the bearer token says the caller is."""
    return Me.of(caller)


@router.get(
    "/admin/whoami",
    response_model=Me,
    summary="The signed-in administrator",
    responses=problem_responses(401, 403, 503),
)
def read_admin_whoami(caller: Admin) -> Me:
    """Like `/api/me`, but only for callers with the admin role."""
    return Me.of(caller)
