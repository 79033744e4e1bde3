"""`POST /api/events` (storefront events) and `GET`/`DELETE /api/me/history` (browsing
history across the customer's devices).

Mount: `app.include_router(history_routes.router)`. The rules live in
`cloudcart.insights.storefront` (validation, rate limit, publish) and
`cloudcart.insights.history` (the history itself); docs/insights.md describes the contract.

A signed-in request that also carries `X-Visitor-Id` (the id the device used before the
customer signed in) merges that visitor's history into the customer's, as a cart call
with `X-Cart-Id` merges the anonymous cart: `POST /api/events` asks the consumer to do it
with the batch (no extra round trip on the request), `GET /api/me/history` does it before
reading.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.responses import (
    documented_string,
    optional_auth,
    problem_responses,
    with_retry_after,
)
from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import (
    SESSION_COOKIE,
    CurrentCustomer,
    bearer_scheme,
    current_caller,
)
from cloudcart.insights import history, storefront
from cloudcart.insights.events import StorefrontEventType
from cloudcart.insights.storefront import (
    MAX_AT_LENGTH,
    MAX_BODY_BYTES,
    MAX_EVENTS,
    MAX_QUERY_LENGTH,
    MAX_RESULTS_COUNT,
    PRODUCT_ID_PATTERN,
    RATE_LIMIT,
    VISITOR_ID_PATTERN,
    EventBatchTooLarge,
    RateLimit,
)

VISITOR_HEADER = "X-Visitor-Id"

router = APIRouter(tags=["storefront events and history"])


# --- wire models ----------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StorefrontEventIn(BaseModel):
    """One storefront event. Documents the body: the route checks the raw body itself, so
    a problem names the event's index and field (`cloudcart.insights.storefront`)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", title="StorefrontEvent"
    )

    type: StorefrontEventType = Field(
        description="`product_viewed` and `recommendation_clicked` need `productId`; `search` "
        "needs `query`; `add_to_cart` and `remove_from_cart` need `sku` or `productId`."
    )
    product_id: str | None = Field(None, pattern=PRODUCT_ID_PATTERN)
    sku: str | None = Field(None, pattern=SKU_PATTERN)
    query: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description="Search text (`search`), not blank.",
        json_schema_extra={"pattern": r"\S"},
    )
    results_count: int | None = Field(
        None, ge=0, le=MAX_RESULTS_COUNT, description="How many results the search showed."
    )
    at: datetime | None = Field(
        None,
        description="When it happened, with a time zone; at most 5 minutes ahead of the "
        "server's clock. Defaults to the time the batch is received.",
        json_schema_extra={"maxLength": MAX_AT_LENGTH},
    )


def _given(field: str, type_: str) -> dict[str, Any]:
    """`field` is present and not null (null means "not given")."""
    return {"required": [field], "properties": {field: {"type": type_}}}


def _event_rules() -> list[dict[str, Any]]:
    """Per event type, the fields it needs and those that do not apply (absent or null), as
    `cloudcart.insights.storefront` checks them."""
    needs: dict[str, dict[str, Any]] = {
        "product_viewed": _given("productId", "string"),
        "recommendation_clicked": _given("productId", "string"),
        "search": _given("query", "string"),
        "add_to_cart": {"anyOf": [_given("sku", "string"), _given("productId", "string")]},
        "remove_from_cart": {"anyOf": [_given("sku", "string"), _given("productId", "string")]},
    }
    optional = ("productId", "sku", "query", "resultsCount")
    rules: list[dict[str, Any]] = []
    for type_, applicable in storefront.APPLICABLE.items():
        then: dict[str, Any] = {
            "properties": {f: {"type": "null"} for f in optional if f not in applicable}
        }
        if type_ in needs:
            then = {"allOf": [then, needs[type_]]}
        rules.append(
            {"if": {"required": ["type"], "properties": {"type": {"const": type_}}}, "then": then}
        )
    return rules


def _batch_schema() -> dict[str, Any]:
    event = StorefrontEventIn.model_json_schema(by_alias=True)
    event["allOf"] = _event_rules()
    return {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {
            "events": {
                "type": "array",
                "maxItems": MAX_EVENTS,
                "items": event,
            }
        },
    }


class EventsAccepted(_Wire):
    """The batch was handed on; its views reach the history within a second."""

    accepted: int = Field(description="How many events were accepted (all of the batch).")


class HistoryItem(_Wire):
    """A product the customer viewed."""

    product_id: str
    viewed_at: datetime = Field(description="The newest view of the product.")


