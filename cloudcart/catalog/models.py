"""Request and response models of the catalog API (camelCase JSON, minor-unit money).

Validation that needs only the request lives here (lengths, formats, unique SKUs within
one product, compare-at price not below the price); validation that needs the store
(category exists, SKU free across the catalog) lives in `cloudcart.catalog.service`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from cloudcart.core.fields import NOT_BLANK_PATTERN, is_blank, json_integer

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CATEGORY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
ATTRIBUTE_NAME_PATTERN = r"^[a-z][A-Za-z0-9]{0,39}$"
SIZE_PATTERN = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([mMgGtT][bB])\s*$"
"""A storage or memory size in MB, GB or TB, any case and spacing (`64GB`, `8 gb`)."""
INCHES_PATTERN = r'^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:[iI][nN](?:[cC][hH](?:[eE][sS])?)?|")\s*$'
"""A length in inches (`6.5in`, `6.5 inch`, `6.5"`)."""
MAX_VARIANTS = 50
"""A product's variants live in one document; keep it far below Cosmos's 2 MB item limit."""


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be blank")
    return value


NotBlank = AfterValidator(_not_blank)
"""Refuses text that `NOT_BLANK_PATTERN` (which the document states) calls blank."""

_SIZE_UNITS = {"mb": "MB", "gb": "GB", "tb": "TB"}
# The documented patterns themselves, so the document and the checks cannot drift apart.
_SIZE = re.compile(SIZE_PATTERN)
_INCHES = re.compile(INCHES_PATTERN)
MAX_ATTRIBUTES = 46
"""Attributes of a product or variant: the six known ones and forty more."""


def normalize_size(value: str) -> str:
    """`"64GB"`, `"64 gb"`, `"64 GB"` -> `"64 GB"`; raises ValueError for anything else.

    One spelling in the store means filters, facets and search see one value.
    """
    match = _SIZE.match(value)
    if match is None:
        raise ValueError("must be a size like '64 GB' (MB, GB or TB)")
    return f"{match.group(1)} {_SIZE_UNITS[match.group(2).lower()]}"


def normalize_inches(value: str) -> str:
    """`"6.5in"`, `"6.5 inch"`, `'6.5"'` -> `"6.5 in"`; raises ValueError otherwise."""
    match = _INCHES.match(value)
    if match is None:
        raise ValueError("must be a length in inches like '6.5 in'")
    return f"{match.group(1)} in"


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ProductStatus(StrEnum):
    """Lifecycle of a product: only `active` products are visible to customers."""

    draft = "draft"
    active = "active"
    archived = "archived"


class Money(CamelModel):
    """An amount in minor units (paise for INR, cents for USD) and its ISO 4217 currency."""

    amount: int = Field(gt=0, le=10**12, description="Minor units, e.g. 2499000 = ₹24,990.00.")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217 code, three upper-case letters (`INR`)."
    )


AttributeValue = (
    Annotated[str, StringConstraints(min_length=1, max_length=200)] | int | float | bool
)


def _attributes_schema(schema: dict[str, Any]) -> None:
    # What `_extras` checks, so generated clients know it: camelCase names, scalar values.
    schema["propertyNames"] = {"pattern": ATTRIBUTE_NAME_PATTERN}
    schema["additionalProperties"] = {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 200},
            {"type": "number"},
            {"type": "boolean"},
        ]
    }
    schema["maxProperties"] = MAX_ATTRIBUTES


class Attributes(BaseModel):
    """Typed attributes. Known ones are validated and normalised (`"64GB"` -> `"64 GB"`);
    others are allowed with camelCase names and scalar values."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_attributes_schema)

    storage: str | None = Field(
        None, description="Storage size, e.g. `64 GB`.", json_schema_extra={"pattern": SIZE_PATTERN}
    )
    ram: str | None = Field(
        None, description="Memory size, e.g. `8 GB`.", json_schema_extra={"pattern": SIZE_PATTERN}
    )
    colour: str | None = Field(None, min_length=1, max_length=60)
    os: str | None = Field(None, min_length=1, max_length=60, description="`Android`, `iOS`, ...")
    screen_size: str | None = Field(
        None,
        alias="screenSize",
        description="Diagonal in inches, e.g. `6.5 in`.",
        json_schema_extra={"pattern": INCHES_PATTERN},
    )
    model: str | None = Field(None, min_length=1, max_length=120, description="Model name.")

    @field_validator("storage", "ram")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        return None if value is None else normalize_size(value)

    @field_validator("screen_size")
    @classmethod
    def _inches(cls, value: str | None) -> str | None:
        return None if value is None else normalize_inches(value)

    @model_validator(mode="after")
    def _extras(self) -> Attributes:
        extras = self.model_extra or {}
        # Counted as the document counts them: every name given, known or not, null or not.
        if len(self.model_fields_set) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        for name, value in extras.items():
            if not re.fullmatch(ATTRIBUTE_NAME_PATTERN, name):
                raise ValueError(f"attribute name {name!r} must be camelCase letters and digits")
            if isinstance(value, str):
                if not 1 <= len(value) <= 200:
                    raise ValueError(f"attribute {name!r} must be 1..200 characters")
            elif not isinstance(value, int | float | bool):
                raise ValueError(f"attribute {name!r} must be a string, number or boolean")
        return self

    def to_json(self) -> dict[str, Any]:
        """The attributes as stored: camelCase names, unset ones left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class VariantIn(CamelModel):
    """One purchasable variant of a product."""

    sku: Annotated[str, StringConstraints(pattern=SKU_PATTERN)] = Field(
        description="Stock keeping unit, unique across the catalog."
    )
    attributes: Attributes = Field(default_factory=Attributes)
    price: Money
    compare_at_price: Money | None = Field(
        None, description="The 'was' price shown struck through; at least `price`."
    )

    @model_validator(mode="after")
    def _compare_at(self) -> VariantIn:
        compare = self.compare_at_price
        if compare is not None:
            if compare.currency != self.price.currency:
                raise ValueError("compareAtPrice must be in the same currency as price")
            if compare.amount < self.price.amount:
                raise ValueError("compareAtPrice must be at least price")
        return self


class ProductIn(CamelModel):
    """A product as an admin creates or replaces it."""

    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NotBlank
    ] = Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN})
    slug: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,199}$")] | None = Field(
        None, description="URL slug; derived from the title when left out."
    )
    brand: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NotBlank
    ] = Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN})
    category_id: Annotated[str, StringConstraints(pattern=CATEGORY_ID_PATTERN)]
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    attributes: Attributes = Field(default_factory=Attributes)
    variants: list[VariantIn] = Field(
        min_length=1,
        max_length=MAX_VARIANTS,
        # Weaker than the rule (no two variants share a SKU), which JSON Schema cannot say.
        json_schema_extra={"uniqueItems": True},
        description="Each with its own SKU.",
    )
    status: ProductStatus = ProductStatus.draft

    @field_validator("variants")
    @classmethod
    def _unique_skus(cls, variants: list[VariantIn]) -> list[VariantIn]:
        seen: set[str] = set()
        for variant in variants:
            if variant.sku in seen:
                raise ValueError(f"SKU {variant.sku!r} appears twice in this product")
            seen.add(variant.sku)
        return variants


class Variant(CamelModel):
    """A variant as the API returns it."""

    sku: str
    attributes: dict[str, Any]
    price: Money
    compare_at_price: Money | None = None


class VariantWithAvailability(Variant):
    """A variant with its stock, on the public product page."""

    available: int = Field(description="Units that can be ordered now.")
    in_stock: bool


class Media(CamelModel):
    """An image or video attached to a product (see the media API)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    id: str
    kind: Literal["image", "video"]
    content_type: str
    blob: str | None = None
    thumbnails: dict[str, Any] = Field(default_factory=dict)


