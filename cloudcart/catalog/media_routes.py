"""Admin media API: signed upload URLs and upload completion for product media.

`POST /api/admin/products/{productId}/media` declares an upload and answers with a signed
URL the client PUTs the bytes to (straight to blob storage); `POST .../media/{mediaId}/
complete` verifies the blob and attaches it to the product. See `cloudcart.catalog.media`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.responses import problem_responses
from cloudcart.catalog import media
from cloudcart.catalog.documents import MediaDocument
from cloudcart.identity.dependencies import Admin

router = APIRouter(prefix="/api/admin/products", tags=["media"])

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Product and media ids as they appear in blob names: no slashes, no `.`/`..` segments."""

ProductId = Annotated[str, Path(alias="productId", pattern=ID_PATTERN)]
MediaId = Annotated[str, Path(alias="mediaId", pattern=ID_PATTERN)]


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


_ACCEPTED_TYPES: list[JsonValue] = [*sorted(media.IMAGE_CONTENT_TYPES | media.VIDEO_CONTENT_TYPES)]


def _declaration_schema(kind: media.MediaKind) -> dict[str, Any]:
    return {
        "properties": {
            "kind": {"const": kind},
            "contentType": {"enum": sorted(media.CONTENT_TYPES[kind])},
            "size": {"maximum": media.MAX_BYTES[kind]},
        }
    }


class MediaUploadIn(_CamelModel):
    """What the client is about to upload."""

    # `media.check_declaration` refuses other types (415) and a type or size that does not
    # fit the kind (422); the document says the same.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"oneOf": [_declaration_schema("image"), _declaration_schema("video")]},
    )

    kind: Literal["image", "video"]
    content_type: str = Field(
        min_length=1,
        max_length=100,
        description="image/jpeg, image/png, image/webp (up to 20 MiB) or video/mp4, "
        "video/webm (up to 200 MiB).",
        json_schema_extra={"enum": _ACCEPTED_TYPES},
    )
    size: int = Field(gt=0, description="Exact size of the file in bytes.")
    file_name: str | None = Field(None, max_length=255, description="Original file name.")


class UploadInstructions(_CamelModel):
    """The request to send with the file's bytes as the body."""

    url: str
    method: str
    headers: dict[str, str] = Field(description="Send exactly these headers.")
    expires_at: datetime


class MediaUploadOut(_CamelModel):
    """A pending upload: upload the bytes, then call `.../media/{mediaId}/complete`."""

    media_id: str
    upload: UploadInstructions


class ThumbnailOut(_CamelModel):
    """One thumbnail size."""

    url: str
    width: int | None = None
    height: int | None = None


class MediaOut(_CamelModel):
    """A product's media item as storefronts see it."""

    id: str
    media_id: str
    kind: Literal["image", "video"]
    content_type: str
    status: str
    size: int
    url: str
    width: int | None = None
    height: int | None = None
    thumbnails: dict[str, ThumbnailOut] = Field(
        default_factory=dict,
        description="Filled in asynchronously for images (`w160`, `w480`, `w1024`); videos "
        "have none.",
    )


def _media_out(services: ServicesDep, product_id: str, entry: MediaDocument) -> MediaOut:
    [public] = media.media_urls({"media": [entry]}, services)
    return MediaOut(
        id=entry["id"],
        media_id=entry["id"],
        kind=entry["kind"],
        content_type=entry["contentType"],
        status=entry.get("status", "ready"),
        size=entry["size"],
        url=public["url"],
        width=entry.get("width"),
        height=entry.get("height"),
        thumbnails={k: ThumbnailOut(**v) for k, v in public["thumbnails"].items()},
    )


@router.post(
    "/{productId}/media",
    status_code=201,
    response_model=MediaUploadOut,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 404, 415),
    summary="Request a signed upload URL for a product image or video",
)
def create_media_upload(
    product_id: ProductId, body: MediaUploadIn, services: ServicesDep, _admin: Admin
) -> MediaUploadOut:
    """Declare an upload; the answer says where and how to PUT the bytes (valid 15 min)."""
    ticket = media.request_upload(
        services,
        product_id,
        kind=body.kind,
        content_type=body.content_type,
        size=body.size,
        file_name=body.file_name,
    )
    return MediaUploadOut(
        media_id=ticket.media_id,
        upload=UploadInstructions(
            url=ticket.url,
            method=ticket.method,
            headers=ticket.headers,
            expires_at=ticket.expires_at,
        ),
    )


@router.post(
    "/{productId}/media/{mediaId}/complete",
    response_model=MediaOut,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 404, 409, 412),
    summary="Verify an uploaded blob and attach it to the product",
)
def complete_media_upload(
    product_id: ProductId, media_id: MediaId, services: ServicesDep, _admin: Admin
) -> MediaOut:
    """Check the uploaded blob (type, size, a real image) and attach it. Idempotent."""
    entry = media.complete_upload(
        services, product_id, media_id, correlation_id=correlation_id.get()
    )
    return _media_out(services, product_id, entry)
