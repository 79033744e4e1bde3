"""The embedded blobs adapter: a local folder plus HMAC-signed URLs served by the dev host.

Layout under `root` (normally `<data_dir>/blobs`):

- `<container>/<name>`: the blob's bytes, exactly as uploaded, so they can be inspected.
- `.meta/<container>/<name>.json`: content type, ETag and last-modified time.
- `.staging/`: temporary files; every write lands here first and is moved into place with
  `os.replace`, so a reader never sees half a blob.

Container names follow Azure's rules (lowercase letters, digits, hyphens) so the dot-folders
can never clash with a container, and code that works here works on Blob Storage.

Signed URLs look like `{base_url}/dev/blobs/{container}/{name}?sp=w&se=...&rsct=...&sig=...`;
`cloudcart.api.dev_blobs` serves them and calls `verify_signature`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import quote, urlencode

from cloudcart.core.errors import BlobError, BlobNotFound
from cloudcart.core.files import create_private_file_once
from cloudcart.core.ports.blobs import Blob, BlobProperties, BlobStore, SignedUrl
from cloudcart.core.settings import Settings

Permission = Literal["r", "w"]

# Azure's container naming rules: 3-63 chars, lowercase letters, digits and single hyphens,
# starting and ending with a letter or digit.
_CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_MAX_NAME_LENGTH = 1024
_KEY_FILE = Path("keys") / "blob-signing.key"


class InvalidSignature(BlobError):
    """A signed URL was tampered with, expired, or used for the wrong operation."""


class ContainerNotFound(BlobError):
    """A write went to a container that `ensure_containers` never created."""


def validate_container(container: str) -> None:
    """Raise ValueError unless `container` is a valid (Azure-compatible) container name."""
    if not _CONTAINER_RE.match(container):
        raise ValueError(
            f"invalid container name {container!r}: use 3-63 lowercase letters, digits and "
            "single hyphens, starting and ending with a letter or digit"
        )


def validate_blob_name(name: str) -> None:
    """Raise ValueError for blob names that could escape the container folder.

    Rejects empty names, absolute paths, backslashes, control characters and `.`/`..` or
    empty path segments.
    """
    if not name or len(name) > _MAX_NAME_LENGTH:
        raise ValueError(f"invalid blob name {name!r}: must be 1-{_MAX_NAME_LENGTH} characters")
    if "\\" in name:
        raise ValueError(f"invalid blob name {name!r}: backslashes are not allowed")
    if name.startswith("/"):
        raise ValueError(f"invalid blob name {name!r}: absolute paths are not allowed")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise ValueError(f"invalid blob name {name!r}: control characters are not allowed")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(
                f"invalid blob name {name!r}: empty, '.' and '..' path segments are not allowed"
            )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _new_etag() -> str:
    # Same shape as Blob Storage's ETags; random so that every write gets a new one, even when
    # the bytes are unchanged (what optimistic concurrency needs).
    return f'"0x{secrets.token_hex(8).upper()}"'


@dataclass
class StagedBlob:
    """An upload in progress (see `LocalBlobStore.staged_upload`).

    Write the bytes to `file`; when the `with` block ends without an error the blob is
    committed and `properties` is set.
    """

    file: BinaryIO
    size: int = 0
    properties: BlobProperties | None = field(default=None)

    def write(self, chunk: bytes) -> None:
        """Append a chunk of the blob's bytes."""
        self.file.write(chunk)
        self.size += len(chunk)


