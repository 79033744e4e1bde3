"""Web sign-in: the authorization code flow with PKCE through MSAL, server-side sessions.

`GET /auth/login` starts a flow (MSAL makes the PKCE verifier, state and nonce; we keep
them server-side), the identity provider sends the browser back to `GET /auth/callback`,
MSAL redeems the code, and we validate the access token with the same validator bearer
requests use before a session exists. The browser gets only an opaque session cookie.

MSAL (and `requests`) are imported inside functions: a cold start that serves no sign-in
never pays for them.
"""

from __future__ import annotations

import datetime
import threading
import urllib.parse
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep, SettingsDep
from cloudcart.api.problems import Problem
from cloudcart.api.responses import problem_responses
from cloudcart.core.errors import Unavailable
from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity.caller import InvalidToken
from cloudcart.identity.issuer_config import api_scope
from cloudcart.identity.sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionStore,
    cookie_secure,
    csrf_matches,
    session_store,
)

if TYPE_CHECKING:
    import msal
    import requests

router = APIRouter(prefix="/auth", tags=["sign-in"])

CALLBACK_PATH = "/auth/callback"
_MAX_RETURN_TO = 2048
SignInFlow = Literal["sign-in", "profile-edit", "password-reset"]

# Shared per process: MSAL caches authority discovery here (so a login does not fetch the
# provider's metadata every time), and one requests.Session keeps TLS connections warm.
# The token cache is deliberately NOT shared: each request gets a fresh MSAL app, so one
# customer's tokens never sit in an object another request can read; ours live in the
# session document.
_http_cache: dict[Any, Any] = {}
_http_sessions: dict[str, requests.Session] = {}
_http_lock = threading.Lock()


# --- returnTo -------------------------------------------------------------------------------


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, normalised; None if it is not one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The origins `returnTo` may point at: WEB_ALLOWED_ORIGINS plus the app's own."""
    origins = {_origin(o.strip()) for o in settings.web_allowed_origins.split(",") if o.strip()}
    origins.add(_origin(settings.public_base_url))
    return frozenset(o for o in origins if o is not None)


def validate_return_to(value: str | None, settings: Settings) -> str:
    """The `returnTo` to redirect to after sign-in; `/` when absent.

    Accepts a path on this app (`/account?tab=orders`) or an absolute URL on an allowed
    origin. Raises a 400 Problem for anything else, including the forms browsers read as
    another host: `//evil.com`, `/\\evil.com`, control characters or whitespace that
    browsers strip (`/\\t/evil.com`), userinfo (`https://shop@evil.com`).
    """
    if value is None or value == "":
        return "/"
    if len(value) > _MAX_RETURN_TO or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise _bad_return_to()
    # Browsers treat a backslash like a slash in URLs, so `/\evil.com` means `//evil.com`.
    if "\\" in value:
        raise _bad_return_to()
    if value.startswith("/"):
        if value.startswith("//"):
            raise _bad_return_to()
        parts = urllib.parse.urlsplit(value)
        if parts.scheme or parts.netloc:
            raise _bad_return_to()
        return value
    origin = _origin(value)
    if origin is None or origin not in allowed_origins(settings):
        raise _bad_return_to()
    return value


def _bad_return_to() -> Problem:
    return Problem.of(
        "invalid-return-to", "returnTo must be a path on this site or a URL on an allowed origin"
    )


# --- MSAL -----------------------------------------------------------------------------------


def _embedded(settings: Settings) -> bool:
    return settings.identity_adapter == Adapter.embedded


def _http_session(settings: Settings) -> requests.Session:
    """The HTTP client MSAL uses: in embedded mode it trusts exactly the provider's cert."""
    import requests

    if _embedded(settings):
        from cloudcart.identity.dev_https import ensure_certificate

        cert_path, _ = ensure_certificate(settings)
        key = str(cert_path.resolve())
    else:
        key = ""
    with _http_lock:
        session = _http_sessions.get(key)
        if session is None:
            session = requests.Session()
            if key:
                session.verify = key
                # With trust_env, requests replaces `verify` by REQUESTS_CA_BUNDLE or
                # CURL_CA_BUNDLE from the environment (and routes through *_PROXY), so a
                # machine-wide setting would decide whom we trust. Loopback needs neither.
                session.trust_env = False
            _http_sessions[key] = session
        return session


def _scopes(settings: Settings) -> list[str]:
    configured = settings.web_auth_scopes.replace(",", " ").split()
    if configured:
        return configured
    return [api_scope(settings)]


def _b2c_policy_authority(authority: str, policy: str) -> str:
    # B2C authorities end with the user flow: swap that last path segment.
    parts = urllib.parse.urlsplit(authority)
    segments = parts.path.rstrip("/").split("/")
    segments[-1] = policy
    return urllib.parse.urlunsplit(parts._replace(path="/".join(segments)))


