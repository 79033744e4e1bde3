"""local.settings.sample.json lists exactly the settings the app reads, with values it loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cloudcart.core.settings import Settings
from cloudcart.local.cli import cli

SAMPLE = Path(__file__).resolve().parents[2] / "local.settings.sample.json"
FUNCTIONS_HOST_KEYS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsStorage",
    "AzureWebJobsFeatureFlags",
}


def _sample_values() -> dict[str, str]:
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert doc["IsEncrypted"] is False
    values: dict[str, str] = doc["Values"]
    return values


def test_sample_has_the_functions_host_keys() -> None:
    values = _sample_values()
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["AzureWebJobsFeatureFlags"] == "EnableWorkerIndexing"


def test_sample_lists_exactly_the_settings_fields() -> None:
    in_sample = set(_sample_values()) - FUNCTIONS_HOST_KEYS
    in_settings = set(Settings.env_names().values())
    assert not in_settings - in_sample, "settings missing from local.settings.sample.json"
    assert not in_sample - in_settings, "sample entries no Settings field reads"


def test_every_sample_value_is_a_string() -> None:
    # The Functions host rejects non-string values in local.settings.json.
    assert all(isinstance(v, str) for v in _sample_values().values())


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        # The sample writes booleans as the Functions host and docs do: `true`/`false`.
        return "true" if value else "false"
    return str(getattr(value, "value", value))


def test_settings_load_exactly_the_sample_values(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _sample_values()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    for field, env_name in Settings.env_names().items():
        assert _as_text(getattr(settings, field)) == values[env_name], env_name


def test_empty_sample_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSMOS_KEY", "")
    monkeypatch.setenv("CosmosDB__accountEndpoint", "")
    settings = Settings()
    assert settings.cosmos_key is None
    assert settings.cosmos_endpoint is None


def test_settings_command_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSMOS_KEY", "s3cr3t-account-key")
    monkeypatch.setenv("COSMOS_DATABASE", "shopdb")
    result = CliRunner().invoke(cli, ["settings"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-account-key" not in result.output
    lines = {
        line.split("=", 1)[0].strip(): line.split("=", 1)[1].strip()
        for line in result.output.splitlines()
    }
    assert lines["COSMOS_KEY"] == "***"
    assert lines["COSMOS_DATABASE"] == "shopdb"
    assert set(lines) == set(Settings.env_names().values())


def test_settings_command_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOB_CONNECTION_STRING", "AccountKey=very-secret")
    result = CliRunner().invoke(cli, ["settings", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["BLOB_CONNECTION_STRING"] == "***"
    assert "very-secret" not in result.output
    assert doc["CLOUDCART_DOCUMENTS_ADAPTER"] == "embedded"
