"""Back-in-stock subscriptions over HTTP:

- `POST /api/catalog/products/{productId}/notify-me {"sku": "..."}`: subscribe (201; a
  repeat answers 200 with the same subscription);
- `GET /api/me/notify-me`: the customer's open subscriptions;
- `DELETE /api/me/notify-me/{sku}`: end one.

Mount: `app.include_router(routes.router)`. The rules live in
`cloudcart.marketing.back_in_stock`; docs/marketing.md describes the contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.responses import problem_responses
from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.identity.dependencies import CurrentCustomer
from cloudcart.marketing import back_in_stock

router = APIRouter(tags=["back in stock"])

ProductIdPath = Annotated[
    str,
    Path(alias="productId", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$"),
]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN)]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class NotifyMeIn(BaseModel):
    """Which SKU of the product to hear about."""

    model_config = ConfigDict(extra="forbid", title="NotifyMeRequest")

    sku: str = Field(pattern=SKU_PATTERN, description="A SKU of the product.")


class NotifyMeSubscription(_Wire):
    """A back-in-stock subscription: one message when the SKU is available again, then it
    ends."""

    product_id: str
    sku: str
    created_at: datetime


class NotifyMeList(_Wire):
    """The customer's open back-in-stock subscriptions."""

    items: list[NotifyMeSubscription] = Field(description="Newest first.")


@router.post(
    "/api/catalog/products/{productId}/notify-me",
    status_code=status.HTTP_201_CREATED,
    response_model=NotifyMeSubscription,
    summary="Tell me when this SKU is back in stock",
    responses={
        200: {
            "model": NotifyMeSubscription,
            "description": "Already subscribed: the existing subscription, unchanged.",
        },
        **problem_responses(401, 403, 404, 409, 503),
    },
)
def subscribe(
    product_id: ProductIdPath,
    body: NotifyMeIn,
    caller: CurrentCustomer,
    services: ServicesDep,
    response: Response,
) -> NotifyMeSubscription:
    """Subscribe to one SKU of an active product. When its availability goes from 0 to
    more, the customer is notified once (email, in-app and the texts they allow) and the
    subscription ends. 404 `product-not-found` or `unknown-sku`; 409 `too-many-notify-me`
    (100 open subscriptions at most)."""
    found, created = back_in_stock.subscribe(
        services.documents, caller.customer_id, product_id, body.sku
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return NotifyMeSubscription.model_validate(found)


@router.get(
    "/api/me/notify-me",
    response_model=NotifyMeList,
    summary="My back-in-stock subscriptions",
    responses=problem_responses(401, 503),
)
def list_subscriptions(
    caller: CurrentCustomer, services: ServicesDep, response: Response
) -> NotifyMeList:
    """The customer's open subscriptions, newest first (notified ones have ended)."""
    response.headers["Cache-Control"] = "private, no-store"
    items = back_in_stock.list_subscriptions(services.documents, caller.customer_id)
    return NotifyMeList.model_validate({"items": items})


@router.delete(
    "/api/me/notify-me/{sku}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End a back-in-stock subscription",
    responses=problem_responses(401, 403, 404, 503),
)
def unsubscribe(sku: SkuPath, caller: CurrentCustomer, services: ServicesDep) -> Response:
    """End the customer's subscription to `sku`; 404 `notify-me-not-found` when they have
    none (another customer's subscriptions are never visible)."""
    back_in_stock.unsubscribe(services.documents, caller.customer_id, sku)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
