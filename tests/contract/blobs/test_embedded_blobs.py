"""What only the embedded adapter and its dev route do: path safety, keys, the HTTP edge."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from cloudcart.api import dev_blobs
from cloudcart.composition import Services
from cloudcart.core.blobs import embedded
from cloudcart.core.blobs.embedded import InvalidSignature, LocalBlobStore
from cloudcart.core.errors import BlobError, BlobNotFound
from cloudcart.core.ports.blobs import BlobStore
from cloudcart.core.settings import Settings

from .conftest import DevServer, embedded_settings

BAD_NAMES = [
    "../escape.txt",
    "a/../../escape.txt",
    "a/./b.txt",
    "/etc/passwd",
    "a\\b.txt",
    "..\\escape.txt",
    "a//b.txt",
    "trailing/",
    "",
    "nul\x00byte",
    "new\nline",
]
BAD_CONTAINERS = ["..", ".meta", ".staging", "A-Upper", "a/b", "x", "a--b", "-ab", "ab-"]


@pytest.fixture
def served(dev_server: DevServer, tmp_path: Path) -> Iterator[LocalBlobStore]:
    """An embedded store behind the session's dev server, with a container `media`."""
    services = Services(embedded_settings(tmp_path, dev_server.base_url))
    dev_server.app.state.services = services
    store = services.blobs
    assert isinstance(store, LocalBlobStore)
    store.ensure_containers(["media"])
    yield store
    services.close()


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    """A store not behind any server (for the non-HTTP checks)."""
    local = LocalBlobStore(tmp_path / "blobs", b"k" * 32, "http://127.0.0.1:9")
    local.ensure_containers(["media"])
    return local


@pytest.mark.parametrize("name", BAD_NAMES)
def test_path_traversal_names_are_rejected(store: LocalBlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="invalid blob name"):
        store.put("media", name, b"x", content_type="text/plain")
    with pytest.raises(ValueError, match="invalid blob name"):
        store.get("media", name)
    with pytest.raises(ValueError, match="invalid blob name"):
        store.delete("media", name)
    with pytest.raises(ValueError, match="invalid blob name"):
        store.upload_url("media", name, content_type="text/plain")
    with pytest.raises(ValueError, match="invalid blob name"):
        store.read_url("media", name)


@pytest.mark.parametrize("container", BAD_CONTAINERS)
def test_bad_container_names_are_rejected(store: LocalBlobStore, container: str) -> None:
    with pytest.raises(ValueError, match="invalid container name"):
        store.ensure_containers([container])
    with pytest.raises(ValueError, match="invalid container name"):
        store.put(container, "a.txt", b"x", content_type="text/plain")


def test_nothing_is_written_outside_the_root(store: LocalBlobStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        store.put("media", "../../outside.txt", b"x", content_type="text/plain")

    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "blobs" / "outside.txt").exists()


def test_blob_bytes_live_under_container_folder(store: LocalBlobStore, tmp_path: Path) -> None:
    store.put("media", "products/p1/m1.jpg", b"jpeg", content_type="image/jpeg")

    assert (tmp_path / "blobs" / "media" / "products" / "p1" / "m1.jpg").read_bytes() == b"jpeg"


def test_failed_staged_upload_keeps_the_old_blob(store: LocalBlobStore, tmp_path: Path) -> None:
    store.put("media", "a.txt", b"old", content_type="text/plain")

    with (
        pytest.raises(RuntimeError),
        store.staged_upload("media", "a.txt", content_type="text/html") as staged,
    ):
        staged.write(b"half")
        raise RuntimeError("client went away")

    blob = store.get("media", "a.txt")
    assert (blob.data, blob.properties.content_type) == (b"old", "text/plain")
    assert list((tmp_path / "blobs" / ".staging").iterdir()) == []


