"""Product media: signed direct uploads, verified completion, thumbnails and read URLs.

The flow, which keeps media bytes away from the app:

1. `request_upload` records a pending upload (a small `media-upload` document in the
   product's partition, so a pending upload never changes the product or its ETag) and
   returns a signed URL the client PUTs the bytes to, straight to blob storage.
2. `complete_upload` checks the blob against what was declared (it exists, same content
   type, same size, within the limit; images must really decode as the declared format),
   then attaches it to the product and writes a `media.uploaded` event through the outbox
   in one transactional batch. Completing twice answers the same result and writes no
   second event.
3. The `media-thumbnails` subscription (`cloudcart.catalog.thumbnails`) calls
   `make_thumbnails`, which writes WebP thumbnails next to the original and records them on
   the product's media entry. Videos get no thumbnails.
4. Product reads call `media_urls(product, services)` for long-lived read URLs (or CDN URLs
   when `MEDIA_CDN_BASE_URL` is set).

Blob names are stable: `products/{productId}/{mediaId}/original` and
`products/{productId}/{mediaId}/w{size}.webp`, so a CDN can cache them by path.
Pillow is imported only inside the functions that decode images, to keep cold starts fast.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import quote

from cloudcart.catalog.documents import (
    MediaContentType,
    MediaDocument,
    MediaUploadDocument,
    ProductDocument,
    ThumbnailDocument,
    as_document,
)
from cloudcart.catalog.events import MediaUploaded
from cloudcart.catalog.service import STOREFRONT_PAGES, ProductNotFound
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import (
    BatchFailed,
    BlobNotFound,
    DomainError,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.events import new_event
from cloudcart.core.ids import new_id
from cloudcart.core.outbox import timestamp, write_with_events
from cloudcart.core.ports.documents import BatchOp, Container, strip_system

if TYPE_CHECKING:
    from cloudcart.composition import Services
    from cloudcart.core.ports.blobs import BlobStore

logger = logging.getLogger(__name__)

MediaKind = Literal["image", "video"]

CATALOG_CONTAINER = "catalog"
MEDIA_CONTAINER = "media"
"""Blob container of product media (Bicep: `mediaContainerName` in storage.bicep)."""

MiB = 1024 * 1024
IMAGE_CONTENT_TYPES: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/webp"})
VIDEO_CONTENT_TYPES: frozenset[str] = frozenset({"video/mp4", "video/webm"})
MAX_IMAGE_BYTES = 20 * MiB
MAX_VIDEO_BYTES = 200 * MiB

CONTENT_TYPES: Mapping[MediaKind, frozenset[str]] = {
    "image": IMAGE_CONTENT_TYPES,
    "video": VIDEO_CONTENT_TYPES,
}
MAX_BYTES: Mapping[MediaKind, int] = {"image": MAX_IMAGE_BYTES, "video": MAX_VIDEO_BYTES}

# Pillow's format names, so an image is decoded only as the type it was declared as.
_PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}

THUMBNAIL_SIZES: tuple[int, ...] = (1024, 480, 160)
"""Long-edge sizes in pixels, largest first (each is scaled down from the previous one)."""
THUMBNAIL_CONTENT_TYPE = "image/webp"
_THUMBNAIL_QUALITY = 82

UPLOAD_URL_SECONDS = 900
"""How long an upload URL is valid: enough for a 200 MiB video on a slow mobile link."""

READ_URL_BUCKET_SECONDS = 86_400
READ_URL_MIN_SECONDS = 2 * 86_400
"""Read URLs expire at a day boundary at least two days out, so every read within the same
day gets the *same* URL (browser and CDN caches keep working) and a URL is always valid
for two to three days; that stays inside Azure's 7-day limit for user-delegation SAS."""

UPLOAD_KIND: Final = "media-upload"
MEDIA_UPLOADED = "media.uploaded"
_WRITE_ATTEMPTS = 8


