"""FastAPI dependencies that authenticate the caller: `CurrentCustomer` and `Admin`.

Using either on a route also documents the bearer security scheme in the OpenAPI document,
because both go through the `HTTPBearer` dependency below.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.core.errors import Unavailable
from cloudcart.identity.caller import Caller, InvalidToken

# auto_error=False: FastAPI's own error would be a bare 403/401 JSON, not our problem
# document with a WWW-Authenticate challenge.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from Azure AD B2C / Entra External ID (or, locally, the "
    "dev identity provider at /dev/idp/token) carrying the API scope.",
)


def _quote(value: str) -> str:
    # WWW-Authenticate parameters are quoted-strings: escape what would end them early.
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _unauthorized(detail: str, *, error: str | None) -> Problem:
    challenge = 'Bearer realm="cloudcart"'
    if error is not None:
        challenge += f', error="{error}", error_description="{_quote(detail)}"'
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="invalid-token",
        headers={"WWW-Authenticate": challenge},
    )


def current_caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The authenticated caller; answers 401 (problem+json) without a valid bearer token.

    A plain `def`, so FastAPI runs it in the thread pool: validation may block on fetching
    the issuer's metadata or JWKS the first time.
    """
    if credentials is None:
        # RFC 6750 3.1: no error code when the request carried no credentials at all.
        if request.headers.get("Authorization"):
            raise _unauthorized(
                "the Authorization header must be 'Bearer <access token>'",
                error="invalid_request",
            )
        raise _unauthorized("a bearer token is required", error=None)
    try:
        return services.token_validator.validate(credentials.credentials)
    except InvalidToken as exc:
        raise _unauthorized(exc.reason, error="invalid_token") from exc
    except Unavailable as exc:
        raise Problem(
            503,
            "Service Unavailable",
            "the identity provider could not be reached to verify the token; retry shortly",
            type_="identity-unavailable",
            headers={"Retry-After": "30"},
        ) from exc


CurrentCustomer = Annotated[Caller, Depends(current_caller)]


def require_admin(caller: CurrentCustomer) -> Caller:
    """The authenticated caller if they hold the admin role; 403 otherwise."""
    if not caller.is_admin:
        raise Problem(403, "Forbidden", "the admin role is required", type_="forbidden")
    return caller


Admin = Annotated[Caller, Depends(require_admin)]
