"""The management pages under `/admin` (admin role).

Every page first asks the API who the caller is (`GET /api/admin/whoami`): without a session
that is a 401 and `WebRoute` sends the browser to sign in; a signed-in customer without the
admin role gets the API's 403 as a "Not allowed" page. Nothing else is fetched before that
check passed, so a page never shows admin data to anyone else, even for a moment.

The pages read and change the shop only through the admin API, like any other client: the
analytics reports, the orders, the catalog and stock, the dead letters, the partner links and
the notification log. State changes are CSRF-checked POST forms answered with a redirect
(Post/Redirect/Get); the page after it shows a fixed message picked by `?done=`.
"""

from __future__ import annotations

import datetime
import decimal
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web import charts
from cloudcart.web.client import ApiClient, ApiError
from cloudcart.web.pages import Page, open_form, open_page, web_router

router = web_router()

NAV: tuple[tuple[str, str], ...] = (
    ("/admin", "Dashboard"),
    ("/admin/orders", "Orders"),
    ("/admin/products", "Products & stock"),
    ("/admin/dead-letters", "Dead letters"),
    ("/admin/integrations", "Integrations"),
    ("/admin/notifications", "Notifications"),
)

# Order statuses as the API names them (docs/orders.md), with the words the pages show.
ORDER_STATUSES: dict[str, str] = {
    "pending_payment": "Awaiting payment",
    "paid": "Paid",
    "payment_failed": "Payment failed",
    "fulfilling": "Fulfilling",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "on_hold": "On hold",
    "return_requested": "Return requested",
    "returned": "Returned",
    "refunded": "Refunded",
}
# The moves `POST /api/admin/orders/{id}/status` may make from each status (the state
# machine in docs/orders.md). Only offered as choices: the API stays the judge and answers
# an impossible move with 409, shown on the page. A held order leaves hold by review.
STATUS_MOVES: dict[str, tuple[str, ...]] = {
    "pending_payment": ("on_hold",),
    "paid": ("fulfilling", "on_hold"),
    "fulfilling": ("shipped", "on_hold"),
    "shipped": ("delivered",),
    "return_requested": ("returned",),
}
# Statuses an admin cancellation starts from besides `on_hold` (before anything shipped).
CANCEL_FROM = ("pending_payment", "paid", "fulfilling")
SHIPPED_FULFILMENTS = ("shipped", "delivered")
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "delivered", "bounced", "failed")
NOTIFICATION_CHANNELS = {"email": "Email", "sms": "SMS", "whatsapp": "WhatsApp", "inApp": "In app"}

ORDERS_PAGE = 25
PRODUCTS_PAGE = 20
NOTIFICATIONS_PAGE = 50
DEAD_LETTERS_STEP = 50
DEAD_LETTERS_MAX = 500
TOP_PRODUCTS = 10
TOP_QUERIES = 10
MAX_PERIOD_DAYS = 366
MAX_STOCK = 10**9

ORDER_DONE = {
    "approved": "The order was approved and released.",
    "rejected": "The order was rejected: it is cancelled, its payment refunded or voided.",
    "cancelled": "The order was cancelled: its payment is refunded or voided, its stock released.",
    "refunded": "The refund was issued.",
    "refund-seen": "A refund was recorded on this order after the refund form was opened, so "
    "nothing more was refunded. Check the refunds below before refunding again.",
    "status": "The order's status was changed.",
}
PRODUCT_DONE = {"stock": "The stock was updated."}
DEAD_LETTER_DONE = {
    "resubmitted": "The message was put back on its queue.",
    "purged": "The dead letter was deleted.",
    "gone": "That dead letter was already resubmitted or purged.",
}
STALE_STOCK = (
    "The stock of {sku} changed after this page was opened, so it was not saved. Reload the "
    "page to see the current figures, then try again."
)


def _path(value: str) -> str:
    """A value as one URL path segment."""
    return urllib.parse.quote(value, safe="")


