"""infra/bicep stays in step with the code: settings, containers, topology, triggers, roles.

Every comparison reads the code at test time (Settings, the container registry, the
messaging topology, the function app's bindings), so a new setting, container, topic or
trigger fails here until the Bicep has it too.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.messages import topology as topology_module
from cloudcart.core.messages.topology import Queue, SubjectIn, Subscription, Topic, Topology
from cloudcart.core.settings import Settings
from tests.infra import drift
from tests.infra.bicep_model import BICEP_ROOT, Expr, load_project

REPO = Path(__file__).resolve().parents[2]
IDENTITY_MODULE = "modules/identity.bicep"

# Settings the function app may leave unset, with why. Only fields with a default qualify.
OPTIONAL: dict[str, str] = {
    "CLOUDCART_DATA_DIR": "embedded adapters only; every port is `azure` in the cloud",
    "CLOUDCART_BLOB_SIGNING_KEY": "embedded blob adapter only; Azure signs user-delegation SAS",
    "COSMOS_KEY": "Cosmos emulator only; the app uses its identity (never set in Azure)",
    "BLOB_CONNECTION_STRING": "Azurite only; the app uses its identity (never set in Azure)",
    "SERVICEBUS_CONNECTION_STRING": "Service Bus emulator only (never set in Azure)",
    "IDENTITY_CLOCK_SKEW_SECONDS": "default 60 s suits Entra/B2C tokens",
    "IDENTITY_TOKEN_LIFETIME_SECONDS": "embedded dev identity provider only",
    "DEV_IDP_HTTPS_PORT": "embedded dev identity provider only",
    "CLOUDCART_ALLOW_DEV_PROVIDERS": "local `func start` only; Azure must keep the guard on",
    "WEB_AUTH_OIDC_AUTHORITY": "only for a custom sign-in domain (instead of WEB_AUTH_AUTHORITY)",
    "WEB_AUTH_PROFILE_EDIT_POLICY": "B2C only; empty hides the profile-edit flow",
    "WEB_AUTH_PASSWORD_RESET_POLICY": "B2C only; empty hides the password-reset flow",
    "WEB_SESSION_TTL_SECONDS": "default 8 h suits a shop session",
    "CLOUDCART_WEB_API_URL": "empty: the pages call the API in the same app, as deployed",
    "TEST_GATEWAY_WEBHOOK_SECRET": "embedded test gateway only (Azure: stripe or disabled)",
    "TEST_GATEWAY_DUPLICATE_WEBHOOKS": "embedded test gateway only (Azure: stripe or disabled)",
    "TEST_GATEWAY_WEBHOOK_MAX_DELAY_MS": "embedded test gateway only (Azure: stripe or disabled)",
    "STRIPE_API_BASE": "tests only: points the Stripe library at a loopback fake",
    "PARTNER_TIMEOUT_SECONDS": "default 10 s suits partner APIs",
    "PARTNER_MAX_ATTEMPTS": "default 4 attempts per delivery; Service Bus redelivers after",
    "PARTNER_MAX_RETRY_WAIT_SECONDS": "default 10 s cap on one wait, Retry-After included",
    "SENDGRID_API_BASE": "tests only: points the SendGrid client at a loopback fake",
    "TWILIO_API_BASE": "tests only: points the Twilio client at a loopback fake",
    "NOTIFICATIONS_EMAIL_PER_SECOND": "default 50 mail-send requests/s (up to 1,000 recipients "
    "each) per instance suits SendGrid",
    "NOTIFICATIONS_WEBHOOK_TOLERANCE_SECONDS": "default 300 s replay window suits SendGrid's "
    "signed event webhook",
    "RISK_MODE": "default `enforce`: fraud rules hold and decline (docs/risk.md)",
    "RISK_REVIEW_SCORE": "default score 50 (docs/risk.md)",
    "RISK_BLOCK_SCORE": "default score 90 (docs/risk.md)",
    "RISK_WEIGHTS": "default weights in docs/risk.md",
    "RISK_LIMITS": "default limits in docs/risk.md",
    "RISK_HIGH_VALUE_FIRST_ORDER": "default thresholds in docs/risk.md",
    "ANALYTICS_TIME_ZONE": "default `UTC`; display only, buckets are UTC (docs/analytics.md)",
    "ANALYTICS_LOW_STOCK": "default 5 units (docs/analytics.md)",
    "CLIENT_IP_HEADER": "default `X-Client-IP`, set by the Functions (App Service) front end",
    "CLOUDCART_STOREFRONT_CACHE_SECONDS": "default 30 s: the list page's own max-age",
}

# Emulator credentials: setting them in Azure would bypass managed identity.
NEVER_SET = {"COSMOS_KEY", "BLOB_CONNECTION_STRING", "SERVICEBUS_CONNECTION_STRING"}

# App settings the Functions host, the Azure SDKs or the platform read (not Settings).
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_ENABLE_OPENTELEMETRY",
    "CosmosDB__credential",
    "CosmosDB__clientId",
    "ServiceBus__credential",
    "ServiceBus__clientId",
    "Storage__credential",
    "Storage__clientId",
}

# Provisioned before the code that reads them has landed; drop an entry once Settings has it.
PROVISIONED_AHEAD: dict[str, str] = {}

# Settings whose value is a credential: Key Vault references only.
KEY_VAULT_SECRETS = {
    "WEB_AUTH_CLIENT_SECRET",
    "SENDGRID_API_KEY",
    "TWILIO_AUTH_TOKEN",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
}

# Role definition GUID -> what the code needs it for.
REQUIRED_ROLES = {
    "00000000-0000-0000-0000-000000000002": "Cosmos DB Built-in Data Contributor (documents)",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender (publish)",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver (triggers)",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner (scale controller "
    "and /api/admin/integrations read message counts)",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner (Functions host)",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor (media)",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator (user-delegation SAS)",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor (Functions host)",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor (Functions host)",
    "8ebe5a00-799e-43f5-93ac-243d3dce84a7": "Search Index Data Contributor (index, query)",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User (Key Vault references)",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher (Entra telemetry)",
}


@pytest.fixture(scope="module")
def project():
    return load_project()


@pytest.fixture(scope="module")
def settings(project):
    return drift.app_settings(project)


def _bindings():
    # Imported here so a broken function_app fails these tests, not the whole module.
    import function_app

    return [
        (fn.get_function_name(), binding.get_dict_repr())
        for fn in function_app.app.get_functions()
        for binding in fn.get_bindings()
    ]


def _text_of(rel: str) -> str:
    return (BICEP_ROOT / rel).read_text("utf-8")


def _without_line(text: str, pattern: str) -> str:
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not re.search(pattern, line)]
    assert len(kept) == len(lines) - 1, f"expected exactly one line matching {pattern!r}"
    return "".join(kept)


# --- syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel", sorted(p.relative_to(BICEP_ROOT).as_posix() for p in BICEP_ROOT.rglob("*.bicep"))
)
def test_every_bicep_file_parses(project, rel):
    assert project.files[rel].syntax_errors == []


def test_parse_check_catches_broken_syntax():
    broken = load_project(overrides={"modules/identity.bicep": "param name string\nvar x = {\n"})
    assert broken.files["modules/identity.bicep"].syntax_errors


def test_every_module_file_is_called_from_main(project):
    called = {m.path for m in project.main.modules}
    modules = {rel for rel in project.files if rel.startswith("modules/")}
    assert modules - called == set(), "module files main.bicep never calls"
    assert called - modules == set(), "main.bicep calls module files that do not exist"


# --- app settings ---------------------------------------------------------------------


def test_every_setting_the_code_reads_is_set_or_optional(settings):
    problems = drift.missing_settings(settings, Settings.env_names().values(), OPTIONAL)
    assert problems == []


def test_optional_settings_are_real_settings_with_defaults():
    fields = {env: name for name, env in Settings.env_names().items()}
    unknown = sorted(set(OPTIONAL) - set(fields))
    assert unknown == [], "OPTIONAL lists settings the code no longer reads"
    required = sorted(e for e in OPTIONAL if Settings.model_fields[fields[e]].is_required())
    assert required == [], "a setting without a default cannot be optional"


def test_emulator_credentials_are_never_set(settings):
    assert sorted(NEVER_SET & set(settings)) == []


def test_dev_providers_are_never_allowed_in_azure(settings):
    # The app refuses embedded identity and test payments under the Functions host unless
    # this is set; setting it in Azure would switch that guard off.
    assert "CLOUDCART_ALLOW_DEV_PROVIDERS" not in settings


def test_every_app_setting_is_read_by_someone(settings):
    read = set(Settings.env_names().values()) | HOST_SETTINGS | set(PROVISIONED_AHEAD)
    assert sorted(set(settings) - read) == [], "app settings nobody reads"
    landed = sorted(set(PROVISIONED_AHEAD) & set(Settings.env_names().values()))
    assert landed == [], "these are read by Settings now: remove them from PROVISIONED_AHEAD"


def test_every_port_uses_its_azure_adapter(settings):
    adapters = [
        e for e in Settings.env_names().values() if re.fullmatch(r"CLOUDCART_\w+_ADAPTER", e)
    ]
    assert adapters, "Settings has no adapter switches any more?"
    wrong = {name: settings.get(name) for name in adapters if settings.get(name) != "azure"}
    assert wrong == {}


def test_connections_are_identity_based(settings):
    for prefix in ("AzureWebJobsStorage", "CosmosDB", "ServiceBus", "Storage"):
        assert settings.get(f"{prefix}__credential") == "managedidentity", prefix
        assert f"{prefix}__clientId" in settings, prefix
    assert "AzureWebJobsStorage" not in settings, "a connection string for the host storage"
    for name in ("blobServiceUri", "queueServiceUri", "tableServiceUri"):
        assert f"AzureWebJobsStorage__{name}" in settings
    auth = drift.setting_text(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
    assert auth == "Authorization=AAD;ClientId=${identityClientId}"


def test_no_credentials_in_app_settings(project):
    secrets = KEY_VAULT_SECRETS | {
        env
        for name, env in Settings.env_names().items()
        if "SecretStr" in str(Settings.model_fields[name].annotation)
        and env not in NEVER_SET
        # The App Insights connection string is typed secret but holds no credential.
        and env != "APPLICATIONINSIGHTS_CONNECTION_STRING"
    }
    assert drift.secret_leaks(project, secrets) == []
    missing = sorted(KEY_VAULT_SECRETS - set(drift.app_settings(project)))
    assert missing == [], "third-party secrets without a Key Vault reference"


def test_secure_params_have_no_literal_default(project):
    leaks = [
        f"{f.path}: param {p.name}"
        for f in project.files.values()
        for p in f.params.values()
        if "secure()" in p.decorators and p.has_default and p.default != ""
    ]
    assert leaks == []


def test_secret_check_bites_on_an_account_key(project):
    text = _text_of("modules/functionapp.bicep").replace(
        "COSMOS_DATABASE: cosmosDatabaseName",
        "COSMOS_DATABASE: cosmosDatabaseName\n"
        "    EXTRA: 'DefaultEndpointsProtocol=https;AccountKey=abc'",
    )
    text = text.replace(
        "STRIPE_SECRET_KEY: keyVaultReferences.STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY: 'sk_live_x'"
    )
    edited = load_project(overrides={"modules/functionapp.bicep": text})
    problems = drift.secret_leaks(edited, KEY_VAULT_SECRETS)
    assert any(p.startswith("EXTRA:") and "AccountKey=" in p for p in problems), problems
    assert any(p.startswith("STRIPE_SECRET_KEY:") for p in problems), problems


def test_settings_check_bites_when_an_app_setting_is_removed():
    text = _without_line(_text_of("modules/functionapp.bicep"), r"^\s*COSMOS_DATABASE:")
    edited = load_project(overrides={"modules/functionapp.bicep": text})
    problems = drift.missing_settings(
        drift.app_settings(edited), Settings.env_names().values(), OPTIONAL
    )
    assert len(problems) == 1 and problems[0].startswith("COSMOS_DATABASE:"), problems


# --- Cosmos DB ------------------------------------------------------------------------


def test_cosmos_containers_match_the_registry(project):
    assert drift.container_drift(project, CONTAINERS) == []


def test_container_check_bites_when_a_container_is_removed_or_changed():
    text = _without_line(_text_of("modules/cosmos.bicep"), r"name: 'carts'")
    text = text.replace("partitionKeyPath: '/sku'", "partitionKeyPath: '/id'")
    text = text.replace(
        "{ name: 'leases'",
        "{ name: 'unused', partitionKeyPath: '/id', defaultTtl: null, "
        "uniqueKeys: [] }\n  { name: 'leases'",
    )
    problems = drift.container_drift(
        load_project(overrides={"modules/cosmos.bicep": text}), CONTAINERS
    )
    assert any(p.startswith("container 'carts' is in the registry but not") for p in problems)
    assert any(p.startswith("container 'inventory' differs") for p in problems)
    assert any(p.startswith("container 'unused' is in Bicep but not") for p in problems)
    assert len(problems) == 3, problems


def test_cosmos_account_is_keyless_and_serverless_by_default(project):
    (account,) = project.resources("Microsoft.DocumentDB/databaseAccounts")
    assert account.properties["disableLocalAuth"] is True
    assert "EnableServerless" in drift.setting_text(account.properties["capabilities"])
    assert project.main.params["cosmosThroughputMode"].default == "serverless"


# --- Service Bus ----------------------------------------------------------------------


def test_service_bus_matches_the_topology(project):
    assert drift.topology_drift(project, topology_module.TOPOLOGY) == []


def test_topology_check_bites_on_a_missing_subscription_and_an_extra_topic(project):
    declared = topology_module.TOPOLOGY
    sub = Subscription("loyalty", SubjectIn(("order.placed",)), max_delivery_count=5)
    first = declared.topics[0]
    grown = Topology(
        topics=(
            Topic(
                first.name,
                (*first.subscriptions, sub),
                first.duplicate_detection_window,
                first.default_message_ttl,
            ),
            *declared.topics[1:],
        ),
        queues=declared.queues,
    )
    problems = drift.topology_drift(project, grown)
    assert any(
        f"subscription ('{first.name}', 'loyalty') is in the topology" in p and "sys.Label IN" in p
        for p in problems
    ), problems

    shrunk = Topology(topics=declared.topics[1:], queues=declared.queues)
    problems = drift.topology_drift(project, shrunk)
    assert any(f"topic '{first.name}' is in Bicep but not in the topology" in p for p in problems)


def test_topology_check_reads_subscriptions_rules_and_queues_from_bicep(project):
    # Add the entries the failure message suggests and the comparison must come out clean.
    first = topology_module.TOPOLOGY.topics[0]
    sub = Subscription("loyalty", SubjectIn(("order.placed", "order.paid")), 5)
    topology = Topology(
        topics=(
            Topic(
                first.name,
                (*first.subscriptions, sub),
                first.duplicate_detection_window,
                first.default_message_ttl,
            ),
            *topology_module.TOPOLOGY.topics[1:],
        ),
        queues=(*topology_module.TOPOLOGY.queues,),
    )
    queue = Queue("partner-inbound", max_delivery_count=3, lock_duration=timedelta(minutes=2))
    topology = Topology(topics=topology.topics, queues=(*topology.queues, queue))
    hints = [p.split("add to `", 1)[1] for p in drift.topology_drift(project, topology)]
    assert len(hints) == 2, hints
    text = _text_of("modules/servicebus.bicep")
    for hint in hints:
        kind, entry = hint.split("`: ", 1)
        text = text.replace(f"var {kind} = [", f"var {kind} = [\n  {entry}", 1)
        text = text.replace(f"var {kind} = []", f"var {kind} = [\n  {entry}\n]", 1)
    edited = load_project(overrides={"modules/servicebus.bicep": text})
    assert edited.files["modules/servicebus.bicep"].syntax_errors == []
    assert drift.topology_drift(edited, topology) == []


def test_service_bus_is_keyless_with_explicit_duplicate_windows(project):
    (namespace,) = project.resources("Microsoft.ServiceBus/namespaces")
    assert namespace.properties["disableLocalAuth"] is True
    assert namespace.body["sku"]["name"] == "Standard"
    for topic in project.resources(drift.SB_TOPIC):
        if topic.properties["requiresDuplicateDetection"]:
            assert isinstance(topic.properties["duplicateDetectionHistoryTimeWindow"], str)


# --- function triggers ----------------------------------------------------------------


def test_every_trigger_binding_exists_in_bicep(project):
    bindings = _bindings()
    assert bindings, "function_app registered no functions"
    assert drift.trigger_drift(project, bindings) == []


def test_trigger_check_bites_on_unknown_entities(project):
    bindings = [
        (
            "on_order",
            {
                "type": "serviceBusTrigger",
                "connection": "ServiceBus",
                "topicName": "events",
                "subscriptionName": "nope",
            },
        ),
        (
            "on_partner",
            {
                "type": "serviceBusTrigger",
                "connection": "ServiceBus",
                "queueName": "%PARTNER_QUEUE%",
            },
        ),
        (
            "relay",
            {
                "type": "cosmosDBTrigger",
                "connection": "CosmosDB",
                "containerName": "orders",
                "leaseContainerName": "missing-leases",
            },
        ),
        ("nightly", {"type": "timerTrigger", "schedule": "%NIGHTLY_SCHEDULE%"}),
    ]
    problems = drift.trigger_drift(project, bindings)
    assert any("subscription events/nope" in p for p in problems), problems
    assert any("PARTNER_QUEUE" in p for p in problems), problems
    assert any("'missing-leases'" in p for p in problems), problems
    assert any("NIGHTLY_SCHEDULE" in p for p in problems), problems
    assert len(problems) == 4, problems


# --- roles ----------------------------------------------------------------------------


def test_app_identity_has_every_data_role_it_needs(project):
    assigned = drift.app_identity_roles(project, IDENTITY_MODULE)
    missing = {g: why for g, why in REQUIRED_ROLES.items() if g not in assigned}
    assert missing == {}


def test_role_check_bites_when_an_assignment_is_removed():
    text = _text_of("modules/roles.bicep").replace(
        "principalId: appPrincipalId\n    principalType: 'ServicePrincipal'\n  }\n}\n\n"
        "resource appServiceBusReceiver",
        "principalId: 'someone-else'\n    principalType: 'ServicePrincipal'\n  }\n}\n\n"
        "resource appServiceBusReceiver",
    )
    edited = load_project(overrides={"modules/roles.bicep": text})
    assigned = drift.app_identity_roles(edited, IDENTITY_MODULE)
    missing = sorted(g for g in REQUIRED_ROLES if g not in assigned)
    assert missing == ["69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"]


# --- hosting, storage, monitoring ------------------------------------------------------


def test_function_app_runs_on_flex_consumption_as_the_user_assigned_identity(project):
    (plan,) = project.resources("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.properties["reserved"] is True
    (site,) = project.resources("Microsoft.Web/sites")
    config = site.properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    scale = config["scaleAndConcurrency"]
    assert [a["name"] for a in scale["alwaysReady"]] == ["http"]
    assert project.resolve(site.file, scale["alwaysReady"][0]["instanceCount"]) == Expr(
        "httpAlwaysReadyInstances"
    )
    assert site.body["identity"]["type"] == "UserAssigned"
    tags = drift.setting_text(site.body["tags"])
    assert "'azd-service-name': 'api'" in tags


def test_storage_is_keyless_with_media_and_deployment_containers(project):
    (account,) = project.resources("Microsoft.Storage/storageAccounts")
    assert account.properties["allowSharedKeyAccess"] is False
    assert account.properties["allowBlobPublicAccess"] is False
    assert account.properties["minimumTlsVersion"] == "TLS1_2"
    storage = project.files["modules/storage.bicep"]
    assert storage.params["mediaContainerName"].default == "media"
    assert storage.params["deploymentContainerName"].default


def test_monitoring_uses_entra_ingestion_and_alerts_on_failures(project):
    (insights,) = project.resources("Microsoft.Insights/components")
    assert insights.properties["DisableLocalAuth"] is True
    criteria = {
        c["metricName"]: c
        for alert in project.resources("Microsoft.Insights/metricAlerts")
        for c in alert.properties["criteria"]["allOf"]
    }
    dead = criteria["DeadletteredMessages"]
    assert (dead["operator"], dead["threshold"]) == ("GreaterThan", 0)
    assert dead["dimensions"][0]["name"] == "EntityName"
    assert "Http5xx" in criteria
    assert criteria["TotalRequests"]["dimensions"][0]["values"] == ["429"]


def test_azd_files_point_at_the_bicep():
    azure = yaml.safe_load((REPO / "azure.yaml").read_text("utf-8"))
    assert azure["name"] == "cloudcart"
    assert azure["infra"] == {"provider": "bicep", "path": "infra/bicep", "module": "main"}
    assert azure["services"]["api"] == {"project": ".", "host": "function", "language": "python"}
    params = json.loads((BICEP_ROOT / "main.parameters.json").read_text("utf-8"))["parameters"]
    assert params["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert params["location"]["value"] == "${AZURE_LOCATION}"
    assert params["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    main_params = load_project().main.params
    assert sorted(set(params) - set(main_params)) == [], "parameters main.bicep does not declare"


# --- deploy-readiness: concurrency, telemetry, identities, endpoints, payments ------------

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
SEARCH_SERVICE_CONTRIBUTOR = "7ca78c08-252a-4471-8644-bb5ff32d4ba0"


def _main_parameters() -> dict[str, dict[str, str]]:
    doc = json.loads((BICEP_ROOT / "main.parameters.json").read_text("utf-8"))
    parameters: dict[str, dict[str, str]] = doc["parameters"]
    return parameters


def _decorator(param, name: str) -> str:
    found = [str(d) for d in param.decorators if d.startswith(f"{name}(")]
    assert len(found) == 1, (param.name, name, param.decorators)
    return found[0]


def test_http_concurrency_per_instance_comes_from_a_parameter(project):
    (site,) = project.resources("Microsoft.Web/sites")
    scale = site.properties["functionAppConfig"]["scaleAndConcurrency"]
    value = scale["triggers"]["http"]["perInstanceConcurrency"]
    assert project.resolve(site.file, value) == Expr("httpPerInstanceConcurrency")
    param = project.main.params["httpPerInstanceConcurrency"]
    # The Python platform default is 1; the app is ASGI and serves many requests at once.
    assert param.type == "int" and param.default == 16
    assert "description(" in " ".join(param.decorators)


def test_host_and_worker_send_telemetry_once(settings):
    host = json.loads((REPO / "host.json").read_text("utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    # The worker would configure a second exporter of its own (without the app's credential).
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings


def test_app_identity_holds_no_search_control_plane_role(project):
    assigned = drift.app_identity_roles(project, IDENTITY_MODULE)
    assert SEARCH_SERVICE_CONTRIBUTOR not in assigned


def _deploying_principal_types(project) -> list[tuple[str, object]]:
    """(resource symbol, resolved principalType) of every assignment to the deploying
    principal."""
    found = []
    for res in project.resources(ROLE_ASSIGNMENT):
        principal = project.resolve(res.file, res.properties.get("principalId"))
        if principal == Expr("principalId"):
            found.append((res.symbol, project.resolve(res.file, res.properties["principalType"])))
    return found


def test_deploying_principal_type_is_a_parameter_azd_fills(project):
    found = _deploying_principal_types(project)
    assert len(found) >= 5, found
    assert {t for _, t in found} == {Expr("principalType")}, found
    param = project.main.params["principalType"]
    assert param.default == "User"
    assert "'ServicePrincipal'" in _decorator(param, "allowed")
    # azd sets AZURE_PRINCIPAL_TYPE from its login: User, or ServicePrincipal in CI.
    assert _main_parameters()["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"


def test_principal_type_check_bites_on_a_hard_coded_user(project):
    text = _text_of("modules/roles.bicep").replace(
        "principalType: userPrincipalType", "principalType: 'User'", 1
    )
    edited = load_project(overrides={"modules/roles.bicep": text})
    assert "User" in {t for _, t in _deploying_principal_types(edited)}


def test_endpoints_take_the_cloud_dns_suffix_from_azure(project, settings):
    bus = project.files["modules/servicebus.bicep"].outputs["fullyQualifiedNamespace"]
    bus_text = drift.setting_text(bus)
    assert "serviceBusEndpoint" in bus_text and "windows.net" not in bus_text
    search = drift.setting_text(project.files["modules/search.bicep"].outputs["endpoint"])
    assert "environment().name" in search
    suffixes = project.files["modules/search.bicep"].variables["searchDnsSuffixes"]
    assert suffixes == {
        "AzureCloud": "search.windows.net",
        "AzureUSGovernment": "search.azure.us",
        "AzureChinaCloud": "search.azure.cn",
    }
    # The app settings are fed from these outputs, not from literal host names.
    file = drift.app_settings_file(project)
    fed = {
        name: drift.setting_text(project.resolve(file, settings[name]))
        for name in ("ServiceBus__fullyQualifiedNamespace", "SEARCH_ENDPOINT")
    }
    assert fed == {"ServiceBus__fullyQualifiedNamespace": bus_text, "SEARCH_ENDPOINT": search}


def test_payments_stay_disabled_until_stripe_secrets_exist(project, settings):
    file = drift.app_settings_file(project)
    provider = drift.setting_text(project.resolve(file, settings["CLOUDCART_PAYMENTS_PROVIDER"]))
    assert provider == (
        "!empty(paymentsProvider) ? paymentsProvider : "
        "(!empty(stripeSecretKey) && !empty(stripeWebhookSecret) ? 'stripe' : 'disabled')"
    )
    main_param = project.main.params["paymentsProvider"]
    assert main_param.default == ""
    assert _decorator(main_param, "allowed") == "allowed(['', 'disabled', 'stripe'])"
    # The embedded test gateway can never be chosen in Azure.
    app_param = project.files["modules/functionapp.bicep"].params["paymentsProvider"]
    assert _decorator(app_param, "allowed") == "allowed(['disabled', 'stripe'])"
    assert _main_parameters()["paymentsProvider"]["value"] == "${CLOUDCART_PAYMENTS_PROVIDER=}"
    # Every value the Bicep may set is one the app accepts.
    for value in ("disabled", "stripe"):
        assert Settings(payments_provider=value).payments_provider == value


def test_cosmos_throughput_mode_says_it_is_fixed_at_the_first_deploy(project):
    description = _decorator(project.main.params["cosmosThroughputMode"], "description")
    assert "before the first deploy" in description


def test_notifications_send_through_sendgrid_and_twilio(project, settings):
    # Capture (nothing leaves the app) is refused under the Functions host.
    assert settings["NOTIFICATIONS_EMAIL_PROVIDER"] == "sendgrid"
    assert settings["NOTIFICATIONS_TEXT_PROVIDER"] == "twilio"
    # The parameters' defaults are values the app accepts.
    main = project.main.params
    loaded = Settings(
        notifications_email_provider="sendgrid",
        notifications_text_provider="twilio",
        notifications_quiet_hours=main["notificationsQuietHours"].default,
        notifications_default_time_zone=main["notificationsDefaultTimeZone"].default,
        notifications_text_per_second=main["notificationsTextPerSecond"].default,
        sendgrid_templates=main["sendgridTemplates"].default,
        twilio_whatsapp_templates=main["twilioWhatsappTemplates"].default,
    )
    assert loaded.notifications_text_per_second == 30
    assert json.loads(loaded.sendgrid_templates) == {}
    assert json.loads(loaded.twilio_whatsapp_templates) == {}
