"""`cloudcart serve` as a real process: it starts, answers over HTTP and stops on SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serving import ServeProcess, serve

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    # A data folder in the environment that --data-dir must override.
    ignored = {"CLOUDCART_DATA_DIR": str(tmp_path / "from-env-ignored")}
    with serve(tmp_path, env=ignored) as srv:
        yield srv


def test_serve_answers_and_stops_cleanly(server: ServeProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        health = client.get("/api/health", headers={"x-correlation-id": "e2e-1"})
        assert health.json() == {"status": "ok"}
        assert health.headers["x-correlation-id"] == "e2e-1"

        openapi = client.get("/api/openapi.json")
        assert openapi.status_code == 200
        doc = openapi.json()
        assert doc["info"]["title"] == "Cloudcart API"
        assert "/api/health" in doc["paths"]

        ready = client.get("/api/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"

        missing = client.get("/api/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    # --data-dir wins over the environment, and the embedded store was created there.
    assert (tmp_path / "serve-data").is_dir()
    assert not (tmp_path / "from-env-ignored").exists()

    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells the
    # parent why it stopped.
    assert server.stop() in (0, -signal.SIGTERM)
    log = server.log()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    # Logs are JSON lines (uvicorn's included).
    assert '"logger": "uvicorn' in log
