"""The dashboard at `/admin`: the figures of a period against the period before, with the
charts and tables of the analytics reports."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web import charts
from cloudcart.web.admin.common import major, open_admin
from cloudcart.web.admin.dashboard_charts import (
    fulfilment_chart,
    funnel_chart,
    revenue_charts,
    top_products_chart,
)
from cloudcart.web.client import ApiClient
from cloudcart.web.pages import web_router

router = web_router()

PRESETS: dict[str, str] = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "custom": "Custom dates",
}
TOP_PRODUCTS = 10
TOP_QUERIES = 10
MAX_PERIOD_DAYS = 366
ANALYTICS = "/api/admin/analytics"


@dataclass(frozen=True)
class Period:
    """Whole UTC days `first`..`last` (the analytics buckets are UTC days)."""

    preset: str
    first: datetime.date
    last: datetime.date

    @property
    def days(self) -> int:
        """How many days the period spans."""
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime.datetime:
        """The first instant of the period."""
        return datetime.datetime.combine(self.first, datetime.time(), datetime.UTC)

    @property
    def end(self) -> datetime.datetime:
        """The first instant after the period (the API's ranges are `[from, to)`)."""
        return self.start + datetime.timedelta(days=self.days)

    @property
    def granularity(self) -> str:
        """Hours for a single day, else days."""
        return "hour" if self.days == 1 else "day"

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        span = datetime.timedelta(days=self.days)
        return Period("previous", self.first - span, self.last - span)

    def params(self) -> dict[str, str]:
        """`from` and `to` for the analytics API (RFC 3339, UTC)."""
        return {
            "from": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": self.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def period_of(preset: str, start: str, end: str, today: datetime.date) -> Period:
    """The period a dashboard query asks for; ValueError with a message for the page."""
    if preset in ("", "custom") and (start or end):
        if not (start and end):
            raise ValueError("Give both a start date and an end date.")
        try:
            first = datetime.date.fromisoformat(start)
            last = datetime.date.fromisoformat(end)
        except ValueError:
            raise ValueError("Dates must look like 2030-01-31.") from None
        if first > last:
            raise ValueError("The start date must not be after the end date.")
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"A period can span at most {MAX_PERIOD_DAYS} days.")
        if first.year < 2:
            raise ValueError("The start date is too early.")
        return Period("custom", first, last)
    if preset == "today":
        return Period(preset, today, today)
    if preset in ("", "7d", "custom"):
        return Period("7d", today - datetime.timedelta(days=6), today)
    if preset == "30d":
        return Period(preset, today - datetime.timedelta(days=29), today)
    if preset == "month":
        return Period(preset, today.replace(day=1), today)
    raise ValueError("Choose one of the periods offered.")


# --- key figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    """One figure of the period next to the same figure of the period before."""

    label: str
    value: str
    previous: str
    direction: str
    change: str
    lower_is_better: bool = False

    @property
    def css(self) -> str:
        """The delta's classes: `delta up`, `delta down` or `delta flat` (+ `inverse`)."""
        inverse = " inverse" if self.lower_is_better else ""
        return f"delta {self.direction}{inverse}"


def _compare(current: float, before: float, *, points: bool = False) -> tuple[str, str]:
    """Direction and words of a change: percent of the previous value, or percentage
    points for a rate."""
    if points:
        diff = round((current - before) * 100, 1)
        if diff == 0:
            return "flat", "No change"
        return ("up", f"Up {diff:.1f} pts") if diff > 0 else ("down", f"Down {-diff:.1f} pts")
    if before == 0:
        return ("flat", "No change") if current == 0 else ("up", "Up from none")
    pct = round((current - before) / abs(before) * 100, 1)
    if pct == 0:
        return "flat", "No change"
    return ("up", f"Up {pct:.1f}%") if pct > 0 else ("down", f"Down {-pct:.1f}%")


def _money_text(amount: float, currency: str) -> str:
    return f"{currency} {major(amount)}"


def _rate_text(rate: float | None) -> str:
    return charts.DASH if rate is None else f"{rate * 100:.1f}%"


def _kpi(
    label: str,
    current: float,
    before: float,
    shown: charts.Formatter,
    *,
    lower_is_better: bool = False,
) -> Kpi:
    direction, change = _compare(current, before)
    return Kpi(label, shown(current), shown(before), direction, change, lower_is_better)


def kpis(summary: Mapping[str, Any], before: Mapping[str, Any]) -> list[Kpi]:
    """The dashboard's figures, each compared with the previous period."""
    found: list[Kpi] = []
    revenue, old_revenue = summary.get("revenue") or {}, before.get("revenue") or {}
    aov, old_aov = summary.get("aov") or {}, before.get("aov") or {}
    for currency in sorted(set(revenue) | set(old_revenue)):
        now, then = revenue.get(currency) or {}, old_revenue.get(currency) or {}
        money = functools.partial(_money_text, currency=currency)
        found += [
            _kpi("Gross revenue", now.get("gross", 0), then.get("gross", 0), money),
            _kpi("Net revenue", now.get("net", 0), then.get("net", 0), money),
            _kpi(
                "Refunds",
                now.get("refunded", 0),
                then.get("refunded", 0),
                money,
                lower_is_better=True,
            ),
            _kpi("Average order value", aov.get(currency, 0), old_aov.get(currency, 0), money),
        ]
    for label, key in (
        ("Orders placed", "orders"),
        ("Paid orders", "paidOrders"),
        ("Visitors", "visitors"),
    ):
        found.append(_kpi(label, summary.get(key, 0), before.get(key, 0), charts.plain))
    rate, old_rate = summary.get("abandonmentRate"), before.get("abandonmentRate")
    if rate is not None or old_rate is not None:
        direction, change = _compare(rate or 0.0, old_rate or 0.0, points=True)
        found.append(
            Kpi(
                "Cart abandonment",
                _rate_text(rate),
                _rate_text(old_rate),
                direction,
                change,
                lower_is_better=True,
            )
        )
    return found


def _primary_currency(*revenues: Mapping[str, Any]) -> str | None:
    """The currency with the most gross revenue (a report's revenue maps currency to
    either a figure or a breakdown with `gross`)."""
    totals: dict[str, float] = {}
    for revenue in revenues:
        for currency, value in revenue.items():
            amount = value.get("gross", 0) if isinstance(value, Mapping) else value
            totals[currency] = totals.get(currency, 0) + float(amount or 0)
    return max(sorted(totals), key=lambda c: totals[c]) if totals else None


def _since(seconds: Any) -> str:
    """A duration from a report, or a dash when it has none."""
    try:
        return charts.duration(float(seconds))
    except (TypeError, ValueError):
        return charts.DASH


async def _top_products(
    api: ApiClient, period: Period
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The product report (None when it is not available) and the titles of its products:
    the report names them by id, and one no longer on sale keeps its id as its title."""
    report: dict[str, Any] | None = await api.optional(
        f"{ANALYTICS}/products", None, **period.params(), limit=TOP_PRODUCTS
    )
    ids = (item["productId"] for item in (report or {}).get("items") or [])
    found = await api.each("/api/admin/products/{}", ids)
    return report, {pid: str(p["title"]) for pid, p in found.items() if p.get("title")}


# --- the page ------------------------------------------------------------------------------


@router.get("/admin")
async def dashboard(
    request: Request,
    period: Annotated[str, Query(max_length=10)] = "",
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
) -> Response:
    """KPIs of a period against the period before, with charts and tables.

    Only the summary has a series per bucket (the revenue and orders charts); the product,
    fulfilment and search reports are totals over the range and the stock report is the
    stock now, so they are drawn as bars per item and tables, not as trends.
    """
    admin = await open_admin(request)
    today = datetime.datetime.now(datetime.UTC).date()
    try:
        chosen = period_of(period, start.strip(), end.strip(), today)
    except ValueError as exc:
        return admin.render(
            "admin/dashboard.html",
            status=400,
            error=str(exc),
            presets=PRESETS,
            chosen=None,
            form={"period": "custom", "from": start, "to": end},
        )
    before = chosen.previous()
    api = admin.api
    (
        summary,
        old_summary,
        (products, titles),
        inventory,
        fulfilment,
        old_fulfilment,
        searches,
    ) = await api.gather(
        api.get(f"{ANALYTICS}/summary", **chosen.params(), granularity=chosen.granularity),
        api.get(f"{ANALYTICS}/summary", **before.params(), granularity=before.granularity),
        _top_products(api, chosen),
        api.optional(f"{ANALYTICS}/inventory", None),
        api.optional(f"{ANALYTICS}/fulfilment", None, **chosen.params()),
        api.optional(f"{ANALYTICS}/fulfilment", None, **before.params()),
        api.optional(f"{ANALYTICS}/search", None, **chosen.params(), limit=TOP_QUERIES),
    )
    currency = _primary_currency(summary.get("revenue") or {}, old_summary.get("revenue") or {})
    if currency is None:
        top = (products or {}).get("items") or []
        currency = _primary_currency(*((item.get("revenue") or {}) for item in top))
    return admin.render(
        "admin/dashboard.html",
        error=None,
        presets=PRESETS,
        chosen=chosen,
        before=before,
        form={
            "period": chosen.preset,
            "from": chosen.first.isoformat(),
            "to": chosen.last.isoformat(),
        },
        summary=summary,
        kpis=kpis(summary, old_summary),
        revenue_charts=revenue_charts(summary, old_summary, chosen.granularity),
        funnel=funnel_chart(summary),
        abandonment=summary.get("abandonment") or {},
        products=products,
        titles=titles,
        currency=currency,
        top_products=top_products_chart(products, titles, currency) if products else None,
        inventory=inventory,
        # The newest stock-outs first: the ones nobody has reacted to yet.
        out_of_stock=sorted(
            (inventory or {}).get("outOfStock") or [],
            key=lambda row: str(row.get("since") or ""),
            reverse=True,
        ),
        fulfilment=fulfilment,
        old_fulfilment=old_fulfilment,
        fulfilment_chart=fulfilment_chart(fulfilment) if fulfilment else None,
        searches=searches,
        duration=_since,
        major=major,
    )
