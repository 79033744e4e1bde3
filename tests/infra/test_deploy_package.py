"""The deploy package: what `azd deploy` zips for the Function app, built here the same way.

azd (pkg/project/project_utils.go, `createDeployableZip`) walks the service's project folder
and leaves out what `.funcignore` matches with gitignore rules, plus `.azure/`, the ignore
file itself and `local.settings.json`. When `.funcignore` exists azd applies none of its
own Python defaults (virtualenvs, `__pycache__`), so the file has to name them.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pathspec
import yaml

REPO = Path(__file__).resolve().parents[2]

# Left out by azd whatever the ignore file says.
ALWAYS_EXCLUDED_DIRS = frozenset({".azure"})
ALWAYS_EXCLUDED_FILES = frozenset({".funcignore", "local.settings.json"})

# The package root holds exactly these; the remote build installs requirements.txt.
PACKAGE_ROOT = frozenset({"function_app.py", "host.json", "requirements.txt", "cloudcart"})
# Plus, once the prepackage hook has compiled the app, function_app's bytecode.
COMPILED_ROOT = "__pycache__"
APP_BYTECODE_TAG = ".cpython-311.pyc"


def _project_root() -> Path:
    azure = yaml.safe_load((REPO / "azure.yaml").read_text("utf-8"))
    project = str(azure["services"]["api"]["project"])
    return (REPO / project).resolve()


def package_files(root: Path, ignore_rules: str) -> list[str]:
    """Paths (relative, `/`-separated) azd would put in the zip for `root`."""
    spec = pathspec.GitIgnoreSpec.from_lines(ignore_rules.splitlines())
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath).relative_to(root)
        # Pruning an ignored folder is what azd does too: nothing below it is visited.
        dirnames[:] = [
            d
            for d in sorted(dirnames)
            if d not in ALWAYS_EXCLUDED_DIRS and not spec.match_file((here / d).as_posix() + "/")
        ]
        for name in sorted(filenames):
            rel = (here / name).as_posix()
            if name in ALWAYS_EXCLUDED_FILES or spec.match_file(rel):
                continue
            found.append(rel)
    return sorted(found)


def build_package(root: Path, ignore_rules: str, target: Path) -> set[str]:
    """Zip `root` minus the ignored paths into `target`; the zip's member names."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as package:
        for rel in package_files(root, ignore_rules):
            package.write(root / rel, rel)
    with zipfile.ZipFile(target) as package:
        return set(package.namelist())


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel}\n", "utf-8")


# Every kind of thing that must not be deployed, plus the app itself.
_APP = [
    "function_app.py",
    "host.json",
    "requirements.txt",
    "cloudcart/__init__.py",
    "cloudcart/api/app.py",
    "cloudcart/local/cli.py",
    # The app's bytecode for the deploy's Python (infra/hooks/prepackage.sh writes it).
    "__pycache__/function_app.cpython-311.pyc",
    "cloudcart/__pycache__/__init__.cpython-311.pyc",
    "cloudcart/api/__pycache__/app.cpython-311.pyc",
    "cloudcart/local/__pycache__/cli.cpython-311.pyc",
]
_DEV_ONLY = [
    # Bytecode of other Python versions, of dev-only code, in the legacy places.
    "cloudcart/api/__pycache__/app.cpython-312.pyc",
    "cloudcart/api/__pycache__/app.cpython-311.opt-1.pyc",
    "cloudcart/api/app.pyc",
    "__pycache__/function_app.cpython-312.pyc",
    "__pycache__/conftest.cpython-311.pyc",
    "tests/__pycache__/conftest.cpython-311.pyc",
    "benchmarks/__pycache__/cold_start.cpython-311.pyc",
    ".venv/pyvenv.cfg",
    ".venv/lib/python3.11/site-packages/typer/__init__.py",
    "venv/pyvenv.cfg",
    "node_modules/azurite/package.json",
    "node_modules/azurite/dist/src/azurite.js",
    "package.json",
    "package-lock.json",
    "tests/unit/test_x.py",
    "tests/infra/test_bicep.py",
    "benchmarks/checkout.py",
    "benchmarks/results/checkout.json",
    ".data/documents.sqlite3",
    ".data/keys/dev-signing-key.pem",
    ".data/blobs/media/products/p1/original",
    "local.settings.json",
    "local.settings.sample.json",
    ".env",
    ".git/HEAD",
    ".git/config",
    ".gitignore",
    ".ci/run",
    ".mypy_cache/3.11/cache.db",
    ".pytest_cache/v/cache/nodeids",
    ".hypothesis/examples/x",
    "cloudcart.egg-info/PKG-INFO",
    "docs/deploy.md",
    "infra/bicep/main.bicep",
    "infra/hooks/postprovision.sh",
    ".azure/prod/.env",
    "__blobstorage__/x",
    "__azurite_db_blob__.json",
    "Makefile",
    "pyproject.toml",
    "azure.yaml",
    "requirements-dev.txt",
    "requirements-local.txt",
    "requirements-bench.txt",
    "README.md",
    "CHANGELOG.md",
]


