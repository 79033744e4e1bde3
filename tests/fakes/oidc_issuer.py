"""A loopback OpenID issuer shaped like Azure AD B2C or Entra External ID.

It serves a real OpenID metadata document and a JWKS over HTTP on 127.0.0.1 (a free port),
signs tokens with RSA keys the test controls, and counts what it was asked for, so tests
can check caching, refresh on an unknown `kid` and its rate limit through real HTTP.

Its tokens carry what the real services send, so a validator built on a wrong belief fails
here rather than in production:

* `aud` is the API app registration's application (client) id, a GUID, never the App ID
  URI (that is only the prefix clients request scopes with);
* External ID: `ver` "2.0", `tid`, `oid` (the user's object id) and a *pairwise* `sub`,
  different for each client app (`azp`) the same person signs in with;
* B2C: `ver` "1.0", `sub` = the user's object id, the user flow in `tfp` (or `acr`, the
  legacy form), and one metadata document and JWKS per user flow, all with one issuer; a
  key can be published for one flow only, as custom policies can sign with their own keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

Shape = Literal["b2c", "external_id"]
PolicyClaim = Literal["tfp", "acr"]


class FakeOidcIssuer:
    """Start with `with FakeOidcIssuer("b2c") as idp:`; then `idp.metadata_url`, `idp.sign()`.

    `policy` is the B2C user flow tokens name by default and `other_policies` the further
    flows it serves (each with its own metadata and JWKS); `policy_claim` is the claim B2C
    names the flow in.
    """

    def __init__(
        self,
        shape: Shape,
        *,
        scope: str = "shop.api",
        tenant: str = "contoso",
        policy: str = "B2C_1_signupsignin",
        other_policies: Sequence[str] = (),
        policy_claim: PolicyClaim = "tfp",
    ) -> None:
        self.shape = shape
        self.scope = scope
        self.tenant_id = str(uuid.uuid4())
        self.tenant = tenant
        # The API app registration. Its client id is the `aud` of every access token.
        self.client_id = str(uuid.uuid4())
        self.app_id_uri = (
            f"https://{tenant}.onmicrosoft.com/cloudcart"
            if shape == "b2c"
            else f"api://{self.client_id}"
        )
        self.audience = self.client_id
        self.policy = policy
        self.policies = [policy, *other_policies] if shape == "b2c" else []
        self.policy_claim = policy_claim
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        # Published kids per key set: one per B2C policy (lower-cased), "" for External ID.
        self._published: dict[str, list[str]] = {}
        self.jwks_fetches = 0
        self.jwks_fetches_by_policy: dict[str, int] = {}
        self.metadata_fetches = 0
        self.failing = False
        self.redirect_to: str | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        if shape == "b2c":
            # B2C's issuer names the tenant id and ends with a slash; every flow shares it.
            self.issuer = f"{self.base}/{self.tenant_id}/v2.0/"
        else:
            self.issuer = f"{self.base}/{self.tenant_id}/v2.0"
        self.metadata_url = self.metadata_url_for(policy)
        self.jwks_uri = self.jwks_uri_for(policy)
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

    def add_key(self, *, publish: bool = True, policy: str | None = None) -> str:
        """Create a signing key; publish it unless told not to. Returns its kid.

        Published in every key set, or only in B2C `policy`'s (a custom policy's own key).
        """
        kid = f"key-{len(self._keys) + 1}-{uuid.uuid4().hex[:8]}"
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.publish(kid, policy=policy)
        return kid

    def publish(self, kid: str, *, policy: str | None = None) -> None:
        """Add an existing key to the JWKS (a key rotation as the IdP performs it): to every
        key set, or to B2C `policy`'s only."""
        sets = [policy.casefold()] if policy is not None else self._key_sets()
        with self._lock:
            for key_set in sets:
                self._published.setdefault(key_set, []).append(kid)

    def _key_sets(self) -> list[str]:
        return [p.casefold() for p in self.policies] if self.shape == "b2c" else [""]

    # --- where things are -------------------------------------------------------------------

    def _root(self, policy: str | None) -> str:
        if self.shape == "b2c":
            return f"/{self.tenant}.onmicrosoft.com/{policy or self.policy}"
        return f"/{self.tenant_id}"

    def metadata_url_for(self, policy: str | None = None) -> str:
        """The metadata URL of B2C user flow `policy` (default flow), or the tenant's."""
        return f"{self.base}{self._root(policy)}/v2.0/.well-known/openid-configuration"

    def jwks_uri_for(self, policy: str | None = None) -> str:
        """The JWKS URL of B2C user flow `policy` (default flow), or the tenant's."""
        return f"{self.base}{self._root(policy)}/discovery/v2.0/keys"

    def trust_entry(self, **changes: Any) -> dict[str, Any]:
        """This issuer as an IDENTITY_ISSUERS entry: its client id as the audience and, for
        B2C, every flow it serves as accepted; `changes` replace or add keys."""
        entry: dict[str, Any] = {"metadataUrl": self.metadata_url, "audiences": [self.client_id]}
        if self.shape == "b2c":
            entry["policies"] = list(self.policies)
        entry.update(changes)
        return entry

    # --- people and apps ----------------------------------------------------------------------

    def object_id(self, user: str) -> str:
        """The object id (`oid`) of `user` in this tenant: the same for every client app."""
        return str(uuid.uuid5(uuid.UUID(self.tenant_id), f"user:{user}"))

    def client_app_id(self, client: str) -> str:
        """The application (client) id of client app `client` (web, android, ios, ...)."""
        return str(uuid.uuid5(uuid.UUID(self.tenant_id), f"client:{client}"))

    def pairwise_sub(self, user: str, client: str) -> str:
        """External ID's `sub`: pairwise, so one person has a different one in each app."""
        digest = hashlib.sha256(f"{self.object_id(user)}|{self.client_app_id(client)}".encode())
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")

    def public_pem(self, kid: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return (
            self._keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def claims(
        self,
        user: str = "customer-1",
        *,
        policy: str | None = None,
        client: str = "web",
        **overrides: Any,
    ) -> dict[str, Any]:
        """The access-token claims this issuer's shape sends when `user` signs in with
        client app `client` (through B2C user flow `policy`); `overrides` replace or add,
        and an override of None removes the claim."""
        now = int(time.time())
        oid = self.object_id(user)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "scp": self.scope,
            "azp": self.client_app_id(client),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        if self.shape == "b2c":
            claims["ver"] = "1.0"
            claims["sub"] = oid
            claims["emails"] = [f"{user}@example.com"]
            claims[self.policy_claim] = policy or self.policy
        else:
            claims["ver"] = "2.0"
            claims["tid"] = self.tenant_id
            claims["oid"] = oid
            claims["sub"] = self.pairwise_sub(user, client)
            claims["preferred_username"] = f"{user}@example.com"
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

    def _route(self, path: str) -> tuple[Literal["metadata", "jwks"], str | None] | None:
        # B2C matches the policy in the path case-insensitively, as the real one does.
        policies: list[str | None] = [*self.policies] or [None]
        for policy in policies:
            root = self._root(policy)
            if self.shape == "b2c":
                path, root = path.casefold(), root.casefold()
            if path == f"{root}/v2.0/.well-known/openid-configuration":
                return "metadata", policy
            if path == f"{root}/discovery/v2.0/keys":
                return "jwks", policy
        return None

    def _metadata(self, policy: str | None = None) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri_for(policy),
            "authorization_endpoint": f"{self.base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.base}/oauth2/v2.0/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise"],
        }

    def _jwks(self, policy: str | None = None) -> dict[str, Any]:
        key_set = (policy or self.policy).casefold() if self.shape == "b2c" else ""
        with self._lock:
            kids = list(self._published.get(key_set, []))
        keys = []
        for kid in kids:
            jwk = RSAAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = idp._route(self.path.split("?")[0])
                with idp._lock:
                    if route is not None and route[0] == "metadata":
                        idp.metadata_fetches += 1
                    elif route is not None:
                        idp.jwks_fetches += 1
                        by_policy = idp.jwks_fetches_by_policy
                        name = route[1] or ""
                        by_policy[name] = by_policy.get(name, 0) + 1
                if idp.redirect_to is not None:
                    self.send_response(HTTPStatus.FOUND)
                    self.send_header("Location", idp.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif idp.failing:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "down"})
                elif route is not None and route[0] == "metadata":
                    self._send(HTTPStatus.OK, idp._metadata(route[1]))
                elif route is not None:
                    self._send(HTTPStatus.OK, idp._jwks(route[1]))
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