def authority_for(settings: Settings, flow: SignInFlow = "sign-in") -> dict[str, Any]:
    """MSAL's authority keyword arguments for a flow (`authority=` or `oidc_authority=`)."""
    if _embedded(settings):
        from cloudcart.identity.dev_https import https_base_url

        # `authority=` (not `oidc_authority=`): MSAL then reads `<authority>/v2.0/.well-known/
        # openid-configuration` and does not demand that the issuer share the authority's
        # scheme and host. Our issuer stays the http one every embedded token carries.
        return {
            "authority": https_base_url(settings) + "/dev/idp",
            "validate_authority": False,
        }
    policy = {
        "sign-in": None,
        "profile-edit": settings.web_auth_profile_edit_policy,
        "password-reset": settings.web_auth_password_reset_policy,
    }[flow]
    if flow != "sign-in" and not policy:
        raise Problem.of("flow-unavailable", f"the {flow} flow is not configured")
    if settings.web_auth_oidc_authority:
        if policy:
            raise Problem.of("flow-unavailable", f"the {flow} flow needs a B2C authority")
        return {"oidc_authority": settings.web_auth_oidc_authority}
    if not settings.web_auth_authority:
        raise Problem.of(
            "sign-in-unavailable", "web sign-in is not configured (WEB_AUTH_AUTHORITY)"
        )
    authority = settings.web_auth_authority
    if policy:
        authority = _b2c_policy_authority(authority, policy)
    return {"authority": authority}


def msal_client(
    settings: Settings, flow: SignInFlow = "sign-in"
) -> msal.ConfidentialClientApplication:
    """A fresh MSAL confidential client for the configured (or embedded) authority."""
    import msal

    from cloudcart.identity.dev_provider import web_client_id, web_client_secret

    if not _embedded(settings) and (
        not settings.web_auth_client_id or settings.web_auth_client_secret is None
    ):
        raise Problem.of(
            "sign-in-unavailable",
            "web sign-in is not configured (WEB_AUTH_CLIENT_ID, WEB_AUTH_CLIENT_SECRET)",
        )
    try:
        return msal.ConfidentialClientApplication(
            web_client_id(settings),
            client_credential=web_client_secret(settings),
            instance_discovery=False,
            http_client=_http_session(settings),
            http_cache=_http_cache,
            **authority_for(settings, flow),
        )
    except (ValueError, OSError) as exc:
        # Discovery failed: the provider is down, unreachable or answered nonsense.
        raise Problem.of(
            "identity-unavailable",
            "the identity provider could not be reached; retry shortly",
            headers={"Retry-After": "30"},
        ) from exc


def _redirect_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def end_session_url(settings: Settings) -> str | None:
    """Where to send the browser to end the provider's own session, if it has one."""
    after = settings.public_base_url.rstrip("/") + "/"
    query = urllib.parse.urlencode({"post_logout_redirect_uri": after})
    if _embedded(settings):
        from cloudcart.identity.dev_https import https_base_url

        return f"{https_base_url(settings)}/dev/idp/logout?{query}"
    if settings.web_auth_authority:
        return f"{settings.web_auth_authority.rstrip('/')}/oauth2/v2.0/logout?{query}"
    return None


# --- routes ---------------------------------------------------------------------------------


class SessionInfo(BaseModel):
    """The signed-in browser session, for the web front end."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    customer_id: str
    email: str | None
    csrf_token: str
    expires_at: datetime.datetime


class SignedOut(BaseModel):
    """The answer to a logout."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    signed_out: bool
    end_session_url: str | None


def _store(services: ServicesDep) -> SessionStore:
    return session_store(services.documents, services.settings)


# The paths `validate_return_to` accepts: one leading slash, no backslash, no control
# character or whitespace. The allowed absolute URLs depend on WEB_ALLOWED_ORIGINS, so the
# document leaves them to the description.
_RETURN_TO_SCHEMA = {
    "pattern": r"^(/([^/\\\x00-\x20\x7f][^\\\x00-\x20\x7f]*)?)?$",
    "maxLength": _MAX_RETURN_TO,
}

# `state` is ours (`secrets.token_urlsafe(32)`); the identity provider adds `code` or
# `error`. Declared here rather than as parameters so that a missing or unknown `state`
# keeps its 400 `sign-in-invalid`.
_CALLBACK_PARAMETERS = {
    "parameters": [
        {
            "name": "state",
            "in": "query",
            "required": True,
            "description": "The state of a sign-in this app started (valid for one use).",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
        },
        {
            "name": "code",
            "in": "query",
            "required": False,
            "description": "The authorization code, on success.",
            "schema": {"type": "string"},
        },
        {
            "name": "error",
            "in": "query",
            "required": False,
            "description": "The identity provider's error code, on failure.",
            "schema": {"type": "string"},
        },
        {
            "name": "error_description",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
        },
    ]
}


