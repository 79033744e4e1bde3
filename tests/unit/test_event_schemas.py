"""docs/events/: the committed schemas match the code and accept what the code publishes."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.service import CatalogService
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.events import Event, new_event
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.event_catalogue import EVENT_SPECS, render

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "cloudcart"
EVENTS_DOCS = ROOT / "docs" / "events"
ENVELOPE = EVENTS_DOCS / "event.schema.json"
# Rendered from the payload TypedDicts each domain declares (cloudcart/<domain>/events.py).
TYPE_SCHEMAS = {type_: EVENTS_DOCS / spec.schema_file for type_, spec in EVENT_SPECS.items()}


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _validator(path: Path) -> Any:
    envelope = _load(ENVELOPE)
    registry = jsonschema_rs.Registry([(envelope["$id"], envelope)])
    return jsonschema_rs.validator_for(_load(path), registry=registry, validate_formats=True)


def _wire(event: Event) -> Any:
    return json.loads(event.to_json_bytes())


def test_committed_envelope_schema_matches_the_model() -> None:
    assert _load(ENVELOPE) == Event.model_json_schema(by_alias=True), (
        "docs/events/event.schema.json is stale; regenerate it with "
        "`.venv/bin/python -m cloudcart.event_catalogue --write`"
    )


RENDERED = render()


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_committed_schemas_are_what_the_catalogue_renders(name: str) -> None:
    committed = (EVENTS_DOCS / name).read_text(encoding="utf-8")
    assert committed == RENDERED[name], (
        f"docs/events/{name} differs from its payload TypedDict; regenerate the schemas with "
        "`.venv/bin/python -m cloudcart.event_catalogue --write`"
    )


def test_envelope_schema_accepts_published_events_and_rejects_broken_ones() -> None:
    validator = _validator(ENVELOPE)
    event = _wire(new_event("order.placed", "ord_1", {"total": 1}, correlation_id="req_1"))
    assert validator.is_valid(event)
    assert validator.is_valid({**event, "correlationId": None})
    assert not validator.is_valid({**event, "type": "OrderPlaced"})
    assert not validator.is_valid({k: v for k, v in event.items() if k != "id"})
    assert not validator.is_valid({**event, "time": "yesterday"})


@pytest.mark.parametrize("path", [ENVELOPE, *TYPE_SCHEMAS.values()], ids=lambda p: p.name)
def test_schemas_are_valid_draft_2020_12(path: Path) -> None:
    schema = _load(path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema_rs.meta.is_valid(schema)
    assert schema["$id"].endswith("/" + path.name)


def test_dead_lettered_schema() -> None:
    validator = _validator(TYPE_SCHEMAS["ops.dead_lettered"])
    data = {
        "entity": "events",
        "subscription": "billing",
        "messageId": "evt_1",
        "subject": "order.placed",
        "reason": "MaxDeliveryCountExceeded",
        "description": "handler raised ValueError",
        "deliveryCount": 10,
    }
    good = _wire(new_event("ops.dead_lettered", "evt_1", data))
    assert validator.is_valid(good)
    assert validator.is_valid({**good, "data": {**data, "subscription": None, "reason": None}})
    assert not validator.is_valid({**good, "type": "ops.resubmitted"})
    assert not validator.is_valid({**good, "data": {**data, "deliveryCount": "10"}})
    missing = {k: v for k, v in data.items() if k != "messageId"}
    assert not validator.is_valid({**good, "data": missing})
    # The envelope's rules apply too.
    assert not validator.is_valid({k: v for k, v in good.items() if k != "time"})


def test_pinged_schema() -> None:
    validator = _validator(TYPE_SCHEMAS["diagnostics.pinged"])
    data = {"pingId": "ping_1", "failAttempts": 2, "holdMs": 0}
    good = _wire(new_event("diagnostics.pinged", "ping_1", data))
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "data": {**data, "failAttempts": -1}})
    assert not validator.is_valid({**good, "data": {"pingId": "ping_1"}})
    assert not validator.is_valid({**good, "version": 2})


def test_readme_lists_every_schema() -> None:
    readme = (EVENTS_DOCS / "README.md").read_text(encoding="utf-8")
    on_disk = {p.name for p in EVENTS_DOCS.glob("*.schema.json")}
    assert on_disk == {ENVELOPE.name, *(p.name for p in TYPE_SCHEMAS.values())}
    for name in on_disk:
        assert f"({name})" in readme, f"docs/events/README.md does not link {name}"


# --- every event type the code publishes has a schema --------------------------------------

EVENT_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
NEW_EVENT = ("cloudcart.core.events", "new_event")

# Types whose name is computed at run time (an f-string, a lookup table) cannot be read off
# the code: list every expansion here, keyed "<module>:<function>" of the call that builds
# it, with a comment pointing at that code. None today: each type is a literal, a module
# constant (PING_EVENT, PRODUCT_CREATED, ...), a conditional between those
# (`PRODUCT_ARCHIVED if archived else PRODUCT_UPDATED` in CatalogService.update_product), or
# an argument of a wrapper around new_event (CatalogService._product_event,
# cloudcart.orders.lifecycle._event), and the scan below follows all of these.
DYNAMIC_EVENT_TYPES: dict[str, set[str]] = {}

# Published without new_event(): the local trigger host builds this envelope by hand
# (cloudcart/local/triggers/dead_letters.py, `DeadLetterAlert`), so it is named here.
HAND_BUILT_EVENT_CONSTANTS = [("cloudcart.local.triggers.dead_letters", "DEAD_LETTERED_EVENT")]

_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _Module:
    name: str
    tree: ast.Module
    constants: dict[str, str] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class EmitScan:
    """Event types found (type -> "<module>:<function>" places) and calls it could not read."""

    types: dict[str, set[str]] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)


def _parse(name: str, source: str) -> _Module:
    module = _Module(name, ast.parse(source))
    for node in module.tree.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            module.constants[target.id] = value.value
    # Anywhere, not only at the top: adapters import lazily inside functions.
    for found in ast.walk(module.tree):
        if isinstance(found, ast.ImportFrom) and found.module and not found.level:
            for alias in found.names:
                module.imports[alias.asname or alias.name] = (found.module, alias.name)
    return module


def _calls(node: ast.AST, func: _Function | None = None) -> Any:
    """Every call in `node` with the function it is written in (None at module level)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _calls(child, child)
            continue
        if isinstance(child, ast.Call):
            yield func, child
        yield from _calls(child, func)


