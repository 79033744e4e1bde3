"""Suite-wide isolation: no test reads the developer's environment or writes to ./.data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudcart.core.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in Settings.env_names().values():
        if name in os.environ:
            monkeypatch.delenv(name)
    # Set by the Functions host; inherited, they would make every app refuse to start.
    for name in ("WEBSITE_INSTANCE_ID", "FUNCTIONS_WORKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDCART_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
