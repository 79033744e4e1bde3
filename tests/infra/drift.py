"""Comparisons between the code and the Bicep model; each returns the problems it found.

The tests call these on the real files, and on edited copies to prove a check bites.
Each problem names the thing that is missing or different, and where to fix it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from cloudcart.core.ports.documents import ContainerSpec
from tests.infra.bicep_model import BicepProject, Expr, Value

COSMOS_CONTAINER = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"
SB_TOPIC = "Microsoft.ServiceBus/namespaces/topics"
SB_SUBSCRIPTION = "Microsoft.ServiceBus/namespaces/topics/subscriptions"
SB_RULE = "Microsoft.ServiceBus/namespaces/topics/subscriptions/rules"
SB_QUEUE = "Microsoft.ServiceBus/namespaces/queues"
SITE_CONFIG = "Microsoft.Web/sites/config"

FORBIDDEN_IN_SETTINGS = ("AccountKey=", "SharedAccessKey", "Password=")
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


def iso(value: timedelta) -> str:
    """ISO 8601 duration as ARM writes it (`PT10M`, `P14D`)."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + ("T" + clock if clock else "")


# --- app settings ----------------------------------------------------------------------


def app_settings(project: BicepProject) -> dict[str, Value]:
    """The function app's `appsettings` config object (name -> value)."""
    configs = [r for r in project.resources(SITE_CONFIG) if r.name == "appsettings"]
    if len(configs) != 1:
        raise LookupError(
            f"expected one Microsoft.Web/sites/config 'appsettings', found {len(configs)}"
        )
    return configs[0].properties


def app_settings_file(project: BicepProject) -> str:
    """The file declaring the app settings (to resolve params across modules)."""
    return next(r.file for r in project.resources(SITE_CONFIG) if r.name == "appsettings")


def missing_settings(
    settings: Mapping[str, Value], env_names: Iterable[str], optional: Mapping[str, str]
) -> list[str]:
    """Env vars the code reads that are neither set in Bicep nor declared optional."""
    return [
        f"{name}: read by cloudcart.core.settings.Settings but not set in the function app's "
        "app settings (modules/functionapp.bicep) and not listed as OPTIONAL"
        for name in env_names
        if name not in settings and name not in optional
    ]


def setting_text(value: Value) -> str:
    """A setting's value as text, literal or expression."""
    return value.text if isinstance(value, Expr) else str(value)


def secret_leaks(project: BicepProject, secret_names: Iterable[str]) -> list[str]:
    """App settings holding a credential instead of an identity or a Key Vault reference."""
    settings = app_settings(project)
    file = app_settings_file(project)
    problems = []
    for name, value in settings.items():
        text = setting_text(project.resolve(file, value))
        for marker in FORBIDDEN_IN_SETTINGS:
            if marker.lower() in text.lower():
                problems.append(f"{name}: value contains {marker!r} (use an identity connection)")
    for name in secret_names:
        if name not in settings:
            continue
        text = setting_text(project.resolve(file, settings[name]))
        if not text.startswith(KEY_VAULT_REFERENCE):
            problems.append(f"{name}: a secret must be a Key Vault reference, got {text!r}")
    return problems


# --- Cosmos containers -----------------------------------------------------------------


def bicep_containers(project: BicepProject) -> dict[str, dict[str, Any]]:
    """Container name -> {partition_key, default_ttl, unique_keys} as deployed."""
    out: dict[str, dict[str, Any]] = {}
    for res in project.resources(COSMOS_CONTAINER):
        resource = res.properties.get("resource", {})
        paths = resource.get("partitionKey", {}).get("paths", [])
        unique = resource.get("uniqueKeyPolicy", {}).get("uniqueKeys", [])
        out[str(res.name)] = {
            "partition_key": paths[0] if len(paths) == 1 else paths,
            "default_ttl": resource.get("defaultTtl"),
            "unique_keys": tuple(p for key in unique for p in key.get("paths", [])),
            "composite_indexes": _composite_indexes(resource.get("indexingPolicy", {})),
        }
    return out


