"""Which issuers the API trusts: their metadata, accepted audiences, user flows and customer key.

Configured in one of two forms (docs/identity.md):

* `IDENTITY_ISSUERS`, a JSON list with one object per trusted issuer, so a B2C tenant and an
  External ID tenant (different API app registrations) each bring their own audiences::

      [{"metadataUrl": "https://contoso.b2clogin.com/contoso.onmicrosoft.com/
                        B2C_1_signupsignin/v2.0/.well-known/openid-configuration",
        "audiences": ["11111111-2222-3333-4444-555555555555"],
        "scopePrefix": "https://contoso.onmicrosoft.com/cloudcart",
        "policies": ["B2C_1_signupsignin", "B2C_1_profileedit"]},
       {"metadataUrl": "https://contosoid.ciamlogin.com/<tenant id>/v2.0/
                        .well-known/openid-configuration",
        "audiences": ["66666666-7777-8888-9999-000000000000"]}]

  (each URL on one line in the real setting).

* the older pair `IDENTITY_METADATA_URLS` + `IDENTITY_AUDIENCE`: every URL accepts the same
  audiences, and a B2C URL accepts exactly the user flow it names.

Entra v2.0 and B2C access tokens carry the API app registration's application (client) id,
a GUID, in `aud`; the App ID URI (`api://...`) is only the prefix clients request scopes
with. So the client id is what `audiences` must list.

This module stays free of PyJWT and cryptography: the app checks its configuration at
start-up with it, before any token arrives.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from cloudcart.core.settings import Adapter, Settings

log = logging.getLogger(__name__)

CustomerIdClaim = Literal["oid", "sub"]
"""Which claim identifies the customer: `oid` (with `tid`) for Entra and External ID, whose
`sub` is pairwise per client app; `sub` for B2C, where it is the user's object id."""

DEV_API_CLIENT_ID = "c10dca27-de00-4000-8000-000000000001"
"""The `aud` of the embedded provider's tokens when IDENTITY_AUDIENCE is unset: a client id,
as the real services send."""
DEV_APP_ID_URI = "api://cloudcart"
"""The embedded provider's App ID URI: clients request `api://cloudcart/shop.api`."""

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# B2C names user flows `B2C_1_...` and custom policies `B2C_1A_...`; that is how a policy is
# found in a metadata URL's path.
_POLICY_SEGMENT = re.compile(r"b2c_1a?_[A-Za-z0-9_.-]+", re.IGNORECASE)
_POLICY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_POLICY_PLACEHOLDER = "{policy}"
_ENTRY_KEYS = frozenset({"metadataUrl", "audiences", "scopePrefix", "policies"})


class IdentityConfigError(ValueError):
    """The identity settings cannot describe a working set of trusted issuers."""


@dataclass(frozen=True)
class TrustedIssuer:
    """One trusted issuer as configured: where its metadata is and what its tokens must carry.

    `policies` are the B2C user flows (or custom policies) whose tokens may call the API;
    empty for Entra and External ID. Each policy has its own metadata document and key set.
    """

    metadata_url: str
    audiences: tuple[str, ...]
    scope_prefix: str
    policies: tuple[str, ...] = ()
    customer_id_claim: CustomerIdClaim = "oid"

    def policy_metadata_urls(self) -> tuple[tuple[str | None, str], ...]:
        """`(policy, metadata URL)` for each accepted policy; `(None, metadata_url)` without."""
        if not self.policies:
            return ((None, self.metadata_url),)
        return tuple(
            (policy, policy_metadata_url(self.metadata_url, policy)) for policy in self.policies
        )