def _notice(messages: Mapping[str, str], done: str | None) -> list[str]:
    """The fixed message a `?done=` code names (never the query text itself)."""
    message = messages.get(done or "")
    return [message] if message else []


# --- the admin check -----------------------------------------------------------------------


@dataclass
class AdminPage:
    """A management page being answered, once the API confirmed the admin role."""

    page: Page
    me: dict[str, Any]

    @property
    def api(self) -> ApiClient:
        """The API client of this request."""
        return self.page.api

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        """Render a template of templates/admin/ with the admin navigation."""
        return self.page.render(template, status=status, nav=NAV, **values)

    def redirect(self, url: str) -> Response:
        """303 to `url` after a form post."""
        return self.page.redirect(url)


async def _confirm_admin(page: Page) -> AdminPage:
    # 401 (no session) and 403 (not an admin) are raised as ApiError: WebRoute turns them
    # into the sign-in redirect and the "Not allowed" page.
    me = await page.api.get("/api/admin/whoami")
    return AdminPage(page, me)


async def open_admin(request: Request) -> AdminPage:
    """Open a management page: the admin check comes before any other API call."""
    return await _confirm_admin(await open_page(request))


async def open_admin_form(request: Request) -> tuple[AdminPage, dict[str, str]]:
    """Open a management form post: CSRF token first, then the admin check."""
    page, fields = await open_form(request)
    return await _confirm_admin(page), fields


# --- dashboard -----------------------------------------------------------------------------

PRESETS: dict[str, str] = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "custom": "Custom dates",
}


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


def _major(amount: float) -> str:
    return f"{amount / 100:,.2f}"


def _money_text(amount: float, currency: str) -> str:
    return f"{currency} {_major(amount)}"


def _rate_text(rate: float | None) -> str:
    return charts.DASH if rate is None else f"{rate * 100:.1f}%"


def _kpi(
    label: str,
    current: float,
    before: float,
    shown: Callable[[float], str],
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

        def money(value: float, currency: str = currency) -> str:
            return _money_text(value, currency)

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
            _kpi(
                "Average order value",
                aov.get(currency, 0),
                old_aov.get(currency, 0),
                money,
            ),
        ]
    found += [
        _kpi("Orders placed", summary.get("orders", 0), before.get("orders", 0), charts.plain),
        _kpi(
            "Paid orders", summary.get("paidOrders", 0), before.get("paidOrders", 0), charts.plain
        ),
        _kpi("Visitors", summary.get("visitors", 0), before.get("visitors", 0), charts.plain),
    ]
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


def _bucket_label(point: Mapping[str, Any], granularity: str) -> str:
    text = str(point.get("localStart") or point.get("start") or "")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%H:%M") if granularity == "hour" else moment.strftime("%d %b")


def _primary_currency(*revenues: Mapping[str, Any]) -> str | None:
    totals: dict[str, float] = {}
    for revenue in revenues:
        for currency, value in revenue.items():
            amount = value.get("gross", 0) if isinstance(value, Mapping) else value
            totals[currency] = totals.get(currency, 0) + float(amount or 0)
    return max(sorted(totals), key=lambda c: totals[c]) if totals else None


@dataclass(frozen=True)
class Chart:
    """A chart and the rows of the table that carries the same numbers."""

    title: str
    svg: Markup
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


