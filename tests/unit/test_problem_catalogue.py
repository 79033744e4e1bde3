"""The catalogue of problem types (cloudcart/core/problems.py) matches the code and its doc.

Every problem type the code can answer with is found by reading the source of every module
under cloudcart/ (its syntax tree, so code that is never run in a test counts too): class
attributes `problem_type = "..."`, assignments `self.problem_type = ...`, `Problem(...,
type_="...")`, `Problem.of("...")`, `problem_type_uri("...")` and problem documents built
as dict literals. A slug
passed in as an argument is followed to every call that passes it. Anything else, such as an
f-string, fails: new code names its problem types with literals, so the catalogue can be
checked.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from cloudcart.api.app import create_app
from cloudcart.api.problems import PROBLEM_MEDIA_TYPE
from cloudcart.core.problems import (
    CATALOGUE,
    PROBLEM_TYPE_BASE,
    ProblemType,
    problem_type_uri,
    render_markdown,
)
from cloudcart.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cloudcart"
DOC = ROOT / "docs" / "problems.md"
CATALOGUE_MODULE = PACKAGE / "core" / "problems.py"
REGENERATE = ".venv/bin/python -m cloudcart.core.problems > docs/problems.md"
BLANK = "about:blank"


# --- reading the source ---------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """A place the code answers with a problem type, with its status and title when the
    source states them there."""

    slug: str
    status: int | None
    title: str | None
    where: str


@dataclass(frozen=True)
class _Scope:
    kind: str  # "module", "class" or "def"
    name: str
    params: tuple[str, ...] = ()
    callers_call: str | None = None  # what callers call: the class for __init__


@dataclass(frozen=True)
class _Forwarded:
    params: tuple[str, ...]
    param: str


class _Unresolvable(Exception):
    pass


@dataclass
class Scan:
    """What reading the source found."""

    uses: list[Use] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    sets_problem_type: set[str] = field(default_factory=set)
    """Classes whose instances set their own `problem_type`."""
    called: set[str] = field(default_factory=set)
    """Every name the code calls (`f(...)`, `x.f(...)`)."""
    forwarded: dict[str, _Forwarded] = field(default_factory=dict)
    calls: list[tuple[_ModuleReader, _Scope, ast.Call]] = field(default_factory=list)

    def slugs(self) -> set[str]:
        """Every slug found."""
        return {use.slug for use in self.uses}


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _assigned(stmt: ast.stmt) -> tuple[ast.expr | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return stmt.targets[0], stmt.value
    if isinstance(stmt, ast.AnnAssign):
        return stmt.target, stmt.value
    return None, None


def _string_constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for stmt in tree.body:
        target, value = _assigned(stmt)
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            found[target.id] = value.value
    return found


def _argument(call: ast.Call, forwarded: _Forwarded, name: str) -> ast.expr | None:
    if name not in forwarded.params:
        return None
    keyword = next((k.value for k in call.keywords if k.arg == name), None)
    index = forwarded.params.index(name)
    if keyword is None and len(call.args) > index:
        return call.args[index]
    return keyword


class _ModuleReader(ast.NodeVisitor):
    def __init__(self, path: str, constants: dict[str, str], scan: Scan) -> None:
        self.path = path
        self.constants = constants
        self.scan = scan
        self.scopes = [_Scope("module", "<module>")]
        self.class_literals: list[dict[str, ast.expr]] = []
        self.handled: set[int] = set()

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', '?')}"

    # -- scopes

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        literals: dict[str, ast.expr] = {}
        for stmt in node.body:
            target, value = _assigned(stmt)
            if isinstance(target, ast.Name) and value is not None:
                literals[target.id] = value
        self.class_literals.append(literals)
        self.scopes.append(_Scope("class", node.name))
        if "problem_type" in literals:
            self.sink(literals["problem_type"], node, in_class=True)
        self.generic_visit(node)
        self.scopes.pop()
        self.class_literals.pop()

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name == "problem_type":
            self.scan.unresolved.append(f"{self.where(node)}: `problem_type` is computed")
        params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
        outer = self.scopes[-1]
        if outer.kind == "class" and params and params[0] in ("self", "cls"):
            params = params[1:]
        callers_call = outer.name if outer.kind == "class" and node.name == "__init__" else None
        params += [a.arg for a in node.args.kwonlyargs]
        self.scopes.append(_Scope("def", node.name, tuple(params), callers_call or node.name))
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    # -- the forms a problem type is given in

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Attribute) and target.attr == "problem_type":
                classes = [s.name for s in self.scopes if s.kind == "class"]
                if classes:
                    self.scan.sets_problem_type.add(classes[-1])
                self.sink(node.value, node, in_class=bool(classes))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        if name is not None:
            self.scan.called.add(name)
            self.scan.calls.append((self, self.scopes[-1], node))
        if name == "Problem":
            for keyword in node.keywords:
                if keyword.arg == "type_":
                    status = node.args[0] if node.args else None
                    title = node.args[1] if len(node.args) > 1 else None
                    self.sink(keyword.value, node, status=status, title=title)
        elif (
            name == "of"
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "Problem"
        ):
            # `Problem.of(slug, ...)`: the title comes from the catalogue, and so does the
            # status unless `status=` picks another.
            slug = node.args[0] if node.args else _keyword(node, "slug")
            self.sink(slug or node, node, status=_keyword(node, "status"))
        elif name == "problem_type_uri" and id(node) not in self.handled:
            self.sink(node.args[0] if node.args else node, node)
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        if isinstance(node.exc, ast.Name):  # `raise SomeError`, instantiated by raise
            self.scan.called.add(node.exc.id)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        members = {
            key.value: value
            for key, value in zip(node.keys, node.values, strict=True)
            if isinstance(key, ast.Constant) and isinstance(key.value, str)
        }
        if {"type", "title", "status"} <= members.keys():
            type_, status, title = members["type"], members["status"], members["title"]
            if isinstance(type_, ast.Call) and _callee(type_) == "problem_type_uri":
                self.handled.add(id(type_))
                self.sink(type_.args[0], node, status=status, title=title)
            elif self.looks_like_uri(type_):
                self.sink(type_, node, uri=True, status=status, title=title)
            elif isinstance(status, ast.Constant) and isinstance(status.value, int):
                self.scan.unresolved.append(
                    f"{self.where(node)}: cannot resolve the problem document's type "
                    f"`{ast.unparse(type_)}`"
                )
            # Otherwise a document that is no problem (a product has a type, title, status).
        self.generic_visit(node)

    def looks_like_uri(self, node: ast.expr) -> bool:
        if isinstance(node, ast.JoinedStr) and node.values:
            node = node.values[0]
        if isinstance(node, ast.BinOp):
            node = node.left
        if isinstance(node, ast.Name) and node.id == "PROBLEM_TYPE_BASE":
            return True
        text = self.string(node)
        return text is not None and (text == BLANK or text.startswith(PROBLEM_TYPE_BASE))

    # -- resolution

    def string(self, node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return None

    def sink(
        self,
        value: ast.expr,
        at: ast.AST,
        *,
        uri: bool = False,
        in_class: bool = False,
        status: ast.expr | None = None,
        title: ast.expr | None = None,
        scope: _Scope | None = None,
    ) -> None:
        try:
            slugs = self.resolve(value, scope or self.scopes[-1], uri=uri)
        except _Unresolvable:
            self.scan.unresolved.append(
                f"{self.where(at)}: cannot resolve the problem type `{ast.unparse(value)}`"
            )
            return
        if in_class and self.class_literals:
            # A class's own status and title go with the type it sets.
            status = status or self.class_literals[-1].get("status")
            title = title or self.class_literals[-1].get("title")
        code = (
            status.value
            if isinstance(status, ast.Constant) and isinstance(status.value, int)
            else None
        )
        for slug in slugs:
            self.scan.uses.append(Use(slug, code, self.string(title), self.where(at)))

    def resolve(self, node: ast.expr, scope: _Scope, *, uri: bool) -> list[str]:
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body, scope, uri=uri) + self.resolve(
                node.orelse, scope, uri=uri
            )
        if isinstance(node, ast.Attribute) and node.attr == "problem_type":
            return []  # a problem_type read back: found where it is set
        if isinstance(node, ast.Name) and node.id in scope.params and scope.callers_call:
            # Passed in: what every caller passes is resolved instead.
            self.scan.forwarded.setdefault(scope.callers_call, _Forwarded(scope.params, node.id))
            return []
        if uri:
            if isinstance(node, ast.JoinedStr) and len(node.values) == 2:
                head, tail = node.values
                if self.string(head) == PROBLEM_TYPE_BASE and isinstance(tail, ast.FormattedValue):
                    return self.resolve(tail.value, scope, uri=False)
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Add)
                and isinstance(node.left, ast.Name)
                and node.left.id == "PROBLEM_TYPE_BASE"
            ):
                return self.resolve(node.right, scope, uri=False)
            text = self.string(node)
            if text == BLANK:
                return []
            if text is not None and text.startswith(PROBLEM_TYPE_BASE):
                return [text.removeprefix(PROBLEM_TYPE_BASE)]
            raise _Unresolvable
        text = self.string(node)
        if text is None:
            raise _Unresolvable
        return [] if text == BLANK else [text]


def _module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def scan_sources(sources: dict[str, str]) -> Scan:
    """Read modules (path → source) for the problem types they answer with."""
    paths = {_module_name(path): path for path in sources}
    trees = {name: ast.parse(sources[path], path) for name, path in paths.items()}
    constants = {name: _string_constants(tree) for name, tree in trees.items()}
    for name, tree in trees.items():
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module in constants:
                for alias in stmt.names:
                    imported = constants[stmt.module].get(alias.name)
                    if imported is not None:
                        constants[name].setdefault(alias.asname or alias.name, imported)
    scan = Scan()
    for name, tree in trees.items():
        _ModuleReader(paths[name], constants[name], scan).visit(tree)
    followed: set[str] = set()
    while pending := set(scan.forwarded) - followed:
        for reader, scope, call in list(scan.calls):
            callee = _callee(call)
            if callee not in pending:
                continue
            forwarded = scan.forwarded[callee]
            value = _argument(call, forwarded, forwarded.param)
            if value is None or any(isinstance(a, ast.Starred) for a in call.args):
                scan.unresolved.append(
                    f"{reader.where(call)}: cannot see the problem type passed to {callee}"
                )
                continue
            reader.sink(
                value,
                call,
                status=_argument(call, forwarded, "status"),
                title=_argument(call, forwarded, "title"),
                scope=scope,
            )
        followed |= pending
    return scan


def _package_sources() -> dict[str, str]:
    # The catalogue itself names every type without answering with any.
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != CATALOGUE_MODULE
    }


@pytest.fixture(scope="module")
def scan() -> Scan:
    return scan_sources(_package_sources())


# --- the doc --------------------------------------------------------------------------------


def test_docs_problems_md_is_rendered_from_the_catalogue() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        f"docs/problems.md is stale; regenerate it with `{REGENERATE}`"
    )


# --- the catalogue against the code ---------------------------------------------------------


def test_every_problem_type_in_the_code_is_a_literal(scan: Scan) -> None:
    assert scan.unresolved == [], (
        "name problem types with string literals (or module-level string constants) so the "
        "catalogue can be checked:\n" + "\n".join(scan.unresolved)
    )


def test_every_slug_the_code_answers_with_is_in_the_catalogue(scan: Scan) -> None:
    missing = sorted({f"{u.slug} ({u.where})" for u in scan.uses if u.slug not in CATALOGUE})
    assert missing == [], (
        "add these problem types to CATALOGUE in cloudcart/core/problems.py, then "
        f"`{REGENERATE}`: {missing}"
    )


def test_the_code_answers_each_type_with_its_catalogued_status_and_title(scan: Scan) -> None:
    wrong = []
    for use in scan.uses:
        entry = CATALOGUE.get(use.slug)
        if entry is None:
            continue
        if use.status is not None and use.status not in entry.statuses:
            wrong.append(f"{use.where}: {use.slug} with {use.status}, not {entry.statuses}")
        if use.title is not None and use.title != entry.title:
            wrong.append(f"{use.where}: {use.slug} titled {use.title!r}, not {entry.title!r}")
    assert wrong == []


def test_the_catalogue_lists_only_slugs_the_code_uses(scan: Scan) -> None:
    unused = sorted(set(CATALOGUE) - scan.slugs())
    assert unused == [], f"no code answers with these catalogued problem types: {unused}"


_DOMAIN_ERRORS = """
import importlib, json, pkgutil
import cloudcart
from cloudcart.core.errors import DomainError
for module in pkgutil.walk_packages(cloudcart.__path__, "cloudcart."):
    importlib.import_module(module.name)
