"""Public product search: `GET /api/search` and `GET /api/search/suggest`.

Both are public (anonymous storefront browsing) and read only the search port.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep, cached_read, run_read
from cloudcart.api.problems import Problem
from cloudcart.api.responses import documented_string, problem_responses
from cloudcart.catalog.search.indexer import SEARCH_RESULTS
from cloudcart.core.ports.search import InvalidCursor, SearchQuery, Sort
from cloudcart.core.search.cursors import CURSOR_PATTERN

router = APIRouter(prefix="/api/search", tags=["search"])


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Price(_Camel):
    """A price in minor units."""

    amount: int
    currency: str | None = None


class SearchItem(_Camel):
    """One product in the results; `sku`/`price` are of the variant the query asked for
    (e.g. the 64 GB one), else of the cheapest variant."""

    product_id: str
    title: str
    slug: str | None = None
    brand: str
    category_id: str
    price: Price | None = None
    sku: str | None = None
    in_stock: bool
    storage: list[str] = Field(default_factory=list)
    os: str | None = None
    image: str | None = None


class FacetCount(_Camel):
    """A facet value and the number of matching products that have it."""

    value: str
    count: int


class SearchResponse(_Camel):
    """A page of search results."""

    items: list[SearchItem]
    total: int = Field(description="Every product that matches, across pages.")
    facets: dict[str, list[FacetCount]] = Field(
        description="`brand`, `category`, `price` (bands in minor units), `storage`, `os`."
    )
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class SuggestResponse(_Camel):
    """Typeahead suggestions."""

    suggestions: list[str]


@router.get(
    "",
    response_model=SearchResponse,
    response_model_by_alias=True,
    response_model_exclude_none=False,
    summary="Search products",
    responses=problem_responses(400, 503),
)
async def search_products(
    services: ServicesDep,
    q: Annotated[str, Query(max_length=200, description="What the customer typed.")] = "",
    category: Annotated[str | None, Query(max_length=100)] = None,
    brand: Annotated[str | None, Query(max_length=100)] = None,
    min_price: Annotated[int | None, Query(alias="minPrice", ge=0, le=10**12)] = None,
    max_price: Annotated[int | None, Query(alias="maxPrice", ge=0, le=10**12)] = None,
    in_stock: Annotated[
        bool | None, Query(alias="inStock", description="true: only products in stock.")
    ] = None,
    sort: Annotated[Sort, Query()] = "relevance",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            description="`nextCursor` of the previous page of the same query.",
            # Documented, not enforced by FastAPI: a cursor of another shape is 400
            # `invalid-cursor`, as is a well-formed one this API did not return.
            json_schema_extra=documented_string(pattern=CURSOR_PATTERN),
        ),
    ] = None,
) -> Response:
    """Full-text product search that understands brands, models, storage sizes, operating
    systems, synonyms and typos, with filters, facets and cursor pagination."""
    query = SearchQuery(
        text=q,
        category=category,
        brand=brand,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )

    def read() -> bytes:
        # The engine is synchronous (tantivy, or the Azure SDK's sync client).
        result = services.search.search(query)
        # Built in SearchResponse's exact shape and encoded here, rather than validated
        # against the model again on every search.
        return orjson.dumps(
            {
                "items": [_item(item) for item in result.items],
                "total": result.total,
                "facets": {
                    name: [{"value": f.value, "count": f.count} for f in values]
                    for name, values in result.facets.items()
                },
                "nextCursor": result.next_cursor,
            }
        )

    # Popular queries repeat: served from memory while fresh, dropped on any index write
    # in this process (`SEARCH_RESULTS`).
    results = SEARCH_RESULTS.of(services.search, services.settings.storefront_cache_seconds)
    try:
        body = await cached_read(services, results, query, read)
    except InvalidCursor as exc:
        raise Problem.of("invalid-cursor", str(exc)) from exc
    return Response(body, media_type="application/json")


def _item(item: dict[str, Any]) -> dict[str, Any]:
    """A hit (`cloudcart.core.search.documents.public_item`) as `SearchItem` serialises it:
    every field, in the model's order, absent ones null."""
    price = item.get("price")
    return {
        "productId": item["productId"],
        "title": item["title"],
        "slug": item.get("slug"),
        "brand": item["brand"],
        "categoryId": item["categoryId"],
        "price": None
        if price is None
        else {"amount": price["amount"], "currency": price.get("currency")},
        "sku": item.get("sku"),
        "inStock": bool(item["inStock"]),
        "storage": list(item.get("storage") or []),
        "os": item.get("os"),
        "image": item.get("image"),
    }


@router.get(
    "/suggest",
    response_model=SuggestResponse,
    summary="Typeahead suggestions",
    responses=problem_responses(503),
)
async def suggest(
    services: ServicesDep,
    q: Annotated[str, Query(max_length=100, description="What was typed so far.")] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> dict[str, Any]:
    """Product titles and brands that start with what the customer has typed."""
    suggestions = await run_read(services, lambda: services.search.suggest(q, limit))
    return {"suggestions": suggestions}