def _composite_indexes(policy: Value) -> Value:
    """`indexingPolicy.compositeIndexes` as the registry writes them; odd shapes pass through
    unchanged so the comparison reports them."""
    indexes = policy.get("compositeIndexes", []) if isinstance(policy, dict) else policy
    if not isinstance(indexes, list) or not all(
        isinstance(index, list) and all(isinstance(p, dict) for p in index) for index in indexes
    ):
        return indexes
    return tuple(
        tuple((p.get("path"), p.get("order", "ascending")) for p in index) for index in indexes
    )


def composite_indexes_entry(spec: ContainerSpec) -> str:
    """The cosmos.bicep `compositeIndexes` value of a registry spec."""
    indexes = " ".join(
        "[" + " ".join(f"{{ path: '{path}', order: '{order}' }}" for path, order in index) + "]"
        for index in spec.composite_indexes
    )
    return f"[{indexes}]"


def container_entry(spec: ContainerSpec) -> str:
    """The cosmos.bicep `containers` entry for a registry spec (pasted into failure messages)."""
    ttl = "null" if spec.default_ttl is None else str(spec.default_ttl)
    keys = " ".join(f"{{ paths: ['{p}'] }}" for p in spec.unique_keys)
    return (
        f"{{ name: '{spec.name}', partitionKeyPath: '{spec.partition_key_path}', "
        f"defaultTtl: {ttl}, uniqueKeys: [{keys}], "
        f"compositeIndexes: {composite_indexes_entry(spec)} }}"
    )


def container_drift(project: BicepProject, registry: Iterable[ContainerSpec]) -> list[str]:
    """Registry containers missing or different in Bicep, and Bicep containers nobody uses."""
    deployed = bicep_containers(project)
    problems = []
    names = set()
    for spec in registry:
        if spec.embedded_only:
            continue  # never deployed: only the embedded adapters use it
        names.add(spec.name)
        got = deployed.get(spec.name)
        want = {
            "partition_key": spec.partition_key_path,
            "default_ttl": spec.default_ttl,
            "unique_keys": tuple(spec.unique_keys),
            "composite_indexes": tuple(tuple(index) for index in spec.composite_indexes),
        }
        if got is None:
            problems.append(
                f"container {spec.name!r} is in the registry but not in modules/cosmos.bicep; "
                f"add {container_entry(spec)}"
            )
        elif got != want:
            problems.append(
                f"container {spec.name!r} differs: Bicep {got}, registry {want}; "
                f"use {container_entry(spec)}"
            )
    for extra in sorted(set(deployed) - names):
        problems.append(f"container {extra!r} is in Bicep but not in the registry (unused)")
    return problems


# --- Service Bus topology --------------------------------------------------------------


def _segments(name: Value) -> list[str]:
    return setting_text(name).split("/")


def bicep_topology(project: BicepProject) -> dict[str, dict[Any, dict[str, Any]]]:
    """Deployed entities: {'topics': {...}, 'subscriptions': {...}, 'queues': {...}}."""
    topics = {
        str(r.name): {
            "duplicate_detection": r.properties.get("requiresDuplicateDetection", False),
            "window": r.properties.get("duplicateDetectionHistoryTimeWindow")
            if r.properties.get("requiresDuplicateDetection")
            else None,
            "ttl": r.properties.get("defaultMessageTimeToLive"),
        }
        for r in project.resources(SB_TOPIC)
    }
    rules: dict[tuple[str, str], list[tuple[str, Value]]] = {}
    for r in project.resources(SB_RULE):
        topic, sub, rule = _segments(r.name)[-3:]
        sql = r.properties.get("sqlFilter", {}).get("sqlExpression")
        rules.setdefault((topic, sub), []).append((rule, sql))
    subscriptions = {}
    for r in project.resources(SB_SUBSCRIPTION):
        topic, sub = _segments(r.name)[-2:]
        subscriptions[(topic, sub)] = {
            "max_delivery_count": r.properties.get("maxDeliveryCount"),
            "lock_duration": r.properties.get("lockDuration"),
            "dead_letter_on_expiry": r.properties.get("deadLetteringOnMessageExpiration"),
            "rules": sorted(rules.get((topic, sub), [])),
        }
    queues = {
        str(r.name): {
            "max_delivery_count": r.properties.get("maxDeliveryCount"),
            "lock_duration": r.properties.get("lockDuration"),
            "duplicate_detection": r.properties.get("requiresDuplicateDetection", False),
            "window": r.properties.get("duplicateDetectionHistoryTimeWindow")
            if r.properties.get("requiresDuplicateDetection")
            else None,
            "ttl": r.properties.get("defaultMessageTimeToLive"),
        }
        for r in project.resources(SB_QUEUE)
    }
    return {"topics": topics, "subscriptions": subscriptions, "queues": queues}