found, todo = {}, [DomainError]
while todo:
    for sub in todo.pop().__subclasses__():
        todo.append(sub)
        found[f"{sub.__module__}.{sub.__qualname__}"] = {
            "name": sub.__name__, "status": sub.status, "title": sub.title,
            "problemType": sub.problem_type,
        }
print(json.dumps(found))
"""


def _domain_errors() -> dict[str, dict[str, Any]]:
    # A fresh interpreter: importing every module here would change what later tests of
    # this process see in sys.modules.
    out = subprocess.run(
        [sys.executable, "-c", _DOMAIN_ERRORS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    found: dict[str, dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v for k, v in found.items() if k.startswith("cloudcart.")}


def test_every_domain_error_answers_with_a_catalogued_type(scan: Scan) -> None:
    errors = _domain_errors()
    assert len(errors) > 40
    wrong = []
    for where, error in sorted(errors.items()):
        slug = error["problemType"]
        if slug == BLANK:
            # A base class nobody raises, or one whose instances set their own type (the
            # values they set are among the slugs checked above).
            if error["name"] in scan.called and error["name"] not in scan.sets_problem_type:
                wrong.append(f"{where} is raised but answers about:blank; give it a type")
            continue
        entry = CATALOGUE.get(slug)
        if entry is None:
            wrong.append(f"{where}: {slug} is not in the catalogue")
        elif error["status"] not in entry.statuses:
            wrong.append(f"{where}: {slug} with {error['status']}, not {entry.statuses}")
        elif error["title"] != entry.title:
            wrong.append(f"{where}: {slug} titled {error['title']!r}, not {entry.title!r}")
    assert wrong == []


# --- the catalogue itself -------------------------------------------------------------------


def test_catalogued_types_fit_the_documented_problem_responses(tmp_path: Path) -> None:
    document = create_app(Settings(data_dir=tmp_path / "data")).openapi()
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/ProblemDocument", "components": document["components"]}
    )
    declared = {
        int(status)
        for operation in _operations(document)
        for status, response in operation.get("responses", {}).items()
        if PROBLEM_MEDIA_TYPE in response.get("content", {})
    }
    assert not validator.is_valid({"title": "Conflict", "status": "409"})
    for entry in CATALOGUE.values():
        for status in entry.statuses:
            problem = {
                "type": entry.uri,
                "title": entry.title,
                "status": status,
                "detail": "what went wrong this time",
                "instance": "/api/example",
                "correlationId": "0b6a3c1e-1f4b-4a7e-9d8b-2a1f3c4d5e6f",
            }
            assert validator.is_valid(problem), entry.slug
            if not entry.dev_only:
                assert status in declared, f"no operation declares a {status} problem"


def _operations(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                yield operation


def test_catalogue_entries_are_well_formed() -> None:
    for slug, entry in CATALOGUE.items():
        assert isinstance(entry, ProblemType) and entry.slug == slug
        assert slug == slug.lower() and " " not in slug and slug != BLANK
        assert entry.uri == problem_type_uri(slug) == PROBLEM_TYPE_BASE + slug
        assert all(400 <= s <= 599 for s in entry.statuses), slug
        assert len(set(entry.statuses)) == len(entry.statuses), slug
        assert entry.title and entry.description.endswith("."), slug
        assert "|" not in entry.description + entry.title, slug  # would break the table


# --- the reader itself ----------------------------------------------------------------------


def test_the_reader_finds_every_form_and_refuses_what_it_cannot_resolve() -> None:
    source = """