class MediaError(DomainError):
    """Base of the media errors; each names its problem document (422 unless it says)."""

    status = 422
    title = "Media rejected"
    problem_type = "media-rejected"


class MediaNotFound(MediaError):
    """No upload with that media id was requested for this product."""

    status = 404
    title = "Media not found"
    problem_type = "media-not-found"


class UnsupportedMediaType(MediaError):
    """The declared content type is not one Cloudcart accepts for media."""

    status = 415
    title = "Unsupported Media Type"
    problem_type = "unsupported-media-type"


class MediaRejected(MediaError):
    """The declaration or the uploaded blob breaks a rule (size, kind, type, not an image)."""


class UploadMissing(MediaError):
    """`complete` was called before the client uploaded the blob."""

    status = 409
    title = "Upload missing"
    problem_type = "upload-missing"


@dataclass(frozen=True)
class UploadTicket:
    """What the client needs to upload: the media id and the signed request to send."""

    media_id: str
    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


def original_blob_name(product_id: str, media_id: str) -> str:
    """Blob name of an uploaded original."""
    return f"products/{product_id}/{media_id}/original"


def thumbnail_blob_name(product_id: str, media_id: str, size: int) -> str:
    """Blob name of one thumbnail size."""
    return f"products/{product_id}/{media_id}/w{size}.webp"


def _upload_record_id(media_id: str) -> str:
    return f"{UPLOAD_KIND}:{media_id}"


def _catalog(services: Services) -> Container:
    return services.documents.container(CATALOG_CONTAINER)


def _read_product(catalog: Container, product_id: str) -> ProductDocument:
    # Products are partitioned by their own id, so this is a point read.
    try:
        product = catalog.read(product_id, product_id)
    except NotFound:
        raise ProductNotFound(f"product {product_id!r} does not exist") from None
    if product.get("type", "product") != "product":
        raise ProductNotFound(f"product {product_id!r} does not exist")
    return cast(ProductDocument, product)


_containers_ready: weakref.WeakSet[Any] = weakref.WeakSet()


def _ensure_media_container(blobs: BlobStore) -> None:
    # Bicep creates the container in Azure; locally the blob folder starts empty. Once per
    # store object, so the hot path pays nothing after the first upload.
    if blobs not in _containers_ready:
        blobs.ensure_containers([MEDIA_CONTAINER])
        _containers_ready.add(blobs)


def check_declaration(kind: MediaKind, content_type: str, size: int) -> None:
    """Raise UnsupportedMediaType or MediaRejected unless the declaration is acceptable."""
    if content_type not in IMAGE_CONTENT_TYPES | VIDEO_CONTENT_TYPES:
        allowed = ", ".join(sorted(IMAGE_CONTENT_TYPES | VIDEO_CONTENT_TYPES))
        raise UnsupportedMediaType(f"content type {content_type!r} is not accepted; use {allowed}")
    if content_type not in CONTENT_TYPES[kind]:
        raise MediaRejected(f"content type {content_type!r} is not a {kind} type")
    if size <= 0:
        raise MediaRejected("size must be a positive number of bytes")
    if size > MAX_BYTES[kind]:
        raise MediaRejected(f"{kind}s are limited to {MAX_BYTES[kind]} bytes; got {size}")


def request_upload(
    services: Services,
    product_id: str,
    *,
    kind: MediaKind,
    content_type: str,
    size: int,
    file_name: str | None = None,
) -> UploadTicket:
    """Record a pending upload for the product and sign an upload URL for it.

    Raises UnsupportedMediaType, MediaRejected (bad declaration) or ProductNotFound.
    """
    check_declaration(kind, content_type, size)
    catalog = _catalog(services)
    _read_product(catalog, product_id)
    media_id = new_id("med_")
    blob = original_blob_name(product_id, media_id)
    record: MediaUploadDocument = {
        "id": _upload_record_id(media_id),
        "type": UPLOAD_KIND,
        "productId": product_id,
        "mediaId": media_id,
        "kind": kind,
        # check_declaration let only these types through.
        "contentType": cast(MediaContentType, content_type),
        "size": size,
        "fileName": file_name,
        "blob": blob,
        "status": "pending",
        "createdAt": timestamp(utcnow()),
        "pk": product_id,
    }
    catalog.create(as_document(record))
    _ensure_media_container(services.blobs)
    signed = services.blobs.upload_url(
        MEDIA_CONTAINER, blob, content_type=content_type, expires_in=UPLOAD_URL_SECONDS
    )
    return UploadTicket(
        media_id=media_id,
        url=signed.url,
        method=signed.method,
        headers=dict(signed.headers),
        expires_at=signed.expires_at,
    )