def revenue_charts(
    summary: Mapping[str, Any], before: Mapping[str, Any], granularity: str
) -> list[Chart]:
    """Gross revenue per bucket, this period against the one before, one chart per
    currency; then orders placed per bucket."""
    series = summary.get("series") or []
    old_series = before.get("series") or []
    labels = [_bucket_label(p, granularity) for p in series]
    unit = "hour" if granularity == "hour" else "day"
    found: list[Chart] = []
    currencies = sorted(set(summary.get("revenue") or {}) | set(before.get("revenue") or {}))
    for currency in currencies or [""]:

        def gross(point: Mapping[str, Any], currency: str = currency) -> int:
            return int(((point.get("revenue") or {}).get(currency) or {}).get("gross", 0))

        def money(value: float, currency: str = currency) -> str:
            return _major(value)

        now = [gross(p) for p in series]
        then = [gross(p) for p in old_series]
        named = f" ({currency})" if currency else ""
        title = f"Gross revenue per {unit}{named}, against the period before"
        found.append(
            Chart(
                title,
                charts.bar_chart(
                    list(zip(labels, now, strict=True)),
                    title=title,
                    previous=then,
                    format_value=money,
                    format_axis=lambda value: charts.compact(value / 100),
                    empty_text="No revenue in either period",
                ),
                [unit.capitalize(), "This period", "Period before"],
                [
                    [label, _major(value), _major(then[i]) if i < len(then) else charts.DASH]
                    for i, (label, value) in enumerate(zip(labels, now, strict=True))
                ],
            )
        )
    now_orders = [int(p.get("orders", 0)) for p in series]
    then_orders = [int(p.get("orders", 0)) for p in old_series]
    title = f"Orders placed per {unit}, against the period before"
    found.append(
        Chart(
            title,
            charts.bar_chart(
                list(zip(labels, now_orders, strict=True)),
                title=title,
                previous=then_orders,
                empty_text="No orders in either period",
            ),
            [unit.capitalize(), "This period", "Period before"],
            [
                [label, str(value), str(then_orders[i]) if i < len(then_orders) else charts.DASH]
                for i, (label, value) in enumerate(zip(labels, now_orders, strict=True))
            ],
        )
    )
    return found


def funnel_chart(summary: Mapping[str, Any]) -> Chart:
    """Views, add to cart, checkout and paid, each with its share of the views."""
    funnel = summary.get("funnel") or {}
    steps = [
        ("Product views", int(funnel.get("views", 0))),
        ("Added to cart", int(funnel.get("addToCart", 0))),
        ("Checkout started", int(funnel.get("checkoutStarted", 0))),
        ("Paid orders", int(funnel.get("paid", 0))),
    ]
    views = steps[0][1]
    shares = [f"{n / views * 100:.1f}%" if views else charts.DASH for _, n in steps]
    labels = [
        f"{n:,}" if i == 0 or not views else f"{n:,} ({shares[i]} of views)"
        for i, (_, n) in enumerate(steps)
    ]
    title = "Funnel: product views to paid orders"
    return Chart(
        title,
        charts.hbar_chart(steps, title=title, value_labels=labels),
        ["Step", "Count", "Share of views"],
        [[name, f"{n:,}", shares[i]] for i, (name, n) in enumerate(steps)],
    )


async def _titles(api: ApiClient, product_ids: Sequence[str]) -> dict[str, str]:
    """Product titles for ids the analytics name (a product no longer on sale keeps its id)."""
    found = await api.gather(
        *(api.optional(f"/api/admin/products/{_path(pid)}") for pid in product_ids)
    )
    return {
        pid: str(product["title"])
        for pid, product in zip(product_ids, found, strict=True)
        if product and product.get("title")
    }


def top_products_chart(
    products: Mapping[str, Any], titles: Mapping[str, str], currency: str | None
) -> Chart:
    """The top products by revenue in the main currency."""
    items = products.get("items") or []
    points = [
        (
            titles.get(item["productId"], item["productId"]),
            int((item.get("revenue") or {}).get(currency or "", 0)),
        )
        for item in items
    ]
    title = f"Top products by revenue{f' ({currency})' if currency else ''}"
    return Chart(
        title,
        charts.hbar_chart(
            points, title=title, format_value=_major, empty_text="No sales in this period"
        ),
        [],
        [],
    )