def is_loopback_host(host: str | None) -> bool:
    """True for `localhost` and loopback IP addresses (where plain http is acceptable)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_guid(value: str) -> bool:
    """True when `value` is a GUID in its usual 8-4-4-4-12 form (a client id)."""
    return _GUID.fullmatch(value) is not None


def split_list(value: str) -> list[str]:
    """The non-empty items of a comma-separated setting."""
    return [item.strip() for item in value.split(",") if item.strip()]


def url_policy(url: str) -> str | None:
    """The B2C policy a metadata URL names (`p=` query parameter or `B2C_1_...` segment)."""
    parts = urllib.parse.urlsplit(url)
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key.lower() == "p" and value:
            return value
    for segment in parts.path.split("/"):
        if _POLICY_SEGMENT.fullmatch(segment):
            return segment
    return None


def policy_metadata_url(url: str, policy: str) -> str:
    """`url` with its policy replaced by `policy` (or its `{policy}` placeholder filled in)."""
    if _POLICY_PLACEHOLDER in url:
        return url.replace(_POLICY_PLACEHOLDER, policy)
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() == "p" for key, _ in query):
        query = [(key, policy if key.lower() == "p" else value) for key, value in query]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    segments = parts.path.split("/")
    for index, segment in enumerate(segments):
        if _POLICY_SEGMENT.fullmatch(segment):
            segments[index] = policy
            return urllib.parse.urlunsplit(parts._replace(path="/".join(segments)))
    raise IdentityConfigError(
        f"{url} names no B2C policy to replace: put the policy in the URL (a B2C_1_... path "
        f"segment or ?p=...) or write {_POLICY_PLACEHOLDER} where it goes"
    )


def _default_scope_prefix(audiences: tuple[str, ...]) -> str:
    # An App ID URI among the audiences is what clients request scopes with; with only a
    # client id, `api://{client id}` is the App ID URI Entra proposes by default.
    for audience in audiences:
        if not is_guid(audience):
            return audience.rstrip("/")
    return f"api://{audiences[0]}"


def _check_url(url: str, where: str) -> None:
    parts = urllib.parse.urlsplit(url.replace(_POLICY_PLACEHOLDER, "policy"))
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback_host(parts.hostname)
    )
    if not secure or not parts.hostname:
        raise IdentityConfigError(f"{where} must be an https URL, got {url!r}")


def _issuer(
    where: str,
    metadata_url: str,
    audiences: tuple[str, ...],
    scope_prefix: str | None,
    policies: tuple[str, ...],
) -> TrustedIssuer:
    _check_url(metadata_url, where)
    if not policies and _POLICY_PLACEHOLDER not in metadata_url:
        named = url_policy(metadata_url)
        policies = (named,) if named else ()
    if _POLICY_PLACEHOLDER in metadata_url and not policies:
        raise IdentityConfigError(
            f"{where} has a {_POLICY_PLACEHOLDER} placeholder but no policies"
        )
    host = (urllib.parse.urlsplit(metadata_url).hostname or "").lower()
    b2c = bool(policies) or host.endswith(".b2clogin.com")
    if b2c and not policies:
        raise IdentityConfigError(
            f"{where} is a B2C metadata URL without a user flow: name the policy in the URL "
            "or list the accepted ones in `policies`"
        )
    for policy in policies:
        # The URL for each policy is built up front so a bad one fails at start-up.
        policy_metadata_url(metadata_url, policy)
    return TrustedIssuer(
        metadata_url=metadata_url,
        audiences=audiences,
        scope_prefix=(scope_prefix or _default_scope_prefix(audiences)).rstrip("/"),
        policies=policies,
        customer_id_claim="sub" if b2c else "oid",
    )


def _strings(value: Any, where: str, *, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise IdentityConfigError(f"{where} must be a list of non-empty strings")
    if not value and not allow_empty:
        raise IdentityConfigError(f"{where} must list at least one value")
    return tuple(v.strip() for v in value)


def _from_json(raw: str) -> tuple[TrustedIssuer, ...]:
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise IdentityConfigError(f"IDENTITY_ISSUERS is not valid JSON: {exc}") from exc
    if not isinstance(entries, list) or not entries:
        raise IdentityConfigError("IDENTITY_ISSUERS must be a non-empty JSON list of issuers")
    issuers: list[TrustedIssuer] = []
    for index, entry in enumerate(entries):
        where = f"IDENTITY_ISSUERS[{index}]"
        if not isinstance(entry, dict):
            raise IdentityConfigError(f"{where} must be a JSON object")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            # A misspelt key (`audience`) would otherwise silently drop a check.
            raise IdentityConfigError(
                f"{where} has unknown keys {unknown}; known: {sorted(_ENTRY_KEYS)}"
            )
        url = entry.get("metadataUrl")
        if not isinstance(url, str) or not url.strip():
            raise IdentityConfigError(f"{where}.metadataUrl must be the issuer's metadata URL")
        audiences = _strings(entry.get("audiences"), f"{where}.audiences", allow_empty=False)
        prefix = entry.get("scopePrefix")
        if prefix is not None and (not isinstance(prefix, str) or not prefix.strip()):
            raise IdentityConfigError(f"{where}.scopePrefix must be a non-empty string")
        policies = _strings(entry.get("policies", []), f"{where}.policies", allow_empty=True)
        bad = [p for p in policies if not _POLICY_NAME.fullmatch(p)]
        if bad:
            raise IdentityConfigError(f"{where}.policies has invalid policy names {bad}")
        issuers.append(_issuer(f"{where}.metadataUrl", url.strip(), audiences, prefix, policies))
    return tuple(issuers)


def trusted_issuers(settings: Settings) -> tuple[TrustedIssuer, ...]:
    """The issuers the `azure` identity adapter trusts; raises `IdentityConfigError` saying
    what to set when the settings name none or describe them wrongly."""
    if settings.identity_issuers.strip():
        if settings.metadata_urls:
            raise IdentityConfigError(
                "set either IDENTITY_ISSUERS or IDENTITY_METADATA_URLS, not both"
            )
        issuers = _from_json(settings.identity_issuers)
    else:
        urls = settings.metadata_urls
        if not urls:
            raise IdentityConfigError(
                "CLOUDCART_IDENTITY_ADAPTER=azure needs the trusted issuers: IDENTITY_ISSUERS "
                "(JSON, one entry per issuer) or IDENTITY_METADATA_URLS with IDENTITY_AUDIENCE"
            )
        audiences = tuple(split_list(settings.identity_audience))
        if not audiences:
            raise IdentityConfigError(
                "IDENTITY_AUDIENCE must list the API app registration's application (client) "
                "id, the `aud` of Entra v2.0 and B2C access tokens, when IDENTITY_METADATA_URLS "
                "is used"
            )
        issuers = tuple(
            _issuer(f"IDENTITY_METADATA_URLS[{i}]", url, audiences, None, ())
            for i, url in enumerate(urls)
        )
    for issuer in issuers:
        if not any(is_guid(a) for a in issuer.audiences):
            # Not fatal (a v1.0 metadata URL pairs with an App ID URI audience), but with the
            # v2.0 metadata URLs the docs use, no token will ever match.
            log.warning(
                "no audience of %s is a client id (GUID); Entra v2.0 and B2C access tokens "
                "carry the API's client id in `aud`",
                issuer.metadata_url,
            )
    return issuers


def embedded_issuer(settings: Settings) -> TrustedIssuer:
    """The embedded dev provider as an issuer: it mints `aud` = the first audience.

    Its customers are keyed on `sub`, as they always were, so local data keeps its owners.
    """
    audiences = tuple(split_list(settings.identity_audience)) or (DEV_API_CLIENT_ID, DEV_APP_ID_URI)
    return TrustedIssuer(
        metadata_url=settings.public_base_url.rstrip("/")
        + "/dev/idp/.well-known/openid-configuration",
        audiences=audiences,
        scope_prefix=_default_scope_prefix(audiences),
        customer_id_claim="sub",
    )


def api_scope(settings: Settings) -> str:
    """The API scope a client requests, `{scope prefix}/{IDENTITY_REQUIRED_SCOPE}`.

    With several trusted issuers it is the one whose metadata is on the web sign-in
    authority's host, else the first; set WEB_AUTH_SCOPES when neither fits.
    """
    if settings.identity_adapter == Adapter.embedded:
        prefix = embedded_issuer(settings).scope_prefix
    else:
        issuers = trusted_issuers(settings)
        authority = settings.web_auth_oidc_authority or settings.web_auth_authority or ""
        host = urllib.parse.urlsplit(authority).hostname
        same_host = [
            i for i in issuers if host and urllib.parse.urlsplit(i.metadata_url).hostname == host
        ]
        prefix = (same_host or list(issuers))[0].scope_prefix
    return f"{prefix}/{settings.identity_required_scope}"
