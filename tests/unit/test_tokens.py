"""TokenValidator against loopback B2C / External ID issuers, and the dev provider's keys."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from cloudcart.core.errors import Unavailable
from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity import dev_provider
from cloudcart.identity.caller import InvalidToken
from cloudcart.identity.issuer_config import (
    DEV_API_CLIENT_ID,
    DEV_APP_ID_URI,
    TrustedIssuer,
    trusted_issuers,
)
from cloudcart.identity.tokens import (
    CachedJwks,
    DiscoveredIssuers,
    TokenValidator,
    _roles,
    fetch_json,
    from_settings,
)
from tests.fakes.oidc_issuer import (
    FakeOidcIssuer,
    forge_alg_none,
    forge_hs256_with_public_key,
    tamper_payload,
)


class FakeClock:
    """Monotonic time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def b2c() -> Iterator[FakeOidcIssuer]:
    with FakeOidcIssuer("b2c") as idp:
        yield idp


@pytest.fixture(scope="module")
def external_id() -> Iterator[FakeOidcIssuer]:
    with FakeOidcIssuer("external_id") as idp:
        yield idp


def trusted(*idps: FakeOidcIssuer, **changes: Any) -> tuple[TrustedIssuer, ...]:
    """The issuers as IDENTITY_ISSUERS names them (each its own client id as audience)."""
    entries = [idp.trust_entry(**changes) for idp in idps]
    return trusted_issuers(
        Settings(identity_adapter=Adapter.azure, identity_issuers=json.dumps(entries))
    )


def make_validator(
    *idps: FakeOidcIssuer,
    clock: FakeClock | None = None,
    roles_claim: str = "roles",
    issuers: tuple[TrustedIssuer, ...] | None = None,
) -> TokenValidator:
    directory = DiscoveredIssuers(issuers or trusted(*idps), clock=clock or FakeClock())
    return TokenValidator(
        directory,
        required_scope="shop.api",
        roles_claim=roles_claim,
        admin_role="Admin",
        leeway_seconds=60,
    )


def reason_of(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidToken) as excinfo:
        validator.validate(token)
    return excinfo.value.reason


# --- valid tokens -----------------------------------------------------------------------------


def test_b2c_token_gives_caller_with_email_from_emails_list(b2c: FakeOidcIssuer) -> None:
    validator = make_validator(b2c)
    caller = validator.validate(b2c.sign(b2c.claims("alice", name="Alice", roles=["Admin"])))
    assert caller.customer_id == b2c.object_id("alice")
    assert caller.email == "alice@example.com"
    assert caller.name == "Alice"
    assert caller.roles == ("Admin",)
    assert caller.is_admin is True
    assert caller.scopes == ("shop.api",)
    assert caller.issuer == b2c.issuer


def test_external_id_token_uses_preferred_username_and_both_issuers_coexist(
    b2c: FakeOidcIssuer, external_id: FakeOidcIssuer
) -> None:
    validator = make_validator(b2c, external_id)
    ext = validator.validate(external_id.sign(external_id.claims("bob")))
    assert (ext.customer_id, ext.email, ext.issuer) == (
        f"{external_id.object_id('bob')}.{external_id.tenant_id}",
        "bob@example.com",
        external_id.issuer,
    )
    assert ext.roles == () and ext.is_admin is False
    assert validator.validate(b2c.sign()).issuer == b2c.issuer


# --- audiences ------------------------------------------------------------------------------


def test_tokens_carry_the_client_id_so_an_app_id_uri_audience_rejects_them(
    b2c: FakeOidcIssuer, external_id: FakeOidcIssuer
) -> None:
    # The configuration this app shipped with (`aud` = App ID URI) can accept no real token.
    for idp in (b2c, external_id):
        validator = make_validator(idp, issuers=trusted(idp, audiences=[idp.app_id_uri]))
        assert reason_of(validator, idp.sign()) == "audience mismatch"