def fulfilment_chart(fulfilment: Mapping[str, Any]) -> Chart:
    """Median and 90th percentile of paid→shipped and shipped→delivered.

    The fulfilment report gives percentiles over the whole range and no daily series, so
    the chart compares the four durations rather than drawing a trend.
    """
    rows: list[tuple[str, int | None]] = []
    for key, name in (
        ("paidToShipped", "Paid to shipped"),
        ("shippedToDelivered", "Shipped to delivered"),
    ):
        figures = fulfilment.get(key) or {}
        rows.append((f"{name}, median", figures.get("p50Seconds")))
        rows.append((f"{name}, 90th percentile", figures.get("p90Seconds")))
    title = "Fulfilment times"
    return Chart(
        title,
        charts.hbar_chart(
            [(label, float(value or 0)) for label, value in rows],
            title=title,
            format_value=charts.duration,
            empty_text="Nothing shipped or delivered in this period",
        ),
        ["Measure", "Duration"],
        [[label, charts.duration(value)] for label, value in rows],
    )


def _since(seconds: Any) -> str:
    try:
        return charts.duration(float(seconds))
    except (TypeError, ValueError):
        return charts.DASH


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
    path = "/api/admin/analytics"
    (
        summary,
        old_summary,
        products,
        inventory,
        fulfilment,
        old_fulfilment,
        searches,
    ) = await api.gather(
        api.get(f"{path}/summary", **chosen.params(), granularity=chosen.granularity),
        api.get(f"{path}/summary", **before.params(), granularity=before.granularity),
        api.optional(f"{path}/products", None, **chosen.params(), limit=TOP_PRODUCTS),
        api.optional(f"{path}/inventory", None),
        api.optional(f"{path}/fulfilment", None, **chosen.params()),
        api.optional(f"{path}/fulfilment", None, **before.params()),
        api.optional(f"{path}/search", None, **chosen.params(), limit=TOP_QUERIES),
    )
    currency = _primary_currency(summary.get("revenue") or {}, old_summary.get("revenue") or {})
    if currency is None and products:
        currency = _primary_currency(*((i.get("revenue") or {}) for i in products["items"]))
    titles = await _titles(api, [i["productId"] for i in (products or {}).get("items", [])])
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
        major=_major,
    )


# --- orders --------------------------------------------------------------------------------


