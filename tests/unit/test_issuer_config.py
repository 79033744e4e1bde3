"""Trusted issuers from settings: IDENTITY_ISSUERS, the older URL/audience pair, and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloudcart.core.settings import Adapter, Settings
from cloudcart.identity.issuer_config import (
    DEV_API_CLIENT_ID,
    IdentityConfigError,
    api_scope,
    embedded_issuer,
    trusted_issuers,
)

CLIENT_ID = "3f6c1a52-0c5e-4d8a-9a7e-5b2f0d4c1e11"
B2C_URL = (
    "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0/"
    ".well-known/openid-configuration"
)
EXTERNAL_URL = (
    "https://contosoid.ciamlogin.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/"
    ".well-known/openid-configuration"
)


def azure(**values: Any) -> Settings:
    return Settings(identity_adapter=Adapter.azure, **values)


def issuers_json(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


def test_per_issuer_entries_keep_their_own_audiences_and_flows() -> None:
    other_client = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    b2c, external = trusted_issuers(
        azure(
            identity_issuers=issuers_json(
                {
                    "metadataUrl": B2C_URL,
                    "audiences": [CLIENT_ID],
                    "scopePrefix": "https://contoso.onmicrosoft.com/cloudcart",
                    "policies": ["B2C_1_signupsignin", "B2C_1A_custom"],
                },
                {"metadataUrl": EXTERNAL_URL, "audiences": [other_client]},
            )
        )
    )
    assert b2c.audiences == (CLIENT_ID,) and b2c.customer_id_claim == "sub"
    assert b2c.policy_metadata_urls() == (
        ("B2C_1_signupsignin", B2C_URL),
        ("B2C_1A_custom", B2C_URL.replace("B2C_1_signupsignin", "B2C_1A_custom")),
    )
    assert b2c.scope_prefix == "https://contoso.onmicrosoft.com/cloudcart"
    assert external.audiences == (other_client,) and external.customer_id_claim == "oid"
    assert external.policy_metadata_urls() == ((None, EXTERNAL_URL),)
    # No App ID URI configured: Entra's default one, `api://{client id}`.
    assert external.scope_prefix == f"api://{other_client}"


def test_older_settings_share_the_audiences_and_read_the_flow_from_the_url() -> None:
    b2c, external = trusted_issuers(
        azure(
            identity_metadata_urls=f"{B2C_URL},{EXTERNAL_URL}",
            identity_audience=f"{CLIENT_ID}, api://cloudcart",
        )
    )
    assert b2c.audiences == external.audiences == (CLIENT_ID, "api://cloudcart")
    assert b2c.policies == ("B2C_1_signupsignin",) and external.policies == ()
    assert b2c.scope_prefix == "api://cloudcart"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://login.contoso.com/contoso.onmicrosoft.com/v2.0/"
            ".well-known/openid-configuration?p=B2C_1_susi",
            "https://login.contoso.com/contoso.onmicrosoft.com/v2.0/"
            ".well-known/openid-configuration?p=B2C_1_edit",
        ),
        (
            "https://login.contoso.com/{policy}/v2.0/.well-known/openid-configuration",
            "https://login.contoso.com/B2C_1_edit/v2.0/.well-known/openid-configuration",
        ),
    ],
)
def test_policy_urls_from_query_parameter_or_placeholder(url: str, expected: str) -> None:
    (issuer,) = trusted_issuers(
        azure(
            identity_issuers=issuers_json(
                {"metadataUrl": url, "audiences": [CLIENT_ID], "policies": ["B2C_1_edit"]}
            )
        )
    )
    assert issuer.policy_metadata_urls() == (("B2C_1_edit", expected),)
    assert issuer.customer_id_claim == "sub"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "IDENTITY_ISSUERS"),
        ({"identity_metadata_urls": EXTERNAL_URL}, "IDENTITY_AUDIENCE must list"),
        (
            {
                "identity_metadata_urls": EXTERNAL_URL,
                "identity_issuers": issuers_json(
                    {"metadataUrl": EXTERNAL_URL, "audiences": [CLIENT_ID]}
                ),
            },
            "not both",
        ),
        ({"identity_issuers": "[{"}, "not valid JSON"),
        ({"identity_issuers": "[]"}, "non-empty JSON list"),
        (
            {"identity_issuers": issuers_json({"metadataUrl": EXTERNAL_URL, "audience": "x"})},
            "unknown keys ['audience']",
        ),
        (
            {"identity_issuers": issuers_json({"metadataUrl": EXTERNAL_URL, "audiences": []})},
            "IDENTITY_ISSUERS[0].audiences must list",
        ),
        (
            {
                "identity_issuers": issuers_json(
                    {
                        "metadataUrl": "http://login.example.com/.well-known/openid-configuration",
                        "audiences": [CLIENT_ID],
                    }
                )
            },
            "must be an https URL",
        ),
        (
            {
                "identity_issuers": issuers_json(
                    {
                        "metadataUrl": "https://contoso.b2clogin.com/contoso.onmicrosoft.com/"
                        "v2.0/.well-known/openid-configuration",
                        "audiences": [CLIENT_ID],
                    }
                )
            },
            "without a user flow",
        ),
        (
            {
                "identity_issuers": issuers_json(
                    {
                        "metadataUrl": EXTERNAL_URL,
                        "audiences": [CLIENT_ID],
                        "policies": ["B2C_1_x"],
                    }
                )
            },
            "names no B2C policy to replace",
        ),
    ],
)
def test_configuration_errors_say_what_to_set(values: dict[str, Any], message: str) -> None:
    with pytest.raises(IdentityConfigError) as excinfo:
        trusted_issuers(azure(**values))
    assert message in str(excinfo.value)


def test_an_audience_list_without_a_client_id_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trusted_issuers(azure(identity_metadata_urls=EXTERNAL_URL, identity_audience="api://cloudcart"))
    assert "client id (GUID)" in caplog.text


def test_api_scope_follows_the_web_sign_in_authority() -> None:
    other_client = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    issuers = issuers_json(
        {"metadataUrl": B2C_URL, "audiences": [CLIENT_ID]},
        {"metadataUrl": EXTERNAL_URL, "audiences": [other_client]},
    )
    assert api_scope(azure(identity_issuers=issuers)) == f"api://{CLIENT_ID}/shop.api"
    external = azure(
        identity_issuers=issuers,
        web_auth_authority="https://contosoid.ciamlogin.com/contosoid.onmicrosoft.com",
    )
    assert api_scope(external) == f"api://{other_client}/shop.api"


def test_embedded_provider_mints_a_client_id_and_keeps_its_scope() -> None:
    dev = embedded_issuer(Settings())
    assert dev.audiences[0] == DEV_API_CLIENT_ID and dev.customer_id_claim == "sub"
    assert api_scope(Settings()) == "api://cloudcart/shop.api"
