"""The app refuses to start with dev providers under the Functions host, or with `azure`
identity lacking its issuers, and says what to set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.api.startup import StartupRefused
from cloudcart.core.settings import Adapter, Settings

REPO = Path(__file__).resolve().parents[2]
ISSUERS = json.dumps(
    [
        {
            "metadataUrl": "https://contosoid.ciamlogin.com/9188040d-6c67-4c5b-b112-36a304b66dad"
            "/v2.0/.well-known/openid-configuration",
            "audiences": ["3f6c1a52-0c5e-4d8a-9a7e-5b2f0d4c1e11"],
        }
    ]
)


def refusal(settings: Settings) -> str:
    with pytest.raises(StartupRefused) as excinfo:
        create_app(settings)
    return str(excinfo.value)


@pytest.mark.parametrize("variable", ["WEBSITE_INSTANCE_ID", "FUNCTIONS_WORKER_RUNTIME"])
def test_embedded_identity_under_the_functions_host_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "python" if variable == "FUNCTIONS_WORKER_RUNTIME" else "abc")
    message = refusal(Settings(data_dir=tmp_path, payments_provider="stripe"))
    assert "CLOUDCART_IDENTITY_ADAPTER is `embedded`" in message
    assert "CLOUDCART_ALLOW_DEV_PROVIDERS=true" in message
    assert "CLOUDCART_PAYMENTS_PROVIDER" not in message


def test_test_payments_under_the_functions_host_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    settings = Settings(data_dir=tmp_path, identity_adapter=Adapter.azure, identity_issuers=ISSUERS)
    message = refusal(settings)
    assert "CLOUDCART_PAYMENTS_PROVIDER is `test`" in message
    assert "CLOUDCART_IDENTITY_ADAPTER" not in message


def test_captured_notifications_under_the_functions_host_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    settings = Settings(
        data_dir=tmp_path,
        identity_adapter=Adapter.azure,
        identity_issuers=ISSUERS,
        payments_provider="stripe",
        notifications_email_provider="sendgrid",
    )
    message = refusal(settings)
    assert "NOTIFICATIONS_TEXT_PROVIDER is `capture`" in message
    assert "NOTIFICATIONS_EMAIL_PROVIDER" not in message


def test_azure_configuration_starts_under_the_functions_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    app = create_app(
        Settings(
            data_dir=tmp_path,
            identity_adapter=Adapter.azure,
            identity_issuers=ISSUERS,
            payments_provider="stripe",
            notifications_email_provider="sendgrid",
            notifications_text_provider="twilio",
        )
    )
    assert not any(getattr(r, "path", "").startswith("/dev/") for r in app.routes)


def test_allowing_dev_providers_lets_func_start_run_the_local_shop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    app = create_app(Settings(data_dir=tmp_path, allow_dev_providers=True))
    response = TestClient(app).post("/dev/idp/token", data={"sub": "local-dev"})
    assert response.status_code == 200


def test_the_local_settings_sample_starts_under_func_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values: dict[str, Any] = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLOUDCART_DATA_DIR", str(tmp_path))
    assert os.environ["FUNCTIONS_WORKER_RUNTIME"] == "python"  # as `func start` sets it
    create_app(Settings())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "IDENTITY_ISSUERS"),
        (
            {"identity_metadata_urls": "https://login.example.com/t/v2.0/.well-known/x"},
            "IDENTITY_AUDIENCE must list",
        ),
    ],
)
def test_azure_identity_without_issuers_or_audiences_is_refused(
    tmp_path: Path, values: dict[str, Any], expected: str
) -> None:
    # Not under the Functions host: a broken identity configuration is refused anywhere.
    settings = Settings(data_dir=tmp_path, identity_adapter=Adapter.azure, **values)
    assert expected in refusal(settings)


def test_function_app_import_fails_closed_in_azure(tmp_path: Path) -> None:
    # A fresh interpreter, as the Functions worker imports function_app: every default.
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    env.pop("FUNCTIONS_WORKER_RUNTIME", None)
    env["CLOUDCART_DATA_DIR"] = str(tmp_path / "data")
    env["WEBSITE_INSTANCE_ID"] = "0123456789abcdef"
    result = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "StartupRefused: Cloudcart refuses to start" in result.stderr
    assert "CLOUDCART_IDENTITY_ADAPTER is `embedded`" in result.stderr