class Product(CamelModel):
    """A product as the API returns it (and as `product.*` events carry it)."""

    id: str
    product_id: str = Field(description="Same as `id`; the name search results use.")
    title: str
    slug: str
    brand: str
    category_id: str
    description: str
    attributes: dict[str, Any]
    variants: list[Variant]
    media: list[Media]
    status: ProductStatus
    min_price: Money = Field(description="The lowest variant price (list sorting).")
    created_at: str
    updated_at: str


class ProductDetail(Product):
    """A product on its public page: variants carry availability."""

    variants: list[VariantWithAvailability]  # type: ignore[assignment]


class ProductPage(CamelModel):
    """One page of products; pass `nextCursor` as `cursor` for the next one."""

    items: list[Product]
    next_cursor: str | None = None


class CategoryIn(CamelModel):
    """A new category; `parentId` must name an existing category (or be null for a root)."""

    id: Annotated[str, StringConstraints(pattern=CATEGORY_ID_PATTERN)]
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NotBlank
    ] = Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN})
    parent_id: Annotated[str, StringConstraints(pattern=CATEGORY_ID_PATTERN)] | None = None


class Category(CamelModel):
    """A category as stored and returned."""

    id: str
    name: str
    parent_id: str | None = None


class CategoryNode(Category):
    """A category with its sub-categories."""

    children: list[CategoryNode] = Field(default_factory=list)


class CategoryTree(CamelModel):
    """Every category, as a forest of root categories sorted by name."""

    items: list[CategoryNode]


StockFigure = Annotated[int, Field(ge=0, le=10**9), BeforeValidator(json_integer)]


class InventoryIn(CamelModel):
    """The stock an admin sets for one SKU: exactly one of `available` and `onHand`."""

    available: StockFigure | None = Field(
        None,
        description="Units available to order now; on hand becomes this plus what is reserved.",
    )
    on_hand: StockFigure | None = Field(
        None, description="Units in the warehouse that no paid order has taken."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["available"], "properties": {"available": {"type": "integer"}}},
                {"required": ["onHand"], "properties": {"onHand": {"type": "integer"}}},
            ]
        }
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> InventoryIn:
        if (self.available is None) == (self.on_hand is None):
            raise ValueError("give exactly one of available and onHand")
        return self


class Inventory(CamelModel):
    """Stock of one SKU: `available = max(0, onHand - reserved)`; `reserved` belongs to
    orders and is never set here; `shortfall` counts reserved units the warehouse lacks."""

    sku: str
    product_id: str
    on_hand: int
    reserved: int
    available: int
    shortfall: int
    updated_at: str | None


SortOrder = Literal["newest", "price_asc", "price_desc", "title"]