def _bicep_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def expected_topology(topology: Any) -> dict[str, dict[Any, dict[str, Any]]]:
    """The same shape as `bicep_topology`, from a `cloudcart.core.messages.topology.Topology`."""
    topics = {}
    subscriptions = {}
    for topic in topology.topics:
        window = topic.duplicate_detection_window
        topics[topic.name] = {
            "duplicate_detection": window is not None,
            "window": None if window is None else iso(window),
            "ttl": iso(topic.default_message_ttl),
        }
        for sub in topic.subscriptions:
            subscriptions[(topic.name, sub.name)] = {
                "max_delivery_count": sub.max_delivery_count,
                "lock_duration": iso(sub.lock_duration),
                "dead_letter_on_expiry": True,
                "rules": [("$Default", sub.sql_filter())],
            }
    queues = {}
    for queue in topology.queues:
        window = queue.duplicate_detection_window
        queues[queue.name] = {
            "max_delivery_count": queue.max_delivery_count,
            "lock_duration": iso(queue.lock_duration),
            "duplicate_detection": window is not None,
            "window": None if window is None else iso(window),
            "ttl": iso(queue.default_message_ttl),
        }
    return {"topics": topics, "subscriptions": subscriptions, "queues": queues}


def _entry_hint(kind: str, key: Any, want: Mapping[str, Any]) -> str:
    if kind == "subscriptions":
        topic, name = key
        return (
            f"{{ topic: '{topic}', name: '{name}', "
            f"sqlFilter: {_bicep_string(want['rules'][0][1])}, "
            f"maxDeliveryCount: {want['max_delivery_count']}, "
            f"lockDuration: '{want['lock_duration']}' }}"
        )
    window = want["window"]
    fields = f"name: '{key}'"
    if kind == "queues":
        fields += (
            f", maxDeliveryCount: {want['max_delivery_count']}, "
            f"lockDuration: '{want['lock_duration']}'"
        )
    fields += (
        f", requiresDuplicateDetection: {'true' if window else 'false'}, "
        f"duplicateDetectionHistoryTimeWindow: {_bicep_string(window) if window else 'null'}, "
        f"defaultMessageTimeToLive: '{want['ttl']}'"
    )
    return "{ " + fields + " }"


def topology_drift(project: BicepProject, topology: Any) -> list[str]:
    """Topics, subscriptions and queues missing, different or extra in modules/servicebus.bicep."""
    want = expected_topology(topology)
    got = bicep_topology(project)
    problems = []
    for kind in ("topics", "subscriptions", "queues"):
        label = kind[:-1]
        for key, spec in want[kind].items():
            deployed = got[kind].get(key)
            hint = _entry_hint(kind, key, spec)
            if deployed is None:
                problems.append(
                    f"{label} {key!r} is in the topology but not in modules/servicebus.bicep; "
                    f"add to `{kind}`: {hint}"
                )
            elif deployed != spec:
                problems.append(
                    f"{label} {key!r} differs: Bicep {deployed}, topology {spec}; use {hint}"
                )
        for extra in sorted(set(got[kind]) - set(want[kind]), key=str):
            problems.append(f"{label} {extra!r} is in Bicep but not in the topology (unused)")
    return problems


