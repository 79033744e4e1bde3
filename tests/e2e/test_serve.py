"""`cloudcart serve` as a real process: it starts, answers over HTTP and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloudcart.core.settings import Settings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _clean_env(data_dir: Path) -> dict[str, str]:
    # The child must not read the developer's Cloudcart settings either.
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    env["PYTHONUNBUFFERED"] = "1"
    env["CLOUDCART_DATA_DIR"] = str(data_dir / "from-env-ignored")
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    data_dir = tmp_path / "serve-data"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloudcart.local.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=REPO,
            env=_clean_env(tmp_path),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    srv = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_healthy(srv)
        yield srv
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_healthy(srv: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if srv.process.poll() is not None:
            pytest.fail(f"cloudcart serve exited with {srv.process.returncode}:\n{srv.log()}")
        try:
            if httpx.get(f"{srv.base_url}/api/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"cloudcart serve did not become healthy:\n{srv.log()}")


def test_serve_answers_and_stops_cleanly(server: Server, tmp_path: Path) -> None:
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

    server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells the
    # parent why it stopped.
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    log = server.log()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    # Logs are JSON lines (uvicorn's included).
    assert '"logger": "uvicorn' in log
