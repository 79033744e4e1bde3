"""HTTP endpoints of the embedded identity provider (`cloudcart.identity.dev_provider`):
OIDC metadata, JWKS, the token endpoint and the browser sign-in (authorization code with
PKCE). Only mounted when `CLOUDCART_IDENTITY_ADAPTER=embedded`, never in the OpenAPI
document.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cloudcart.api.deps import SettingsDep
from cloudcart.api.problems import Problem
from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity.dev_provider import (
    SUBJECT,
    b64url,
    issuer,
    mint_token,
    public_jwks,
    signing_key,
    web_client_id,
    web_client_secret,
)
from cloudcart.identity.issuer_config import api_scope

_ROLE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 scope-token characters
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_MAX_FORM_BYTES = 8192
_CODE_TTL_SECONDS = 300
_REFRESH_TTL_SECONDS = 14 * 86_400
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 section 4.1
_NAME = re.compile(r"[^<>\x00-\x1f]{1,128}")


# --- HTTP endpoints -------------------------------------------------------------------------

router = APIRouter(prefix="/dev/idp", include_in_schema=False)


def _require_embedded(settings: Settings) -> None:
    # Defence in depth: the app factory mounts this router only for the embedded adapter,
    # but a token mint must never answer in an Azure deployment even if mounted by mistake.
    if settings.identity_adapter != Adapter.embedded:
        raise Problem.of("not-found")


def _endpoint_base(request: Request, settings: Settings) -> str:
    # Over https (MSAL's view) the endpoints are the https listener's; over http they stay
    # on the main server. Derived from settings, not the Host header, so a request cannot
    # steer where the sign-in page posts. The issuer is the same either way.
    if request.url.scheme == "https":
        from cloudcart.identity.dev_https import https_base_url

        return https_base_url(settings) + "/dev/idp"
    return issuer(settings)


@router.get("/.well-known/openid-configuration")
@router.get("/v2.0/.well-known/openid-configuration")
def openid_configuration(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """OpenID provider metadata, shaped like B2C's and External ID's.

    Also answered under `/v2.0/`, where MSAL looks for a B2C-style `authority`.
    """
    _require_embedded(settings)
    base = _endpoint_base(request, settings)
    return {
        "issuer": issuer(settings),
        "jwks_uri": f"{base}/jwks",
        "token_endpoint": f"{base}/token",
        "authorization_endpoint": f"{base}/authorize",
        "end_session_endpoint": f"{base}/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "scopes_supported": [
            "openid",
            "profile",
            "offline_access",
            settings.identity_required_scope,
            _api_scope(settings),
        ],
        "claims_supported": [
            "iss",
            "aud",
            "sub",
            "oid",
            "email",
            "name",
            "scp",
            settings.identity_roles_claim,
            "iat",
            "nbf",
            "exp",
            "nonce",
        ],
    }


@router.get("/jwks")
def jwks(settings: SettingsDep) -> dict[str, Any]:
    """The provider's public signing keys."""
    _require_embedded(settings)
    return public_jwks(settings)


def _bad_request(detail: str) -> Problem:
    return Problem.of("invalid-token-request", detail)