@router.get(
    "/login",
    status_code=302,
    response_class=RedirectResponse,
    responses=problem_responses(400, 503),
)
def login(
    services: ServicesDep,
    settings: SettingsDep,
    return_to: Annotated[
        str | None,
        Query(
            alias="returnTo",
            description="Where to land after signing in: a path on this site, or an absolute "
            "URL on an origin of WEB_ALLOWED_ORIGINS; anything else is 400 "
            "`invalid-return-to`.",
            json_schema_extra=_RETURN_TO_SCHEMA,
        ),
    ] = None,
    flow: SignInFlow = "sign-in",
) -> RedirectResponse:
    """Start signing in: redirects to the identity provider's sign-in page.

    `returnTo` (a path here or a URL on an allowed origin) is where the browser lands after
    signing in; `flow` picks a B2C user flow (`profile-edit`, `password-reset`).
    """
    target = validate_return_to(return_to, settings)
    import secrets

    state = secrets.token_urlsafe(32)
    client = msal_client(settings, flow)
    auth_flow = client.initiate_auth_code_flow(
        _scopes(settings), redirect_uri=_redirect_uri(settings), state=state
    )
    _store(services).save_flow(state, {"msal": auth_flow, "flow": flow}, target)
    return RedirectResponse(auth_flow["auth_uri"], status_code=302, headers=_no_store())


def _no_store() -> dict[str, str]:
    return {"Cache-Control": "no-store"}


@router.get(
    "/callback",
    status_code=303,
    response_class=RedirectResponse,
    responses=problem_responses(400, 401, 503),
    openapi_extra=_CALLBACK_PARAMETERS,
)
def callback(request: Request, services: ServicesDep, settings: SettingsDep) -> Response:
    """Where the identity provider returns the browser: redeem the code, start a session."""
    params = dict(request.query_params)
    state = params.get("state")
    if not state:
        raise Problem.of("sign-in-invalid", "the callback has no state")
    store = _store(services)
    pending = store.take_flow(state)
    if pending is None:
        raise Problem.of(
            "sign-in-invalid",
            "this sign-in is unknown, expired or was already completed; sign in again",
        )
    saved, return_to = pending
    error = params.get("error")
    if error:
        description = params.get("error_description", "")
        # B2C answers "forgot password?" with this error on the sign-in flow.
        if "AADB2C90118" in description and settings.web_auth_password_reset_policy:
            query = urllib.parse.urlencode({"flow": "password-reset", "returnTo": return_to})
            return RedirectResponse(f"/auth/login?{query}", status_code=303, headers=_no_store())
        raise Problem.of("sign-in-failed", f"sign-in failed: {error}")
    client = msal_client(settings, saved.get("flow", "sign-in"))
    try:
        result = client.acquire_token_by_auth_code_flow(saved["msal"], params)
    except ValueError as exc:
        # MSAL's own checks: state mismatch, nonce mismatch, a malformed response.
        raise Problem.of("sign-in-invalid", "the sign-in response was invalid") from exc
    if "error" in result or "access_token" not in result:
        raise Problem.of(
            "sign-in-failed",
            f"the identity provider refused the sign-in: {result.get('error', 'no access token')}",
        )
    try:
        caller = services.token_validator.validate(result["access_token"])
    except InvalidToken as exc:
        raise Problem.of("sign-in-failed", f"sign-in token rejected: {exc.reason}") from exc
    except Unavailable as exc:
        raise Problem.of(
            "identity-unavailable",
            "the identity provider could not be reached to verify the token; retry shortly",
            headers={"Retry-After": "30"},
        ) from exc
    session_id, _ = store.create(caller, result)
    response = RedirectResponse(return_to, status_code=303, headers=_no_store())
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=settings.web_session_ttl_seconds,
        path="/",
        secure=cookie_secure(settings),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/session",
    response_model=SessionInfo,
    response_model_by_alias=True,
    responses=problem_responses(401),
)
def current_session(request: Request, services: ServicesDep) -> JSONResponse:
    """The browser's session: who is signed in, the CSRF token for unsafe requests, expiry."""
    session_id = request.cookies.get(SESSION_COOKIE)
    session = _store(services).get(session_id) if session_id else None
    if session is None:
        raise Problem.of("not-signed-in", "not signed in")
    info = SessionInfo(
        customer_id=session.caller.customer_id,
        email=session.caller.email,
        csrf_token=session.csrf_token,
        expires_at=datetime.datetime.fromtimestamp(session.expires_at, datetime.UTC),
    )
    return JSONResponse(info.model_dump(mode="json", by_alias=True), headers=_no_store())


@router.post(
    "/logout",
    response_model=SignedOut,
    response_model_by_alias=True,
    responses=problem_responses(401, 403),
)
def logout(request: Request, services: ServicesDep, settings: SettingsDep) -> JSONResponse:
    """End the browser's session (needs the `X-CSRF-Token` header) and clear the cookie.

    `endSessionUrl` is where to send the browser to sign out at the identity provider too.
    """
    session_id = request.cookies.get(SESSION_COOKIE)
    store = _store(services)
    session = store.get(session_id) if session_id else None
    if session_id is None or session is None:
        raise Problem.of("not-signed-in", "not signed in")
    if not csrf_matches(session.csrf_token, request.headers.get(CSRF_HEADER)):
        raise Problem.of("csrf-failed", f"the {CSRF_HEADER} header is missing or wrong")
    store.delete(session_id)
    body = SignedOut(signed_out=True, end_session_url=end_session_url(settings))
    response = JSONResponse(body.model_dump(mode="json", by_alias=True), headers=_no_store())
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=cookie_secure(settings),
        httponly=True,
        samesite="lax",
    )
    return response