def test_file_and_folder_name_clash_is_a_blob_error(store: LocalBlobStore) -> None:
    store.put("media", "a", b"file", content_type="text/plain")

    with pytest.raises(BlobError):
        store.put("media", "a/b", b"nested", content_type="text/plain")
    assert store.get("media", "a").data == b"file"


def test_concurrent_overwrites_never_mix_bytes_and_metadata(store: LocalBlobStore) -> None:
    versions = {b"plain text": "text/plain", b"<p>html</p>": "text/html"}
    store.put("media", "race.txt", b"plain text", content_type="text/plain")
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            for data, content_type in versions.items():
                store.put("media", "race.txt", data, content_type=content_type)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            blob = store.get("media", "race.txt")
            assert versions[blob.data] == blob.properties.content_type
            assert blob.properties.size == len(blob.data)
    finally:
        stop.set()
        thread.join()


# --- signing key -----------------------------------------------------------------------


def test_generated_signing_key_is_private_and_reused(tmp_path: Path) -> None:
    first = embedded.from_settings(Settings(data_dir=tmp_path))
    key_file = tmp_path / "keys" / "blob-signing.key"

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = embedded.from_settings(Settings(data_dir=tmp_path))
    assert isinstance(first, LocalBlobStore)
    assert isinstance(second, LocalBlobStore)
    url = first.read_url("media", "a.txt")
    params = dict(parse_qsl(urlsplit(url).query))
    second.verify_signature("media", "a.txt", params, permission="r")


def test_configured_signing_key_is_used(tmp_path: Path) -> None:
    configured = embedded.from_settings(
        Settings(data_dir=tmp_path, blob_signing_key=SecretStr("configured-key"))
    )
    generated = embedded.from_settings(Settings(data_dir=tmp_path / "other"))
    same_key = LocalBlobStore(tmp_path / "x", b"configured-key", "http://127.0.0.1:9")
    assert isinstance(configured, LocalBlobStore)
    assert isinstance(generated, LocalBlobStore)

    assert not (tmp_path / "keys").exists()
    params = dict(parse_qsl(urlsplit(configured.read_url("media", "a.txt")).query))
    same_key.verify_signature("media", "a.txt", params, permission="r")
    with pytest.raises(InvalidSignature, match="does not match"):
        generated.verify_signature("media", "a.txt", params, permission="r")


def test_verify_signature_checks_permission_and_shape(store: LocalBlobStore) -> None:
    params = dict(parse_qsl(urlsplit(store.read_url("media", "a.txt")).query))

    store.verify_signature("media", "a.txt", params, permission="r")
    with pytest.raises(InvalidSignature, match="does not grant writing"):
        store.verify_signature("media", "a.txt", params, permission="w")
    with pytest.raises(InvalidSignature, match="not signed"):
        store.verify_signature("media", "a.txt", {}, permission="r")
    with pytest.raises(InvalidSignature, match="malformed"):
        store.verify_signature("media", "a.txt", {**params, "se": "1e12"}, permission="r")
    with pytest.raises(InvalidSignature, match="does not match"):
        store.verify_signature("media", "b.txt", params, permission="r")


# --- the dev route ---------------------------------------------------------------------


def test_upload_with_another_content_type_is_refused(served: LocalBlobStore) -> None:
    signed = served.upload_url("media", "a.png", content_type="image/png")

    response = httpx.put(
        signed.url,
        content=b"<script>",
        headers={**signed.headers, "Content-Type": "text/html"},
    )

    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/content-type-mismatch")
    with pytest.raises(BlobNotFound):
        served.properties("media", "a.png")


def test_signed_content_type_cannot_be_swapped(served: LocalBlobStore) -> None:
    signed = served.upload_url("media", "a.png", content_type="image/png")
    url = signed.url.replace("rsct=image%2Fpng", "rsct=text%2Fhtml")
    assert url != signed.url

    response = httpx.put(
        url, content=b"<script>", headers={**signed.headers, "Content-Type": "text/html"}
    )

    assert response.status_code == 403
    assert response.json()["type"].endswith("/invalid-signature")


