"""Fixtures of the blobs contract suite: one `blob_store` per adapter.

- embedded: a LocalBlobStore in tmp_path, built through `Services` from settings exactly as
  the app builds it, whose signed URLs point at a real uvicorn server (one per session)
  serving the dev blob router.
- azure: an AzureBlobStore on Azurite (one per session), built from a connection string.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from cloudcart.api.dev_blobs import router as dev_blobs_router
from cloudcart.api.problems import PROBLEM_MEDIA_TYPE, Problem
from cloudcart.composition import Services
from cloudcart.core.ports.blobs import BlobStore
from cloudcart.core.settings import Adapter, Settings
from tests.fakes.azurite import azurite_connection_string  # noqa: F401  (session fixture)


@dataclass
class DevServer:
    """The dev host stand-in: the app (to swap `state.services` per test) and its base URL."""

    app: FastAPI
    base_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_dev_app() -> FastAPI:
    """A minimal app with the dev blob router and a problem+json handler."""
    app = FastAPI()
    app.include_router(dev_blobs_router)

    @app.exception_handler(Problem)
    async def problem_handler(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse(
            exc.to_dict(str(request.url.path)),
            status_code=exc.status,
            headers=exc.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )

    return app


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    """A real uvicorn server on a free loopback port, in a background thread."""
    app = build_dev_app()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="dev-blobs-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the dev blob server did not start")
        time.sleep(0.02)
    try:
        yield DevServer(app=app, base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def embedded_settings(data_dir: Path, base_url: str) -> Settings:
    """Settings of an embedded blob store whose URLs point at `base_url`."""
    return Settings(data_dir=data_dir, public_base_url=base_url, blobs_adapter=Adapter.embedded)


@pytest.fixture(params=["embedded", "azure"])
def adapter(request: pytest.FixtureRequest) -> str:
    """Which adapter the test runs against."""
    name: str = request.param
    return name


@pytest.fixture
def blob_store(adapter: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """The store under test, built through `Services` like the app builds it."""
    if adapter == "embedded":
        server: DevServer = request.getfixturevalue("dev_server")
        services = Services(embedded_settings(tmp_path, server.base_url))
        server.app.state.services = services
    else:
        conn: str = request.getfixturevalue("azurite_connection_string")
        services = Services(
            Settings(blobs_adapter=Adapter.azure, blob_connection_string=SecretStr(conn))
        )
    try:
        yield services.blobs
    finally:
        services.close()


@pytest.fixture
def container(blob_store: BlobStore) -> str:
    """A fresh, existing container (unique, since Azurite is shared by the session)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    blob_store.ensure_containers([name])
    return name