async def _read_form(request: Request) -> dict[str, list[str]]:
    # Parsed by hand from the urlencoded body: FastAPI's Form() needs python-multipart,
    # and this dev-only endpoint is not worth a production dependency.
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise _bad_request("form body too large")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # An empty body is an empty form whatever its type, so it gets the helpful 400 below.
    if body and content_type != "application/x-www-form-urlencoded":
        raise Problem.of(
            "unsupported-media-type", "send the fields as application/x-www-form-urlencoded"
        )
    try:
        fields = urllib.parse.parse_qs(
            body.decode("utf-8"), strict_parsing=False, max_num_fields=20
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_request("the form body is not valid urlencoded UTF-8") from exc
    return fields


def _field_reader(fields: dict[str, list[str]]) -> Callable[[str], str | None]:
    def field(name: str) -> str | None:
        values = fields.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise _bad_request(f"field {name!r} given more than once")
        return values[0].strip() or None

    return field


@router.post("/token", response_model=None)
async def token(request: Request, settings: SettingsDep) -> dict[str, Any] | Response:
    """Mint a token from form fields `sub` (required), `email`, `roles` (comma-separated),
    `scope` and `name`.

    With `grant_type=authorization_code` or `grant_type=refresh_token` it is instead the
    OAuth token endpoint of the browser sign-in flow (see `_oauth_token`).
    """
    _require_embedded(settings)
    fields = await _read_form(request)
    field = _field_reader(fields)
    grant_type = field("grant_type")
    if grant_type is not None:
        return _oauth_token(settings, field, grant_type)

    sub = field("sub")
    if sub is None or not SUBJECT.fullmatch(sub):
        raise _bad_request("`sub` is required: 1..128 characters of A-Z a-z 0-9 . _ @ -")
    email = field("email")
    if email is not None and not _EMAIL.fullmatch(email):
        raise _bad_request("`email` is not an email address")
    roles = [r.strip() for r in (field("roles") or "").split(",") if r.strip()]
    if any(not _ROLE.fullmatch(r) for r in roles) or len(roles) > 20:
        raise _bad_request("`roles` must be up to 20 comma-separated names of A-Z a-z 0-9 . _ -")
    scope = field("scope")
    if scope is not None and (
        len(scope) > 1024 or any(not _SCOPE.fullmatch(s) for s in scope.split())
    ):
        raise _bad_request("`scope` must be space-separated scope tokens")
    name = field("name")
    if name is not None and len(name) > 128:
        raise _bad_request("`name` must be at most 128 characters")

    access_token, expires_in = mint_token(
        settings, sub, email=email, roles=roles, scope=scope, name=name
    )
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}


# --- browser sign-in: authorization code flow with PKCE ------------------------------------


def _api_scope(settings: Settings) -> str:
    # Entra's form: the API's App ID URI, a slash, the scope name; `scp` carries the name.
    # The same function gives the web sign-in its default scope, so the two always agree.
    return api_scope(settings)


@dataclass(frozen=True)
class _DevCustomer:
    sub: str
    email: str
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class _Grant:
    customer: _DevCustomer
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    expires_at: float


# Codes and refresh tokens live in this process: the https listener serves the same app
# object, so both ports see them. A restart signs everyone out of the provider, which is
# what a dev tool should do.
_codes: dict[str, _Grant] = {}
_refresh_tokens: dict[str, _Grant] = {}
_grants_lock = threading.Lock()
_customers_lock = threading.Lock()


def _customers_path(settings: Settings) -> Path:
    return settings.data_dir / "dev-idp-customers.json"


def _load_customers(settings: Settings) -> list[_DevCustomer]:
    path = _customers_path(settings)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    return [
        _DevCustomer(c["sub"], c["email"], c["name"], tuple(c.get("roles", ())))
        for c in raw
        if isinstance(c, dict)
    ]