def test_funcignore_sits_at_the_azd_project_root() -> None:
    assert (_project_root() / ".funcignore").is_file()


def test_package_of_a_full_tree_is_the_app_only(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _tree(root, _APP + _DEV_ONLY)
    (root / ".funcignore").write_text((REPO / ".funcignore").read_text("utf-8"), "utf-8")
    names = build_package(root, (root / ".funcignore").read_text("utf-8"), tmp_path / "p.zip")
    assert names == set(_APP)


def test_without_the_ignore_file_local_data_and_dev_tools_ship(tmp_path: Path) -> None:
    # The builder is not what keeps them out: with no rules they land in the package.
    root = tmp_path / "tree"
    _tree(root, _APP + _DEV_ONLY)
    names = build_package(root, "", tmp_path / "p.zip")
    for leaked in (".data/keys/dev-signing-key.pem", "node_modules/azurite/package.json"):
        assert leaked in names
    assert "local.settings.json" not in names  # azd drops this one itself
    assert ".azure/prod/.env" not in names


def test_package_of_this_repository(tmp_path: Path) -> None:
    root = _project_root()
    names = build_package(root, (root / ".funcignore").read_text("utf-8"), tmp_path / "p.zip")
    assert {"function_app.py", "host.json", "requirements.txt"} <= names
    top = {n.split("/", 1)[0] for n in names}
    assert top - {COMPILED_ROOT} == PACKAGE_ROOT, "unexpected top-level entries"
    # No module of the app is dropped by an overly broad pattern.
    sources = {
        p.relative_to(root).as_posix()
        for p in (root / "cloudcart").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sources and sources <= names, sorted(sources - names)[:10]
    # Bytecode: exactly the app's compiled modules for Python 3.11 that exist here (the
    # prepackage hook writes them before azd zips), nothing else from a __pycache__.
    compiled = {n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))}
    present = {
        p.relative_to(root).as_posix()
        for p in [
            *(root / "cloudcart").rglob(f"__pycache__/*{APP_BYTECODE_TAG}"),
            *(root / COMPILED_ROOT).glob(f"function_app{APP_BYTECODE_TAG}"),
        ]
    }
    assert compiled == present
    for name in compiled:
        # `__pycache__/x.tag.pyc` (the root's) or `a/b/__pycache__/x.tag.pyc`.
        folder, _, file = f"/{name}".rpartition("/__pycache__/")
        stem = file.split(".", 1)[0]
        source = f"{folder.lstrip('/')}/{stem}.py" if folder else f"{stem}.py"
        assert source in names, f"{name} has no source in the package"


def test_package_ships_the_bytecode_the_prepackage_hook_writes(tmp_path: Path) -> None:
    import compileall
    import sys

    root = tmp_path / "tree"
    for rel in ["function_app.py", "host.json", "cloudcart/__init__.py", "cloudcart/api/app.py"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("X = 1\n", "utf-8")
    (root / "tests").mkdir()
    (root / "tests/test_x.py").write_text("X = 1\n", "utf-8")
    assert compileall.compile_dir(root, quiet=1)
    rules = (REPO / ".funcignore").read_text("utf-8")
    names = build_package(root, rules, tmp_path / "p.zip")
    tag = sys.implementation.cache_tag
    compiled = {n for n in names if n.endswith(".pyc")}
    if tag == "cpython-311":
        assert compiled == {
            "__pycache__/function_app.cpython-311.pyc",
            "cloudcart/__pycache__/__init__.cpython-311.pyc",
            "cloudcart/api/__pycache__/app.cpython-311.pyc",
        }
    else:
        assert compiled == set()