def test_app_id_uri_audience_is_accepted_only_where_configured(b2c: FakeOidcIssuer) -> None:
    token = b2c.sign(b2c.claims("carol", aud=b2c.app_id_uri))
    assert reason_of(make_validator(b2c), token) == "audience mismatch"
    both = trusted(b2c, audiences=[b2c.client_id, b2c.app_id_uri])
    validator = make_validator(b2c, issuers=both)
    assert validator.validate(token).customer_id == b2c.object_id("carol")
    assert validator.validate(b2c.sign()).customer_id == b2c.object_id("customer-1")


def test_each_issuer_accepts_only_its_own_api_registration(
    b2c: FakeOidcIssuer, external_id: FakeOidcIssuer
) -> None:
    validator = make_validator(b2c, external_id)
    stray = external_id.sign(external_id.claims(aud=b2c.client_id))
    assert reason_of(validator, stray) == "audience mismatch"


def test_a_list_audience_is_rejected_even_when_it_names_us(b2c: FakeOidcIssuer) -> None:
    token = b2c.sign(b2c.claims(aud=[b2c.client_id, "api://other"]))
    assert reason_of(make_validator(b2c), token) == "audience mismatch"


def test_older_settings_still_work_with_the_client_id(
    tmp_path: Path, b2c: FakeOidcIssuer, external_id: FakeOidcIssuer
) -> None:
    settings = Settings(
        identity_adapter=Adapter.azure,
        identity_metadata_urls=f"{b2c.metadata_url}, {external_id.metadata_url}",
        identity_audience=f"{b2c.client_id},{external_id.client_id}",
        data_dir=tmp_path,
    )
    validator = from_settings(settings)
    assert validator.validate(b2c.sign()).issuer == b2c.issuer
    assert validator.validate(external_id.sign()).issuer == external_id.issuer


# --- customer ids ---------------------------------------------------------------------------


def test_external_id_customer_is_the_same_in_every_client_app(
    external_id: FakeOidcIssuer,
) -> None:
    validator = make_validator(external_id)
    tokens = [external_id.claims("dana", client=app) for app in ("web", "android", "ios")]
    assert len({claims["sub"] for claims in tokens}) == 3  # `sub` is pairwise per app
    customers = {validator.validate(external_id.sign(claims)).customer_id for claims in tokens}
    assert customers == {f"{external_id.object_id('dana')}.{external_id.tenant_id}"}


def test_b2c_customer_is_its_sub_in_every_client_app(b2c: FakeOidcIssuer) -> None:
    validator = make_validator(b2c)
    customers = {
        validator.validate(b2c.sign(b2c.claims("erin", client=app))).customer_id
        for app in ("web", "android", "ios")
    }
    assert customers == {b2c.object_id("erin")}


def test_b2c_legacy_not_supported_sub_falls_back_to_oid(b2c: FakeOidcIssuer) -> None:
    validator = make_validator(b2c)
    claims = b2c.claims("fay", sub="Not supported", oid=b2c.object_id("fay"))
    assert validator.validate(b2c.sign(claims)).customer_id == b2c.object_id("fay")
    assert reason_of(validator, b2c.sign(b2c.claims(sub="Not supported"))) == (
        "token has no subject (sub)"
    )


@pytest.mark.parametrize(
    ("missing", "reason"),
    [("oid", "token has no object id (oid)"), ("tid", "token has no tenant id (tid)")],
)
def test_external_id_token_without_oid_or_tid_is_rejected(
    external_id: FakeOidcIssuer, missing: str, reason: str
) -> None:
    removed: dict[str, Any] = {missing: None}
    token = external_id.sign(external_id.claims(**removed))
    assert reason_of(make_validator(external_id), token) == reason


# --- B2C user flows -------------------------------------------------------------------------


