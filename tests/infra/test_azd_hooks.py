"""The azd hooks: wired in azure.yaml, fed by main.bicep outputs, and doing what they say."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.infra.bicep_model import load_project

REPO = Path(__file__).resolve().parents[2]
HOOK_MODULE = "cloudcart.ops.postprovision"


def _hooks() -> dict[str, dict[str, dict[str, str]]]:
    azure = yaml.safe_load((REPO / "azure.yaml").read_text("utf-8"))
    hooks: dict[str, dict[str, dict[str, str]]] = azure["hooks"]
    return hooks


def test_postprovision_hook_has_a_posix_and_a_windows_script() -> None:
    hook = _hooks()["postprovision"]
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"
    for platform in ("posix", "windows"):
        assert (REPO / hook[platform]["run"]).is_file(), hook[platform]["run"]


def test_hooks_only_read_variables_main_bicep_outputs() -> None:
    outputs = set(load_project().main.outputs)
    for platform in ("posix", "windows"):
        lines = (REPO / _hooks()["postprovision"][platform]["run"]).read_text("utf-8")
        text = "\n".join(x for x in lines.splitlines() if not x.lstrip().startswith("#"))
        used = set(re.findall(r"\b(AZURE_[A-Z_]+)", text))
        assert used, platform
        assert sorted(used - outputs) == [], f"{platform} hook reads what azd never sets"


def test_posix_hook_runs_search_init_against_the_provisioned_service(tmp_path: Path) -> None:
    # A stand-in interpreter records what the hook would run and with which settings.
    fake = tmp_path / "python"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "keys = ('CLOUDCART_SEARCH_ADAPTER', 'SEARCH_ENDPOINT', 'SEARCH_INDEX_NAME')\n"
        "print(json.dumps({'argv': sys.argv[1:], 'env': {k: os.environ.get(k) for k in keys}}))\n",
        "utf-8",
    )
    fake.chmod(0o755)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHON": str(fake),
        "AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net",
        "AZURE_SEARCH_INDEX": "products",
    }
    script = REPO / _hooks()["postprovision"]["posix"]["run"]
    done = subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert yaml.safe_load(done.stdout) == {
        "argv": ["-m", HOOK_MODULE],
        "env": {
            "CLOUDCART_SEARCH_ADAPTER": "azure",
            "SEARCH_ENDPOINT": "https://srch-x.search.windows.net",
            "SEARCH_INDEX_NAME": "products",
        },
    }


def test_posix_hook_fails_without_the_search_endpoint(tmp_path: Path) -> None:
    script = REPO / _hooks()["postprovision"]["posix"]["run"]
    done = subprocess.run(
        ["sh", str(script)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHON": "false"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "AZURE_SEARCH_ENDPOINT" in done.stderr


def test_both_hook_scripts_run_the_same_module() -> None:
    hook = _hooks()["postprovision"]
    for platform in ("posix", "windows"):
        text = (REPO / hook[platform]["run"]).read_text("utf-8")
        assert re.findall(r"-m\s+([\w.]+)", text) == [HOOK_MODULE], platform


# --- the hook needs only requirements.txt ------------------------------------------------
#
# azd runs the hook in whatever Python the deploying machine or CI has, with
# `pip install -r requirements.txt` (docs/deploy.md), not the local runtime's extras. The
# hook runs here in a subprocess where every installed top-level package that
# requirements.txt does not bring in (directly or as a dependency) cannot be imported: the
# same imports succeed as in a virtualenv made from requirements.txt alone, without
# downloading one.

_BLOCKER = '''
import json, os, sys

BLOCKED = frozenset(json.loads(os.environ["CLOUDCART_TEST_BLOCKED"]))


class _NotInRequirements:
    """Refuses packages requirements.txt does not install."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {name!r} (not installed by requirements.txt)", name=name
            )
        return None


for _loaded in [m for m in sys.modules if m.partition(".")[0] in BLOCKED]:
    del sys.modules[_loaded]
sys.meta_path.insert(0, _NotInRequirements())

if os.environ.get("CLOUDCART_TEST_KEY_CREDENTIAL"):
    # The fake search service is plain http, where the SDK sends no bearer token: stand in
    # a key credential for the identity. Everything else is the real code path.
    import azure.identity
    from azure.core.credentials import AzureKeyCredential

    azure.identity.DefaultAzureCredential = lambda **_: AzureKeyCredential("test-key")