def inspect_image(data: bytes, content_type: str) -> tuple[int, int]:
    """Width and height of an image, decoded only as the declared format.

    Raises MediaRejected when the bytes are not a valid image of that type, or when it is
    a decompression bomb (far more pixels than any product photo needs).
    """
    from PIL import Image, UnidentifiedImageError

    pillow_format = _PILLOW_FORMATS.get(content_type)
    if pillow_format is None:
        raise MediaRejected(f"{content_type!r} is not an image type")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat it as an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
                width, height = image.size
                image.verify()
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
            OSError,
            SyntaxError,
            ValueError,
        ) as exc:
            raise MediaRejected(
                f"the uploaded blob is not a valid {content_type} image ({exc})"
            ) from None
    if width <= 0 or height <= 0:
        raise MediaRejected("the uploaded image has no pixels")
    return width, height


def _verify_blob(blobs: BlobStore, record: MediaUploadDocument) -> MediaDocument:
    """Check the uploaded blob against the declaration; the media entry for the product."""
    blob = str(record["blob"])
    kind: MediaKind = record["kind"]
    declared_type = str(record["contentType"])
    declared_size = int(record["size"])
    try:
        props = blobs.properties(MEDIA_CONTAINER, blob)
    except BlobNotFound:
        raise UploadMissing("nothing was uploaded for this media yet") from None

    def reject(reason: str) -> MediaRejected:
        # A blob that breaks the rules is deleted: it must never be served, and the client
        # starts over with a new upload.
        with contextlib.suppress(BlobNotFound):
            blobs.delete(MEDIA_CONTAINER, blob)
        return MediaRejected(reason)

    if props.content_type != declared_type:
        raise reject(
            f"the blob was uploaded as {props.content_type!r}, not the declared {declared_type!r}"
        )
    if props.size > MAX_BYTES[kind]:
        raise reject(f"the blob has {props.size} bytes; {kind}s are limited to {MAX_BYTES[kind]}")
    if props.size != declared_size:
        raise reject(f"the blob has {props.size} bytes, not the declared {declared_size}")
    entry: MediaDocument = {
        "id": record["mediaId"],
        "kind": kind,
        "contentType": record["contentType"],
        "blob": blob,
        "size": props.size,
        "fileName": record.get("fileName"),
        "status": "ready",
        "thumbnails": {},
        "createdAt": timestamp(utcnow()),
    }
    if kind == "image":
        data = blobs.get(MEDIA_CONTAINER, blob).data
        try:
            entry["width"], entry["height"] = inspect_image(data, declared_type)
        except MediaRejected as exc:
            raise reject(str(exc)) from None
    return entry


def _read_upload(catalog: Container, product_id: str, media_id: str) -> MediaUploadDocument:
    try:
        record = catalog.read(_upload_record_id(media_id), product_id)
    except NotFound:
        raise MediaNotFound(f"no upload {media_id!r} for product {product_id!r}") from None
    if record.get("type") != UPLOAD_KIND:
        raise MediaNotFound(f"no upload {media_id!r} for product {product_id!r}")
    return cast(MediaUploadDocument, record)


def _with_media(product: ProductDocument, entry: MediaDocument) -> ProductDocument:
    updated = cast(ProductDocument, strip_system(product))
    media = [m for m in updated.get("media") or [] if m.get("id") != entry["id"]]
    media.append(entry.copy())
    updated["media"] = media
    return updated


