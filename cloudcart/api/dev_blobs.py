"""The dev host's blob endpoint: what Blob Storage's SAS URLs are for the embedded adapter.

`LocalBlobStore.upload_url` / `read_url` point here. Clients PUT and GET exactly as they do
against Azure (same method, same headers), so storefront code has one upload path.
Mounted only when the blobs port is embedded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.composition import Services
from cloudcart.core.blobs.embedded import (
    ContainerNotFound,
    InvalidSignature,
    LocalBlobStore,
    Permission,
)
from cloudcart.core.errors import BlobError, BlobNotFound

# Blob Storage takes up to ~5 GiB in one Put Blob; product media needs far less, and a dev
# host should not fill the disk because of one runaway client.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# Browsers may cache a read URL's bytes, but never beyond the URL's own expiry.
_MAX_CACHE_SECONDS = 3600

router = APIRouter(prefix="/dev/blobs", include_in_schema=False)


def _store(services: Services) -> LocalBlobStore:
    store = services.blobs
    if not isinstance(store, LocalBlobStore):
        raise Problem(404, "Not found", "The dev blob endpoint serves only the embedded adapter.")
    return store


def _verify(
    store: LocalBlobStore, container: str, name: str, request: Request, permission: Permission
) -> dict[str, str]:
    params = dict(request.query_params)
    try:
        store.verify_signature(container, name, params, permission=permission)
    except InvalidSignature as exc:
        raise Problem.of("invalid-signature", str(exc)) from exc
    return params


@router.put("/{container}/{name:path}", status_code=201)
async def upload_blob(
    container: str,
    name: str,
    request: Request,
    services: ServicesDep,
    content_type: Annotated[str | None, Header()] = None,
    x_ms_blob_type: Annotated[str | None, Header()] = None,
    content_length: Annotated[int | None, Header()] = None,
) -> Response:
    """Store the request body as the blob, if the signed URL allows writing it."""
    store = _store(services)
    params = _verify(store, container, name, request, "w")
    signed_type = params.get("rsct", "")
    if content_type != signed_type:
        raise Problem.of(
            "content-type-mismatch", f"This URL accepts only Content-Type {signed_type!r}."
        )
    if x_ms_blob_type != "BlockBlob":
        # Blob Storage requires it on Put Blob; requiring it here too keeps clients honest.
        raise Problem.of("missing-blob-type", "Send the header x-ms-blob-type: BlockBlob.")
    too_large = Problem.of("blob-too-large", f"Blobs are limited to {MAX_UPLOAD_BYTES} bytes here.")
    if content_length is not None and content_length > MAX_UPLOAD_BYTES:
        raise too_large
    try:
        with store.staged_upload(container, name, content_type=signed_type) as staged:
            async for chunk in request.stream():
                if staged.size + len(chunk) > MAX_UPLOAD_BYTES:
                    raise too_large
                # Disk writes off the event loop so one upload does not stall other requests.
                await run_in_threadpool(staged.write, chunk)
    except ContainerNotFound as exc:
        raise Problem.of("container-not-found", str(exc)) from exc
    except BlobError as exc:
        raise Problem.of("blob-name-clash", str(exc)) from exc
    props = staged.properties
    assert props is not None
    return Response(
        status_code=201,
        headers={
            "ETag": props.etag,
            "Last-Modified": format_datetime(props.last_modified, usegmt=True),
        },
    )


@router.get("/{container}/{name:path}")
def read_blob(container: str, name: str, request: Request, services: ServicesDep) -> Response:
    """Serve the blob's bytes, if the signed URL allows reading it."""
    store = _store(services)
    params = _verify(store, container, name, request, "r")
    max_age = max(0, min(_MAX_CACHE_SECONDS, int(params["se"]) - int(time.time())))
    try:
        handle, props = store.open_blob(container, name)
    except BlobNotFound as exc:
        raise Problem.of("blob-not-found", str(exc)) from exc
    headers = {
        "ETag": props.etag,
        "Last-Modified": format_datetime(props.last_modified, usegmt=True),
        "Cache-Control": f"private, max-age={max_age}",
        "Content-Length": str(props.size),
    }
    if request.headers.get("if-none-match") == props.etag:
        handle.close()
        headers.pop("Content-Length")
        return Response(status_code=304, headers=headers)

    def chunks() -> Iterator[bytes]:
        # Starlette iterates a sync generator in a worker thread; the handle is closed when
        # the body is sent or the client goes away.
        try:
            while chunk := handle.read(_READ_CHUNK):
                yield chunk
        finally:
            handle.close()

    return StreamingResponse(chunks(), media_type=props.content_type, headers=headers)
