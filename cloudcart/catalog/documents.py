"""The exact shapes of the catalog's stored documents (the `catalog` container).

The `catalog` container (see `cloudcart.core.documents.registry`) is partitioned by a
synthetic `pk`: a product, its pending media uploads and its outbox events live in the
product's own partition (pk = product id); every category lives in the `categories`
partition. Outbox events are `cloudcart.core.outbox`'s, not described here.

These are `TypedDict`s, so reading or writing a document costs nothing at run time: the
service builds plain dicts and reads cast them (`cast(ProductDocument, ...)`). Each
forbids unknown members when pydantic validates it (`TypeAdapter(ProductDocument)`), which
tests/unit/catalog/test_document_types.py does for every document the real flows store.
"""

# No `from __future__ import annotations`: evaluated annotations keep each TypedDict's
# `__required_keys__` / `__optional_keys__` right at runtime.
from typing import Any, Literal, NotRequired, cast

from pydantic import ConfigDict, with_config

# pydantic needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

from cloudcart.core.ports.documents import Document

_FORBID = ConfigDict(extra="forbid")

ProductStatusName = Literal["draft", "active", "archived"]
"""A product's lifecycle state as stored (`cloudcart.catalog.models.ProductStatus`)."""

MediaKind = Literal["image", "video"]
"""What a media item is."""

MediaContentType = Literal["image/jpeg", "image/png", "image/webp", "video/mp4", "video/webm"]
"""The content types media are accepted in (`cloudcart.catalog.media.CONTENT_TYPES`)."""

AttributeValue = str | int | float | bool
"""An attribute value: attributes are scalars (`cloudcart.catalog.models.Attributes`)."""


@with_config(_FORBID)
class MoneyDocument(TypedDict):
    """An amount in minor units and its ISO 4217 currency (`cloudcart.catalog.models.Money`)."""

    amount: int
    currency: str


@with_config(_FORBID)
class VariantDocument(TypedDict):
    """One purchasable variant inside a product document."""

    sku: str
    attributes: dict[str, AttributeValue]
    price: MoneyDocument
    compareAtPrice: MoneyDocument | None


@with_config(_FORBID)
class ThumbnailDocument(TypedDict):
    """One WebP thumbnail of an image, recorded on its media entry by `make_thumbnails`."""

    blob: str
    width: int
    height: int
    contentType: str


@with_config(_FORBID)
class MediaDocument(TypedDict):
    """A verified image or video attached to a product (`complete_upload`).

    `width` and `height` are there for images only; `thumbnails` (keyed `w<size>`) stays
    empty until the thumbnail function ran, and always for videos.
    """

    id: str
    kind: MediaKind
    contentType: MediaContentType
    blob: str
    size: int
    fileName: str | None
    status: Literal["ready"]
    thumbnails: dict[str, ThumbnailDocument]
    createdAt: str
    width: NotRequired[int]
    height: NotRequired[int]


@with_config(_FORBID)
class ProductDocument(TypedDict):
    """A product, in the `catalog` container (pk = its id).

    `minPrice`, `brandKey` and `sortTitle` are derived from the content and stored only so
    that lists can filter and sort without reading every variant.
    """

    id: str
    pk: str
    type: Literal["product"]
    title: str
    slug: str
    brand: str
    categoryId: str
    description: str
    attributes: dict[str, AttributeValue]
    variants: list[VariantDocument]
    media: list[MediaDocument]
    status: ProductStatusName
    minPrice: MoneyDocument
    brandKey: str
    sortTitle: str
    createdAt: str
    updatedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class CategoryDocument(TypedDict):
    """A category, in the `catalog` container's `categories` partition."""

    id: str
    pk: Literal["categories"]
    type: Literal["category"]
    name: str
    parentId: str | None
    createdAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@with_config(_FORBID)
class MediaUploadDocument(TypedDict):
    """A declared media upload, in the `catalog` container (pk = the product's id, so it
    never changes the product or its ETag while pending).

    `complete_upload` turns it `ready`, recording the product's media entry and when.
    """

    id: str
    pk: str
    type: Literal["media-upload"]
    productId: str
    mediaId: str
    kind: MediaKind
    contentType: MediaContentType
    size: int
    fileName: str | None
    blob: str
    status: Literal["pending", "ready"]
    createdAt: str
    media: NotRequired[MediaDocument]
    completedAt: NotRequired[str]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


CatalogDocument = ProductDocument | CategoryDocument | MediaUploadDocument
"""Every document of the catalog's own (outbox events aside)."""


def as_document(document: CatalogDocument) -> Document:
    """The document as the documents port takes it (the same object: no copy)."""
    return cast(dict[str, Any], document)


__all__ = [
    "AttributeValue",
    "CatalogDocument",
    "CategoryDocument",
    "MediaContentType",
    "MediaDocument",
    "MediaKind",
    "MediaUploadDocument",
    "MoneyDocument",
    "ProductDocument",
    "ProductStatusName",
    "ThumbnailDocument",
    "VariantDocument",
    "as_document",
]
