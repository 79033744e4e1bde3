"""The optional Front Door in front of the media container: conditional, keyless, cached."""

from __future__ import annotations

import pytest

from tests.infra import drift
from tests.infra.bicep_model import BICEP_ROOT, BicepProject, Resource, load_project

STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


@pytest.fixture(scope="module")
def project() -> BicepProject:
    return load_project()


def _only(project: BicepProject, rtype: str) -> Resource:
    found = project.resources(rtype)
    assert len(found) == 1, f"expected one {rtype}, found {len(found)}"
    return found[0]


def test_cdn_module_parses(project: BicepProject) -> None:
    assert project.files[drift.CDN_MODULE].syntax_errors == []


def test_cdn_is_an_option_wired_to_the_media_setting(project: BicepProject) -> None:
    assert drift.cdn_wiring_problems(project) == []


def test_cdn_wiring_check_bites_when_the_module_is_unconditional() -> None:
    main = (BICEP_ROOT / "main.bicep").read_text("utf-8")
    edited_main = main.replace("= if (enableMediaCdn) {", "= {", 1)
    assert edited_main != main
    edited = load_project(overrides={"main.bicep": edited_main})
    problems = drift.cdn_wiring_problems(edited)
    assert any("must be deployed `if (enableMediaCdn)`" in p for p in problems), problems


def test_cdn_wiring_check_bites_when_the_setting_ignores_the_cdn() -> None:
    main = (BICEP_ROOT / "main.bicep").read_text("utf-8")
    edited_main = main.replace(
        "mediaCdnBaseUrl: enableMediaCdn ? mediaCdn.outputs.endpointUrl : mediaCdnBaseUrl",
        "mediaCdnBaseUrl: mediaCdnBaseUrl",
        1,
    )
    assert edited_main != main
    problems = drift.cdn_wiring_problems(load_project(overrides={"main.bicep": edited_main}))
    assert len(problems) == 1 and problems[0].startswith("MEDIA_CDN_BASE_URL"), problems


def test_front_door_reads_private_media_with_its_own_identity(project: BicepProject) -> None:
    profile = _only(project, "Microsoft.Cdn/profiles")
    assert profile.body["sku"] == {"name": "Standard_AzureFrontDoor"}
    group = _only(project, "Microsoft.Cdn/profiles/originGroups")
    auth = group.properties["authentication"]
    assert auth["type"] == "UserAssignedIdentity"
    assert auth["scope"] == "https://storage.azure.com/.default"
    # The media container stays private: access is the identity's read role, nothing public.
    (media,) = [
        c
        for c in project.resources("Microsoft.Storage/storageAccounts/blobServices/containers")
        if drift.setting_text(c.name) == "mediaContainerName"
    ]
    assert media.properties["publicAccess"] == "None"
    (reader,) = [
        r
        for r in project.resources("Microsoft.Authorization/roleAssignments")
        if r.file == drift.CDN_MODULE
    ]
    assert STORAGE_BLOB_DATA_READER in drift.setting_text(reader.properties["roleDefinitionId"])
    assert drift.setting_text(reader.body["scope"]) == "mediaContainer"
    assert drift.setting_text(reader.properties["principalId"]) == (
        "frontDoorIdentity.properties.principalId"
    )


def test_route_maps_the_endpoint_root_to_the_media_container(project: BicepProject) -> None:
    route = _only(project, "Microsoft.Cdn/profiles/afdEndpoints/routes")
    assert drift.setting_text(route.properties["originPath"]) == "/${mediaContainerName}"
    assert route.properties["patternsToMatch"] == ["/*"]
    assert route.properties["supportedProtocols"] == ["Https"]
    assert route.properties["cacheConfiguration"]["queryStringCachingBehavior"] == (
        "IgnoreQueryString"
    )


def test_media_is_cached_as_immutable(project: BicepProject) -> None:
    rule = _only(project, "Microsoft.Cdn/profiles/ruleSets/rules")
    actions = {a["name"]: a["parameters"] for a in rule.properties["actions"]}
    cache = actions["RouteConfigurationOverride"]["cacheConfiguration"]
    assert cache["cacheBehavior"] == "OverrideAlways"
    assert cache["cacheDuration"] == "365.00:00:00"
    header = actions["ModifyResponseHeader"]
    assert header["headerName"] == "Cache-Control"
    assert "immutable" in header["value"]
    # Blob Storage rejects bearer tokens without a recent x-ms-version header.
    assert actions["ModifyRequestHeader"]["headerName"] == "x-ms-version"