'''


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements_closure() -> set[str]:
    """Distributions requirements.txt installs: its pins, their extras, and dependencies."""
    from importlib import metadata

    from packaging.requirements import Requirement

    lines = (REPO / "requirements.txt").read_text("utf-8").splitlines()
    todo = [
        Requirement(line.split("#", 1)[0].strip())
        for line in lines
        if line.split("#", 1)[0].strip() and not line.startswith("-")
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while todo:
        requirement = todo.pop()
        key = (_canonical(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            requires = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(
                marker.evaluate({"extra": extra}) for extra in {"", *requirement.extras}
            ):
                todo.append(dependency)
    return names


def _not_in_requirements() -> set[str]:
    """Top-level import names of installed packages requirements.txt does not bring in."""
    from importlib import metadata

    allowed = _requirements_closure()
    return (
        {
            top
            for top, dists in metadata.packages_distributions().items()
            if not any(_canonical(d) in allowed for d in dists)
        }
        - set(sys.stdlib_module_names)
        - {"cloudcart"}
    )


def _requirements_only_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_BLOCKER, "utf-8")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(site),
        "PYTHON": sys.executable,
        # Without a Cosmos endpoint the catalog is the embedded store: keep it out of the repo.
        "CLOUDCART_DATA_DIR": str(tmp_path / "data"),
        "CLOUDCART_TEST_BLOCKED": json.dumps(sorted(_not_in_requirements())),
        **extra,
    }


def test_blocked_set_is_the_local_and_dev_tooling() -> None:
    blocked = _not_in_requirements()
    assert {"typer", "uvicorn", "croniter", "tantivy", "pytest"} <= blocked
    assert not {"azure", "pydantic", "pydantic_settings", "stripe", "httpx"} & blocked


def test_requirements_only_python_cannot_import_the_local_cli(tmp_path: Path) -> None:
    # What the hook used to run: it needs typer, so `azd up` stopped after provisioning.
    done = subprocess.run(
        [sys.executable, "-c", "import cloudcart.local.cli"],
        env=_requirements_only_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "not installed by requirements.txt" in done.stderr, done.stderr


def test_posix_hook_creates_the_index_with_requirements_txt_only(tmp_path: Path) -> None:
    from tests.fakes.search_server import FakeSearchService

    script = REPO / _hooks()["postprovision"]["posix"]["run"]
    with FakeSearchService() as fake:
        env = _requirements_only_env(
            tmp_path,
            AZURE_SEARCH_ENDPOINT=fake.endpoint,
            AZURE_SEARCH_INDEX="products",
            CLOUDCART_TEST_KEY_CREDENTIAL="1",
        )
        # azd runs hooks from the project folder.
        done = subprocess.run(
            ["sh", str(script)], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "up to date" in done.stdout
        # `products` is the alias the app reads; it serves the spec's versioned index.
        assert fake.resolve("products") in fake.state.indexes
        assert fake.resolve("products") != "products"
        assert fake.state.synonym_maps


def test_hook_module_reports_a_failure_with_exit_status_1(tmp_path: Path) -> None:
    env = _requirements_only_env(tmp_path, CLOUDCART_SEARCH_ADAPTER="azure")
    done = subprocess.run(
        [sys.executable, "-m", HOOK_MODULE],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "SEARCH_ENDPOINT" in done.stderr


def test_prepackage_hook_has_a_posix_and_a_windows_script() -> None:
    hook = _hooks()["prepackage"]
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"
    for platform in ("posix", "windows"):
        text = (REPO / hook[platform]["run"]).read_text("utf-8")
        assert "compileall" in text and "cloudcart function_app.py" in text
        assert "(3, 11)" in text


def _app_tree(root: Path) -> None:
    for rel in ("function_app.py", "cloudcart/__init__.py", "cloudcart/api/app.py"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("X = 1\n", "utf-8")


def test_posix_prepackage_hook_compiles_the_app(tmp_path: Path) -> None:
    import importlib.util

    if sys.version_info[:2] != (3, 11):
        return  # the hook refuses other versions (next test)
    _app_tree(tmp_path)
    script = REPO / _hooks()["prepackage"]["posix"]["run"]
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("PYTHONPYCACHEPREFIX", None)
    done = subprocess.run(
        ["sh", str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for rel in ("function_app.py", "cloudcart/__init__.py", "cloudcart/api/app.py"):
        pyc = Path(importlib.util.cache_from_source(str(tmp_path / rel)))
        assert pyc.is_file(), rel
        # Hash-based: valid whatever modification times the package keeps.
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b11, rel


def test_posix_prepackage_hook_refuses_another_python(tmp_path: Path) -> None:
    _app_tree(tmp_path)
    other = tmp_path / "python3.12"
    other.write_text("#!/bin/sh\necho 3.12.1\nexit 1\n", "utf-8")
    other.chmod(0o755)
    script = REPO / _hooks()["prepackage"]["posix"]["run"]
    done = subprocess.run(
        ["sh", str(script)],
        env={**os.environ, "PYTHON": str(other)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "3.11" in done.stderr
    assert not list(tmp_path.rglob("*.pyc"))
