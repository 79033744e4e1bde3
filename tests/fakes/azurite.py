"""Runs Azurite's blob service on a free loopback port for the contract tests.

Azurite (npm `azurite`, pinned in package.json) is the most real Blob Storage that works
offline: the real `azure-storage-blob` SDK sends real HTTP to it, and it checks SAS
signatures, permissions and expiry like Azure does.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# The well-known development account every Azurite and Storage emulator accepts.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_START_TIMEOUT = 30.0


def find_azurite_blob() -> str:
    """Path of the `azurite-blob` executable: the repo's node_modules first, then PATH.

    Fails the test (never skips) when it is missing, so a missing tool cannot hide failures.
    """
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    pytest.fail(
        "Azurite is not installed: run `npm install` in the repository root "
        "(it installs the pinned azurite into node_modules/).",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def connection_string(port: int) -> str:
    """The connection string of the dev account on an Azurite listening on `port`."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )


@contextlib.contextmanager
def run_azurite(attempts: int = 3) -> Iterator[str]:
    """Start Azurite blob on a free loopback port and yield its connection string.

    The port is picked by binding port 0 and releasing it, so another process may grab it
    before Azurite does; then Azurite exits and we retry on a new port.
    """
    executable = find_azurite_blob()
    with tempfile.TemporaryDirectory(prefix="azurite-") as workspace:
        last_error = ""
        for _ in range(attempts):
            port = _free_port()
            log_path = Path(workspace) / f"azurite-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        executable,
                        "--blobHost",
                        "127.0.0.1",
                        "--blobPort",
                        str(port),
                        "--disableTelemetry",
                        "--skipApiVersionCheck",
                        "--inMemoryPersistence",
                        "--loose",
                        "--silent",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # --location cannot be combined with --inMemoryPersistence; the cwd keeps
                    # any stray file Azurite writes out of the repository.
                    cwd=workspace,
                )
                try:
                    deadline = time.monotonic() + _START_TIMEOUT
                    while process.poll() is None and time.monotonic() < deadline:
                        if _answers(port):
                            break
                        time.sleep(0.1)
                    if process.poll() is None and _answers(port):
                        yield connection_string(port)
                        return
                    last_error = log_path.read_text(errors="replace")
                finally:
                    process.terminate()
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        pytest.fail(f"Azurite did not start after {attempts} attempts:\n{last_error}")


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """Session-wide Azurite; the connection string of its dev account."""
    with run_azurite() as conn:
        yield conn
