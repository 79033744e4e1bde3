"""The blobs port contract: every adapter must pass every test here."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from cloudcart.core.errors import BlobError, BlobNotFound
from cloudcart.core.ports.blobs import BlobStore

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def test_put_then_get_returns_bytes_and_properties(blob_store: BlobStore, container: str) -> None:
    written = blob_store.put(container, "products/p1/m1.jpg", JPEG, content_type="image/jpeg")

    blob = blob_store.get(container, "products/p1/m1.jpg")

    assert blob.data == JPEG
    assert blob.properties.size == len(JPEG)
    assert blob.properties.content_type == "image/jpeg"
    assert blob.properties.container == container
    assert blob.properties.name == "products/p1/m1.jpg"
    assert blob.properties.etag == written.etag
    assert written.etag
    assert written.size == len(JPEG)
    assert blob.properties.last_modified.tzinfo is not None
    assert abs((datetime.now(UTC) - blob.properties.last_modified).total_seconds()) < 120


def test_properties_without_bytes(blob_store: BlobStore, container: str) -> None:
    written = blob_store.put(container, "doc.pdf", b"%PDF-1.7", content_type="application/pdf")

    props = blob_store.properties(container, "doc.pdf")

    assert (props.name, props.size, props.content_type, props.etag) == (
        "doc.pdf",
        8,
        "application/pdf",
        written.etag,
    )


def test_empty_blob(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "empty.txt", b"", content_type="text/plain")

    blob = blob_store.get(container, "empty.txt")

    assert blob.data == b""
    assert blob.properties.size == 0


def test_overwrite_replaces_bytes_type_and_etag(blob_store: BlobStore, container: str) -> None:
    first = blob_store.put(container, "a.bin", b"one", content_type="application/octet-stream")
    second = blob_store.put(container, "a.bin", b"second", content_type="text/plain")

    blob = blob_store.get(container, "a.bin")

    assert blob.data == b"second"
    assert blob.properties.content_type == "text/plain"
    assert second.etag != first.etag
    assert blob.properties.etag == second.etag


def test_same_bytes_rewritten_get_a_new_etag(blob_store: BlobStore, container: str) -> None:
    first = blob_store.put(container, "same.txt", b"x", content_type="text/plain")
    second = blob_store.put(container, "same.txt", b"x", content_type="text/plain")

    assert first.etag != second.etag


def test_delete_removes_the_blob(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "gone/soon.txt", b"bye", content_type="text/plain")

    blob_store.delete(container, "gone/soon.txt")

    with pytest.raises(BlobNotFound):
        blob_store.get(container, "gone/soon.txt")
    # The name is free again.
    blob_store.put(container, "gone", b"file", content_type="text/plain")
    assert blob_store.get(container, "gone").data == b"file"


@pytest.mark.parametrize("operation", ["get", "properties", "delete"])
def test_missing_blob_raises_blob_not_found(
    blob_store: BlobStore, container: str, operation: str
) -> None:
    with pytest.raises(BlobNotFound):
        getattr(blob_store, operation)(container, "nope.txt")


def test_missing_container_reads_as_not_found(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        blob_store.get("no-such-container-x1", "a.txt")


def test_write_to_missing_container_is_a_blob_error(blob_store: BlobStore) -> None:
    with pytest.raises(BlobError) as caught:
        blob_store.put("no-such-container-x2", "a.txt", b"a", content_type="text/plain")

    assert not isinstance(caught.value, BlobNotFound)


def test_ensure_containers_is_idempotent(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "kept.txt", b"kept", content_type="text/plain")

    blob_store.ensure_containers([container, container])
    blob_store.ensure_containers([container])

    assert blob_store.get(container, "kept.txt").data == b"kept"


def test_names_with_spaces_and_unicode(blob_store: BlobStore, container: str) -> None:
    name = "products/p 1/main image ü+%.jpg"
    blob_store.put(container, name, b"img", content_type="image/jpeg")

    assert blob_store.get(container, name).data == b"img"
    response = httpx.get(blob_store.read_url(container, name))
    assert response.status_code == 200
    assert response.content == b"img"


def test_check_passes(blob_store: BlobStore) -> None:
    blob_store.check()


# --- signed URLs ----------------------------------------------------------------------


def test_upload_url_put_stores_the_blob(blob_store: BlobStore, container: str) -> None:
    signed = blob_store.upload_url(container, "uploads/u1.png", content_type="image/png")

    assert signed.method == "PUT"
    assert signed.headers == {"Content-Type": "image/png", "x-ms-blob-type": "BlockBlob"}
    assert signed.expires_at > datetime.now(UTC)
    response = httpx.request(signed.method, signed.url, content=JPEG, headers=signed.headers)

    assert response.status_code == 201, response.text
    blob = blob_store.get(container, "uploads/u1.png")
    assert blob.data == JPEG
    assert blob.properties.content_type == "image/png"
    assert response.headers["ETag"] == blob.properties.etag


def test_upload_url_can_overwrite(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "u.txt", b"old", content_type="text/plain")
    signed = blob_store.upload_url(container, "u.txt", content_type="text/plain")

    response = httpx.put(signed.url, content=b"new", headers=signed.headers)

    assert response.status_code == 201, response.text
    assert blob_store.get(container, "u.txt").data == b"new"


def test_read_url_get_returns_the_bytes(blob_store: BlobStore, container: str) -> None:
    props = blob_store.put(container, "r/1.jpg", JPEG, content_type="image/jpeg")

    response = httpx.get(blob_store.read_url(container, "r/1.jpg"))

    assert response.status_code == 200, response.text
    assert response.content == JPEG
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["ETag"] == props.etag


def test_read_url_of_missing_blob_is_404(blob_store: BlobStore, container: str) -> None:
    response = httpx.get(blob_store.read_url(container, "missing.jpg"))

    assert response.status_code == 404


def test_expired_upload_url_is_refused(blob_store: BlobStore, container: str) -> None:
    signed = blob_store.upload_url(container, "late.txt", content_type="text/plain", expires_in=-60)

    response = httpx.put(signed.url, content=b"late", headers=signed.headers)

    assert response.status_code == 403
    with pytest.raises(BlobNotFound):
        blob_store.properties(container, "late.txt")


def test_expired_read_url_is_refused(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "old.txt", b"stale-bytes-42", content_type="text/plain")

    response = httpx.get(blob_store.read_url(container, "old.txt", expires_in=-60))

    assert response.status_code == 403
    assert b"stale-bytes-42" not in response.content


def test_read_url_cannot_write(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "ro.txt", b"original", content_type="text/plain")
    url = blob_store.read_url(container, "ro.txt")

    response = httpx.put(
        url, content=b"evil", headers={"Content-Type": "text/plain", "x-ms-blob-type": "BlockBlob"}
    )

    assert response.status_code == 403
    assert blob_store.get(container, "ro.txt").data == b"original"


def test_upload_url_cannot_read(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "wo.txt", b"secret", content_type="text/plain")
    signed = blob_store.upload_url(container, "wo.txt", content_type="text/plain")

    response = httpx.get(signed.url)

    assert response.status_code == 403
    assert b"secret" not in response.content


def test_upload_url_for_another_name_is_refused(blob_store: BlobStore, container: str) -> None:
    signed = blob_store.upload_url(container, "mine.txt", content_type="text/plain")
    other = _with_path(signed.url, urlsplit(signed.url).path.replace("mine.txt", "yours.txt"))

    response = httpx.put(other, content=b"x", headers=signed.headers)

    assert response.status_code == 403
    with pytest.raises(BlobNotFound):
        blob_store.properties(container, "yours.txt")


def test_tampered_expiry_is_refused(blob_store: BlobStore, container: str) -> None:
    signed = blob_store.upload_url(container, "t.txt", content_type="text/plain", expires_in=-60)
    query = dict(parse_qsl(urlsplit(signed.url).query))
    later = str(int(query["se"]) + 3600) if query["se"].isdigit() else "2099-01-01T00:00:00Z"

    response = httpx.put(_with_query(signed.url, se=later), content=b"x", headers=signed.headers)

    assert response.status_code == 403


def test_tampered_signature_is_refused(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "s.txt", b"s", content_type="text/plain")
    url = blob_store.read_url(container, "s.txt")
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]

    response = httpx.get(_with_query(url, sig=flipped))

    assert response.status_code == 403


def test_escalated_permission_is_refused(blob_store: BlobStore, container: str) -> None:
    blob_store.put(container, "p.txt", b"original", content_type="text/plain")
    url = blob_store.read_url(container, "p.txt")
    query = dict(parse_qsl(urlsplit(url).query))
    escalated = "w" if query["sp"] == "r" else "rcw"

    response = httpx.put(
        _with_query(url, sp=escalated),
        content=b"evil",
        headers={"Content-Type": "text/plain", "x-ms-blob-type": "BlockBlob"},
    )

    assert response.status_code == 403
    assert blob_store.get(container, "p.txt").data == b"original"
