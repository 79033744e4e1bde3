"""The OpenAPI document is an exact contract: schemathesis runs every check it has
(`--checks all`: coverage, fuzzing and stateful phases) against `cloudcart serve` on the
demo catalog, once with an admin token and once with a customer's, and finds nothing.

Client SDKs are generated from the document, so a request it allows must not be refused,
a request it forbids must not be accepted, and every status, header and body the API sends
must be declared. tests/contract/schemathesis.toml lists the few refusals that depend on
state rather than on the request's shape (a stale If-Match, a forged cursor); a new route
is checked as soon as it is mounted.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serving import REPO, ServeProcess, clean_env

pytestmark = pytest.mark.e2e

CONFIG = REPO / "tests" / "contract" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("api-contract")
    serve = ServeProcess(
        data_dir=tmp / "data", log_path=tmp / "serve.log", demo=True, partners=False
    )
    serve.start()
    try:
        yield serve
    finally:
        serve.stop()


def _token(server: ServeProcess, sub: str, *, admin: bool) -> str:
    form = {"sub": sub, **({"roles": "Admin"} if admin else {})}
    r = httpx.post(f"{server.base_url}/dev/idp/token", data=form, timeout=30)
    r.raise_for_status()
    return str(r.json()["access_token"])


@pytest.mark.parametrize("role", ["admin", "customer"])
def test_schemathesis_finds_no_failure(server: ServeProcess, role: str, tmp_path: Path) -> None:
    token = _token(server, f"contract-{role}", admin=role == "admin")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.base_url}/api/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--seed",
            "20261130",
        ],
        # Its own folder: schemathesis writes a `.schemathesis` cache where it runs, which
        # must not land in the checkout (the deployment package takes the checkout).
        cwd=tmp_path,
        env=clean_env({}),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
