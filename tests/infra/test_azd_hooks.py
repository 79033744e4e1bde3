"""The azd hooks: wired in azure.yaml, fed by main.bicep outputs, and doing what they say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.infra.bicep_model import load_project

REPO = Path(__file__).resolve().parents[2]


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
        "argv": ["-m", "cloudcart.local.cli", "search", "init"],
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