def _params(func: _Function) -> list[str]:
    names = [a.arg for a in [*func.args.posonlyargs, *func.args.args]]
    # Methods are called as `self.m(...)`, so positions count from the first real argument.
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return names + [a.arg for a in func.args.kwonlyargs]


def _target(module: _Module, call: ast.Call) -> tuple[str, str] | None:
    if isinstance(call.func, ast.Name):
        return module.imports.get(call.func.id, (module.name, call.func.id))
    if isinstance(call.func, ast.Attribute):
        if call.func.attr == NEW_EVENT[1]:
            return NEW_EVENT
        return (module.name, call.func.attr)  # `self._product_event(...)`: this module's
    return None


def _type_argument(call: ast.Call, position: int, name: str) -> ast.expr | None:
    positional = call.args[: position + 1]
    if len(positional) > position and not any(isinstance(a, ast.Starred) for a in positional):
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == name), None)


def scan_emitted_types(
    sources: dict[str, str], dynamic: dict[str, set[str]] | None = None
) -> EmitScan:
    """The event types that `sources` (module name -> code) pass to new_event, directly or
    through wrapper functions that forward a parameter as the type."""
    modules = {name: _parse(name, source) for name, source in sources.items()}
    # (module, function) -> (position, name) of its event-type parameter.
    emitters: dict[tuple[str, str], tuple[int, str]] = {NEW_EVENT: (0, "type")}
    grew = True
    while grew:  # a wrapper of a wrapper is found on a later round
        grew = False
        for module in modules.values():
            for func, call in _calls(module.tree):
                spec = emitters.get(_target(module, call) or ("", ""))
                if func is None or spec is None:
                    continue
                arg = _type_argument(call, *spec)
                key = (module.name, func.name)
                if isinstance(arg, ast.Name) and arg.id in _params(func) and key not in emitters:
                    emitters[key] = (_params(func).index(arg.id), arg.id)
                    grew = True

    def resolve(module: _Module, func: _Function | None, expr: ast.expr, depth: int = 0) -> Any:
        """The strings `expr` can be; set() for a forwarded parameter; None if unknown."""
        if depth > 10:
            return None
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.IfExp):
            both = [resolve(module, func, e, depth + 1) for e in (expr.body, expr.orelse)]
            return None if None in both else both[0] | both[1]
        if not isinstance(expr, ast.Name):
            return None
        if func is not None:
            if expr.id in _params(func) and (module.name, func.name) in emitters:
                return set()  # its callers pass the type; they are scanned too
            local = [
                node.value
                for node in ast.walk(func)
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)
            ]
            if local:
                found = [resolve(module, func, value, depth + 1) for value in local]
                return None if None in found else set().union(*found)
        if expr.id in module.constants:
            return {module.constants[expr.id]}
        source, original = module.imports.get(expr.id, ("", ""))
        if source in modules and original in modules[source].constants:
            return {modules[source].constants[original]}
        return None

    result = EmitScan()
    for module in modules.values():
        for func, call in _calls(module.tree):
            spec = emitters.get(_target(module, call) or ("", ""))
            if spec is None:
                continue
            where = f"{module.name}:{func.name if func else '<module>'}"
            arg = _type_argument(call, *spec)
            types = None if arg is None else resolve(module, func, arg)
            if types is None:
                types = (dynamic or {}).get(where)
            if types is None:
                shown = "<no type argument>" if arg is None else ast.unparse(arg)
                result.unresolved.append(f"{where} (line {call.lineno}): {shown}")
                continue
            for type_ in types:
                result.types.setdefault(type_, set()).add(where)
    return result


