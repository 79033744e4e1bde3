"""The dashboard's charts: each a bar chart drawn on the server (cloudcart.web.charts) with
the table that carries the same numbers, from the analytics reports' answers."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from cloudcart.web import charts
from cloudcart.web.admin.common import major


@dataclass(frozen=True)
class Chart:
    """A chart and the rows of the table that carries the same numbers."""

    title: str
    svg: Markup
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


def _bucket_label(point: Mapping[str, Any], granularity: str) -> str:
    text = str(point.get("localStart") or point.get("start") or "")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%H:%M") if granularity == "hour" else moment.strftime("%d %b")


def _against_before(
    title: str,
    unit: str,
    points: Sequence[tuple[str, int]],
    before: Sequence[int],
    *,
    shown: charts.Formatter,
    axis: charts.Formatter | None = None,
    empty_text: str,
) -> Chart:
    """Bars per bucket of this period beside the same bucket of the period before, and the
    table of both."""
    return Chart(
        title,
        charts.bar_chart(
            points,
            title=title,
            previous=before,
            format_value=shown,
            format_axis=axis,
            empty_text=empty_text,
        ),
        [unit.capitalize(), "This period", "Period before"],
        [
            [label, shown(value), shown(before[i]) if i < len(before) else charts.DASH]
            for i, (label, value) in enumerate(points)
        ],
    )


def _gross(point: Mapping[str, Any], currency: str) -> int:
    return int(((point.get("revenue") or {}).get(currency) or {}).get("gross", 0))


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
        named = f" ({currency})" if currency else ""
        found.append(
            _against_before(
                f"Gross revenue per {unit}{named}, against the period before",
                unit,
                [(label, _gross(p, currency)) for label, p in zip(labels, series, strict=True)],
                [_gross(p, currency) for p in old_series],
                shown=major,
                axis=lambda value: charts.compact(value / 100),
                empty_text="No revenue in either period",
            )
        )
    found.append(
        _against_before(
            f"Orders placed per {unit}, against the period before",
            unit,
            [(label, int(p.get("orders", 0))) for label, p in zip(labels, series, strict=True)],
            [int(p.get("orders", 0)) for p in old_series],
            shown=charts.plain,
            empty_text="No orders in either period",
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


def top_products_chart(
    products: Mapping[str, Any], titles: Mapping[str, str], currency: str | None
) -> Chart:
    """The top products by revenue in the main currency (the page's table has the rest)."""
    points = [
        (
            titles.get(item["productId"], item["productId"]),
            int((item.get("revenue") or {}).get(currency or "", 0)),
        )
        for item in products.get("items") or []
    ]
    title = f"Top products by revenue{f' ({currency})' if currency else ''}"
    return Chart(
        title,
        charts.hbar_chart(
            points, title=title, format_value=major, empty_text="No sales in this period"
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
