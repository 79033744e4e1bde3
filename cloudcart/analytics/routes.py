"""The admin analytics API: summary, products, inventory, fulfilment and search, all read
from the roll-ups (docs/analytics.md defines every figure)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.analytics import reports
from cloudcart.api.deps import ServicesDep
from cloudcart.api.responses import problem_responses, rfc3339_only
from cloudcart.core.clock import utcnow
from cloudcart.identity.dependencies import Admin

router = APIRouter(prefix="/api/admin/analytics", tags=["analytics"])

# A range must not be empty and holds at most 400 day (744 hour) buckets, else 422
# `invalid-range`: a rule between two parameters, which the document can only state in words.
From = Annotated[
    datetime | None,
    BeforeValidator(rfc3339_only),
    Query(
        alias="from",
        description="Start (RFC 3339 with an offset), rounded down to its bucket; before `to`, "
        "at most 400 days (744 hours) earlier, else 422 `invalid-range`.",
    ),
]
To = Annotated[
    datetime | None,
    BeforeValidator(rfc3339_only),
    Query(alias="to", description="End, exclusive (RFC 3339 with an offset; default now)."),
]
Limit = Annotated[int, Query(ge=1, le=100, description="How many items.")]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Money(_Model):
    """Revenue in one currency, in minor units; `net = gross - refunded`."""

    gross: int
    refunded: int
    net: int


class Funnel(_Model):
    """Storefront and order steps counted in the range."""

    views: int
    add_to_cart: int
    checkout_started: int
    placed: int
    paid: int


class Abandonment(_Model):
    """Carts (or checkouts) started in the range and what became of them within 24 h."""

    started: int
    converted: int
    abandoned: int
    pending: int = Field(description="Started less than 24 h ago and not converted yet.")
    rate: float | None = Field(description="abandoned / (converted + abandoned).")


class AbandonmentBoth(_Model):
    """Abandonment of carts with items and of checkouts started."""

    carts: Abandonment
    checkouts: Abandonment


class Customers(_Model):
    """Paying customers: first paid order in the range, or an earlier one."""

    new: int
    returning: int


class Searches(_Model):
    """Storefront searches."""

    total: int
    zero_results: int


class SeriesPoint(_Model):
    """One bucket of the series."""

    start: str = Field(description="The bucket's start, UTC.")
    local_start: str = Field(description="The same instant in the shop's time zone.")
    revenue: dict[str, Money]
    orders: int
    paid_orders: int
    units: int
    visitors: int
    views: int
    add_to_cart: int
    checkout_started: int
    searches: int
    zero_result_searches: int
    cancelled: int
    returned_units: int


class NotificationFigures(_Model):
    """One channel's notifications in the range (a bounced or failed one was not delivered)."""

    sent: int
    delivered: int
    bounced: int
    failed: int


class Summary(_Model):
    """The management numbers of a range."""

    from_: str = Field(alias="from")
    to: str
    granularity: Literal["day", "hour"]
    time_zone: str
    revenue: dict[str, Money] = Field(description="Per currency (paid, less refunds).")
    orders: int = Field(description="Orders placed (imported ones included).")
    paid_orders: int
    imported_orders: int
    cancelled_orders: int
    aov: dict[str, float] = Field(description="Gross revenue per paid order, per currency.")
    units: int = Field(description="Units of paid orders.")
    returned_units: int
    visitors: int = Field(description="Distinct customers and visitors seen in the range.")
    funnel: Funnel
    abandonment_rate: float | None
    abandonment: AbandonmentBoth
    returns_rate: float | None = Field(description="Returned units / units paid.")
    customers: Customers
    searches: Searches
    notifications: dict[str, NotificationFigures] = Field(
        description="Per channel (`email`, `sms`, `whatsapp`, `inApp`): notifications sent, "
        "delivered, bounced and failed in the range."
    )
    series: list[SeriesPoint]


class ProductFigures(_Model):
    """A product's figures over the range."""

    product_id: str
    category_id: str | None
    views: int
    add_to_cart: int
    orders: int
    units: int
    revenue: dict[str, int]
    aov: dict[str, float]


class CategoryFigures(_Model):
    """A category's figures over the range."""

    category_id: str
    orders: int
    units: int
    revenue: dict[str, int]
    aov: dict[str, float]


class Products(_Model):
    """Top products by the chosen figure, and every category."""

    from_: str = Field(alias="from")
    to: str
    sort: Literal["revenue", "units", "views"]
    items: list[ProductFigures]
    categories: list[CategoryFigures]