def complete_upload(
    services: Services,
    product_id: str,
    media_id: str,
    *,
    correlation_id: str | None = None,
) -> MediaDocument:
    """Verify the uploaded blob and attach it to the product; the product's media entry.

    Writes the product, the upload record and a `media.uploaded` event in one batch. A
    repeated call (or a concurrent one that lost the race) returns the recorded entry and
    writes nothing. Raises ProductNotFound, MediaNotFound, UploadMissing, MediaRejected.
    """
    catalog = _catalog(services)
    record = _read_upload(catalog, product_id, media_id)
    if record.get("status") == "ready":
        return record["media"]
    _read_product(catalog, product_id)
    entry = _verify_blob(services.blobs, record)
    data: MediaUploaded = {
        "productId": product_id,
        "mediaId": media_id,
        "blob": entry["blob"],
        "contentType": entry["contentType"],
        "kind": entry["kind"],
    }
    event = new_event(MEDIA_UPLOADED, product_id, data, correlation_id=correlation_id)
    for _ in range(_WRITE_ATTEMPTS):
        product = _read_product(catalog, product_id)
        finished = {**strip_system(record), "status": "ready", "media": entry}
        finished["completedAt"] = timestamp(utcnow())
        operations = [
            BatchOp(
                "replace",
                document=as_document(_with_media(product, entry)),
                if_match=product["_etag"],
            ),
            BatchOp("replace", document=finished, if_match=record["_etag"]),
        ]
        try:
            write_with_events(catalog, product_id, operations, [event])
            return entry
        except BatchFailed as exc:
            if not isinstance(exc.cause, PreconditionFailed | NotFound):
                raise
        finally:
            STOREFRONT_PAGES.changed(services.documents)
        # The product was edited meanwhile, or another call completed this upload: look
        # again; a finished record means the other call's answer is ours too.
        record = _read_upload(catalog, product_id, media_id)
        if record.get("status") == "ready":
            return record["media"]
    raise PreconditionFailed(f"product {product_id!r} kept changing; retry the request")


# --- thumbnails --------------------------------------------------------------------------


def render_thumbnails(data: bytes) -> dict[int, tuple[bytes, int, int]]:
    """WebP thumbnails of an image for every `THUMBNAIL_SIZES` long edge: size -> (bytes,
    width, height). Never upscales: a small original gives thumbnails at its own size."""
    from PIL import Image, ImageOps

    rendered: dict[int, tuple[bytes, int, int]] = {}
    with Image.open(io.BytesIO(data)) as opened:
        # JPEG can decode at a reduced scale directly, much faster than full size.
        opened.draft("RGB", (THUMBNAIL_SIZES[0], THUMBNAIL_SIZES[0]))
        # Phones store portrait photos rotated plus an EXIF orientation tag.
        image = ImageOps.exif_transpose(opened)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        current = image.convert("RGBA" if has_alpha else "RGB")
    for size in THUMBNAIL_SIZES:
        current = current.copy()
        current.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        current.save(out, format="WEBP", quality=_THUMBNAIL_QUALITY, method=4)
        rendered[size] = (out.getvalue(), current.width, current.height)
    return rendered


def _find_media(product: ProductDocument, media_id: str) -> MediaDocument | None:
    for entry in product.get("media") or []:
        if entry.get("id") == media_id:
            return entry
    return None


