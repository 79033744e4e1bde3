"""Property-based fuzzing of every operation in the app's own OpenAPI document.

Each operation is its own test (new routes join automatically). Schemathesis sends valid and
invalid requests with an admin bearer token from the embedded identity provider, and checks
that nothing answers 5xx and every response matches what the document declares (status,
content type, headers, body schema), because client SDKs are generated from that document.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_https import start_dev_idp_https
from cloudcart.identity.dev_provider import mint_token


# One app for the module: the schema is loaded at collection time to parametrise over its
# operations, and requests go to the same app object. Its data folder is private and removed
# after the module.
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_DATA_DIR = Path(tempfile.mkdtemp(prefix="cloudcart-fuzz-"))
_SETTINGS = Settings(data_dir=_DATA_DIR, dev_idp_https_port=_free_port())
_APP = create_app(_SETTINGS)

schema = schemathesis.openapi.from_asgi("/api/openapi.json", _APP)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=25,
    deterministic=True,  # same cases on every run, so CI failures reproduce locally
    database="none",  # no .hypothesis example database written into the checkout
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", autouse=True)
def _app_data() -> Iterator[None]:
    _APP.state.services.documents.ensure_containers()
    # The web sign-in talks to the embedded provider over https, as under `cloudcart serve`.
    idp = start_dev_idp_https(_SETTINGS, _APP)
    yield
    idp.stop()
    _APP.state.services.close()
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def auth_headers() -> dict[str, str]:
    token, _ = mint_token(_SETTINGS, "fuzz-admin", email="fuzz@example.com", roles=("Admin",))
    return {"Authorization": f"Bearer {token}"}


def test_schema_has_operations() -> None:
    # Guards against a silently empty parametrisation (an unreadable schema would yield no
    # operations and no fuzz tests at all).
    operations = list(schema.get_all_operations())
    assert len(operations) >= 2
    labels = {result.ok().label for result in operations}  # type: ignore[union-attr]
    assert "GET /api/health" in labels


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_operation_conforms(case: Any, auth_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
