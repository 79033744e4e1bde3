"""The embedded identity provider: real RS256 tokens with the same OIDC shape as B2C.

Only mounted when `CLOUDCART_IDENTITY_ADAPTER=embedded`: it signs a token for whoever asks,
which is what local development and tests need and exactly what production must never
expose. The token validator reads this provider's public keys in-process
(`public_jwks`), so the app never makes an HTTP call to itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from cloudcart.api.deps import SettingsDep
from cloudcart.api.problems import Problem
from cloudcart.core.settings import Adapter, Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

_SUBJECT = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_ROLE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 scope-token characters
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_MAX_FORM_BYTES = 8192


@dataclass(frozen=True)
class _SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str
    public_jwk: dict[str, str]


_keys: dict[Path, _SigningKey] = {}
_keys_lock = threading.Lock()


def key_path(settings: Settings) -> Path:
    """Where the provider's private key lives."""
    return settings.data_dir / "keys" / "idp-private.pem"


def issuer(settings: Settings) -> str:
    """The `iss` of every token this provider mints."""
    return settings.public_base_url.rstrip("/") + "/dev/idp"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def jwk_thumbprint(n: str, e: str) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA public key given as base64url `n` and `e`."""
    # The RFC fixes the members (required ones only), their order and no whitespace.
    canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _load_or_create_private_key(path: Path) -> rsa.RSAPrivateKey:
    # Imported here: the provider is mounted on every local start, and cryptography is a
    # noticeable part of a cold start that may never mint a token.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Write a private temp file, then hard-link it into place: link() never replaces an
        # existing file, so when two processes start together exactly one key wins and the
        # loser reads the winner's key (os.replace would let them silently diverge).
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return loaded


def _signing_key(settings: Settings) -> _SigningKey:
    path = key_path(settings).resolve()
    with _keys_lock:
        cached = _keys.get(path)
        if cached is None:
            private_key = _load_or_create_private_key(path)
            numbers = private_key.public_key().public_numbers()
            n, e = _int_b64url(numbers.n), _int_b64url(numbers.e)
            kid = jwk_thumbprint(n, e)
            jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}
            cached = _keys[path] = _SigningKey(private_key, kid, jwk)
        return cached


def public_jwks(settings: Settings) -> dict[str, Any]:
    """The provider's JWKS document (public keys only)."""
    return {"keys": [dict(_signing_key(settings).public_jwk)]}


def mint_token(
    settings: Settings,
    sub: str,
    *,
    email: str | None = None,
    roles: Sequence[str] = (),
    scope: str | None = None,
    name: str | None = None,
) -> tuple[str, int]:
    """Sign an access token for `sub`; returns `(token, expires_in_seconds)`.

    `scope` defaults to the required scope; `roles` go under the configured roles claim.
    Raises ValueError when `sub` is not 1..128 characters of [A-Za-z0-9._@-].
    """
    if not _SUBJECT.fullmatch(sub):
        raise ValueError("sub must be 1..128 characters of A-Z a-z 0-9 . _ @ -")
    key = _signing_key(settings)
    now = int(time.time())
    lifetime = settings.identity_token_lifetime_seconds
    claims: dict[str, Any] = {
        "iss": issuer(settings),
        "aud": settings.identity_audience,
        "sub": sub,
        "oid": sub,
        "scp": scope if scope is not None else settings.identity_required_scope,
        settings.identity_roles_claim: list(roles),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "ver": "2.0",
    }
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    import jwt

    token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    return token, lifetime


# --- HTTP endpoints -------------------------------------------------------------------------

router = APIRouter(prefix="/dev/idp", include_in_schema=False)


def _require_embedded(settings: Settings) -> None:
    # Defence in depth: the app factory mounts this router only for the embedded adapter,
    # but a token mint must never answer in an Azure deployment even if mounted by mistake.
    if settings.identity_adapter != Adapter.embedded:
        raise Problem(404, "Not Found", type_="not-found")


@router.get("/.well-known/openid-configuration")
def openid_configuration(settings: SettingsDep) -> dict[str, Any]:
    """OpenID provider metadata, shaped like B2C's and External ID's."""
    _require_embedded(settings)
    base = issuer(settings)
    return {
        "issuer": base,
        "jwks_uri": f"{base}/jwks",
        "token_endpoint": f"{base}/token",
        "response_types_supported": ["token"],
        "grant_types_supported": ["client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [settings.identity_required_scope],
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
        ],
    }


@router.get("/jwks")
def jwks(settings: SettingsDep) -> dict[str, Any]:
    """The provider's public signing keys."""
    _require_embedded(settings)
    return public_jwks(settings)


def _bad_request(detail: str) -> Problem:
    return Problem(400, "Bad Request", detail, type_="invalid-token-request")


@router.post("/token")
async def token(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Mint a token from form fields `sub` (required), `email`, `roles` (comma-separated),
    `scope` and `name`."""
    _require_embedded(settings)
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
        raise Problem(
            415,
            "Unsupported Media Type",
            "send the fields as application/x-www-form-urlencoded",
            type_="unsupported-media-type",
        )
    try:
        fields = urllib.parse.parse_qs(
            body.decode("utf-8"), strict_parsing=False, max_num_fields=20
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_request("the form body is not valid urlencoded UTF-8") from exc

    def field(name: str) -> str | None:
        values = fields.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise _bad_request(f"field {name!r} given more than once")
        return values[0].strip() or None

    sub = field("sub")
    if sub is None or not _SUBJECT.fullmatch(sub):
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