def test_only_accepted_user_flows_may_call_the_api() -> None:
    with FakeOidcIssuer("b2c", other_policies=["B2C_1_passwordreset"]) as idp:
        validator = make_validator(idp, issuers=trusted(idp, policies=["B2C_1_signupsignin"]))
        assert validator.validate(idp.sign()).customer_id == idp.object_id("customer-1")
        reset = idp.sign(idp.claims(policy="B2C_1_passwordreset"))
        assert reason_of(validator, reset) == "user flow 'B2C_1_passwordreset' is not accepted"
        assert reason_of(validator, idp.sign(idp.claims(tfp=None))) == (
            "token names no user flow (tfp or acr)"
        )


def test_a_b2c_url_accepts_the_flow_it_names_in_the_older_settings(tmp_path: Path) -> None:
    with FakeOidcIssuer("b2c", other_policies=["B2C_1_passwordreset"]) as idp:
        settings = Settings(
            identity_adapter=Adapter.azure,
            identity_metadata_urls=idp.metadata_url,
            identity_audience=idp.client_id,
            data_dir=tmp_path,
        )
        validator = from_settings(settings)
        assert validator.validate(idp.sign()).issuer == idp.issuer
        reset = idp.sign(idp.claims(policy="B2C_1_passwordreset"))
        assert reason_of(validator, reset) == "user flow 'B2C_1_passwordreset' is not accepted"


def test_legacy_acr_claim_and_lower_case_flow_names_are_read() -> None:
    with FakeOidcIssuer("b2c", policy_claim="acr") as idp:
        validator = make_validator(idp)
        assert validator.validate(idp.sign()).customer_id == idp.object_id("customer-1")
        lower = idp.sign(idp.claims(acr="b2c_1_signupsignin"))
        assert validator.validate(lower).customer_id == idp.object_id("customer-1")


def test_each_user_flow_has_its_own_key_set() -> None:
    custom = "B2C_1A_signup_signin"
    with FakeOidcIssuer("b2c", other_policies=[custom]) as idp:
        own_key = idp.add_key(policy=custom)  # a custom policy signing with its own key
        validator = make_validator(idp)
        token = idp.sign(idp.claims("gus", policy=custom), kid=own_key)
        assert validator.validate(token).customer_id == idp.object_id("gus")
        assert validator.validate(idp.sign()).issuer == idp.issuer
        assert idp.jwks_fetches_by_policy == {"B2C_1_signupsignin": 1, custom: 1}
        # The same key does not sign for a flow that never published it.
        borrowed = idp.sign(idp.claims("gus"), kid=own_key)
        assert reason_of(validator, borrowed) == "unknown signing key (kid)"


def test_metadata_and_jwks_are_fetched_once_and_cached(b2c: FakeOidcIssuer) -> None:
    validator = make_validator(b2c)
    metadata_before, jwks_before = b2c.metadata_fetches, b2c.jwks_fetches
    for _ in range(3):
        validator.validate(b2c.sign())
    assert b2c.metadata_fetches - metadata_before == 1
    assert b2c.jwks_fetches - jwks_before == 1


def test_caches_expire_after_an_hour(b2c: FakeOidcIssuer) -> None:
    clock = FakeClock()
    validator = make_validator(b2c, clock=clock)
    validator.validate(b2c.sign())
    metadata_before, jwks_before = b2c.metadata_fetches, b2c.jwks_fetches
    clock.advance(3601)
    validator.validate(b2c.sign())
    assert b2c.metadata_fetches - metadata_before == 1
    assert b2c.jwks_fetches - jwks_before == 1


