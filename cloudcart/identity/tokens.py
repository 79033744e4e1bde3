"""Bearer-token validation for Azure AD B2C, Microsoft Entra External ID and the dev provider.

Every token goes through one code path (`TokenValidator.validate`): pick the trusted issuer
named by the token's (unverified) `iss` and, for B2C, the accepted user flow named by its
`tfp`/`acr` (each flow has its own metadata and key set); find the signing key by `kid` in
that key set, then let PyJWT verify the RS256 signature, exact `iss`, an `aud` that issuer
accepts, and `exp`/`nbf` with the configured clock skew; finally check the required scope
and key the customer on `oid`+`tid` (Entra, External ID) or `sub` (B2C, the dev provider).
Only where the keys come from differs: a remote JWKS found through OpenID metadata
(`azure`) or the embedded dev provider's keys read in-process (`embedded`), so the app
never HTTP-calls itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from jwt import PyJWK

from cloudcart.core.errors import Unavailable
from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity.caller import Caller, InvalidToken
from cloudcart.identity.issuer_config import (
    CustomerIdClaim,
    TrustedIssuer,
    embedded_issuer,
    is_loopback_host,
    trusted_issuers,
)

log = logging.getLogger(__name__)

# The one algorithm we accept, whatever the token header claims: trusting the header's
# `alg` is how `none` and HS256-with-the-public-key forgeries get through.
ALGORITHMS = ["RS256"]

METADATA_MAX_AGE_SECONDS = 3600.0
JWKS_MAX_AGE_SECONDS = 3600.0
# At most one JWKS refetch per issuer in this window, so a stream of tokens with made-up
# `kid`s cannot make us hammer the identity provider.
MIN_REFRESH_INTERVAL_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 5.0
_MAX_DOCUMENT_BYTES = 1_000_000
# Real access tokens are a few KB; refusing huge ones keeps parsing cheap for attackers.
_MAX_TOKEN_CHARS = 16_384

Clock = Callable[[], float]
JwksLoader = Callable[[], Mapping[str, Any]]


# --- key sources ----------------------------------------------------------------------------


class CachedJwks:
    """An issuer's signing keys, loaded through `load` and cached.

    `load` is the key-source abstraction: an HTTP fetch of a remote `jwks_uri`
    (`remote_jwks`) or an in-process read of the dev provider's public keys. The cache is
    reloaded when older than `max_age`, and early when a token names an unknown `kid`; those
    early reloads, and retries after a failed load, happen at most once per
    `min_refresh_interval`. If a reload fails the keys we already have keep serving: an
    identity-provider blip must not log every customer out.
    """

    def __init__(
        self,
        load: JwksLoader,
        *,
        max_age: float = JWKS_MAX_AGE_SECONDS,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] | None = None
        self._loaded_at = 0.0
        self._failed_at: float | None = None
        self._kid_refresh_at: float | None = None

    def key(self, kid: str) -> PyJWK | None:
        """The RS256 key with id `kid`, or None if the issuer does not publish it."""
        with self._lock:
            now = self._clock()
            if self._keys is None:
                self._load_keys(now, must_succeed=True)
            elif now - self._loaded_at >= self._max_age:
                self._load_keys(now, must_succeed=False)
            fresh = self._loaded_at == now
            if self._keys is not None and kid not in self._keys and not fresh:
                # Unknown kid: the issuer may have rotated its keys since we last looked.
                if not self._may_refresh_for(now):
                    return None
                self._kid_refresh_at = now
                self._load_keys(now, must_succeed=False)
            assert self._keys is not None
            return self._keys.get(kid)

    def _may_refresh_for(self, now: float) -> bool:
        last = self._kid_refresh_at
        return last is None or now - last >= self._min_refresh_interval

    def _load_keys(self, now: float, *, must_succeed: bool) -> None:
        # After a failure, wait before asking again: a down IdP must not see a retry storm.
        if self._failed_at is not None and now - self._failed_at < self._min_refresh_interval:
            if must_succeed:
                raise Unavailable("the identity provider's signing keys are unavailable")
            return
        try:
            keys = _parse_jwks(self._load())
        except Unavailable:
            self._failed_at = now
            if must_succeed:
                raise
            log.warning("refreshing signing keys failed; keeping the cached ones", exc_info=True)
            return
        self._failed_at = None
        self._keys = keys
        self._loaded_at = now


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, PyJWK]:
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise Unavailable("the JWKS document has no `keys` list")
    keys: dict[str, PyJWK] = {}
    for raw in raw_keys:
        # Skip what we would never verify with (encryption keys, other key types, keys
        # without an id) instead of failing the whole set on one odd entry.
        if not isinstance(raw, dict) or raw.get("kty") != "RSA" or raw.get("use", "sig") != "sig":
            continue
        kid = raw.get("kid")
        if not isinstance(kid, str) or raw.get("alg", "RS256") != "RS256":
            continue
        try:
            keys[kid] = PyJWK(raw, algorithm="RS256")
        except jwt.PyJWKError:
            log.warning("ignoring an unusable JWKS key %r", kid)
    return keys


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead off HTTPS (or anywhere); the metadata and JWKS URLs of B2C and
    # External ID answer directly, so a redirect is treated as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def fetch_json(url: str, *, timeout: float = HTTP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """GET a JSON object over HTTPS (plain HTTP only on loopback, for local fakes).

    Uses the standard library so production needs no HTTP client dependency just for two
    small documents an hour. Network and format failures raise `Unavailable`.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (
        parts.scheme == "http" and is_loopback_host(parts.hostname)
    ):
        raise Unavailable(f"refusing to fetch identity metadata over {parts.scheme!r}: {url}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (scheme checked above)
    try:
        with _opener.open(request, timeout=timeout) as response:
            body = response.read(_MAX_DOCUMENT_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unavailable(f"could not fetch {url}: {exc}") from exc
    if len(body) > _MAX_DOCUMENT_BYTES:
        raise Unavailable(f"{url} returned a document larger than {_MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise Unavailable(f"{url} did not return JSON") from exc
    if not isinstance(document, dict):
        raise Unavailable(f"{url} did not return a JSON object")
    return document


def remote_jwks(url: str) -> JwksLoader:
    """A JWKS loader that fetches `url` over HTTP(S)."""
    return lambda: fetch_json(url)


# --- issuers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerSource:
    """One key set of a trusted issuer and what tokens signed with it must carry.

    An External ID tenant is one source; a B2C tenant is one source per accepted user flow,
    because all its flows share one `iss` but each has its own metadata and may sign with
    its own keys (custom policies do).
    """

    keys: CachedJwks
    audiences: tuple[str, ...]
    policy: str | None = None
    customer_id_claim: CustomerIdClaim = "oid"


class IssuerDirectory(Protocol):
    """Finds the source of a token by its exact `iss` and, for B2C, its user flow."""

    def source_for(self, issuer: str, policy: str | None) -> IssuerSource:
        """The matching source; raises `InvalidToken` when the issuer or flow is not
        trusted and `Unavailable` when that cannot be told because metadata is missing."""
        ...


def token_policy(claims: Mapping[str, Any]) -> str | None:
    """The B2C policy a token names: `tfp`, or `acr` where the tenant sends the legacy form."""
    for name in ("tfp", "acr"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def select_source(
    candidates: Sequence[IssuerSource], policy: str | None, *, incomplete: bool = False
) -> IssuerSource:
    """Pick the source among those of one issuer; `incomplete` when some metadata is missing."""
    if policy is not None:
        for candidate in candidates:
            # B2C treats policy names case-insensitively (`tfp` may come lower-cased).
            if candidate.policy is not None and candidate.policy.casefold() == policy.casefold():
                return candidate
    for candidate in candidates:
        if candidate.policy is None:
            return candidate
    if incomplete:
        raise Unavailable("identity metadata unavailable")
    if not candidates:
        raise InvalidToken("untrusted issuer")
    if policy is None:
        raise InvalidToken("token names no user flow (tfp or acr)")
    raise InvalidToken(f"user flow {policy!r} is not accepted")


class StaticIssuers:
    """Issuers known up front (the embedded dev provider)."""

    def __init__(self, issuers: Mapping[str, IssuerSource]) -> None:
        self._issuers = dict(issuers)

    def source_for(self, issuer: str, policy: str | None) -> IssuerSource:
        """The issuer's source; `InvalidToken` if the issuer is not trusted."""
        known = self._issuers.get(issuer)
        return select_source([known] if known is not None else [], policy)


@dataclass
class _Discovered:
    issuer: str
    jwks_uri: str
    keys: CachedJwks
    fetched_at: float


@dataclass(frozen=True)
class _Watched:
    url: str
    trusted: TrustedIssuer
    policy: str | None


class DiscoveredIssuers:
    """Issuers found through OpenID metadata documents (B2C policies, External ID tenants).

    Each configured metadata URL (one per accepted B2C policy) has its own key set. Metadata
    is fetched on first use and again after `max_age`; a failed fetch is retried at most
    every `min_refresh_interval`. A JWKS cache survives a metadata refresh as long as
    `jwks_uri` stays the same.
    """

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        *,
        fetch: Callable[[str], Mapping[str, Any]] = fetch_json,
        max_age: float = METADATA_MAX_AGE_SECONDS,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        if not issuers:
            raise ValueError("at least one trusted issuer is required")
        watched: dict[str, _Watched] = {}
        for trusted in issuers:
            for policy, url in trusted.policy_metadata_urls():
                watched.setdefault(url, _Watched(url, trusted, policy))
        self._watched = list(watched.values())
        self._fetch = fetch
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._by_url: dict[str, _Discovered] = {}
        self._failed_at: dict[str, float] = {}

    def source_for(self, issuer: str, policy: str | None) -> IssuerSource:
        """The source whose metadata names `issuer` (and, for B2C, the token's policy).

        Raises `Unavailable` when no source matches and some metadata document could not be
        fetched, because then we cannot tell "untrusted" from "not loaded".
        """
        with self._lock:
            now = self._clock()
            incomplete = False
            for watched in self._watched:
                current = self._by_url.get(watched.url)
                if current is None or now - current.fetched_at >= self._max_age:
                    self._refresh(watched.url, now)
                if watched.url not in self._by_url:
                    incomplete = True
            candidates = [
                IssuerSource(
                    found.keys,
                    watched.trusted.audiences,
                    watched.policy,
                    watched.trusted.customer_id_claim,
                )
                for watched in self._watched
                if (found := self._by_url.get(watched.url)) is not None and found.issuer == issuer
            ]
        return select_source(candidates, policy, incomplete=incomplete)

    def _refresh(self, url: str, now: float) -> None:
        failed_at = self._failed_at.get(url)
        if failed_at is not None and now - failed_at < self._min_refresh_interval:
            return
        try:
            document = self._fetch(url)
            issuer = document.get("issuer")
            jwks_uri = document.get("jwks_uri")
            if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
                raise Unavailable(f"{url} lacks `issuer` or `jwks_uri`")
        except Unavailable:
            self._failed_at[url] = now
            # Stale metadata beats none: keep what we had until the IdP answers again.
            log.warning("fetching OpenID metadata %s failed", url, exc_info=True)
            return
        self._failed_at.pop(url, None)
        previous = self._by_url.get(url)
        if previous is not None and previous.jwks_uri == jwks_uri:
            keys = previous.keys
        else:
            keys = CachedJwks(
                remote_jwks(jwks_uri),
                min_refresh_interval=self._min_refresh_interval,
                clock=self._clock,
            )
        self._by_url[url] = _Discovered(issuer, jwks_uri, keys, now)


# --- the validator ------------------------------------------------------------------------


class TokenValidator:
    """Turns a bearer token into a `Caller`, or raises `InvalidToken` saying why not."""

    def __init__(
        self,
        issuers: IssuerDirectory,
        *,
        required_scope: str,
        roles_claim: str = "roles",
        admin_role: str = "Admin",
        leeway_seconds: int = 60,
    ) -> None:
        self._issuers = issuers
        self._required_scope = required_scope
        self._roles_claim = roles_claim
        self._admin_role = admin_role
        self._leeway = leeway_seconds

    def validate(self, token: str) -> Caller:
        """Verify `token` and describe its caller.

        Raises `InvalidToken` for any token we do not accept and `Unavailable` when the
        issuer's metadata or keys cannot be fetched at all.
        """
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc

        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken(f"unsupported signing algorithm {alg!r}; only RS256 is accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token header has no key id (kid)")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise InvalidToken("token has no issuer (iss)")

        source = self._issuers.source_for(issuer, token_policy(unverified))
        key = source.keys.key(kid)
        if key is None:
            raise InvalidToken("unknown signing key (kid)")

        # PyJWT's strict audience check takes one value: hand it the token's own `aud` when
        # this issuer accepts it, so a foreign or list-valued `aud` still fails there.
        aud = unverified.get("aud")
        audience = aud if isinstance(aud, str) and aud in source.audiences else source.audiences[0]
        claims = self._verify(token, key, issuer, audience)
        return self._caller(claims, issuer, source)

    def _verify(self, token: str, key: PyJWK, issuer: str, audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=issuer,
                leeway=self._leeway,
                options={"require": ["exp", "nbf", "iss", "aud"], "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("audience mismatch") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("issuer mismatch") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the required claim {exc.claim!r}") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("signature verification failed") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise InvalidToken("unsupported signing algorithm; only RS256 is accepted") from exc
        except jwt.InvalidIssuedAtError as exc:
            raise InvalidToken("token issued in the future (iat)") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        return claims

    def _caller(self, claims: Mapping[str, Any], issuer: str, source: IssuerSource) -> Caller:
        scp = claims.get("scp")
        scopes = tuple(scp.split()) if isinstance(scp, str) else ()
        if self._required_scope not in scopes:
            raise InvalidToken(f"token lacks the required scope {self._required_scope!r}")

        roles = _roles(claims.get(self._roles_claim))
        return Caller(
            customer_id=customer_id(claims, source.customer_id_claim),
            email=_email(claims),
            name=_string(claims.get("name")),
            roles=roles,
            scopes=scopes,
            issuer=issuer,
            is_admin=self._admin_role in roles,
        )


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# B2C's legacy "Subject (sub) claim: Not supported" setting sends this text instead of an id.
_NO_SUBJECT = "not supported"


def customer_id(claims: Mapping[str, Any], key: CustomerIdClaim) -> str:
    """The customer id of validated `claims`, from the claim the issuer is keyed on.

    `oid`: Entra and External ID. Their `sub` is pairwise, different for each client app
    (web, Android, iOS) of the same person, while `oid` is the user's object id in the
    tenant; with the tenant (`tid`) it is unique, written `{oid}.{tid}` as MSAL's home
    account id is. `sub`: B2C, whose `sub` is the object id (the same for every app), and
    the embedded provider, whose customers have always been keyed on `sub`.
    """
    if key == "sub":
        sub = _string(claims.get("sub"))
        if sub is not None and sub.casefold() != _NO_SUBJECT:
            return sub
        oid = _string(claims.get("oid"))
        if oid is not None:
            return oid
        raise InvalidToken("token has no subject (sub)")
    oid = _string(claims.get("oid"))
    if oid is None:
        raise InvalidToken("token has no object id (oid)")
    tid = _string(claims.get("tid"))
    if tid is None:
        raise InvalidToken("token has no tenant id (tid)")
    return f"{oid}.{tid}"


def _email(claims: Mapping[str, Any]) -> str | None:
    email = _string(claims.get("email"))
    if email:
        return email
    # B2C sends the sign-in addresses as a list under `emails`.
    emails = claims.get("emails")
    if isinstance(emails, list) and emails:
        first = _string(emails[0])
        if first:
            return first
    return _string(claims.get("preferred_username"))


def _roles(value: Any) -> tuple[str, ...]:
    """Roles from a list claim (External ID app roles) or a comma/space-separated string.

    B2C custom attributes (`extension_Role`) can only hold strings, hence the second form.
    """
    if isinstance(value, str):
        items: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, list):
        items = value
    else:
        return ()
    seen: dict[str, None] = {}
    for item in items:
        if isinstance(item, str) and item.strip():
            seen.setdefault(item.strip(), None)
    return tuple(seen)


def from_settings(settings: Settings) -> TokenValidator:
    """The validator for the configured identity adapter."""
    issuers: IssuerDirectory
    if settings.identity_adapter == Adapter.azure:
        # Raises IdentityConfigError (a ValueError) naming what to set.
        issuers = DiscoveredIssuers(trusted_issuers(settings))
    else:
        # Imported here so the azure path never loads the dev provider's key handling.
        from cloudcart.identity import dev_provider

        dev = embedded_issuer(settings)
        keys = CachedJwks(lambda: dev_provider.public_jwks(settings))
        issuers = StaticIssuers(
            {
                dev_provider.issuer(settings): IssuerSource(
                    keys, dev.audiences, customer_id_claim=dev.customer_id_claim
                )
            }
        )
    return TokenValidator(
        issuers,
        required_scope=settings.identity_required_scope,
        roles_claim=settings.identity_roles_claim,
        admin_role=settings.identity_admin_role,
        leeway_seconds=settings.identity_clock_skew_seconds,
    )
