"""The `cloudcart` command line: dev tokens that the app accepts, and its help."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.local.cli import cli


def test_token_is_accepted_by_the_validator(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    result = CliRunner().invoke(
        cli,
        ["token", "alice", "--email", "alice@example.com", "--admin", "--data-dir", str(data_dir)],
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()

    caller = Services(Settings(data_dir=data_dir)).token_validator.validate(token)
    assert caller.customer_id == "alice"
    assert caller.email == "alice@example.com"
    assert "Admin" in caller.roles


def test_token_without_admin_has_no_roles(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["token", "bob", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    caller = Services(Settings(data_dir=tmp_path)).token_validator.validate(result.output.strip())
    assert caller.roles == ()
    assert "shop.api" in caller.scopes


def test_token_rejects_a_bad_subject(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["token", "not valid!", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "eyJ" not in result.output


def test_token_refuses_when_identity_is_not_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDCART_IDENTITY_ADAPTER", "azure")
    result = CliRunner().invoke(cli, ["token", "carol"])
    assert result.exit_code == 2
    assert "embedded" in result.output


@pytest.mark.parametrize("command", ["serve", "token", "settings"])
def test_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
