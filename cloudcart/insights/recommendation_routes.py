"""`GET /api/catalog/products/{productId}/also-bought` (public) and
`GET /api/me/recommendations` (the signed-in customer's order-again and for-you lists).

Mount: `app.include_router(recommendation_routes.router)`. Every answer is built from a few
point reads of documents the `insights-recommendations` consumer keeps
(`cloudcart.insights.recommendations`); docs/insights.md describes the contract.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.responses import problem_responses
from cloudcart.identity.dependencies import CurrentCustomer
from cloudcart.insights import recommendations

router = APIRouter(tags=["recommendations"])

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Product ids the catalog's paths accept."""

PRIVATE_CACHE_CONTROL = "private, no-store"
"""Personal lists change with every order and must never be shared by a cache."""

Limit = Annotated[
    int,
    Query(ge=1, le=recommendations.MAX_LIMIT, description="How many items, 1 to 50."),
]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AlsoBoughtItem(_Wire):
    """A product often bought together with the one asked about."""

    product_id: str = Field(description="The recommended product.")
    score: float = Field(description="Relevance; higher is better (only the order matters).")


class AlsoBought(_Wire):
    """Products bought together with a product, best first."""

    items: list[AlsoBoughtItem]


class RecommendationItem(_Wire):
    """A product recommended to the signed-in customer, and why."""

    product_id: str = Field(description="The recommended product.")
    score: float = Field(
        description="Relevance; higher is better. For `order-again`, the customer's purchases "
        "of it, each counted less the older it is (half-life 30 days)."
    )
    reason: str = Field(
        description="`bought-before` (order again), `bought-with:<productId>` (bought together "
        "with that product, which the customer bought) or `popular` (a best seller)."
    )


class Recommendations(_Wire):
    """The customer's recommendations of one kind, best first."""

    items: list[RecommendationItem]


@router.get(
    "/api/catalog/products/{productId}/also-bought",
    response_model=AlsoBought,
    summary="Products bought together with a product",
)
def also_bought(
    product_id: Annotated[
        str, Path(alias="productId", min_length=1, max_length=128, pattern=PRODUCT_ID_PATTERN)
    ],
    services: ServicesDep,
    limit: Limit = 10,
) -> dict[str, Any]:
    """Products customers bought in the same orders as this one, best first; a product
    with too few such orders is topped up with the best sellers of its category, then of
    the shop. Never the product itself, nor archived or out-of-stock products.

    Public. No caching headers, so that a new order shows within seconds. An unknown
    product gets the shop's best sellers (the catalog is not read).
    """
    items = recommendations.also_bought(services.documents, product_id, limit)
    return {"items": [item.to_public() for item in items]}


@router.get(
    "/api/me/recommendations",
    response_model=Recommendations,
    responses=problem_responses(401),
    summary="The signed-in customer's recommendations",
)
def my_recommendations(
    caller: CurrentCustomer,
    services: ServicesDep,
    response: Response,
    kind: Annotated[
        Literal["order-again", "for-you"],
        Query(
            description="`order-again`: what the customer bought before, by how often and "
            "how lately; `for-you`: products bought with their recent purchases, leaving "
            "out what they just bought, topped up with best sellers."
        ),
    ] = "for-you",
    limit: Limit = 10,
) -> dict[str, Any]:
    """The caller's `order-again` or `for-you` list, without archived or out-of-stock
    products. A new paid order shows here as soon as its event is handled (about a second
    locally)."""
    store = services.documents
    if kind == "order-again":
        items = recommendations.order_again(store, caller.customer_id, limit)
    else:
        items = recommendations.for_you(store, caller.customer_id, limit)
    response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
    return {"items": [item.to_public() for item in items]}