def _code_sources() -> dict[str, str]:
    sources = {}
    for path in sorted(CODE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        sources[name] = path.read_text(encoding="utf-8")
    return sources


def test_scan_reads_every_form_of_event_type() -> None:
    sources = {
        "pkg.a": """
from cloudcart.core.events import new_event as make
from pkg.b import FIRED
BOOM = "widget.exploded"

def literal(): return make("widget.built", "w", {})
def constant(): return make(BOOM, "w", {})
def keyword(): return make(subject="w", data={}, type=FIRED)
class Service:
    def _wrap(self, kind, doc): return make(kind, doc["id"], doc)
    def use(self, gone):
        event_type = "widget.removed" if gone else "widget.kept"
        return self._wrap(event_type, {"id": "w"})
def _outer(doc, type_): return make(type_, "w", doc)
def _middle(doc, kind): return _outer(doc, kind)
def chained(): return _middle({}, "widget.chained")
def dynamic(kind): return make(f"widget.{kind}", "w", {})
def unrelated(): return print("widget.printed")
""",
        "pkg.b": 'FIRED = "widget.fired"\n',
    }
    scan = scan_emitted_types(sources)
    assert set(scan.types) == {
        "widget.built",
        "widget.exploded",
        "widget.fired",
        "widget.removed",
        "widget.kept",
        "widget.chained",
    }
    assert scan.types["widget.chained"] == {"pkg.a:chained"}
    assert len(scan.unresolved) == 1 and scan.unresolved[0].startswith("pkg.a:dynamic ")
    listed = scan_emitted_types(sources, {"pkg.a:dynamic": {"widget.a", "widget.b"}})
    assert not listed.unresolved
    assert {"widget.a", "widget.b"} <= set(listed.types)


def test_every_published_event_type_has_a_schema_and_a_readme_row() -> None:
    sources = _code_sources()
    scan = scan_emitted_types(sources, DYNAMIC_EVENT_TYPES)
    assert not scan.unresolved, (
        "cannot tell which event types these new_event calls publish; list the expansions "
        "in DYNAMIC_EVENT_TYPES:\n" + "\n".join(scan.unresolved)
    )
    published = {t: sorted(w) for t, w in scan.types.items()}
    for module_name, constant in HAND_BUILT_EVENT_CONSTANTS:
        constants = _parse(module_name, sources[module_name]).constants
        published.setdefault(constants[constant], []).append(f"{module_name}.{constant}")
    # Each form in use (literal, constant, wrapper, conditional, method wrapper) must be
    # seen, or a broken scan would pass by finding nothing.
    assert {
        "order.placed",
        "diagnostics.pinged",
        "order.paid",
        "order.payment_failed",
        "product.archived",
        "media.uploaded",
        "ops.dead_lettered",
    } <= set(published)
    readme = (EVENTS_DOCS / "README.md").read_text(encoding="utf-8")
    problems = []
    for type_, where in sorted(published.items()):
        name = f"{type_}.schema.json"
        link = rf"\[{re.escape(name)}\]\({re.escape(name)}\)"
        row = rf"^\| `{re.escape(type_)}` \| \d+ \| `[a-z]+` \| {link} \|$"
        if not EVENT_TYPE.match(type_):
            problems.append(f"{type_} (from {where}) is not a lowercase noun.verb name")
        if not (EVENTS_DOCS / name).is_file():
            problems.append(f"{type_} (from {where}) has no docs/events/{name}")
        if type_ not in EVENT_SPECS:
            problems.append(
                f"{type_} (from {where}) has no EventSpec in cloudcart.event_catalogue "
                "(declare its payload in its domain's events module)"
            )
        if not re.search(row, readme, re.MULTILINE):
            problems.append(f"{type_} (from {where}) has no row in docs/events/README.md")
    for type_ in sorted(set(EVENT_SPECS) - set(published)):
        problems.append(f"{type_} has an EventSpec but nothing in cloudcart publishes it")
    assert not problems, "\n".join(problems)


def test_each_schema_and_readme_row_pins_its_spec() -> None:
    readme = (EVENTS_DOCS / "README.md").read_text(encoding="utf-8")
    for type_, spec in EVENT_SPECS.items():
        schema = _load(TYPE_SCHEMAS[type_])
        assert schema["properties"]["type"] == {"const": type_}
        assert schema["properties"]["version"] == {"const": spec.version}
        assert schema["description"] == spec.description
        assert f"| `{type_}` | {spec.version} |" in readme, type_
        # Consumers must tolerate added members, unless a payload deliberately forbids them.
        assert schema["properties"]["data"]["additionalProperties"] is (
            type_ != "customer.erased"
        ), type_


# --- catalog events as the service writes them ---------------------------------------------


@pytest.fixture(scope="module")
def catalog_events(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The outbox event of each type the catalog service writes, from a real store."""
    store = SqliteDocumentStore(tmp_path_factory.mktemp("catalog") / "documents.sqlite3")
    store.ensure_containers()
    try:
        service = CatalogService(store, correlation_id="req_1")
        service.create_category(CategoryIn(id="phones", name="Phones"))
        body = {
            "title": "OPPO A92",
            "brand": "OPPO",
            "categoryId": "phones",
            "attributes": {"os": "Android", "screenSize": "6.5in", "dualSim": True},
            "variants": [
                {
                    "sku": "OPPO-A92-128-BLK",
                    "attributes": {"storage": "128GB", "colour": "Black"},
                    "price": {"amount": 2499000, "currency": "INR"},
                    "compareAtPrice": {"amount": 2799000, "currency": "INR"},
                },
                {"sku": "OPPO-A92-64-BLK", "price": {"amount": 1999000, "currency": "INR"}},
            ],
            "status": "active",
        }
        product_id = service.create_product(ProductIn.model_validate(body)).document["id"]
        service.update_product(product_id, ProductIn.model_validate({**body, "title": "A92"}))
        service.archive_product(product_id)
        service.set_inventory("OPPO-A92-128-BLK", 7)
        outbox = Query(filters=[Filter("kind", "eq", "outbox")])
        documents = [
            *store.container("catalog").query(outbox, partition_key="categories").items,
            *store.container("catalog").query(outbox, partition_key=product_id).items,
            *store.container("inventory").query(outbox, partition_key="OPPO-A92-128-BLK").items,
        ]
    finally:
        store.close()
    events = {d["event"]["type"]: d["event"] for d in documents}
    assert len(events) == len(documents) == 5, [d["event"]["type"] for d in documents]
    return events


def _errors(type_: str, event: Any) -> list[str]:
    return [error.message for error in _validator(TYPE_SCHEMAS[type_]).iter_errors(event)]


def test_product_created_written_by_the_catalog_service_matches_its_schema(
    catalog_events: dict[str, dict[str, Any]],
) -> None:
    event = catalog_events["product.created"]
    assert _errors("product.created", event) == []
    data = event["data"]
    assert event["subject"] == data["id"] == data["productId"]
    # The schema pins the shape, not just "an object": these must be rejected.
    assert _errors("product.created", {**event, "data": {**data, "status": "deleted"}})
    assert _errors("product.created", {k: v for k, v in event.items() if k != "subject"})
    without_variants = {k: v for k, v in data.items() if k != "variants"}
    assert _errors("product.created", {**event, "data": without_variants})
    bad_price = {**data, "minPrice": {"amount": "24990", "currency": "INR"}}
    assert _errors("product.created", {**event, "data": bad_price})
    nested = {**data, "attributes": {"os": ["Android"]}}
    assert _errors("product.created", {**event, "data": nested})


@pytest.mark.parametrize(
    "type_", ["category.created", "product.updated", "product.archived", "inventory.changed"]
)
def test_other_catalog_events_match_their_schemas(
    catalog_events: dict[str, dict[str, Any]], type_: str
) -> None:
    assert _errors(type_, catalog_events[type_]) == []


def test_catalog_schemas_reject_what_the_code_never_writes(
    catalog_events: dict[str, dict[str, Any]],
) -> None:
    archived = catalog_events["product.archived"]
    assert _errors(
        "product.archived", {**archived, "data": {**archived["data"], "status": "active"}}
    )
    assert _errors("product.updated", {**archived, "type": "product.updated"}) == []
    stock = catalog_events["inventory.changed"]
    assert stock["subject"] == stock["data"]["sku"] and stock["data"]["available"] == 7
    assert _errors("inventory.changed", {**stock, "data": {**stock["data"], "available": -1}})
    no_owner = {k: v for k, v in stock["data"].items() if k != "productId"}
    assert _errors("inventory.changed", {**stock, "data": no_owner})
    category = catalog_events["category.created"]
    assert category["data"]["parentId"] is None
    child = {**category["data"], "id": "android", "parentId": "phones"}
    assert _errors("category.created", {**category, "data": child}) == []
    orphan = {k: v for k, v in category["data"].items() if k != "parentId"}
    assert _errors("category.created", {**category, "data": orphan})
