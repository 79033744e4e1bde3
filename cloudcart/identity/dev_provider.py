"""The embedded identity provider's keys and tokens: real RS256 tokens with the same OIDC
shape as B2C.

Used only with `CLOUDCART_IDENTITY_ADAPTER=embedded`: it signs a token for whoever asks,
which is what local development and tests need and exactly what production must never
expose. The token validator reads this provider's public keys in-process
(`public_jwks`), so the app never makes an HTTP call to itself. Its HTTP endpoints (OIDC
metadata, JWKS, token and sign-in) are in `cloudcart.identity.dev_routes`; this module has
no FastAPI, so building the validator never loads the routes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudcart.core.files import create_private_file_once
from cloudcart.core.settings import Settings
from cloudcart.identity.issuer_config import embedded_issuer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

SUBJECT = re.compile(r"[A-Za-z0-9._@-]{1,128}")
"""What a token's `sub` may be."""


@dataclass(frozen=True)
class SigningKey:
    """The provider's RSA key with its key id and public JWK."""

    private_key: rsa.RSAPrivateKey
    kid: str
    public_jwk: dict[str, str]


_keys: dict[Path, SigningKey] = {}
_keys_lock = threading.Lock()


def key_path(settings: Settings) -> Path:
    """Where the provider's private key lives."""
    return settings.data_dir / "keys" / "idp-private.pem"


def issuer(settings: Settings) -> str:
    """The `iss` of every token this provider mints."""
    return settings.public_base_url.rstrip("/") + "/dev/idp"


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def jwk_thumbprint(n: str, e: str) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA public key given as base64url `n` and `e`."""
    # The RFC fixes the members (required ones only), their order and no whitespace.
    canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _load_or_create_private_key(path: Path) -> rsa.RSAPrivateKey:
    # Imported here: the provider is mounted on every local start, and cryptography is a
    # noticeable part of a cold start that may never mint a token.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def new_key_pem() -> bytes:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    # Race-safe: when two processes start together, both end up with the same key.
    pem = create_private_file_once(path, new_key_pem)
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return loaded


def signing_key(settings: Settings) -> SigningKey:
    """The key in the data folder (created on first use), cached per path."""
    path = key_path(settings).resolve()
    with _keys_lock:
        cached = _keys.get(path)
        if cached is None:
            private_key = _load_or_create_private_key(path)
            numbers = private_key.public_key().public_numbers()
            n, e = _int_b64url(numbers.n), _int_b64url(numbers.e)
            kid = jwk_thumbprint(n, e)
            jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}
            cached = _keys[path] = SigningKey(private_key, kid, jwk)
        return cached


def public_jwks(settings: Settings) -> dict[str, Any]:
    """The provider's JWKS document (public keys only)."""
    return {"keys": [dict(signing_key(settings).public_jwk)]}


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
    if not SUBJECT.fullmatch(sub):
        raise ValueError("sub must be 1..128 characters of A-Z a-z 0-9 . _ @ -")
    key = signing_key(settings)
    now = int(time.time())
    lifetime = settings.identity_token_lifetime_seconds
    claims: dict[str, Any] = {
        "iss": issuer(settings),
        # A client id, as Entra and B2C send (the first IDENTITY_AUDIENCE when set).
        "aud": embedded_issuer(settings).audiences[0],
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


# --- the web client the provider knows ---------------------------------------------------

DEV_WEB_CLIENT_ID = "cloudcart-web"
"""The web client id the embedded provider knows when WEB_AUTH_CLIENT_ID is unset."""
DEV_WEB_CLIENT_SECRET = "cloudcart-dev-web-secret"  # noqa: S105 - a published dev-only value
"""The web client secret the embedded provider accepts when WEB_AUTH_CLIENT_SECRET is unset."""


def web_client_id(settings: Settings) -> str:
    """The client id of the web sign-in (configured, or the embedded default)."""
    return settings.web_auth_client_id or DEV_WEB_CLIENT_ID


def web_client_secret(settings: Settings) -> str:
    """The client secret of the web sign-in (configured, or the embedded default)."""
    secret = settings.web_auth_client_secret
    return secret.get_secret_value() if secret is not None else DEV_WEB_CLIENT_SECRET