class Duration(_Model):
    """Exact nearest-rank percentiles of durations in seconds."""

    count: int
    p50_seconds: int | None
    p90_seconds: int | None


class Fulfilment(_Model):
    """Fulfilment times over the range."""

    from_: str = Field(alias="from")
    to: str
    paid_to_shipped: Duration
    shipped_to_delivered: Duration


class OutOfStock(_Model):
    """A SKU out of stock now."""

    sku: str
    product_id: str | None
    since: str
    seconds: int


class LowStock(_Model):
    """A SKU with few units left."""

    sku: str
    product_id: str | None
    available: int


class StockOut(_Model):
    """A stock-out that ended."""

    sku: str
    product_id: str | None
    from_: str = Field(alias="from")
    to: str
    seconds: int


class StockOuts(_Model):
    """Ended stock-outs and their durations."""

    count: int
    p50_seconds: int | None
    p90_seconds: int | None
    recent: list[StockOut]


class Inventory(_Model):
    """Stock now, as the roll-ups know it."""

    out_of_stock: list[OutOfStock]
    low_stock: list[LowStock]
    low_stock_threshold: int
    stock_outs: StockOuts


class QueryCount(_Model):
    """A search query and how often it was searched."""

    query: str
    count: int
    zero_results: int


class ZeroResultQuery(_Model):
    """A query that found nothing, and how often."""

    query: str
    count: int


class SearchReport(_Model):
    """Storefront searches over the range."""

    from_: str = Field(alias="from")
    to: str
    searches: int
    zero_result_searches: int
    top_queries: list[QueryCount]
    zero_result_queries: list[ZeroResultQuery]


ERRORS = problem_responses(401, 403)


@router.get(
    "/summary",
    response_model=Summary,
    response_model_by_alias=True,
    responses=ERRORS,
    summary="Analytics summary",
)
def get_summary(
    services: ServicesDep,
    _: Admin,
    start: From = None,
    end: To = None,
    granularity: Annotated[Literal["day", "hour"], Query()] = "day",
) -> dict[str, Any]:
    """Revenue, orders, visitors, the funnel, abandonment, returns and customers over
    `[from, to)` (default: the last 7 days), with a series per hour or day (UTC buckets,
    each also shown in the shop's time zone)."""
    now = utcnow()
    window = reports.make_range(start, end, granularity, now=now)
    return reports.summary(
        services.documents, window, now=now, time_zone=services.settings.analytics_time_zone
    )


@router.get(
    "/products",
    response_model=Products,
    response_model_by_alias=True,
    responses=ERRORS,
    summary="Product analytics",
)
def get_products(
    services: ServicesDep,
    _: Admin,
    start: From = None,
    end: To = None,
    sort: Annotated[Literal["revenue", "units", "views"], Query()] = "revenue",
    limit: Limit = 20,
) -> dict[str, Any]:
    """The top products of `[from, to)` in whole UTC days, and every category."""
    window = reports.make_range(start, end, "day", now=utcnow())
    return reports.products(services.documents, window, sort=sort, limit=limit)


@router.get(
    "/inventory",
    response_model=Inventory,
    response_model_by_alias=True,
    responses=ERRORS,
    summary="Stock analytics",
)
def get_inventory(services: ServicesDep, _: Admin) -> dict[str, Any]:
    """SKUs out of stock now and for how long, low stock, and ended stock-outs."""
    return reports.inventory(
        services.documents, now=utcnow(), low_stock=services.settings.analytics_low_stock
    )


@router.get(
    "/fulfilment",
    response_model=Fulfilment,
    response_model_by_alias=True,
    responses=ERRORS,
    summary="Fulfilment times",
)
def get_fulfilment(
    services: ServicesDep, _: Admin, start: From = None, end: To = None
) -> dict[str, Any]:
    """Paid to shipped and shipped to delivered, p50 and p90, over whole UTC days."""
    window = reports.make_range(start, end, "day", now=utcnow())
    return reports.fulfilment(services.documents, window)


@router.get(
    "/search",
    response_model=SearchReport,
    response_model_by_alias=True,
    responses=ERRORS,
    summary="Search analytics",
)
def get_search(
    services: ServicesDep, _: Admin, start: From = None, end: To = None, limit: Limit = 20
) -> dict[str, Any]:
    """Top queries and zero-result queries over whole UTC days."""
    window = reports.make_range(start, end, "day", now=utcnow())
    return reports.search(services.documents, window, limit=limit)
