"""The postprovision hook fills a new search index version from the deployment's catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.infra.test_azd_hooks import REPO, _hooks

_KEYS = ("CLOUDCART_DOCUMENTS_ADAPTER", "CosmosDB__accountEndpoint", "SEARCH_INDEX_NAME")


def _run_posix_hook(tmp_path: Path, **env: str) -> dict[str, str | None]:
    # A stand-in interpreter prints the settings the hook gives the init.
    fake = tmp_path / "python"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os\n"
        f"print(json.dumps({{k: os.environ.get(k) for k in {_KEYS!r}}}))\n",
        "utf-8",
    )
    fake.chmod(0o755)
    script = REPO / _hooks()["postprovision"]["posix"]["run"]
    done = subprocess.run(
        ["sh", str(script)],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHON": str(fake),
            "AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    settings: dict[str, str | None] = json.loads(done.stdout)
    return settings


def test_the_hook_reads_the_catalog_from_the_provisioned_cosmos_account(tmp_path: Path) -> None:
    settings = _run_posix_hook(
        tmp_path, AZURE_COSMOS_ENDPOINT="https://cosmos-x.documents.azure.com:443/"
    )
    assert settings == {
        "CLOUDCART_DOCUMENTS_ADAPTER": "azure",
        "CosmosDB__accountEndpoint": "https://cosmos-x.documents.azure.com:443/",
        "SEARCH_INDEX_NAME": "products",
    }


def test_both_hooks_pass_the_cosmos_endpoint() -> None:
    for platform in ("posix", "windows"):
        text = (REPO / _hooks()["postprovision"][platform]["run"]).read_text("utf-8")
        assert "AZURE_COSMOS_ENDPOINT" in text and "CosmosDB__accountEndpoint" in text, platform
        assert "CLOUDCART_DOCUMENTS_ADAPTER" in text, platform