# --- rejected tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        # Times relative to when the test runs (see below), not to when it was collected:
        # a long suite would otherwise reach a "future" nbf before this test runs.
        ({"exp": -120}, "token expired"),
        ({"nbf": 600}, "token not yet valid"),
        ({"aud": "api://someone-else"}, "audience mismatch"),
        ({"aud": "00000000-0000-0000-0000-000000000000"}, "audience mismatch"),
        ({"scp": "profile openid"}, "token lacks the required scope 'shop.api'"),
        ({"scp": None}, "token lacks the required scope 'shop.api'"),
        ({"exp": None}, "token lacks the required claim 'exp'"),
        ({"nbf": None}, "token lacks the required claim 'nbf'"),
        ({"iss": "https://evil.example/v2.0"}, "untrusted issuer"),
        ({"sub": None}, "token has no subject (sub)"),
    ],
)
def test_rejections_say_why(b2c: FakeOidcIssuer, overrides: dict[str, Any], reason: str) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {
        name: now + value if name in ("exp", "nbf") and isinstance(value, int) else value
        for name, value in overrides.items()
    }
    assert reason_of(make_validator(b2c), b2c.sign(b2c.claims(**claims))) == reason


def test_expiry_within_clock_skew_is_accepted(b2c: FakeOidcIssuer) -> None:
    now = int(time.time())
    token = b2c.sign(b2c.claims(exp=now - 30, nbf=now + 30))
    assert make_validator(b2c).validate(token).customer_id == b2c.object_id("customer-1")


def test_token_of_another_trusted_issuer_signed_with_our_key_is_rejected(
    b2c: FakeOidcIssuer, external_id: FakeOidcIssuer
) -> None:
    # Claims the External ID issuer, but is signed by B2C's key (a kid unknown there).
    token = b2c.sign(b2c.claims(iss=external_id.issuer))
    assert reason_of(make_validator(b2c, external_id), token) == "unknown signing key (kid)"


def test_alg_none_is_rejected(b2c: FakeOidcIssuer) -> None:
    reason = reason_of(make_validator(b2c), forge_alg_none(b2c.claims(), kid=b2c.kid))
    assert reason == "unsupported signing algorithm 'none'; only RS256 is accepted"


def test_hs256_signed_with_the_public_key_is_rejected(b2c: FakeOidcIssuer) -> None:
    token = forge_hs256_with_public_key(
        b2c.claims(), kid=b2c.kid, public_pem=b2c.public_pem(b2c.kid)
    )
    assert "only RS256 is accepted" in reason_of(make_validator(b2c), token)


def test_rs256_header_over_hs256_signature_fails_signature_check(b2c: FakeOidcIssuer) -> None:
    # Even if the header lies about the algorithm, the RSA check must fail.
    forged = forge_hs256_with_public_key(
        b2c.claims(), kid=b2c.kid, public_pem=b2c.public_pem(b2c.kid)
    )
    real_header = b2c.sign().split(".")[0]
    token = ".".join([real_header, *forged.split(".")[1:]])
    assert reason_of(make_validator(b2c), token) == "signature verification failed"


def test_tampered_payload_is_rejected(b2c: FakeOidcIssuer) -> None:
    token = tamper_payload(b2c.sign(b2c.claims("alice")), sub="mallory", roles=["Admin"])
    assert reason_of(make_validator(b2c), token) == "signature verification failed"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_garbage_is_malformed(b2c: FakeOidcIssuer, garbage: str) -> None:
    assert reason_of(make_validator(b2c), garbage) == "malformed token"


def test_token_without_kid_is_rejected(b2c: FakeOidcIssuer) -> None:
    token = jwt.encode(b2c.claims(), b2c._keys[b2c.kid], algorithm="RS256")
    assert reason_of(make_validator(b2c), token) == "token header has no key id (kid)"


# --- key refresh ----------------------------------------------------------------------------


def test_unknown_kid_refetches_jwks_at_most_once_per_interval() -> None:
    with FakeOidcIssuer("b2c") as idp:
        clock = FakeClock()
        validator = make_validator(idp, clock=clock)
        validator.validate(idp.sign())
        assert idp.jwks_fetches == 1

        unpublished = idp.add_key(publish=False)
        clock.advance(1)
        for _ in range(5):
            assert reason_of(validator, idp.sign(kid=unpublished)) == "unknown signing key (kid)"
        assert idp.jwks_fetches == 2  # one refetch, not five

        clock.advance(31)
        reason_of(validator, idp.sign(kid=unpublished))
        assert idp.jwks_fetches == 3


