"""`/api/me/verify/...`: prove the profile's email or phone with a 6-digit code.

`POST /api/me/verify/{channel}` sends a code (email, or SMS for `phone`);
`POST /api/me/verify/{channel}/confirm` checks it and marks the profile verified. The
rules (lifetime, attempts, limits) are in `cloudcart.notifications.verification`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.responses import problem_responses, with_retry_after
from cloudcart.customers.routes import CurrentProfile
from cloudcart.notifications.verification import (
    NotificationSender,
    VerificationCodes,
)

router = APIRouter(prefix="/api/me/verify", tags=["verification"])

ChannelPath = Literal["email", "phone"]


class VerificationSent(BaseModel):
    """A code is on its way."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    channel: ChannelPath
    destination: str = Field(
        description="Where it went, masked (`a***@example.com`, `+91******3210`)."
    )
    expires_at: datetime = Field(description="When the code stops working (10 minutes).")


class VerificationConfirm(BaseModel):
    """The code the customer received."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$", description="The 6-digit code.")


class VerificationConfirmed(BaseModel):
    """The destination is verified."""

    channel: ChannelPath
    verified: bool


def verification_codes(services: ServicesDep) -> VerificationCodes:
    """The request's `VerificationCodes`, sending through the notification service (tests
    override this dependency to send through a fake)."""
    return VerificationCodes(
        services.documents, NotificationSender(services), correlation_id=correlation_id.get()
    )


Codes = Annotated[VerificationCodes, Depends(verification_codes)]


@router.post(
    "/{channel}",
    response_model=VerificationSent,
    response_model_by_alias=True,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a verification code to the profile's email or phone",
    responses=with_retry_after(problem_responses(401, 403, 409, 429, 503)),
)
def request_code(channel: ChannelPath, profile: CurrentProfile, codes: Codes) -> VerificationSent:
    """Send a 6-digit code to the profile's email (`email`) or by SMS to its phone (`phone`),
    valid for 10 minutes; a new request replaces the previous code.

    409 `no-email`/`no-phone` when the profile has none, `already-verified` when it is;
    429 `verification-rate-limited` (with Retry-After) past 5 codes an hour per channel, 5
    an hour per destination, or within 30 s of the last code to that destination; 503
    `notification-provider-unavailable` (Retry-After) and 422 `destination-rejected` when
    the provider cannot take the message.
    """
    sent = codes.request_code(profile["customerId"], channel)
    return VerificationSent(
        channel=sent.channel, destination=sent.destination, expires_at=sent.expires_at
    )


@router.post(
    "/{channel}/confirm",
    response_model=VerificationConfirmed,
    summary="Confirm a verification code",
    responses=problem_responses(401, 403, 404, 409, 410, 429, 503),
)
def confirm_code(
    channel: ChannelPath, body: VerificationConfirm, profile: CurrentProfile, codes: Codes
) -> VerificationConfirmed:
    """Check the code; when it is right the profile's `emailVerified`/`phoneVerified`
    becomes true.

    422 `verification-code-invalid` (with `attemptsLeft`) for a wrong code; 429
    `verification-attempts-exhausted` after 5 wrong codes; 410 `verification-code-expired`;
    404 `no-pending-verification`; 409 `verification-destination-changed` when the email
    or phone changed after the code was sent. Each of these needs a new code.
    """
    codes.confirm_code(profile["customerId"], channel, body.code)
    return VerificationConfirmed(channel=channel, verified=True)