def make_thumbnails(
    services: Services, product_id: str, media_id: str
) -> dict[str, ThumbnailDocument] | None:
    """Write the thumbnails of an image and record them on the product's media entry.

    Idempotent: a rerun overwrites the same blobs with the same images and, if the entry
    already records them, writes nothing. Returns the recorded thumbnails, or None when
    there is nothing to do (product or media gone, a video, original missing). Raises
    PreconditionFailed if the product keeps changing (the message is then retried).
    """
    catalog = _catalog(services)
    try:
        product = _read_product(catalog, product_id)
    except ProductNotFound:
        logger.warning("thumbnails: product %s is gone; nothing to do", product_id)
        return None
    entry = _find_media(product, media_id)
    if entry is None or entry.get("kind") != "image":
        logger.info("thumbnails: no image %s on product %s; nothing to do", media_id, product_id)
        return None
    try:
        original = services.blobs.get(MEDIA_CONTAINER, str(entry["blob"]))
    except BlobNotFound:
        logger.warning("thumbnails: original of %s/%s is missing", product_id, media_id)
        return None
    thumbnails: dict[str, ThumbnailDocument] = {}
    for size, (data, width, height) in render_thumbnails(original.data).items():
        name = thumbnail_blob_name(product_id, media_id, size)
        services.blobs.put(MEDIA_CONTAINER, name, data, content_type=THUMBNAIL_CONTENT_TYPE)
        thumbnails[f"w{size}"] = {
            "blob": name,
            "width": width,
            "height": height,
            "contentType": THUMBNAIL_CONTENT_TYPE,
        }
    for _ in range(_WRITE_ATTEMPTS):
        entry = _find_media(product, media_id)
        if entry is None:
            return None
        if entry.get("thumbnails") == thumbnails:
            return thumbnails
        updated = cast(ProductDocument, strip_system(product))
        target = _find_media(updated, media_id)
        assert target is not None
        target["thumbnails"] = thumbnails
        try:
            catalog.replace(as_document(updated), if_match=product["_etag"])
            return thumbnails
        except PreconditionFailed:
            # Someone edited the product between our read and write: merge into theirs.
            try:
                product = _read_product(catalog, product_id)
            except ProductNotFound:
                return None
        finally:
            STOREFRONT_PAGES.changed(services.documents)
    raise PreconditionFailed(f"product {product_id!r} kept changing while adding thumbnails")


# --- read URLs ---------------------------------------------------------------------------


def _read_url_lifetime(now: float) -> int:
    expiry = (int(now) // READ_URL_BUCKET_SECONDS + 1) * READ_URL_BUCKET_SECONDS
    expiry += READ_URL_MIN_SECONDS
    return expiry - int(now)


def _url(services: Services, blob: str, cdn_base: str | None) -> str:
    if cdn_base:
        return f"{cdn_base.rstrip('/')}/{quote(blob, safe='/')}"
    return services.blobs.read_url(
        MEDIA_CONTAINER, blob, expires_in=_read_url_lifetime(time.time())
    )


def media_urls(product: Mapping[str, Any], services: Services) -> list[dict[str, Any]]:
    """Public JSON of a product's ready media, with read URLs for originals and thumbnails.

    Each item: `{"id", "kind", "contentType", "url", "width"?, "height"?,
    "thumbnails": {"w160": {"url", "width", "height"}, ...}}` (thumbnails empty until the
    thumbnail function ran, and always for videos). With `MEDIA_CDN_BASE_URL` set, URLs are
    `{MEDIA_CDN_BASE_URL}/{blob name}`; otherwise signed read URLs that stay identical for a
    whole day, so caches can still key on them.
    """
    cdn_base = services.settings.media_cdn_base_url
    items: list[dict[str, Any]] = []
    for entry in product.get("media") or []:
        if entry.get("status", "ready") != "ready" or not entry.get("blob"):
            continue
        item: dict[str, Any] = {
            "id": entry["id"],
            "kind": entry.get("kind", "image"),
            "contentType": entry.get("contentType"),
            "url": _url(services, str(entry["blob"]), cdn_base),
        }
        if "width" in entry and "height" in entry:
            item["width"], item["height"] = entry["width"], entry["height"]
        item["thumbnails"] = {
            name: {
                "url": _url(services, str(thumb["blob"]), cdn_base),
                "width": thumb.get("width"),
                "height": thumb.get("height"),
            }
            for name, thumb in sorted((entry.get("thumbnails") or {}).items())
        }
        items.append(item)
    return items
