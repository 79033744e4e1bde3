"""Read-only route work runs on the event loop only when every adapter it touches reads
in process; a network adapter's blocking call goes to the thread pool."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from cloudcart.api.deps import run_read
from cloudcart.composition import Services
from cloudcart.core.settings import Adapter, Settings


def _thread_of_read(services: Services) -> int:
    async def main() -> tuple[int, int]:
        return threading.get_ident(), await run_read(services, threading.get_ident)

    loop_thread, read_thread = asyncio.run(main())
    return 0 if read_thread == loop_thread else read_thread


def test_embedded_reads_run_on_the_event_loop(tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path))
    assert services.reads_in_process
    assert _thread_of_read(services) == 0


@pytest.mark.parametrize("port", ["documents_adapter", "blobs_adapter", "search_adapter"])
def test_a_network_adapter_sends_reads_to_the_thread_pool(tmp_path: Path, port: str) -> None:
    # Settings only: nothing is built or connected, the read does not touch an adapter.
    settings = Settings(data_dir=tmp_path).model_copy(update={port: Adapter.azure})
    services = Services(settings)
    assert not services.reads_in_process
    assert _thread_of_read(services) != 0
