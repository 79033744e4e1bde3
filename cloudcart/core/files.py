"""Small file helpers for the embedded adapters' keys and certificates."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def create_private_file_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of `path`, creating it (mode 0600, fsynced) from `make()` if it is missing.

    The content is written to a private temp file and hard-linked into place: `link()` never
    replaces an existing file, so when several processes start together exactly one version
    wins and every process reads the winner's (`os.replace` would let them diverge).
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(make())
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, path)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
    return path.read_bytes()