def _add_customer(settings: Settings, email: str, name: str, roles: Sequence[str]) -> _DevCustomer:
    with _customers_lock:
        customers = _load_customers(settings)
        for existing in customers:
            if existing.email.lower() == email.lower():
                return existing
        customer = _DevCustomer("cust-" + secrets.token_hex(8), email, name, tuple(roles))
        customers.append(customer)
        path = _customers_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_text(
            json.dumps(
                [
                    {"sub": c.sub, "email": c.email, "name": c.name, "roles": list(c.roles)}
                    for c in customers
                ],
                indent=2,
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)
        return customer


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    # OAuth's error shape (RFC 6749 5.2), not problem+json: MSAL reads `error` from it.
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _redirect_allowed(settings: Settings, redirect_uri: str) -> bool:
    """Redirect URIs the provider will send a code to: the app's own origin or loopback."""
    parts = urllib.parse.urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        return False
    own = urllib.parse.urlsplit(settings.public_base_url)
    if (parts.scheme, parts.netloc) == (own.scheme, own.netloc):
        return True
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


def _authorize_params(settings: Settings, get: Callable[[str], str | None]) -> dict[str, str]:
    client_id = get("client_id")
    redirect_uri = get("redirect_uri")
    if client_id != web_client_id(settings):
        raise _bad_request("unknown client_id")
    if redirect_uri is None or not _redirect_allowed(settings, redirect_uri):
        # Never redirect an error to an unvetted URI: that would be an open redirect.
        raise _bad_request("redirect_uri must be on the app's own origin or on loopback")
    if get("response_type") != "code":
        raise _bad_request("only response_type=code is supported")
    challenge = get("code_challenge")
    if get("code_challenge_method") != "S256" or not challenge:
        raise _bad_request("PKCE is required: code_challenge with code_challenge_method=S256")
    return {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": get("scope") or "openid",
        "state": get("state") or "",
        "nonce": get("nonce") or "",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def _sign_in_page(settings: Settings, params: dict[str, str]) -> str:
    from html import escape

    hidden = "\n".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items()
    )
    existing = "\n".join(
        f'<li><button type="submit" name="customer" value="{escape(c.sub)}">'
        f"{escape(c.name)} &lt;{escape(c.email)}&gt;</button></li>"
        for c in _load_customers(settings)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cloudcart dev sign-in</title></head>
<body>
<h1>Cloudcart dev identity provider</h1>
<p>Local development only: pick a test customer or create one. No password is asked.</p>
<form method="post" action="authorize" id="sign-in">
{hidden}
<h2>Existing test customers</h2>
<ul>{existing or "<li>none yet</li>"}</ul>
<h2>New test customer</h2>
<label>Email <input type="email" name="email"></label>
<label>Name <input type="text" name="name"></label>
<label><input type="checkbox" name="admin" value="1"> Admin</label>
<button type="submit" name="create" value="1">Create and sign in</button>
</form>
</body></html>
"""


@router.get("/authorize", response_class=HTMLResponse)
def authorize_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """OIDC authorization endpoint: a sign-in page to choose or create a test customer."""
    _require_embedded(settings)
    query = request.query_params

    def get(name: str) -> str | None:
        values = query.getlist(name)
        if len(values) > 1:
            raise _bad_request(f"parameter {name!r} given more than once")
        return values[0] if values and values[0] else None

    params = _authorize_params(settings, get)
    return HTMLResponse(
        _sign_in_page(settings, params),
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


@router.post("/authorize")
async def authorize_submit(request: Request, settings: SettingsDep) -> RedirectResponse:
    """The sign-in form's target: redirects to `redirect_uri` with `code` and `state`."""
    _require_embedded(settings)
    field = _field_reader(await _read_form(request))
    params = _authorize_params(settings, field)
    chosen = field("customer")
    if chosen is not None:
        customer = next((c for c in _load_customers(settings) if c.sub == chosen), None)
        if customer is None:
            raise _bad_request("unknown test customer")
    else:
        email = field("email")
        name = field("name")
        if email is None or not _EMAIL.fullmatch(email):
            raise _bad_request("enter an email address for the new test customer")
        if name is None or not _NAME.fullmatch(name):
            raise _bad_request("enter a name (up to 128 characters) for the new test customer")
        roles = [settings.identity_admin_role] if field("admin") else []
        customer = _add_customer(settings, email, name, roles)
    code = secrets.token_urlsafe(32)
    with _grants_lock:
        _codes[code] = _Grant(
            customer,
            params["client_id"],
            params["redirect_uri"],
            params["scope"],
            params["nonce"] or None,
            params["code_challenge"],
            time.time() + _CODE_TTL_SECONDS,
        )
    answer = {"code": code}
    if params["state"]:
        answer["state"] = params["state"]
    separator = "&" if "?" in params["redirect_uri"] else "?"
    target = params["redirect_uri"] + separator + urllib.parse.urlencode(answer)
    return RedirectResponse(target, status_code=302)


@router.get("/logout")
def end_session(request: Request, settings: SettingsDep) -> Response:
    """OIDC end-session endpoint: nothing to forget here, so it only redirects back."""
    _require_embedded(settings)
    target = request.query_params.get("post_logout_redirect_uri")
    if target and _redirect_allowed(settings, target):
        return RedirectResponse(target, status_code=302)
    return HTMLResponse("<!doctype html><p>Signed out of the Cloudcart dev provider.</p>")


def _s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _oauth_token(
    settings: Settings, field: Callable[[str], str | None], grant_type: str
) -> Response:
    """The token endpoint of the authorization code flow (RFC 6749 4.1.3, RFC 7636 4.6)."""
    client_id = field("client_id")
    client_secret = field("client_secret") or ""
    if client_id != web_client_id(settings) or not secrets.compare_digest(
        client_secret.encode(), web_client_secret(settings).encode()
    ):
        return _oauth_error(401, "invalid_client", "unknown client or wrong client secret")
    now = time.time()
    if grant_type == "authorization_code":
        code = field("code") or ""
        with _grants_lock:
            # Popped before any check: a code is good for one attempt only (RFC 6749 4.1.2).
            grant = _codes.pop(code, None)
        if grant is None or grant.expires_at < now:
            return _oauth_error(400, "invalid_grant", "unknown, used or expired code")
        if grant.client_id != client_id or grant.redirect_uri != field("redirect_uri"):
            return _oauth_error(400, "invalid_grant", "client_id or redirect_uri mismatch")
        verifier = field("code_verifier") or ""
        if not _PKCE_VERIFIER.fullmatch(verifier) or not secrets.compare_digest(
            _s256(verifier), grant.code_challenge
        ):
            return _oauth_error(400, "invalid_grant", "code_verifier does not match the challenge")
    elif grant_type == "refresh_token":
        refresh = field("refresh_token") or ""
        with _grants_lock:
            grant = _refresh_tokens.pop(refresh, None)  # rotated: each one is used once
        if grant is None or grant.expires_at < now or grant.client_id != client_id:
            return _oauth_error(400, "invalid_grant", "unknown, used or expired refresh token")
        grant = _Grant(
            grant.customer,
            grant.client_id,
            grant.redirect_uri,
            grant.scope,
            None,  # no nonce in a refreshed id_token (OIDC core 12.2)
            grant.code_challenge,
            grant.expires_at,
        )
    else:
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r}")
    return JSONResponse(_token_response(settings, grant), headers={"Cache-Control": "no-store"})


def _token_response(settings: Settings, grant: _Grant) -> dict[str, Any]:
    customer = grant.customer
    requested = grant.scope.split()
    api_scope = _api_scope(settings)
    scp = settings.identity_required_scope if api_scope in requested else "openid"
    access_token, expires_in = mint_token(
        settings,
        customer.sub,
        email=customer.email,
        roles=customer.roles,
        scope=scp,
        name=customer.name,
    )
    now = int(time.time())
    id_claims: dict[str, Any] = {
        "iss": issuer(settings),
        "aud": grant.client_id,
        "sub": customer.sub,
        "oid": customer.sub,
        "tid": "cloudcart-dev",
        "email": customer.email,
        "name": customer.name,
        "preferred_username": customer.email,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "ver": "2.0",
    }
    if grant.nonce:
        id_claims["nonce"] = grant.nonce
    import jwt

    key = signing_key(settings)
    id_token = jwt.encode(id_claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    refresh_token = secrets.token_urlsafe(32)
    with _grants_lock:
        _refresh_tokens[refresh_token] = _Grant(
            customer,
            grant.client_id,
            grant.redirect_uri,
            grant.scope,
            None,
            grant.code_challenge,
            time.time() + _REFRESH_TTL_SECONDS,
        )
    # MSAL keys its account cache on client_info (uid.utid), as Entra sends it.
    client_info = b64url(json.dumps({"uid": customer.sub, "utid": "cloudcart-dev"}).encode("utf-8"))
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "id_token": id_token,
        "refresh_token": refresh_token,
        "scope": " ".join(requested),
        "client_info": client_info,
    }