class LocalBlobStore:
    """`BlobStore` on a local folder, with signed URLs for the dev host's blob route."""

    def __init__(self, root: Path, signing_key: bytes, base_url: str) -> None:
        if not signing_key:
            raise ValueError("the blob signing key must not be empty")
        self.root = root
        self.base_url = base_url.rstrip("/")
        self._key = signing_key
        self._meta_root = root / ".meta"
        self._staging = root / ".staging"
        # Serialises the two renames of a write (bytes, then metadata) against readers in
        # this process, so a reader never pairs new bytes with old metadata.
        self._lock = threading.RLock()
        self._staging.mkdir(parents=True, exist_ok=True)

    # --- paths -------------------------------------------------------------------------

    def _container_dir(self, container: str) -> Path:
        validate_container(container)
        return self.root / container

    def _paths(self, container: str, name: str) -> tuple[Path, Path]:
        validate_container(container)
        validate_blob_name(name)
        return self.root / container / name, self._meta_root / container / f"{name}.json"

    def _require_container(self, container: str) -> Path:
        folder = self._container_dir(container)
        if not folder.is_dir():
            raise ContainerNotFound(f"container {container!r} does not exist")
        return folder

    # --- reading -----------------------------------------------------------------------

    def _read_meta(self, container: str, name: str, meta_path: Path) -> dict[str, str]:
        try:
            raw = meta_path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(f"blob {container}/{name} does not exist") from None
        meta: dict[str, str] = json.loads(raw)
        return meta

    def _properties(
        self, container: str, name: str, meta: Mapping[str, str], size: int
    ) -> BlobProperties:
        return BlobProperties(
            container=container,
            name=name,
            size=size,
            content_type=meta["content_type"],
            etag=meta["etag"],
            last_modified=datetime.fromisoformat(meta["last_modified"]),
        )

    def open_blob(self, container: str, name: str) -> tuple[BinaryIO, BlobProperties]:
        """Open a blob for streaming: its open file (the caller closes it) and properties.

        The file handle stays valid (and consistent with the properties) even if the blob is
        overwritten or deleted while it is being read. Raises BlobNotFound.
        """
        data_path, meta_path = self._paths(container, name)
        with self._lock:
            meta = self._read_meta(container, name, meta_path)
            try:
                handle = data_path.open("rb")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise BlobNotFound(f"blob {container}/{name} does not exist") from None
        try:
            size = os.fstat(handle.fileno()).st_size
        except OSError:
            handle.close()
            raise
        return handle, self._properties(container, name, meta, size)

    def get(self, container: str, name: str) -> Blob:
        """Read a blob. Raises BlobNotFound."""
        handle, props = self.open_blob(container, name)
        with handle:
            return Blob(data=handle.read(), properties=props)

    def properties(self, container: str, name: str) -> BlobProperties:
        """Size, type and ETag without the bytes. Raises BlobNotFound."""
        handle, props = self.open_blob(container, name)
        handle.close()
        return props

    # --- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def staged_upload(
        self, container: str, name: str, *, content_type: str
    ) -> Iterator[StagedBlob]:
        """Write a blob in chunks; it replaces the old one only when the block ends cleanly.

        On an exception the partial upload is discarded and the old blob (if any) is kept.
        Raises ValueError for invalid names and BlobError if the container does not exist.
        """
        if not content_type:
            raise ValueError("content_type must not be empty")
        data_path, meta_path = self._paths(container, name)
        self._require_container(container)
        fd, tmp_name = tempfile.mkstemp(dir=self._staging, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                staged = StagedBlob(file=handle)
                yield staged
                handle.flush()
                os.fsync(handle.fileno())
            staged.properties = self._commit(
                container, name, tmp, data_path, meta_path, content_type, staged.size
            )
        finally:
            tmp.unlink(missing_ok=True)

    def _commit(
        self,
        container: str,
        name: str,
        tmp: Path,
        data_path: Path,
        meta_path: Path,
        content_type: str,
        size: int,
    ) -> BlobProperties:
        meta = {
            "content_type": content_type,
            "etag": _new_etag(),
            "last_modified": datetime.now(UTC).isoformat(),
        }
        fd, meta_tmp_name = tempfile.mkstemp(dir=self._staging, prefix="meta-")
        meta_tmp = Path(meta_tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(meta, handle)
            with self._lock:
                try:
                    data_path.parent.mkdir(parents=True, exist_ok=True)
                    meta_path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, data_path)
                    os.replace(meta_tmp, meta_path)
                except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                    # A folder tree cannot hold both `a` and `a/b`; Blob Storage can.
                    raise BlobError(
                        f"blob {container}/{name} clashes with another blob's path: {exc}"
                    ) from exc
        finally:
            meta_tmp.unlink(missing_ok=True)
        return self._properties(container, name, meta, size)

    def put(self, container: str, name: str, data: bytes, *, content_type: str) -> BlobProperties:
        """Write (or overwrite) a blob atomically."""
        with self.staged_upload(container, name, content_type=content_type) as staged:
            staged.write(data)
        assert staged.properties is not None
        return staged.properties

    def delete(self, container: str, name: str) -> None:
        """Delete a blob. Raises BlobNotFound."""
        data_path, meta_path = self._paths(container, name)
        with self._lock:
            try:
                meta_path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                raise BlobNotFound(f"blob {container}/{name} does not exist") from None
            data_path.unlink(missing_ok=True)
        self._prune_empty_dirs(data_path.parent, self.root / container)
        self._prune_empty_dirs(meta_path.parent, self._meta_root / container)

    def _prune_empty_dirs(self, folder: Path, stop: Path) -> None:
        # Keeps `a/b/c` deletions from leaving empty `a/b` folders that would block a
        # later blob named `a/b`.
        while folder != stop and stop in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def ensure_containers(self, names: list[str]) -> None:
        """Create container folders if missing."""
        for container in names:
            self._container_dir(container).mkdir(parents=True, exist_ok=True)

    def check(self) -> None:
        """Raise BlobError if the blob folder is not writable."""
        try:
            with tempfile.TemporaryFile(dir=self._staging):
                pass
        except OSError as exc:
            raise BlobError(f"blob folder {self.root} is not writable: {exc}") from exc

    # --- signed URLs -------------------------------------------------------------------

    def _signature(
        self, permission: str, expiry: str, container: str, name: str, content_type: str
    ) -> str:
        # Newline-separated like Azure's string-to-sign; none of the fields can hold a newline
        # (names reject control characters, the others are ours or checked below).
        message = "\n".join((permission, expiry, container, name, content_type))
        return _b64url(hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).digest())

    def _signed_url(
        self, container: str, name: str, permission: Permission, expires_in: int, content_type: str
    ) -> tuple[str, datetime]:
        validate_container(container)
        validate_blob_name(name)
        if any(ord(ch) < 0x20 for ch in content_type):
            raise ValueError("content_type must not contain control characters")
        expiry = int(time.time()) + expires_in
        params = {"sp": permission, "se": str(expiry)}
        if content_type:
            params["rsct"] = content_type
        params["sig"] = self._signature(permission, str(expiry), container, name, content_type)
        path = f"/dev/blobs/{quote(container, safe='')}/{quote(name, safe='/')}"
        return f"{self.base_url}{path}?{urlencode(params)}", datetime.fromtimestamp(expiry, UTC)

    def upload_url(
        self, container: str, name: str, *, content_type: str, expires_in: int = 900
    ) -> SignedUrl:
        """A URL the client PUTs the blob's bytes to, with the returned headers.

        Only this container/name, only with this exact Content-Type, until it expires.
        """
        if not content_type:
            raise ValueError("content_type must not be empty")
        url, expires_at = self._signed_url(container, name, "w", expires_in, content_type)
        return SignedUrl(
            url=url,
            method="PUT",
            expires_at=expires_at,
            headers={"Content-Type": content_type, "x-ms-blob-type": "BlockBlob"},
        )

    def read_url(self, container: str, name: str, *, expires_in: int = 3600) -> str:
        """A URL anyone can GET the blob from until it expires."""
        url, _ = self._signed_url(container, name, "r", expires_in, "")
        return url

    def verify_signature(
        self,
        container: str,
        name: str,
        params: Mapping[str, str],
        *,
        permission: Permission | None = None,
    ) -> None:
        """Check a signed URL's query parameters for this container/name.

        With `permission`, the URL must also grant exactly that (`r` or `w`). Raises
        InvalidSignature when the signature is missing, wrong, expired or for another
        operation. The signed content type (uploads) is `params["rsct"]`.
        """
        sp = params.get("sp", "")
        se = params.get("se", "")
        sig = params.get("sig", "")
        content_type = params.get("rsct", "")
        if sp not in ("r", "w") or not se or not sig:
            raise InvalidSignature("the URL is not signed (sp, se and sig are required)")
        # Every signed field is checked for shape first, so no two different requests can
        # produce the same newline-joined message (and so reuse one signature).
        if not se.isdigit() or any(ord(ch) < 0x20 for ch in content_type):
            raise InvalidSignature("the URL's signed parameters are malformed")
        try:
            validate_container(container)
            validate_blob_name(name)
        except ValueError as exc:
            raise InvalidSignature(str(exc)) from None
        expected = self._signature(sp, se, container, name, content_type)
        # Constant-time, so the signature cannot be found byte by byte from response times.
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")):
            raise InvalidSignature("the URL's signature does not match")
        if int(se) < time.time():
            raise InvalidSignature("the URL has expired")
        if permission is not None and sp != permission:
            operation = "reading" if permission == "r" else "writing"
            raise InvalidSignature(f"the URL does not grant {operation}")


def _load_or_create_key(data_dir: Path) -> bytes:
    """The signing key in `data_dir/keys/blob-signing.key`, created (0600) on first use."""
    key_path = data_dir / _KEY_FILE
    create_private_file_once(key_path, lambda: _b64url(secrets.token_bytes(32)).encode())
    key = key_path.read_text(encoding="ascii").strip()
    if not key:
        raise BlobError(f"blob signing key file {key_path} is empty")
    return key.encode("ascii")


def from_settings(settings: Settings) -> BlobStore:
    """The embedded blob store of these settings (folder `<data_dir>/blobs`)."""
    if settings.blob_signing_key is not None:
        key = settings.blob_signing_key.get_secret_value().encode("utf-8")
    else:
        key = _load_or_create_key(settings.data_dir)
    return LocalBlobStore(settings.data_dir / "blobs", key, settings.public_base_url)