def test_first_token_with_unknown_kid_fetches_jwks_once() -> None:
    with FakeOidcIssuer("b2c") as idp:
        stranger = idp.add_key(publish=False)
        validator = make_validator(idp)
        assert reason_of(validator, idp.sign(kid=stranger)) == "unknown signing key (kid)"
        assert idp.jwks_fetches == 1


def test_rotated_key_is_accepted_after_refresh() -> None:
    with FakeOidcIssuer("external_id") as idp:
        clock = FakeClock()
        validator = make_validator(idp, clock=clock)
        validator.validate(idp.sign())
        new_kid = idp.add_key()
        clock.advance(1)  # rotation noticed right after startup, not only 30 s later
        assert validator.validate(idp.sign(kid=new_kid)).issuer == idp.issuer
        assert validator.validate(idp.sign()).issuer == idp.issuer  # old key still listed
        assert idp.jwks_fetches == 2


def test_cached_keys_keep_serving_while_the_idp_is_down() -> None:
    with FakeOidcIssuer("b2c") as idp:
        clock = FakeClock()
        validator = make_validator(idp, clock=clock)
        validator.validate(idp.sign())
        idp.failing = True
        clock.advance(4000)  # both caches are stale now
        assert validator.validate(idp.sign()).issuer == idp.issuer


def test_idp_down_from_the_start_is_unavailable_not_invalid() -> None:
    with FakeOidcIssuer("b2c") as idp:
        idp.failing = True
        clock = FakeClock()
        validator = make_validator(idp, clock=clock)
        with pytest.raises(Unavailable):
            validator.validate(idp.sign())
        fetches = idp.metadata_fetches
        with pytest.raises(Unavailable):
            validator.validate(idp.sign())
        assert idp.metadata_fetches == fetches  # failed fetches are rate-limited too
        idp.failing = False
        clock.advance(31)
        assert validator.validate(idp.sign()).issuer == idp.issuer


def test_cached_jwks_skips_keys_it_would_never_verify_with() -> None:
    with FakeOidcIssuer("b2c") as idp:
        good = idp._jwks()["keys"][0]
        document = {
            "keys": [
                {**good, "kid": "enc", "use": "enc"},
                {**good, "kid": "hs", "alg": "HS256"},
                {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
                good,
            ]
        }
        jwks = CachedJwks(lambda: document)
        assert jwks.key("enc") is None and jwks.key("hs") is None and jwks.key("oct") is None
        assert jwks.key(good["kid"]) is not None


# --- claims parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "roles"),
    [
        (["Admin", "Editor"], ("Admin", "Editor")),
        ("Admin,Editor", ("Admin", "Editor")),
        ("Admin, Editor Admin", ("Admin", "Editor")),
        ("", ()),
        (None, ()),
        (42, ()),
        (["Admin", 3, " "], ("Admin",)),
    ],
)
def test_roles_claim_forms(value: object, roles: tuple[str, ...]) -> None:
    assert _roles(value) == roles


def test_b2c_string_roles_claim(b2c: FakeOidcIssuer) -> None:
    validator = make_validator(b2c, roles_claim="extension_Role")
    caller = validator.validate(b2c.sign(b2c.claims(extension_Role="Editor,Admin")))
    assert caller.roles == ("Editor", "Admin") and caller.is_admin


# --- configuration ----------------------------------------------------------------------------


def test_azure_mode_needs_metadata_urls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IDENTITY_METADATA_URLS"):
        from_settings(Settings(identity_adapter=Adapter.azure, data_dir=tmp_path))


def test_fetch_json_refuses_plain_http_off_loopback() -> None:
    # Raised before any connection is attempted.
    with pytest.raises(Unavailable, match="refusing"):
        fetch_json("http://login.example.invalid/.well-known/openid-configuration")


