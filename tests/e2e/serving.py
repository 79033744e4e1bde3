"""Start `cloudcart serve` as a real subprocess for end-to-end tests.

Every server gets its own free ports (HTTP and the embedded provider's https listener), its
own data folder and an environment without the developer's Cloudcart settings, so e2e tests
can run side by side and beside a developer's `make run`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cloudcart.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class ServeFailed(AssertionError):
    """The server exited or never became healthy; the message carries its log."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without any Cloudcart setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class ServeProcess:
    """One `cloudcart serve` subprocess on a data folder; restartable on the same folder."""

    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    demo: bool = False
    partners: bool = True
    """Start the partner simulators (`--no-partners` when False)."""
    triggers: bool = True
    """Run the app's trigger functions (`--no-triggers` when False: HTTP only)."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where the HTTP API answers."""
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int | None = None) -> str:
        """What the server printed so far (all its runs); only the last `tail` characters
        if given, to keep failure messages readable."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text if tail is None else text[-tail:]

    def start(self) -> ServeProcess:
        """Start the server and wait until `/api/health` answers 200."""
        args = [
            sys.executable,
            "-m",
            "cloudcart.local.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.demo:
            args.append("--demo")
        if not self.partners:
            args.append("--no-partners")
        if not self.triggers:
            args.append("--no-triggers")
        env = clean_env({"DEV_IDP_HTTPS_PORT": str(free_port()), **self.env})
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeFailed(
                    f"cloudcart serve exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise ServeFailed(f"cloudcart serve did not become healthy:\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM (graceful), then SIGKILL if it hangs; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


@contextmanager
def serve(
    tmp_path: Path,
    *,
    demo: bool = False,
    env: Mapping[str, str] | None = None,
    name: str = "serve",
) -> Iterator[ServeProcess]:
    """A running server on a fresh data folder under `tmp_path`, stopped afterwards."""
    server = ServeProcess(
        data_dir=tmp_path / f"{name}-data",
        log_path=tmp_path / f"{name}.log",
        env=dict(env or {}),
        demo=demo,
    )
    try:
        yield server.start()
    finally:
        server.stop()


def admin_token(base_url: str, sub: str = "e2e-admin") -> str:
    """An admin access token from the server's embedded identity provider."""
    response = httpx.post(
        f"{base_url}/dev/idp/token", data={"sub": sub, "roles": "Admin"}, timeout=10
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def customer_token(base_url: str, sub: str, email: str | None = None) -> str:
    """A customer access token from the server's embedded identity provider."""
    form = {"sub": sub, **({"email": email} if email else {})}
    response = httpx.post(f"{base_url}/dev/idp/token", data=form, timeout=10)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token
