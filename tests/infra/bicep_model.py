"""A small model of the Bicep files, read with tree-sitter, for the drift checks.

The Bicep CLI cannot run here, so this module parses `infra/bicep` itself and evaluates
what is literal: strings, numbers, booleans, null, arrays, objects, variables, and
resource loops (`[for x in list: {...}]` is expanded once per item). Anything that needs
Azure to evaluate (`account.properties.documentEndpoint`, a param) stays an `Expr` holding
its source text, with the literal parts already substituted (so a role GUID kept in a
variable shows up in the text of `subscriptionResourceId(..., role)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

BICEP_ROOT = Path(__file__).resolve().parents[2] / "infra" / "bicep"


@dataclass(frozen=True)
class Expr:
    """A Bicep expression that is not a literal; `text` is its source, literals substituted."""

    text: str

    def __str__(self) -> str:
        return self.text


Value = Any
"""None, bool, int, str, list, dict (str keys) or Expr."""


@dataclass(frozen=True)
class Resource:
    """One deployed instance of a resource declaration (a loop gives one per item)."""

    symbol: str
    type: str
    api_version: str
    body: dict[str, Value]
    condition: str | None
    file: str
    existing: bool = False

    @property
    def name(self) -> Value:
        """The `name` property (str when literal, else Expr)."""
        return self.body.get("name")

    @property
    def properties(self) -> dict[str, Value]:
        """The `properties` object ({} when absent or not literal)."""
        props = self.body.get("properties")
        return props if isinstance(props, dict) else {}


@dataclass(frozen=True)
class Module:
    """A `module` call: its symbol, the called file (relative to infra/bicep) and params.

    `condition` is the source text of `if (...)` for a conditional call, else None.
    """

    symbol: str
    path: str
    params: dict[str, Value]
    file: str
    condition: str | None = None


@dataclass(frozen=True)
class Param:
    """A `param` declaration."""

    name: str
    type: str
    default: Value
    has_default: bool
    decorators: tuple[str, ...]


@dataclass
class BicepFile:
    """What the checks need from one .bicep file."""

    path: str
    text: str
    syntax_errors: list[str] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Value] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    modules: list[Module] = field(default_factory=list)
    outputs: dict[str, Value] = field(default_factory=dict)


@cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def _named(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type != "comment"]


_ESCAPES = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}


def _unescape(seq: str) -> str:
    if seq in _ESCAPES:
        return _ESCAPES[seq]
    match = re.fullmatch(r"\\u\{([0-9A-Fa-f]+)\}", seq)
    if match:
        return chr(int(match.group(1), 16))
    return seq


def _bicep_literal(value: Value) -> str:
    """Source text of a literal value (for substituting into an Expr's text)."""
    if isinstance(value, Expr):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + " ".join(_bicep_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_bicep_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a Bicep value: {value!r}")


class _Evaluator:
    """Evaluates expression nodes against an environment of known names."""

    def __init__(self, env: Mapping[str, Value]) -> None:
        self.env = dict(env)

    def with_names(self, names: Mapping[str, Value]) -> _Evaluator:
        return _Evaluator({**self.env, **names})

    def value(self, node: Node) -> Value:
        kind = node.type
        if kind == "string":
            return self._string(node)
        if kind == "number":
            return int(_text(node))
        if kind == "boolean":
            return _text(node) == "true"
        if kind == "null":
            return None
        if kind == "array":
            return [self.value(c) for c in _named(node)]
        if kind == "object":
            return self._object(node)
        if kind == "identifier":
            name = _text(node)
            return self.env[name] if name in self.env else Expr(name)
        if kind == "member_expression":
            target_node, prop_node = _named(node)
            target = self.value(target_node)
            prop = _text(prop_node)
            if isinstance(target, dict) and prop in target:
                return target[prop]
            return Expr(f"{_bicep_literal(target)}.{prop}")
        if kind == "parenthesized_expression":
            inner = _named(node)
            return self.value(inner[0]) if len(inner) == 1 else Expr(self.render(node))
        return Expr(self.render(node))

    def _string(self, node: Node) -> Value:
        parts: list[str] = []
        literal = True
        for child in node.named_children:
            if child.type == "string_content":
                parts.append(_text(child))
            elif child.type == "escape_sequence":
                parts.append(_unescape(_text(child)))
            elif child.type == "interpolation":
                inner = self.value(_named(child)[0])
                if isinstance(inner, str | int | bool):
                    parts.append(str(inner).lower() if isinstance(inner, bool) else str(inner))
                else:
                    literal = False
                    parts.append("${" + _bicep_literal(inner) + "}")
        if node.named_child_count == 0:
            # `'''multi-line'''` strings and the empty string have no content children.
            raw = _text(node)
            return raw[3:-3] if raw.startswith("'''") else raw[1:-1]
        joined = "".join(parts)
        return joined if literal else Expr(joined)

    def _object(self, node: Node) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for prop in _named(node):
            if prop.type != "object_property":
                continue
            children = _named(prop)
            key_node, value_node = children[0], children[-1]
            key = self._string(key_node) if key_node.type == "string" else _text(key_node)
            out[str(key)] = self.value(value_node)
        return out

    def render(self, node: Node) -> str:
        """Source text with known names replaced by their literal values."""
        if node.type == "identifier":
            name = _text(node)
            if name in self.env:
                return _bicep_literal(self.env[name])
            return name
        if node.type in {"string", "number", "boolean", "null", "member_expression"}:
            return _bicep_literal(self.value(node))
        if node.child_count == 0:
            return _text(node)
        pieces: list[str] = []
        cursor = node.start_byte
        source = node.text or b""
        for child in node.children:
            pieces.append(
                source[cursor - node.start_byte : child.start_byte - node.start_byte].decode()
            )
            pieces.append(self.render(child))
            cursor = child.end_byte
        pieces.append(source[cursor - node.start_byte :].decode())
        return "".join(pieces)


def _syntax_errors(node: Node, path: str) -> Iterator[str]:
    if node.is_error or node.is_missing:
        row, col = node.start_point
        what = "missing " + node.type if node.is_missing else "cannot parse"
        yield f"{path}:{row + 1}:{col + 1}: {what}: {_text(node)[:60]!r}"
        return
    for child in node.children:
        yield from _syntax_errors(child, path)


def parse_bicep(text: str, path: str) -> BicepFile:
    """Parse one file's text; `path` (relative to infra/bicep) names it in messages."""
    tree = _parser().parse(text.encode("utf-8"))
    model = BicepFile(path=path, text=text)
    model.syntax_errors = list(_syntax_errors(tree.root_node, path))
    variables: dict[str, Value] = {}
    evaluator = _Evaluator(variables)
    pending_decorators: list[str] = []
    for decl in _named(tree.root_node):
        if decl.type == "decorators":
            pending_decorators = [_text(d).lstrip("@") for d in _named(decl)]
            continue
        decorators = tuple(pending_decorators)
        pending_decorators = []
        children = _named(decl)
        if decl.type == "variable_declaration":
            # Variables see earlier variables only, like a reader does top to bottom.
            evaluator = _Evaluator(variables)
            variables[_text(children[0])] = evaluator.value(children[-1])
        elif decl.type == "parameter_declaration":
            name = _text(children[0])
            has_default = len(children) >= 3
            default = _Evaluator(variables).value(children[-1]) if has_default else None
            model.params[name] = Param(name, _text(children[1]), default, has_default, decorators)
        elif decl.type == "output_declaration":
            model.outputs[_text(children[0])] = _Evaluator(variables).value(children[-1])
        elif decl.type == "resource_declaration":
            model.resources.extend(_resources(decl, variables, path))
        elif decl.type == "module_declaration":
            module_evaluator = _Evaluator(variables)
            body_node = children[-1]
            condition = None
            if body_node.type == "if_statement":
                cond_node, body_node = _named(body_node)
                condition = module_evaluator.render(cond_node)
            body = module_evaluator.value(body_node)
            params = body.get("params", {}) if isinstance(body, dict) else {}
            model.modules.append(
                Module(
                    _text(children[0]),
                    str(_Evaluator({}).value(children[1])),
                    params,
                    path,
                    condition,
                )
            )
    model.variables = variables
    return model


def _resources(decl: Node, variables: Mapping[str, Value], path: str) -> list[Resource]:
    children = _named(decl)
    symbol = _text(children[0])
    type_text = str(_Evaluator({}).value(children[1]))
    rtype, _, api = type_text.partition("@")
    body_node = children[-1]
    evaluator = _Evaluator(variables)

    existing = any(c.type == "existing" for c in decl.children)

    def make(body: Value, condition: str | None) -> Resource:
        body = body if isinstance(body, dict) else {}
        return Resource(symbol, rtype, api, body, condition, path, existing)

    if body_node.type == "if_statement":
        cond_node, obj = _named(body_node)
        return [make(evaluator.value(obj), evaluator.render(cond_node))]
    if body_node.type == "for_statement":
        return _expand_loop(body_node, evaluator, make)
    return [make(evaluator.value(body_node), None)]


def _expand_loop(node: Node, evaluator: _Evaluator, make: Any) -> list[Resource]:
    parts = _named(node)
    params_node, iterable_node, body = parts[0], parts[1], parts[-1]
    if params_node.type == "for_loop_parameters":
        names = [_text(c) for c in _named(params_node)]
    else:
        names = [_text(params_node)]
    iterable = evaluator.value(iterable_node)
    if not isinstance(iterable, list):
        # Looping over something Azure computes: keep one unexpanded instance.
        return [make(evaluator.value(body), None)]
    out = []
    for index, item in enumerate(iterable):
        bound = {names[0]: item}
        if len(names) > 1:
            bound[names[1]] = index
        out.append(make(evaluator.with_names(bound).value(body), None))
    return out


@dataclass
class BicepProject:
    """Every .bicep file under infra/bicep, keyed by path relative to it."""

    files: dict[str, BicepFile]

    @property
    def main(self) -> BicepFile:
        """main.bicep."""
        return self.files["main.bicep"]

    def resources(self, rtype: str, *, existing: bool = False) -> list[Resource]:
        """Every deployed instance of a resource type (case-insensitive) across all files.

        `existing` references to resources deployed elsewhere are left out unless asked for.
        """
        return [
            r
            for f in self.files.values()
            for r in f.resources
            if r.type.lower() == rtype.lower() and (existing or not r.existing)
        ]

    def module_call(self, path: str) -> Module:
        """The one call of a module file from main.bicep."""
        calls = [m for m in self.main.modules if m.path == path]
        if len(calls) != 1:
            raise LookupError(f"main.bicep calls {path} {len(calls)} times, expected once")
        return calls[0]

    def resolve(self, file: str, value: Value, depth: int = 0) -> Value:
        """Follow a module param or a module output across files to the value behind it.

        Handles `param`, `param.key`, `mod.outputs.name` and `mod.outputs.name.key`; anything
        else comes back unchanged.
        """
        if not isinstance(value, Expr) or depth > 8:
            return value
        parts = value.text.split(".")
        if not all(re.fullmatch(r"[A-Za-z_]\w*", p) for p in parts):
            return value
        model = self.files[file]
        if parts[0] in model.params and file != "main.bicep":
            call = self.module_call(file)
            if parts[0] not in call.params:
                return value
            target = self.resolve("main.bicep", call.params[parts[0]], depth + 1)
            return _dig(target, parts[1:])
        modules = {m.symbol: m for m in model.modules}
        if parts[0] in modules and len(parts) >= 3 and parts[1] == "outputs":
            callee = modules[parts[0]].path
            if callee not in self.files or parts[2] not in self.files[callee].outputs:
                return value
            target = self.resolve(callee, self.files[callee].outputs[parts[2]], depth + 1)
            return _dig(target, parts[3:])
        return value


def _dig(value: Value, keys: list[str]) -> Value:
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return Expr(".".join([str(value), *keys]))
    return value


def load_project(
    root: Path = BICEP_ROOT, overrides: Mapping[str, str] | None = None
) -> BicepProject:
    """Parse every .bicep file under `root`; `overrides` replaces a file's text by path."""
    overrides = dict(overrides or {})
    files: dict[str, BicepFile] = {}
    for path in sorted(root.rglob("*.bicep")):
        rel = path.relative_to(root).as_posix()
        text = overrides.pop(rel, None)
        files[rel] = parse_bicep(path.read_text("utf-8") if text is None else text, rel)
    for rel, text in overrides.items():
        files[rel] = parse_bicep(text, rel)
    return BicepProject(files)