def test_fetch_json_does_not_follow_redirects() -> None:
    with FakeOidcIssuer("b2c") as idp:
        assert fetch_json(idp.metadata_url)["issuer"] == idp.issuer
        idp.redirect_to = idp.jwks_uri
        with pytest.raises(Unavailable):
            fetch_json(idp.metadata_url)
        assert idp.jwks_fetches == 0


# --- embedded dev provider ------------------------------------------------------------------


def dev_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, public_base_url="http://127.0.0.1:9999")


def test_dev_tokens_validate_through_the_same_code_path(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    token, expires_in = dev_provider.mint_token(
        settings, "dev-user", email="dev@example.com", roles=["Admin"], name="Dev"
    )
    assert expires_in == settings.identity_token_lifetime_seconds
    caller = from_settings(settings).validate(token)
    assert caller.customer_id == "dev-user"
    assert caller.email == "dev@example.com"
    assert caller.issuer == "http://127.0.0.1:9999/dev/idp"
    assert caller.is_admin


def test_dev_tokens_carry_a_client_id_and_keep_sub_as_the_customer(tmp_path: Path) -> None:
    token, _ = dev_provider.mint_token(dev_settings(tmp_path), "dev-user")
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == DEV_API_CLIENT_ID
    # A local setup that still sets the old IDENTITY_AUDIENCE keeps working, same customer.
    old = Settings(
        data_dir=tmp_path, public_base_url="http://127.0.0.1:9999", identity_audience=DEV_APP_ID_URI
    )
    old_token, _ = dev_provider.mint_token(old, "dev-user")
    assert from_settings(old).validate(old_token).customer_id == "dev-user"
    # The default accepts the App ID URI too, so tokens minted before the change still work.
    assert from_settings(dev_settings(tmp_path)).validate(old_token).customer_id == "dev-user"


def test_dev_token_with_other_scope_is_rejected(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    token, _ = dev_provider.mint_token(settings, "dev-user", scope="other")
    assert reason_of(from_settings(settings), token) == "token lacks the required scope 'shop.api'"


def test_dev_token_from_another_data_dir_is_rejected(tmp_path: Path) -> None:
    other, _ = dev_provider.mint_token(dev_settings(tmp_path / "a"), "dev-user")
    validator = from_settings(dev_settings(tmp_path / "b"))
    assert reason_of(validator, other) == "unknown signing key (kid)"


def test_mint_token_rejects_bad_subjects(tmp_path: Path) -> None:
    for bad in ["", "a b", "x" * 129, "ünï"]:
        with pytest.raises(ValueError, match="sub must be"):
            dev_provider.mint_token(dev_settings(tmp_path), bad)


def test_dev_key_is_private_and_kid_is_its_rfc7638_thumbprint(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    jwk = dev_provider.public_jwks(settings)["keys"][0]
    path = dev_provider.key_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jwk["kid"] == dev_provider.jwk_thumbprint(jwk["n"], jwk["e"])
    assert set(jwk) == {"kty", "use", "alg", "kid", "n", "e"}  # nothing private


def test_jwk_thumbprint_matches_rfc7638_example() -> None:
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
        "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGj"
        "QR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
        "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert dev_provider.jwk_thumbprint(n, "AQAB") == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_dev_key_survives_restart(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    kid = dev_provider.public_jwks(settings)["keys"][0]["kid"]
    dev_provider._keys.clear()  # as if the process restarted
    assert dev_provider.public_jwks(settings)["keys"][0]["kid"] == kid


def test_two_processes_starting_together_end_up_with_one_key(tmp_path: Path) -> None:
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from cloudcart.core.settings import Adapter, Settings\n"
        "from cloudcart.identity import dev_provider\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "s = Settings(data_dir=Path(sys.argv[1]))\n"
        "print(json.dumps(dev_provider.public_jwks(s)['keys'][0]['kid']))\n"
    )
    start = str(time.time() + 1.5)  # both past their imports, then race for the key
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), start],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    kids = [json.loads(p.communicate(timeout=30)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert kids[0] == kids[1]
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["idp-private.pem"]