def test_upload_without_blob_type_header_is_refused(served: LocalBlobStore) -> None:
    signed = served.upload_url("media", "a.txt", content_type="text/plain")

    response = httpx.put(signed.url, content=b"x", headers={"Content-Type": "text/plain"})

    assert response.status_code == 400


def test_upload_to_missing_container_is_404(served: LocalBlobStore) -> None:
    signed = served.upload_url("nowhere", "a.txt", content_type="text/plain")

    response = httpx.put(signed.url, content=b"x", headers=signed.headers)

    assert response.status_code == 404


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_upload_is_refused_and_discarded(
    served: LocalBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(dev_blobs, "MAX_UPLOAD_BYTES", 10)
    signed = served.upload_url("media", "big.bin", content_type="application/octet-stream")

    def body() -> Iterator[bytes]:
        yield b"123456"
        yield b"789012"

    content: bytes | Iterator[bytes] = body() if chunked else b"123456789012"
    response = httpx.put(signed.url, content=content, headers=signed.headers)

    assert response.status_code == 413
    with pytest.raises(BlobNotFound):
        served.properties("media", "big.bin")
    assert list((tmp_path / "blobs" / ".staging").iterdir()) == []


def test_upload_at_the_size_limit_is_accepted(
    served: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dev_blobs, "MAX_UPLOAD_BYTES", 10)
    signed = served.upload_url("media", "ten.bin", content_type="application/octet-stream")

    response = httpx.put(signed.url, content=b"0123456789", headers=signed.headers)

    assert response.status_code == 201
    assert served.get("media", "ten.bin").data == b"0123456789"


def test_read_sets_cache_headers_and_honours_if_none_match(served: LocalBlobStore) -> None:
    props = served.put("media", "c.txt", b"cached", content_type="text/plain")
    url = served.read_url("media", "c.txt", expires_in=120)

    response = httpx.get(url)
    assert response.status_code == 200
    cache_control = response.headers["Cache-Control"]
    assert cache_control.startswith("private, max-age=")
    assert 0 < int(cache_control.rsplit("=", 1)[1]) <= 120

    again = httpx.get(url, headers={"If-None-Match": props.etag})
    assert again.status_code == 304
    assert again.content == b""


def test_traversal_in_the_url_never_serves_files(
    served: LocalBlobStore, dev_server: DevServer, tmp_path: Path
) -> None:
    # A valid signature for a harmless name, replayed with a path that climbs out.
    params = urlsplit(served.read_url("media", "a.txt")).query
    for path in (
        "/dev/blobs/media/..%2F..%2Fkeys%2Fblob-signing.key",
        "/dev/blobs/media/%2E%2E/%2E%2E/keys/blob-signing.key",
        "/dev/blobs/..%2Fkeys/blob-signing.key",
    ):
        response = httpx.get(f"{dev_server.base_url}{path}?{params}")
        assert response.status_code in (403, 404), path
        assert (tmp_path / "keys" / "blob-signing.key").read_bytes() not in response.content


class _NotEmbeddedServices(Services):
    """Services whose blobs port is some other adapter (the dev route must not serve it)."""

    @property
    def blobs(self) -> BlobStore:
        return cast(BlobStore, object())


def test_route_is_404_when_blobs_are_not_embedded(dev_server: DevServer, tmp_path: Path) -> None:
    dev_server.app.state.services = _NotEmbeddedServices(Settings(data_dir=tmp_path))

    response = httpx.get(f"{dev_server.base_url}/dev/blobs/media/a.txt?sp=r&se=1&sig=x")

    assert response.status_code == 404


def test_key_file_is_not_world_readable_even_with_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        embedded.from_settings(Settings(data_dir=tmp_path))
    finally:
        os.umask(old)

    assert stat.S_IMODE((tmp_path / "keys" / "blob-signing.key").stat().st_mode) == 0o600
