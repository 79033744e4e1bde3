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

SESSION_COOKIE = "cloudcart_session"
"""Name of the web session cookie (kept here so bearer-only imports stay light)."""

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
    return Problem.of("invalid-token", detail, headers={"WWW-Authenticate": challenge})


def current_caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The authenticated caller; answers 401 (problem+json) without a valid bearer token
    or web session cookie (403 `csrf-failed` for a cookie-authenticated unsafe request
    without the session's `X-CSRF-Token`). A bearer token always wins over a cookie.

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
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            return _caller_from_session(request, services, session_id)
        raise _unauthorized("a bearer token is required", error=None)
    try:
        return services.token_validator.validate(credentials.credentials)
    except InvalidToken as exc:
        raise _unauthorized(exc.reason, error="invalid_token") from exc
    except Unavailable as exc:
        raise Problem.of(
            "identity-unavailable",
            "the identity provider could not be reached to verify the token; retry shortly",
            headers={"Retry-After": "30"},
        ) from exc


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _caller_from_session(request: Request, services: ServicesDep, session_id: str) -> Caller:
    """The caller of a browser request authenticated by the web session cookie.

    The session stores the claims validated (by the same TokenValidator) when it was
    created, so a cookie request costs one point read and no signature check; the session's
    own lifetime, not the access token's, bounds it. A cookie is an ambient credential the
    browser attaches to cross-site requests too, so unsafe methods must also present the
    session's CSRF token, which only our own pages can read (from `GET /auth/session`).
    """
    from cloudcart.identity.sessions import CSRF_HEADER, csrf_matches, session_store

    session = session_store(services.documents, services.settings).get(session_id)
    if session is None:
        raise _unauthorized("the session has ended; sign in again", error=None)
    if request.method.upper() in UNSAFE_METHODS and not csrf_matches(
        session.csrf_token, request.headers.get(CSRF_HEADER)
    ):
        raise Problem.of(
            "csrf-failed", f"the {CSRF_HEADER} header is missing or does not match the session"
        )
    return session.caller


CurrentCustomer = Annotated[Caller, Depends(current_caller)]


def require_admin(caller: CurrentCustomer) -> Caller:
    """The authenticated caller if they hold the admin role; 403 otherwise."""
    if not caller.is_admin:
        raise Problem.of("forbidden", "the admin role is required")
    return caller


Admin = Annotated[Caller, Depends(require_admin)]