class History(_Wire):
    """The customer's browsing history."""

    items: list[HistoryItem] = Field(
        description="Newest first, one entry per product; products no longer for sale are left out."
    )


# --- dependencies ---------------------------------------------------------------------------


def optional_caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller | None:
    """The caller when the request carries credentials (then they must be valid), else None."""
    if (
        credentials is None
        and not request.headers.get("Authorization")
        and not request.cookies.get(SESSION_COOKIE)
    ):
        return None
    return current_caller(request, services, credentials)


OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]

VisitorIdHeader = Annotated[
    str | None,
    Header(
        alias=VISITOR_HEADER,
        description="The random id (16..64 characters of A-Z, a-z, 0-9, '-', '_') the "
        "client keeps for an anonymous visitor. Required without a token; with one, that "
        "visitor's history is merged into the customer's.",
        # Documented, not enforced by FastAPI: a bad id is 400 `bad-visitor-id`.
        json_schema_extra=documented_string(pattern=VISITOR_ID_PATTERN),
    ),
]


async def raw_body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it outgrows any valid batch."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise EventBatchTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def rate_limit() -> RateLimit:
    """The events rate limit per customer and visitor (tests override this dependency)."""
    return RATE_LIMIT


# --- routes -----------------------------------------------------------------------------------


@router.post(
    "/api/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    summary="Record storefront events",
    responses=with_retry_after(problem_responses(400, 401, 403, 413, 429, 503)),
    openapi_extra={
        # Anonymous visitors send events too, named by X-Visitor-Id.
        **optional_auth(),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _batch_schema()}},
        },
    },
)
def post_events(
    services: ServicesDep,
    caller: OptionalCaller,
    body: Annotated[bytes, Depends(raw_body)],
    limit: Annotated[RateLimit, Depends(rate_limit)],
    visitor_id: VisitorIdHeader = None,
) -> EventsAccepted:
    """Record a batch of up to 100 events from a signed-in customer (bearer token) or an
    anonymous visitor (`X-Visitor-Id`). All or nothing: every event is validated and a
    refused batch records nothing.

    400 `malformed-event-batch` (not `{"events": [...]}` JSON), `visitor-id-required`,
    `bad-visitor-id`; 413 `event-batch-too-large`; 422 `too-many-events` (over 100) and
    `invalid-events` (`eventIndex`, `field` and every problem in `errors`); 429
    `events-rate-limited` with Retry-After (600 events a minute per customer or visitor);
    503 `events-unavailable` with Retry-After (send the batch again).
    """
    owner = storefront.owner_of(caller.customer_id if caller else None, visitor_id)
    accepted = storefront.accept_batch(
        services.documents,
        services.messages,
        services.settings.events_topic,
        owner,
        body,
        correlation_id=correlation_id.get(),
        limit=limit,
    )
    return EventsAccepted(accepted=accepted)


def _visitor(visitor_id: str | None) -> str | None:
    if visitor_id is not None and not storefront.valid_visitor_id(visitor_id):
        raise storefront.BadVisitorId()
    return visitor_id


@router.get(
    "/api/me/history",
    response_model=History,
    summary="My browsing history",
    responses=problem_responses(400, 401, 503),
)
def get_history(
    caller: CurrentCustomer,
    services: ServicesDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=history.MAX_HISTORY)] = 20,
    visitor_id: VisitorIdHeader = None,
) -> History:
    """The products the customer viewed on any device, newest first, one entry per
    product, without products no longer for sale. Empty while personalisation is off.
    With `X-Visitor-Id`, that visitor's history is merged in first."""
    items = history.read_history(
        services.documents, caller.customer_id, limit=limit, visitor_id=_visitor(visitor_id)
    )
    # Personal, and changes with every view: no shared cache may keep it.
    response.headers["Cache-Control"] = "private, no-store"
    return History.model_validate({"items": items})


@router.delete(
    "/api/me/history",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Clear my browsing history",
    responses=problem_responses(400, 401, 403, 503),
)
def delete_history(
    caller: CurrentCustomer, services: ServicesDep, visitor_id: VisitorIdHeader = None
) -> Response:
    """Delete the customer's browsing history (and the visitor's named by `X-Visitor-Id`).
    Views sent before this call never come back; later ones are recorded as usual."""
    visitor = _visitor(visitor_id)
    history.clear_history(services.documents, caller.customer_id)
    if visitor is not None:
        history.clear_history(services.documents, storefront.visitor_key(visitor))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
