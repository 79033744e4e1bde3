"""Catalog HTTP API: `admin_router` (Admin role) and `public_router` (anyone).

The public product page is built for a CDN: a strong ETag that is a hash of the exact
body, `Cache-Control` with a short max-age and stale-while-revalidate, and 304 on a
matching If-None-Match so revalidation costs no body. Admin writes use the document's
own ETag for If-Match (optimistic concurrency), returned on every admin response.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Query, Response, status

from cloudcart.api.deps import ServicesDep, cached_read, run_read
from cloudcart.api.logging import correlation_id
from cloudcart.api.responses import documented_string, problem_responses
from cloudcart.catalog.documents import ProductDocument
from cloudcart.catalog.media import media_urls
from cloudcart.catalog.models import (
    CATEGORY_ID_PATTERN,
    SKU_PATTERN,
    Category,
    CategoryIn,
    CategoryTree,
    Inventory,
    InventoryIn,
    Product,
    ProductDetail,
    ProductIn,
    ProductPage,
    SortOrder,
)
from cloudcart.catalog.service import (
    CURSOR_PATTERN,
    STOREFRONT_PAGES,
    CatalogService,
    ProductNotFound,
    StoredProduct,
    bare_etag,
    etag_matches,
    public_product,
)
from cloudcart.composition import Services
from cloudcart.identity.dependencies import Admin

PRODUCT_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"
LIST_CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=120"
CATEGORIES_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=600"

ProductIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]

IfMatchHeader = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The `ETag` of the product as last read; 412 `stale-etag` when it has "
        "changed since (or the value is not that ETag).",
        json_schema_extra=documented_string(),
    ),
]

admin_router = APIRouter(prefix="/api/admin", tags=["catalog admin"])
public_router = APIRouter(prefix="/api/catalog", tags=["catalog"])


def _service(services: ServicesDep) -> CatalogService:
    return CatalogService(services.documents, correlation_id=correlation_id.get())


def _admin_etag(product: StoredProduct) -> str:
    return f'"{bare_etag(product.etag)}"'


def _body_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- admin --------------------------------------------------------------------------------


@admin_router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=Product,
    responses=problem_responses(401, 403, 409),
    summary="Create a product",
)
def create_product(
    body: ProductIn, services: ServicesDep, response: Response, _: Admin
) -> dict[str, Any]:
    """Create a product (status defaults to `draft`); publishes `product.created`.

    422 when the category does not exist; 409 when a SKU belongs to another product.
    """
    product = _service(services).create_product(body)
    response.headers["Location"] = f"/api/admin/products/{product.document['id']}"
    response.headers["ETag"] = _admin_etag(product)
    return product.public


@admin_router.get(
    "/products/{productId}",
    response_model=Product,
    responses=problem_responses(401, 403, 404),
    summary="Read a product in any status",
)
def admin_get_product(
    product_id: Annotated[ProductIdPath, Path(alias="productId")],
    services: ServicesDep,
    response: Response,
    _: Admin,
) -> dict[str, Any]:
    """The product whatever its status, with the `ETag` to send as If-Match on a write."""
    product = _service(services).get_product(product_id)
    response.headers["ETag"] = _admin_etag(product)
    return product.public


@admin_router.put(
    "/products/{productId}",
    response_model=Product,
    responses=problem_responses(401, 403, 404, 409, 412),
    summary="Replace a product",
)
def update_product(
    product_id: Annotated[ProductIdPath, Path(alias="productId")],
    body: ProductIn,
    services: ServicesDep,
    response: Response,
    _: Admin,
    if_match: IfMatchHeader = None,
) -> dict[str, Any]:
    """Replace a product's content; publishes `product.updated` (or `product.archived`
    when the status becomes archived). With If-Match, 412 if it changed since."""
    product = _service(services).update_product(product_id, body, if_match=if_match)
    response.headers["ETag"] = _admin_etag(product)
    return product.public


@admin_router.delete(
    "/products/{productId}",
    response_model=Product,
    responses=problem_responses(401, 403, 404, 412),
    summary="Archive a product",
)
def archive_product(
    product_id: Annotated[ProductIdPath, Path(alias="productId")],
    services: ServicesDep,
    response: Response,
    _: Admin,
    if_match: IfMatchHeader = None,
) -> dict[str, Any]:
    """Archive the product (kept for past orders, hidden from customers); publishes
    `product.archived`. Archiving an archived product is a no-op."""
    product = _service(services).archive_product(product_id, if_match=if_match)
    response.headers["ETag"] = _admin_etag(product)
    return product.public


@admin_router.post(
    "/categories",
    status_code=status.HTTP_201_CREATED,
    response_model=Category,
    responses=problem_responses(401, 403, 409),
    summary="Create a category",
)
def create_category(
    body: CategoryIn, services: ServicesDep, response: Response, _: Admin
) -> dict[str, Any]:
    """Create a category under an existing parent (422 if the parent does not exist,
    409 if the id is taken)."""
    document = _service(services).create_category(body)
    response.headers["Location"] = "/api/catalog/categories"
    return {"id": document["id"], "name": document["name"], "parentId": document["parentId"]}


@admin_router.put(
    "/inventory/{sku}",
    response_model=Inventory,
    responses=problem_responses(401, 403, 404, 412),
    summary="Set the stock of a SKU",
)
def set_inventory(
    sku: Annotated[str, Path(pattern=SKU_PATTERN)],
    body: InventoryIn,
    services: ServicesDep,
    _: Admin,
) -> dict[str, Any]:
    """Set the stock of a SKU of an existing product, as units `available` to order now or
    units `onHand`; publishes `inventory.changed`. Reservations are left as they are."""
    level = _service(services).set_inventory(sku, body.available, on_hand=body.on_hand)
    return level.to_public()


@admin_router.get(
    "/inventory/{sku}",
    response_model=Inventory,
    responses=problem_responses(401, 403, 404),
    summary="Read the stock of a SKU",
)
def get_inventory(
    sku: Annotated[str, Path(pattern=SKU_PATTERN)], services: ServicesDep, _: Admin
) -> dict[str, Any]:
    """On hand, reserved, available and any shortfall of a SKU."""
    return _service(services).get_inventory(sku).to_public()


# --- public -------------------------------------------------------------------------------


@public_router.get(
    "/categories",
    response_model=CategoryTree,
    summary="The category tree",
)
def categories(services: ServicesDep, response: Response) -> dict[str, Any]:
    """Every category as a tree of roots with their `children`, siblings sorted by name."""
    response.headers["Cache-Control"] = CATEGORIES_CACHE_CONTROL
    return {"items": _service(services).category_tree()}


@public_router.get(
    "/products",
    response_model=ProductPage,
    responses=problem_responses(400),
    summary="List active products",
)
async def list_products(
    services: ServicesDep,
    category: Annotated[
        str | None,
        Query(pattern=CATEGORY_ID_PATTERN, description="Category id; includes sub-categories."),
    ] = None,
    brand: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    sort: SortOrder = "newest",
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    cursor: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="`nextCursor` of the previous page.",
            # Documented, not enforced by FastAPI: a cursor of another shape is 400
            # `invalid-cursor`, as is a well-formed one this API did not return.
            json_schema_extra=documented_string(pattern=CURSOR_PATTERN),
        ),
    ] = None,
) -> Response:
    """Active products, filtered by category (with descendants) and brand. 422 for an
    unknown category or sort; 400 for a cursor from another query."""

    def read() -> bytes:
        items, next_cursor = _service(services).list_products(
            category=category, brand=brand, sort=sort, limit=limit, cursor=cursor
        )
        # Built in the response model's exact shape and encoded here: validating two dozen
        # products against the model again was a large share of the page's cost.
        page = {
            "items": [_listed_product(d, services) for d in items],
            "nextCursor": next_cursor,
        }
        return orjson.dumps(page)

    # Served from memory while fresh: the same pages are asked for over and over, and any
    # catalog write in this process drops them (`STOREFRONT_PAGES`).
    pages = STOREFRONT_PAGES.of(services.documents, services.settings.storefront_cache_seconds)
    return Response(
        await cached_read(services, pages, (category, brand, sort, limit, cursor), read),
        media_type="application/json",
        headers={"Cache-Control": LIST_CACHE_CONTROL},
    )


def _storefront_product(document: ProductDocument, services: Services) -> dict[str, Any]:
    # Read URLs (signed or CDN) replace blob names for clients; events keep the blob names.
    payload = public_product(document)
    payload["media"] = media_urls(document, services)
    return payload


def _listed_product(document: ProductDocument, services: Services) -> dict[str, Any]:
    """A product of a list page exactly as `ProductPage` serialises it: its `Media` items
    put the model's fields first (`blob` is null: clients get URLs) and the URLs after."""
    payload = _storefront_product(document, services)
    payload["media"] = [
        {
            "id": item["id"],
            "kind": item["kind"],
            "contentType": item["contentType"],
            "blob": None,
            "thumbnails": item["thumbnails"],
            **{k: v for k, v in item.items() if k not in _MEDIA_FIELDS},
        }
        for item in payload["media"]
    ]
    return payload