SLUG = "from-a-constant"

class Refused(DomainError):
    status = 409
    title = "Conflict"
    problem_type = "class-attribute"

class PerInstance(DomainError):
    status = 404
    title = "Not Found"
    def __init__(self, which):
        self.problem_type = "first" if which else "second"

class Carried(DomainError):
    def __init__(self, status, title, type_):
        self.problem_type = type_

def raising():
    raise Carried(400, "Bad Request", "carried-positionally")
    raise Carried(400, "Bad Request", type_=SLUG)
    raise Problem(403, "Forbidden", "no", type_="keyword")
    raise Problem.of("catalogued", "detail")
    raise Problem.of("another-status", status=409)
    return {"type": problem_type_uri("in-a-dict"), "title": "Gone", "status": 410}

def not_problems():
    return {"type": "product", "title": "Phone", "status": "active"}

def refused(channel):
    raise Problem(400, "Bad Request", type_=f"no-{channel}")
    return {"type": f"https://cloudcart.dev/problems/{channel}-x", "title": "t", "status": 1}
"""
    scan = scan_sources({"example.py": source})
    found = {(u.slug, u.status, u.title) for u in scan.uses}
    assert found == {
        ("class-attribute", 409, "Conflict"),
        ("first", 404, "Not Found"),
        ("second", 404, "Not Found"),
        ("carried-positionally", 400, "Bad Request"),
        ("from-a-constant", 400, "Bad Request"),
        ("keyword", 403, "Forbidden"),
        ("catalogued", None, None),
        ("another-status", 409, None),
        ("in-a-dict", 410, "Gone"),
    }
    assert scan.unresolved == [
        "example.py:31: cannot resolve the problem type `f'no-{channel}'`",
        "example.py:32: cannot resolve the problem type "
        "`f'https://cloudcart.dev/problems/{channel}-x'`",
    ]
    assert scan.sets_problem_type == {"PerInstance", "Carried"}
