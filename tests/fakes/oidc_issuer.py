"""A loopback OpenID issuer shaped like Azure AD B2C or Entra External ID.

It serves a real OpenID metadata document and a JWKS over HTTP on 127.0.0.1 (a free port),
signs tokens with RSA keys the test controls, and counts what it was asked for, so tests
can check caching, refresh on an unknown `kid` and its rate limit through real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

Shape = Literal["b2c", "external_id"]


class FakeOidcIssuer:
    """Start with `with FakeOidcIssuer("b2c") as idp:`; then `idp.metadata_url`, `idp.sign()`."""

    def __init__(
        self,
        shape: Shape,
        *,
        audience: str = "api://cloudcart",
        scope: str = "shop.api",
        tenant: str = "contoso",
        policy: str = "B2C_1_signupsignin",
    ) -> None:
        self.shape = shape
        self.audience = audience
        self.scope = scope
        self.tenant_id = str(uuid.uuid4())
        self.tenant = tenant
        self.policy = policy
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []
        self.jwks_fetches = 0
        self.metadata_fetches = 0
        self.failing = False
        self.redirect_to: str | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        if shape == "b2c":
            policy_root = f"/{tenant}.onmicrosoft.com/{policy}"
            self.metadata_path = f"{policy_root}/v2.0/.well-known/openid-configuration"
            self.jwks_path = f"{policy_root}/discovery/v2.0/keys"
            # B2C's issuer names the tenant id and ends with a slash.
            self.issuer = f"{self.base}/{self.tenant_id}/v2.0/"
        else:
            self.metadata_path = f"/{self.tenant_id}/v2.0/.well-known/openid-configuration"
            self.jwks_path = f"/{self.tenant_id}/discovery/v2.0/keys"
            self.issuer = f"{self.base}/{self.tenant_id}/v2.0"
        self.metadata_url = self.base + self.metadata_path
        self.jwks_uri = self.base + self.jwks_path
        self.kid = self.add_key()

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> FakeOidcIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- keys and tokens --------------------------------------------------------------------

    def add_key(self, *, publish: bool = True) -> str:
        """Create a signing key; publish it in the JWKS unless told not to. Returns its kid."""
        kid = f"key-{len(self._keys) + 1}-{uuid.uuid4().hex[:8]}"
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.publish(kid)
        return kid

    def publish(self, kid: str) -> None:
        """Add an existing key to the JWKS (a key rotation as the IdP performs it)."""
        with self._lock:
            self.published.append(kid)

    def public_pem(self, kid: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return (
            self._keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def claims(self, sub: str | None = "customer-1", **overrides: Any) -> dict[str, Any]:
        """Typical access-token claims of this issuer's shape; `overrides` replace or add."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "scp": self.scope,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "ver": "2.0",
            "tid": self.tenant_id,
        }
        if self.shape == "b2c":
            claims["emails"] = [f"{sub}@example.com"]
            claims["tfp"] = self.policy
        else:
            claims["oid"] = sub
            claims["preferred_username"] = f"{sub}@example.com"
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """An RS256 token over `claims` (default: `self.claims()`) signed with key `kid`."""
        kid = kid or self.kid
        return jwt.encode(
            claims if claims is not None else self.claims(),
            self._keys[kid],
            algorithm="RS256",
            headers={"kid": kid, **(headers or {})},
        )

    # --- HTTP -----------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": f"{self.base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.base}/oauth2/v2.0/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise"],
        }

    def _jwks(self) -> dict[str, Any]:
        with self._lock:
            kids = list(self.published)
        keys = []
        for kid in kids:
            jwk = RSAAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with idp._lock:
                    if path == idp.metadata_path:
                        idp.metadata_fetches += 1
                    elif path == idp.jwks_path:
                        idp.jwks_fetches += 1
                if idp.redirect_to is not None:
                    self.send_response(HTTPStatus.FOUND)
                    self.send_header("Location", idp.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif idp.failing:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "down"})
                elif path == idp.metadata_path:
                    self._send(HTTPStatus.OK, idp._metadata())
                elif path == idp.jwks_path:
                    self._send(HTTPStatus.OK, idp._jwks())
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

            def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler


# --- forgeries: tokens a validator must reject ---------------------------------------------


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())


def forge_alg_none(claims: dict[str, Any], *, kid: str) -> str:
    """An unsigned token (`alg: none`), built by hand because PyJWT refuses to help."""
    return _segments({"alg": "none", "typ": "JWT", "kid": kid}, claims) + "."


def forge_hs256_with_public_key(claims: dict[str, Any], *, kid: str, public_pem: bytes) -> str:
    """The classic algorithm-confusion forgery: HMAC-SHA256 keyed with the public key PEM."""
    import hashlib
    import hmac

    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    mac = hmac.new(public_pem, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(mac)


def tamper_payload(token: str, **changes: Any) -> str:
    """`token` with claims changed but the original signature kept."""
    import base64

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return header + "." + _b64url(json.dumps(claims).encode()) + "." + signature
