"""The payloads of the events the catalog publishes: `product.*`, `category.created` and
`media.uploaded`.

Each payload is a `TypedDict` whose members carry their constraints and descriptions;
`EVENT_SPECS` registers them, and docs/events/<type>.schema.json is rendered from it
(`python -m cloudcart.event_catalogue --write`).

pydantic reads `TypedDict`s from `typing_extensions` only on Python < 3.12.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from cloudcart.catalog.models import ATTRIBUTE_NAME_PATTERN, CATEGORY_ID_PATTERN, SKU_PATTERN
from cloudcart.core.events import EventSpec, Timestamp

CategoryId = Annotated[str, Field(pattern=CATEGORY_ID_PATTERN)]
Sku = Annotated[str, Field(pattern=SKU_PATTERN)]


class CategoryCreated(TypedDict):
    """The payload (`data`) of `category.created`."""

    id: Annotated[CategoryId, Field(description="The category (same as the envelope's `subject`).")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    parentId: Annotated[
        CategoryId | None, Field(description="The parent category, or null for a root.")
    ]


class Money(TypedDict):
    """An amount of money."""

    amount: Annotated[int, Field(ge=1, description="Minor units (paise, cents).")]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]


Attributes = Annotated[
    dict[Annotated[str, Field(pattern=ATTRIBUTE_NAME_PATTERN)], str | float | bool],
    Field(
        description="Typed attributes, camelCase names, scalar values; known ones normalised "
        '(`storage: "64 GB"`, `screenSize: "6.5 in"`).'
    ),
]


class Variant(TypedDict):
    """A variant of the product: one SKU."""

    sku: Sku
    attributes: Attributes
    price: Money
    compareAtPrice: Annotated[Money | None, Field(description="The 'was' price, or null.")]


class Media(TypedDict):
    """A verified image or video of the product."""

    id: Annotated[str, Field(min_length=1)]
    kind: Literal["image", "video"]
    contentType: str
    blob: NotRequired[str]
    thumbnails: NotRequired[dict[str, Any]]


class _Product(TypedDict):
    """The product as the API returns it (`public_product()` in `cloudcart/catalog/service.py`):
    no system or storage-only fields."""

    id: Annotated[
        str, Field(min_length=1, description="The product (same as the envelope's `subject`).")
    ]
    productId: Annotated[str, Field(min_length=1, description="Same as `id`.")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    slug: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,199}$")]
    brand: Annotated[str, Field(min_length=1, max_length=100)]
    categoryId: CategoryId
    description: Annotated[str, Field(max_length=5000)]
    attributes: Attributes
    variants: Annotated[list[Variant], Field(min_length=1, max_length=50)]
    media: Annotated[
        list[Media], Field(description="Verified images and videos (see `media.uploaded`).")
    ]
    minPrice: Annotated[Money, Field(description="The lowest variant price.")]
    createdAt: Annotated[Timestamp, Field(description="UTC, ISO 8601.")]
    updatedAt: Annotated[Timestamp, Field(description="UTC, ISO 8601.")]


class ProductCreated(_Product):
    """The product as the API returns it (`public_product()` in `cloudcart/catalog/service.py`):
    no system or storage-only fields."""

    status: Literal["draft", "active", "archived"]


class ProductUpdated(_Product):
    """The product as the API returns it (`public_product()` in `cloudcart/catalog/service.py`):
    no system or storage-only fields."""

    status: Literal["draft", "active", "archived"]
    previousPrices: NotRequired[
        Annotated[
            dict[Sku, Money],
            Field(
                description="Each SKU's price before the change (the variants the product had "
                "then), so a consumer sees a price change without keeping prices of its own. "
                "Absent from events written before it existed."
            ),
        ]
    ]


class ProductArchived(_Product):
    """The product as the API returns it (`public_product()` in `cloudcart/catalog/service.py`):
    no system or storage-only fields."""

    status: Literal["archived"]


class MediaUploaded(TypedDict):
    """The payload (`data`) of `media.uploaded`."""

    productId: Annotated[str, Field(min_length=1, description="The product the media belongs to.")]
    mediaId: Annotated[
        str, Field(min_length=1, description="Id of the media entry on the product.")
    ]
    blob: Annotated[
        str,
        Field(
            pattern=r"^products/[^/]+/[^/]+/original$",
            description="Name of the original in the `media` blob container.",
        ),
    ]
    contentType: Annotated[
        Literal["image/jpeg", "image/png", "image/webp", "video/mp4", "video/webm"],
        Field(description="The verified content type of the original."),
    ]
    kind: Literal["image", "video"]


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(
        "product.created",
        1,
        "A product was created (`POST /api/admin/products`, seed data). The envelope's "
        "`subject` is the product id; `data` is the whole product. The search indexer reads it.",
        ProductCreated,
    ),
    EventSpec(
        "product.updated",
        1,
        "A product's content was replaced (`PUT /api/admin/products/{productId}`) and it did "
        "not move to `archived` by it (that is `product.archived`). The envelope's `subject` "
        "is the product id; `data` is the whole product after the change.",
        ProductUpdated,
    ),
    EventSpec(
        "product.archived",
        1,
        "A product was archived (hidden from customers, kept for orders), by `DELETE "
        "/api/admin/products/{productId}` or by an update that set `status: archived`. The "
        "envelope's `subject` is the product id; `data` is the whole product after the change.",
        ProductArchived,
    ),
    EventSpec(
        "category.created",
        1,
        "A category was created (`POST /api/admin/categories`, seed data). The envelope's "
        "`subject` is the category id.",
        CategoryCreated,
    ),
    EventSpec(
        "media.uploaded",
        1,
        "An uploaded image or video was verified and attached to a product (`POST "
        "/api/admin/products/{productId}/media/{mediaId}/complete`). The envelope's `subject` "
        "is the product id. The `media-thumbnails` subscription makes thumbnails of images; "
        "videos get none.",
        MediaUploaded,
    ),
)
"""The event types the catalog publishes."""