# --- function triggers -----------------------------------------------------------------

_PERCENT = re.compile(r"^%([^%]+)%$")


def resolve_binding_value(value: Any, settings: Mapping[str, Value]) -> tuple[Any, str | None]:
    """`%NAME%` -> the app setting's literal value; returns (value, problem)."""
    if not isinstance(value, str):
        return value, None
    match = _PERCENT.match(value)
    if not match:
        return value, None
    name = match.group(1)
    if name not in settings:
        return None, f"binding expression {value!r} needs app setting {name!r}, not in Bicep"
    resolved = settings[name]
    if isinstance(resolved, Expr):
        return (
            None,
            f"app setting {name!r} for {value!r} must be a literal in Bicep, got {resolved}",
        )
    return resolved, None


def trigger_drift(
    project: BicepProject, bindings: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[str]:
    """Service Bus, Cosmos DB and timer bindings whose entities or settings are not in Bicep.

    `bindings` are (function name, binding dict as `get_dict_repr()` gives it).
    """
    settings = app_settings(project)
    topology = bicep_topology(project)
    containers = bicep_containers(project)
    problems = []

    def val(function: str, binding: Mapping[str, Any], key: str) -> Any:
        value, problem = resolve_binding_value(binding.get(key), settings)
        if problem:
            problems.append(f"{function}: {problem}")
        return value

    for function, binding in bindings:
        kind = str(binding.get("type", ""))
        connection = binding.get("connection")
        if kind.startswith("serviceBus"):
            if connection and f"{connection}__fullyQualifiedNamespace" not in settings:
                problems.append(
                    f"{function}: connection {connection!r} needs app setting "
                    f"{connection}__fullyQualifiedNamespace"
                )
            queue = val(function, binding, "queueName")
            topic = val(function, binding, "topicName")
            sub = val(function, binding, "subscriptionName")
            if queue and queue not in topology["queues"]:
                problems.append(f"{function}: queue {queue!r} is not in modules/servicebus.bicep")
            if topic and topic not in topology["topics"]:
                problems.append(f"{function}: topic {topic!r} is not in modules/servicebus.bicep")
            if topic and sub and (topic, sub) not in topology["subscriptions"]:
                problems.append(
                    f"{function}: subscription {topic}/{sub} is not in modules/servicebus.bicep"
                )
        elif kind.startswith("cosmosDB"):
            if connection and f"{connection}__accountEndpoint" not in settings:
                problems.append(
                    f"{function}: connection {connection!r} needs app setting "
                    f"{connection}__accountEndpoint"
                )
            for key in ("containerName", "leaseContainerName"):
                name = val(function, binding, key)
                if name and name not in containers:
                    problems.append(f"{function}: container {name!r} ({key}) is not in Bicep")
        elif kind == "timerTrigger":
            val(function, binding, "schedule")
    return problems


# --- roles -----------------------------------------------------------------------------

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def app_identity_roles(project: BicepProject, identity_module: str) -> set[str]:
    """Role definition GUIDs assigned to the principal id of `identity_module`'s identity.

    Covers Azure RBAC (`Microsoft.Authorization/roleAssignments`) and Cosmos DB data-plane
    RBAC (`sqlRoleAssignments`), with the principal traced from the module param back to
    `<identity module>.outputs.principalId` in main.bicep.
    """
    identity_symbols = {m.symbol for m in project.main.modules if m.path == identity_module}
    wanted = {
        setting_text(project.resolve("main.bicep", Expr(f"{s}.outputs.principalId")))
        for s in identity_symbols
    }
    guids: set[str] = set()
    for rtype in (
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
    ):
        for res in project.resources(rtype):
            principal = project.resolve(res.file, res.properties.get("principalId"))
            principal_text = setting_text(principal)
            if principal_text not in wanted or res.condition is not None:
                continue
            match = _GUID.findall(setting_text(res.properties.get("roleDefinitionId")))
            guids.update(g.lower() for g in match[-1:])
    return guids


# --- media CDN ---------------------------------------------------------------------------

CDN_MODULE = "modules/cdn.bicep"


def cdn_wiring_problems(project: BicepProject) -> list[str]:
    """How the optional media CDN is not wired as designed: deployed only when
    `enableMediaCdn` (default false), its endpoint feeding MEDIA_CDN_BASE_URL when on and the
    `mediaCdnBaseUrl` param when off."""
    problems = []
    enable = project.main.params.get("enableMediaCdn")
    if enable is None or enable.type != "bool" or enable.default is not False:
        problems.append("main.bicep needs `param enableMediaCdn bool = false`")
    calls = [m for m in project.main.modules if m.path == CDN_MODULE]
    if len(calls) != 1:
        return [*problems, f"main.bicep calls {CDN_MODULE} {len(calls)} times, expected once"]
    call = calls[0]
    if call.condition is None or call.condition.strip("() ") != "enableMediaCdn":
        problems.append(
            f"{CDN_MODULE} must be deployed `if (enableMediaCdn)`, got {call.condition}"
        )
    endpoint = f"{call.symbol}.outputs.endpointUrl"
    if "endpointUrl" not in project.files[CDN_MODULE].outputs:
        problems.append(f"{CDN_MODULE} has no `endpointUrl` output")
    setting = app_settings(project).get("MEDIA_CDN_BASE_URL")
    resolved = setting_text(project.resolve(app_settings_file(project), setting))
    wanted = f"enableMediaCdn ? {endpoint} : mediaCdnBaseUrl"
    if resolved != wanted:
        problems.append(f"MEDIA_CDN_BASE_URL app setting is {resolved!r}, expected {wanted!r}")
    return problems


# --- multi-field sorts -------------------------------------------------------------------


def _order_call(node: ast.AST) -> tuple[str, str] | None:
    """`Order("a.b", descending=True)` -> ("/a/b", "descending"); None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name != "Order" or not node.args or not isinstance(node.args[0], ast.Constant):
        return None
    descending: Any = node.args[1] if len(node.args) > 1 else None
    for keyword in node.keywords:
        if keyword.arg == "descending":
            descending = keyword.value
    desc = isinstance(descending, ast.Constant) and descending.value is True
    path = "/" + str(node.args[0].value).replace(".", "/")
    return path, "descending" if desc else "ascending"


def multi_field_sorts(root: Path) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every tuple or list literal of two or more `Order(...)` calls under `root`, with where.

    Sorts built at run time are not seen; keep multi-field sorts literal so this finds them.
    """
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Tuple | ast.List):
                continue
            orders = [_order_call(element) for element in node.elts]
            if len(orders) >= 2 and all(o is not None for o in orders):
                where = f"{path.relative_to(root.parent).as_posix()}:{node.lineno}"
                found.append((where, tuple(o for o in orders if o is not None)))
    return found


def _reversed(index: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    flip = {"ascending": "descending", "descending": "ascending"}
    return tuple((path, flip[order]) for path, order in index)


def unindexed_sorts(
    sorts: Iterable[tuple[str, tuple[tuple[str, str], ...]]], registry: Iterable[ContainerSpec]
) -> list[str]:
    """Multi-field sorts no container has a composite index for (Cosmos rejects them)."""
    indexes = {tuple(index) for spec in registry for index in spec.composite_indexes}
    return [
        f"{where}: ORDER BY {orders} needs a composite index in the container's registry entry "
        f"(cloudcart/core/documents/registry.py, composite_indexes=({orders!r},))"
        for where, orders in sorts
        if orders not in indexes and _reversed(orders) not in indexes
    ]