@router.get("/admin/orders")
async def orders(
    request: Request,
    status: Annotated[str, Query(max_length=30)] = "",
    cursor: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """Every customer's orders, newest first, filtered by status, a page at a time."""
    admin = await open_admin(request)
    if status and status not in ORDER_STATUSES:
        return admin.render(
            "admin/orders.html",
            status=400,
            error="Choose one of the statuses offered.",
            result={"items": [], "nextCursor": None},
            statuses=ORDER_STATUSES,
            selected="",
            paged=False,
        )
    result = await admin.api.get(
        "/api/admin/orders", status=status or None, cursor=cursor or None, limit=ORDERS_PAGE
    )
    return admin.render(
        "admin/orders.html",
        error=None,
        result=result,
        statuses=ORDER_STATUSES,
        selected=status,
        paged=bool(cursor),
    )


def _refundable(order: Mapping[str, Any]) -> int:
    captured = int((order.get("captured") or {}).get("amount", 0))
    refunded = int((order.get("refunded") or {}).get("amount", 0))
    return max(0, captured - refunded)


def _shipped(order: Mapping[str, Any]) -> bool:
    return any(f.get("status") in SHIPPED_FULFILMENTS for f in order.get("fulfilments") or [])


def _actions(order: Mapping[str, Any]) -> dict[str, Any]:
    """Which forms the order page offers (the API still decides)."""
    status = str(order.get("status"))
    imported = bool(order.get("imported"))
    return {
        "review": status == "on_hold" and not imported,
        "cancel": status in CANCEL_FROM and not imported and not _shipped(order),
        "refund": _refundable(order) > 0 and not imported,
        "moves": () if imported else STATUS_MOVES.get(status, ()),
    }


async def _order_page(
    admin: AdminPage,
    order_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    order = await admin.api.get(f"/api/admin/orders/{_path(order_id)}")
    return admin.render(
        "admin/order.html",
        status=status,
        order=order,
        error=error,
        notices=_notice(ORDER_DONE, done),
        actions=_actions(order),
        refundable=_refundable(order),
        statuses=ORDER_STATUSES,
        form=form or {},
        major=_major,
    )


@router.get("/admin/orders/{order_id}")
async def order_detail(
    request: Request, order_id: str, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """One order: lines, totals, customer, payment, risk, history, shipments and actions."""
    admin = await open_admin(request)
    return await _order_page(admin, order_id, done=done)


def _after(order_id: str, done: str) -> str:
    return f"/admin/orders/{_path(order_id)}?done={done}"


async def _order_refused(
    admin: AdminPage, order_id: str, exc: ApiError, form: Mapping[str, str] | None = None
) -> Response:
    """The order page again with what the API refused, for refusals an admin can act on."""
    if exc.status not in (400, 409, 412, 422):
        raise exc
    return await _order_page(admin, order_id, status=exc.status, error=exc.message, form=form)


@router.post("/admin/orders/{order_id}/review")
async def review_order(request: Request, order_id: str) -> Response:
    """Approve or reject an order held for review."""
    admin, fields = await open_admin_form(request)
    decision = fields.get("decision", "")
    if decision not in ("approve", "reject"):
        return await _order_page(admin, order_id, status=422, error="Choose approve or reject.")
    try:
        await admin.api.post(f"/api/admin/orders/{_path(order_id)}/review", {"decision": decision})
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc)
    return admin.redirect(_after(order_id, "approved" if decision == "approve" else "rejected"))


@router.post("/admin/orders/{order_id}/cancel")
async def cancel_order(request: Request, order_id: str) -> Response:
    """Cancel an order before it ships: refund or void its payment, release its stock.

    The admin API cancels through review: rejecting a held order is the shop's
    cancellation (`cancelled_by_shop`, refund or void, stock released, audited). An order
    that is not held yet is first put on hold with the status route, then rejected.
    """
    admin, _ = await open_admin_form(request)
    api = admin.api
    path = f"/api/admin/orders/{_path(order_id)}"
    order = await api.get(path)
    status = str(order.get("status"))
    if status == "cancelled":
        return admin.redirect(_after(order_id, "cancelled"))
    if order.get("imported") or status not in (*CANCEL_FROM, "on_hold"):
        now = ORDER_STATUSES.get(status, status).lower()
        message = f"An order that is {now} cannot be cancelled."
        return await _order_page(admin, order_id, status=409, error=message)
    if _shipped(order):
        message = "Part of this order has shipped: it can be returned once delivered instead."
        return await _order_page(admin, order_id, status=409, error=message)
    try:
        if status != "on_hold":
            await api.post(f"{path}/status", {"status": "on_hold"})
        await api.post(f"{path}/review", {"decision": "reject"})
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc)
    return admin.redirect(_after(order_id, "cancelled"))


def minor_units(text: str) -> int:
    """An amount typed in major units ("1,299.50") as minor units (129950); ValueError
    when it is not a positive amount with at most two decimals."""
    cleaned = text.replace(",", "").replace(" ", "").strip()
    try:
        value = decimal.Decimal(cleaned)
    except decimal.InvalidOperation:
        raise ValueError("Enter the amount as a number, like 1299.50.") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("The amount must be more than zero.")
    minor = value * 100
    if minor != minor.to_integral_value():
        raise ValueError("The amount can have at most two decimals.")
    return int(minor)


def _refund_body(order: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """The refund the form asks for: an amount or lines, not both; ValueError to show."""
    lines: list[dict[str, Any]] = []
    for line in order.get("lines") or []:
        raw = fields.get(f"qty-{line['sku']}", "").strip()
        if not raw or raw == "0":
            continue
        try:
            quantity = int(raw)
        except ValueError:
            raise ValueError(f"The quantity of {line['sku']} must be a whole number.") from None
        left = int(line.get("quantity", 0)) - int(line.get("refundedQuantity", 0))
        if quantity < 0 or quantity > left:
            raise ValueError(f"Refund between 0 and {left} units of {line['sku']}.")
        lines.append({"sku": line["sku"], "quantity": quantity})
    amount = fields.get("amount", "").strip()
    if amount and lines:
        raise ValueError("Refund either an amount or lines, not both.")
    if not amount and not lines:
        raise ValueError("Enter an amount to refund, or the units of the lines to refund.")
    reason = fields.get("reason", "").strip()[:500] or "requested_by_admin"
    if lines:
        return {"lines": lines, "reason": reason}
    minor = minor_units(amount)
    if minor > _refundable(order):
        raise ValueError(f"At most {_major(_refundable(order))} can still be refunded.")
    return {"amount": minor, "reason": reason}


@router.post("/admin/orders/{order_id}/refund")
async def refund_order(request: Request, order_id: str) -> Response:
    """Refund an amount or lines of a paid order, once per form.

    The admin refund route takes no idempotency key, so the form carries how many refunds
    the order had when it was drawn (`seen`). A second submission of the same form finds a
    refund more and refunds nothing; two submissions racing each other ask the API for the
    same refund number, which its guard issues only once.
    """
    admin, fields = await open_admin_form(request)
    api = admin.api
    path = f"/api/admin/orders/{_path(order_id)}"
    order = await api.get(path)
    try:
        seen = int(fields.get("seen", ""))
    except ValueError:
        return await _order_page(
            admin, order_id, status=400, error="This form is incomplete: reload the page."
        )
    if len(order.get("refunds") or []) != seen:
        return admin.redirect(_after(order_id, "refund-seen"))
    try:
        body = _refund_body(order, fields)
    except ValueError as exc:
        return await _order_page(admin, order_id, status=422, error=str(exc), form=fields)
    try:
        await api.post(f"{path}/refunds", body)
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc, form=fields)
    return admin.redirect(_after(order_id, "refunded"))


@router.post("/admin/orders/{order_id}/status")
async def change_status(request: Request, order_id: str) -> Response:
    """Move an order along (shops without a fulfilment partner)."""
    admin, fields = await open_admin_form(request)
    target = fields.get("status", "")
    if target not in {move for moves in STATUS_MOVES.values() for move in moves}:
        return await _order_page(
            admin, order_id, status=422, error="Choose one of the statuses offered."
        )
    try:
        await admin.api.post(f"/api/admin/orders/{_path(order_id)}/status", {"status": target})
    except ApiError as exc:
        return await _order_refused(admin, order_id, exc)
    return admin.redirect(_after(order_id, "status"))


# --- products and stock --------------------------------------------------------------------


async def _levels(api: ApiClient, skus: Sequence[str]) -> dict[str, Any]:
    """Stock per SKU (a SKU the API cannot answer for shows as unknown)."""
    found = await api.gather(*(api.optional(f"/api/admin/inventory/{_path(sku)}") for sku in skus))
    return dict(zip(skus, found, strict=True))


@router.get("/admin/products")
async def products(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """Products with their variants and the stock of each SKU.

    The admin API reads one product at a time and has no list route, so the list comes
    from the public search (active products only; a draft or archived product is opened by
    its id), and each product's variants from the admin product route.
    """
    admin = await open_admin(request)
    api = admin.api
    try:
        result = await api.get(
            "/api/search", q=q.strip(), cursor=cursor or None, limit=PRODUCTS_PAGE
        )
    except ApiError as exc:
        if exc.status != 400:
            raise
        return admin.render(
            "admin/products.html",
            status=400,
            error=exc.message,
            q=q,
            result={"items": [], "total": 0},
            details={},
            levels={},
            paged=bool(cursor),
        )
    ids = [item["productId"] for item in result["items"]]
    found = await api.gather(*(api.optional(f"/api/admin/products/{_path(pid)}") for pid in ids))
    details = {pid: product for pid, product in zip(ids, found, strict=True) if product}
    skus = [v["sku"] for product in details.values() for v in product.get("variants") or []]
    return admin.render(
        "admin/products.html",
        error=None,
        q=q,
        result=result,
        details=details,
        levels=await _levels(api, skus),
        paged=bool(cursor),
    )


async def _product_page(
    admin: AdminPage,
    product_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    error_sku: str | None = None,
    done: str | None = None,
) -> Response:
    product = await admin.api.get(f"/api/admin/products/{_path(product_id)}")
    skus = [v["sku"] for v in product.get("variants") or []]
    return admin.render(
        "admin/product.html",
        status=status,
        product=product,
        levels=await _levels(admin.api, skus),
        error=error,
        error_sku=error_sku,
        notices=_notice(PRODUCT_DONE, done),
    )


@router.get("/admin/products/{product_id}")
async def product_detail(
    request: Request, product_id: str, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """A product in any status, its variants and a stock form per SKU."""
    admin = await open_admin(request)
    return await _product_page(admin, product_id, done=done)


@router.post("/admin/inventory/{sku}")
async def set_stock(request: Request, sku: str) -> Response:
    """Set a SKU's units available (or on hand) unless they changed since the form was
    drawn.

    The form carries the stock's `updatedAt` as the page showed it, and its `ETag` when the
    API sends one (then passed as If-Match, and the API's own 412 applies). The stock is
    read again first: a different `updatedAt` means someone (an order, a warehouse sync,
    another admin) moved it meanwhile, and the page asks to reload instead of overwriting.
    """
    admin, fields = await open_admin_form(request)
    api = admin.api
    path = f"/api/admin/inventory/{_path(sku)}"
    level = await api.get(path)
    product_id = str(level["productId"])
    field = fields.get("field", "available")
    if field not in ("available", "onHand"):
        field = "available"
    try:
        value = int(fields.get("value", "").strip())
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_STOCK:
        return await _product_page(
            admin,
            product_id,
            status=422,
            error=f"Enter the units of {sku} as a whole number from 0.",
            error_sku=sku,
        )
    if fields.get("seen", "") != str(level.get("updatedAt") or ""):
        return await _product_page(
            admin, product_id, status=412, error=STALE_STOCK.format(sku=sku), error_sku=sku
        )
    etag = fields.get("etag", "")
    try:
        await api.send(
            "PUT", path, json={field: value}, headers={"If-Match": etag} if etag else None
        )
    except ApiError as exc:
        if exc.status == 412:
            message = STALE_STOCK.format(sku=sku)
            return await _product_page(admin, product_id, status=412, error=message, error_sku=sku)
        if exc.status in (400, 409, 422):
            return await _product_page(
                admin, product_id, status=exc.status, error=exc.message, error_sku=sku
            )
        raise
    return admin.redirect(f"/admin/products/{_path(product_id)}?done=stock#stock-{_path(sku)}")


# --- dead letters --------------------------------------------------------------------------


def pretty_body(letter: Mapping[str, Any]) -> str:
    """A dead letter's body for reading: indented JSON, or the text as it came."""
    body = letter.get("body")
    if letter.get("bodyEncoding") == "json":
        return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True)
    return str(body)


@router.get("/admin/dead-letters")
async def dead_letters(
    request: Request,
    entity: Annotated[str, Query(max_length=50)] = "",
    subscription: Annotated[str, Query(max_length=50)] = "",
    limit: Annotated[str, Query(max_length=5)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Dead letters of every queue and subscription (or one), oldest first within each.

    The API lists up to 500 without a cursor: "Show more" asks for a longer list.
    """
    admin = await open_admin(request)
    try:
        count = min(max(int(limit), 1), DEAD_LETTERS_MAX)
    except ValueError:
        count = DEAD_LETTERS_STEP
    try:
        result = await admin.api.get(
            "/api/admin/dead-letters",
            entity=entity.strip() or None,
            subscription=subscription.strip() or None,
            limit=count,
        )
        error = None
    except ApiError as exc:
        if exc.status != 404:
            raise
        result, error = {"items": []}, exc.message
    items = result["items"]
    more = len(items) >= count and count < DEAD_LETTERS_MAX
    return admin.render(
        "admin/dead_letters.html",
        status=404 if error else 200,
        items=items,
        entity=entity,
        subscription=subscription,
        error=error,
        next_limit=min(count + DEAD_LETTERS_STEP, DEAD_LETTERS_MAX) if more else None,
        notices=_notice(DEAD_LETTER_DONE, done),
    )


@router.get("/admin/dead-letters/{letter_id}")
async def dead_letter(request: Request, letter_id: str) -> Response:
    """One dead letter: why it failed, its properties and its body."""
    admin = await open_admin(request)
    letter = await admin.api.get(f"/api/admin/dead-letters/{_path(letter_id)}")
    return admin.render("admin/dead_letter.html", letter=letter, body=pretty_body(letter))


@router.post("/admin/dead-letters/{letter_id}/resubmit")
async def resubmit_dead_letter(request: Request, letter_id: str) -> Response:
    """Put the message back on its queue or subscription."""
    admin, _ = await open_admin_form(request)
    try:
        await admin.api.post(f"/api/admin/dead-letters/{_path(letter_id)}/resubmit")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return admin.redirect("/admin/dead-letters?done=gone")
    return admin.redirect("/admin/dead-letters?done=resubmitted")


@router.post("/admin/dead-letters/{letter_id}/purge")
async def purge_dead_letter(request: Request, letter_id: str) -> Response:
    """Delete the dead letter for good."""
    admin, _ = await open_admin_form(request)
    try:
        await admin.api.send("DELETE", f"/api/admin/dead-letters/{_path(letter_id)}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return admin.redirect("/admin/dead-letters?done=gone")
    return admin.redirect("/admin/dead-letters?done=purged")


# --- integrations and notifications --------------------------------------------------------


def link_health(link: Mapping[str, Any]) -> tuple[str, str]:
    """A partner link's badge: (words, badge class)."""
    if not link.get("enabled"):
        return "Not configured", ""
    success = (link.get("lastSuccess") or {}).get("at") or ""
    failure = (link.get("lastFailure") or {}).get("at") or ""
    if failure and failure > success:
        return "Failing", "bad"
    if link.get("deadLetters"):
        return "Dead letters waiting", "warn"
    if not success:
        return "No traffic yet", ""
    return "Healthy", "ok"


@router.get("/admin/integrations")
async def integrations(request: Request) -> Response:
    """How each partner link is doing: last success and failure, backlog, dead letters."""
    admin = await open_admin(request)
    result = await admin.api.get("/api/admin/integrations")
    return admin.render("admin/integrations.html", links=result["items"], health=link_health)


@router.get("/admin/notifications")
async def notifications(
    request: Request,
    customer: Annotated[str, Query(max_length=256)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """The notification log, newest first, by customer, status and channel."""
    admin = await open_admin(request)
    error = None
    if status and status not in NOTIFICATION_STATUSES:
        error = "Choose one of the statuses offered."
    elif channel and channel not in NOTIFICATION_CHANNELS:
        error = "Choose one of the channels offered."
    result: dict[str, Any] = {"items": [], "cursor": None}
    if error is None:
        result = await admin.api.get(
            "/api/admin/notifications",
            customerId=customer.strip() or None,
            status=status or None,
            channel=channel or None,
            cursor=cursor or None,
            limit=NOTIFICATIONS_PAGE,
        )
    return admin.render(
        "admin/notifications.html",
        status=400 if error else 200,
        error=error,
        result=result,
        selected={"customer": customer, "status": status, "channel": channel},
        statuses=NOTIFICATION_STATUSES,
        channels=NOTIFICATION_CHANNELS,
        paged=bool(cursor),
    )
