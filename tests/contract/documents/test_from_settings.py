"""Both adapters build from `Settings` the way `cloudcart.composition` calls them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from cloudcart.core.documents import cosmos, embedded
from cloudcart.core.ports.documents import DocumentStore
from cloudcart.core.settings import Adapter, Settings
from tests.fakes.cosmos_server import CosmosFakeServer


def test_embedded_from_settings_creates_the_file_and_containers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nested" / "data")
    store = embedded.from_settings(settings)
    assert isinstance(store, DocumentStore)
    store.container("orders").create({"id": "o1", "customerId": "c1"})
    store.close()
    assert (tmp_path / "nested" / "data" / "documents.sqlite3").is_file()
    reopened = embedded.from_settings(settings)
    assert reopened.container("orders").read("o1", "c1")["id"] == "o1"
    reopened.close()


def test_cosmos_from_settings_with_an_emulator_key(cosmos_fake: CosmosFakeServer) -> None:
    settings = Settings(
        documents_adapter=Adapter.azure,
        cosmos_endpoint=cosmos_fake.url,
        cosmos_database="from-settings",
        cosmos_key=SecretStr(cosmos_fake.key),
    )
    store = cosmos.from_settings(settings)
    assert isinstance(store, DocumentStore)
    store.ensure_containers()
    store.check()
    store.container("orders").create({"id": "o1", "customerId": "c1"})
    assert store.container("orders").read("o1", "c1")["id"] == "o1"
    store.close()


def test_cosmos_from_settings_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="accountEndpoint"):
        cosmos.from_settings(Settings(documents_adapter=Adapter.azure))


def test_importing_the_adapters_does_not_import_azure_sdks() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cloudcart.core.documents.cosmos, cloudcart.core.documents.embedded;"
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="."
    )
    assert out.stdout.strip() == "[]"
