"""The blobs port: binary objects (product media) and signed URLs for direct upload/read.

Clients upload straight to storage with a signed URL (never through the app), then the app
verifies the blob. Errors: `BlobNotFound`, `BlobError` from `cloudcart.core.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class BlobProperties:
    """What storage knows about a blob."""

    container: str
    name: str
    size: int
    content_type: str
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class Blob:
    """A blob's bytes and properties."""

    data: bytes
    properties: BlobProperties


@dataclass(frozen=True)
class SignedUrl:
    """A time-limited URL. For uploads the client sends `method` with `headers` set."""

    url: str
    method: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class BlobStore(Protocol):
    """Containers of blobs addressed by name (`products/p1/m1.jpg`)."""

    def put(self, container: str, name: str, data: bytes, *, content_type: str) -> BlobProperties:
        """Write (or overwrite) a blob."""
        ...

    def get(self, container: str, name: str) -> Blob:
        """Read a blob. Raises BlobNotFound."""
        ...

    def properties(self, container: str, name: str) -> BlobProperties:
        """Size, type and ETag without the bytes. Raises BlobNotFound."""
        ...

    def delete(self, container: str, name: str) -> None:
        """Delete a blob. Raises BlobNotFound."""
        ...

    def upload_url(
        self, container: str, name: str, *, content_type: str, expires_in: int = 900
    ) -> SignedUrl:
        """A URL the client PUTs the blob's bytes to, valid for `expires_in` seconds, for
        exactly this blob name and content type."""
        ...

    def read_url(self, container: str, name: str, *, expires_in: int = 3600) -> str:
        """A URL anyone can GET the blob from until it expires."""
        ...

    def ensure_containers(self, names: list[str]) -> None:
        """Create containers if missing (local/dev only; Bicep creates them in Azure)."""
        ...

    def check(self) -> None:
        """Raise if storage cannot be reached (readiness probe)."""
        ...