_MEDIA_FIELDS = frozenset({"id", "kind", "contentType", "blob", "thumbnails"})


def _active_product_json(services: Services, product_id: str) -> bytes:
    """The storefront view of an active product, with media URLs and stock, as JSON."""
    service = _service(services)
    product = service.get_product(product_id)
    if product.document["status"] != "active":
        raise ProductNotFound(f"product {product_id!r} does not exist")
    payload = product.public
    payload["media"] = media_urls(product.document, services)
    stock = service.availability(v["sku"] for v in payload["variants"])
    for variant in payload["variants"]:
        available = stock[variant["sku"]]
        variant["available"] = available
        variant["inStock"] = available > 0
    return _json_bytes(payload)


@public_router.get(
    "/products/{productId}",
    response_model=ProductDetail,
    responses={
        304: {"description": "Not Modified: the If-None-Match ETag is current."},
        **problem_responses(404),
    },
    summary="Read an active product",
)
async def get_product(
    product_id: Annotated[ProductIdPath, Path(alias="productId")],
    services: ServicesDep,
    if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
) -> Response:
    """One active product with per-variant availability (`available`, `inStock`).

    A strong `ETag` (hash of the body) and CDN-friendly `Cache-Control`; 304 when
    If-None-Match names the current ETag. Draft and archived products are 404.
    """
    body = await run_read(services, lambda: _active_product_json(services, product_id))
    etag = _body_etag(body)
    headers = {"ETag": etag, "Cache-Control": PRODUCT_CACHE_CONTROL}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
