"""The admin analytics reads: summary, products, inventory, fulfilment and search.

Every read is one single-partition query per day of the range over the roll-up documents
(plus the next day's paid orders for cart abandonment), never a scan of orders. Ranges are
`[from, to)`: `from` is rounded down to its bucket (hour or day), and every bucket that
starts before `to` is in. Products, fulfilment and search are kept per day, so their
ranges are whole UTC days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cloudcart.analytics.facts import parse_time
from cloudcart.analytics.rollups import (
    COUNTERS,
    INVENTORY_BUCKET,
    days_between,
    empty_counters,
    read_bucket,
)
from cloudcart.core.errors import DomainError
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import DocumentStore

Granularity = Literal["day", "hour"]
ProductSort = Literal["revenue", "units", "views"]

MAX_BUCKETS: Mapping[str, int] = {"hour": 31 * 24, "day": 400}
"""The most buckets one read covers."""

ABANDONMENT_WINDOW = timedelta(hours=24)
"""A cart or checkout is converted by a paid order within this time of its start."""


class InvalidRange(DomainError):
    """The `from`/`to` range cannot be read."""

    problem_type = "invalid-range"


@dataclass(frozen=True)
class Range:
    """A checked range of buckets."""

    start: datetime
    end: datetime
    granularity: Granularity

    @property
    def step(self) -> timedelta:
        """One bucket."""
        return timedelta(hours=1) if self.granularity == "hour" else timedelta(days=1)

    def starts(self) -> list[datetime]:
        """The start of every bucket."""
        found, at = [], self.start
        while at < self.end:
            found.append(at)
            at += self.step
        return found

    def days(self) -> list[str]:
        """The day partitions the range touches."""
        return days_between(self.start, self.end - timedelta(microseconds=1))


def _utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00-01:00 and the like: a valid time with no UTC datetime.
        raise InvalidRange("`from` and `to` must fall within years 1 to 9999 in UTC") from None


def make_range(
    start: datetime | None,
    end: datetime | None,
    granularity: Granularity,
    *,
    now: datetime,
    default_span: timedelta = timedelta(days=7),
) -> Range:
    """The buckets of `[start, end)` (default: the last seven days up to now), rounded
    out to whole buckets; InvalidRange when it is empty or too long."""
    end_at = _utc(end) if end is not None else now
    try:
        start_at = _utc(start) if start is not None else end_at - default_span
    except OverflowError:
        raise InvalidRange("`to` is too early for the default range; give `from`") from None
    if start_at >= end_at:
        raise InvalidRange("`from` must be before `to`")
    if granularity == "hour":
        first = start_at.replace(minute=0, second=0, microsecond=0)
        step = timedelta(hours=1)
    else:
        first = start_at.replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(days=1)
    count = math.ceil((end_at - first) / step)
    if count > MAX_BUCKETS[granularity]:
        raise InvalidRange(
            f"at most {MAX_BUCKETS[granularity]} {granularity} buckets per request, "
            f"this range has {count}"
        )
    try:
        last = first + count * step
    except OverflowError:
        raise InvalidRange("`to` must be before the last bucket of year 9999") from None
    return Range(first, last, granularity)


def _add_counters(target: dict[str, Any], counters: Mapping[str, Any]) -> None:
    for name in COUNTERS:
        target[name] = int(target.get(name, 0)) + int(counters.get(name, 0))
    revenue: dict[str, Any] = target.setdefault("revenue", {})
    for currency, money in (counters.get("revenue") or {}).items():
        entry = revenue.setdefault(currency, {"gross": 0, "refunded": 0, "paid": 0})
        for name in ("gross", "refunded", "paid"):
            entry[name] = int(entry.get(name, 0)) + int(money.get(name, 0))
    _add_notifications(target, counters)


NOTIFICATION_STATUSES = ("sent", "delivered", "bounced", "failed")


def _add_notifications(target: dict[str, Any], counters: Mapping[str, Any]) -> None:
    per_channel: dict[str, Any] = target.setdefault("notifications", {})
    for channel, figures in (counters.get("notifications") or {}).items():
        entry = per_channel.setdefault(channel, dict.fromkeys(NOTIFICATION_STATUSES, 0))
        for status in NOTIFICATION_STATUSES:
            entry[status] += int(figures.get(status, 0))


def _revenue(counters: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    return {
        currency: {
            "gross": int(money["gross"]),
            "refunded": int(money["refunded"]),
            "net": int(money["gross"]) - int(money["refunded"]),
        }
        for currency, money in sorted((counters.get("revenue") or {}).items())
    }


def _aov(counters: Mapping[str, Any]) -> dict[str, float]:
    return {
        currency: round(int(money["gross"]) / int(money["paid"]), 2)
        for currency, money in sorted((counters.get("revenue") or {}).items())
        if int(money.get("paid", 0))
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class _Days:
    """The roll-up documents of some days, by kind, read once each."""

    def __init__(self, store: DocumentStore, days: Iterable[str], kinds: tuple[str, ...]) -> None:
        self.by_day: dict[str, list[dict[str, Any]]] = {
            day: read_bucket(store, day, kinds) for day in days
        }

    def of(self, kind: str, days: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = self.by_day.keys() if days is None else days
        return [d for day in wanted for d in self.by_day.get(day, []) if d.get("kind") == kind]


def _in_range(stamp: str | None, window: Range) -> bool:
    at = parse_time(stamp)
    return at is not None and window.start <= at < window.end


def _abandonment(
    days: _Days, window: Range, now: datetime
) -> dict[str, dict[str, int | float | None]]:
    aliases: dict[str, str] = {}
    for document in days.of("carts"):
        aliases.update(document.get("aliases") or {})
    paid: dict[str, list[datetime]] = {}
    for document in days.of("payers"):
        for customer, orders in (document.get("customers") or {}).items():
            for entry in orders.values():
                at = parse_time(entry.get("at"))
                if at is not None:
                    paid.setdefault(customer, []).append(at)
    result: dict[str, dict[str, int | float | None]] = {}
    for name in ("cart", "checkout"):
        started = converted = abandoned = 0
        for document in days.of("carts", window.days()):
            for owner, entry in (document.get("owners") or {}).items():
                stamp = entry.get(name)
                if not _in_range(stamp, window):
                    continue
                start = parse_time(stamp)
                assert start is not None
                started += 1
                customer = aliases.get(owner, owner)
                if any(start <= at <= start + ABANDONMENT_WINDOW for at in paid.get(customer, [])):
                    converted += 1
                elif now >= start + ABANDONMENT_WINDOW:
                    abandoned += 1
        result[name] = {
            "started": started,
            "converted": converted,
            "abandoned": abandoned,
            "pending": started - converted - abandoned,
            "rate": _ratio(abandoned, converted + abandoned),
        }
    return result


def summary(
    store: DocumentStore, window: Range, *, now: datetime, time_zone: str
) -> dict[str, Any]:
    """The summary of a range (see docs/analytics.md for every definition)."""
    zone = ZoneInfo(time_zone)
    days = window.days()
    after = (datetime.fromisoformat(days[-1]).replace(tzinfo=UTC) + timedelta(days=1)).strftime(
        "%Y-%m-%d"
    )
    read = _Days(store, [*days, after], ("totals", "visitors", "carts", "payers"))
    buckets: dict[datetime, dict[str, Any]] = {at: empty_counters() for at in window.starts()}
    visitors: dict[datetime, set[str]] = {at: set() for at in buckets}
    for day in days:
        day_start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        for document in read.of("totals", [day]):
            for hour, counters in (document.get("hours") or {}).items():
                at = day_start + timedelta(hours=int(hour))
                bucket = at if window.granularity == "hour" else day_start
                if bucket in buckets:
                    _add_counters(buckets[bucket], counters)
        for document in read.of("visitors", [day]):
            for owner, mask in (document.get("owners") or {}).items():
                for hour in range(24):
                    if int(mask) >> hour & 1:
                        at = day_start + timedelta(hours=hour)
                        bucket = at if window.granularity == "hour" else day_start
                        if bucket in visitors:
                            visitors[bucket].add(owner)
    total = empty_counters()
    for counters in buckets.values():
        _add_counters(total, counters)
    everyone: set[str] = set().union(*visitors.values()) if visitors else set()
    abandonment = _abandonment(read, window, now)
    new_customers: set[str] = set()
    payers: set[str] = set()
    for document in read.of("payers", days):
        for customer, orders in (document.get("customers") or {}).items():
            for entry in orders.values():
                if _in_range(entry.get("at"), window):
                    payers.add(customer)
                    if entry.get("first"):
                        new_customers.add(customer)
    series = []
    for at, counters in buckets.items():
        series.append(
            {
                "start": timestamp(at),
                "localStart": at.astimezone(zone).isoformat(),
                "revenue": _revenue(counters),
                "orders": counters["placed"],
                "paidOrders": counters["paid"],
                "units": counters["units"],
                "visitors": len(visitors[at]),
                "views": counters["views"],
                "addToCart": counters["addToCart"],
                "checkoutStarted": counters["checkoutStarted"],
                "searches": counters["searches"],
                "zeroResultSearches": counters["zeroResultSearches"],
                "cancelled": counters["cancelled"],
                "returnedUnits": counters["returnedUnits"],
            }
        )
    return {
        "from": timestamp(window.start),
        "to": timestamp(window.end),
        "granularity": window.granularity,
        "timeZone": time_zone,
        "revenue": _revenue(total),
        "orders": total["placed"],
        "paidOrders": total["paid"],
        "importedOrders": total["imported"],
        "cancelledOrders": total["cancelled"],
        "aov": _aov(total),
        "units": total["units"],
        "returnedUnits": total["returnedUnits"],
        "visitors": len(everyone),
        "funnel": {
            "views": total["views"],
            "addToCart": total["addToCart"],
            "checkoutStarted": total["checkoutStarted"],
            "placed": total["placed"],
            "paid": total["paid"],
        },
        "abandonmentRate": abandonment["cart"]["rate"],
        "abandonment": {"carts": abandonment["cart"], "checkouts": abandonment["checkout"]},
        "returnsRate": _ratio(total["returnedUnits"], total["units"]),
        "customers": {"new": len(new_customers), "returning": len(payers - new_customers)},
        "searches": {"total": total["searches"], "zeroResults": total["zeroResultSearches"]},
        "notifications": dict(sorted((total.get("notifications") or {}).items())),
        "series": series,
    }


def _merge_money(target: dict[str, int], source: Mapping[str, Any]) -> None:
    for currency, amount in source.items():
        target[currency] = target.get(currency, 0) + int(amount)


def products(
    store: DocumentStore, window: Range, *, sort: ProductSort, limit: int
) -> dict[str, Any]:
    """Products and categories over whole days: views, add-to-carts, paid orders, units,
    revenue per currency (line totals) and AOV; the top `limit` by `sort`."""
    read = _Days(store, window.days(), ("products", "categories"))
    items: dict[str, dict[str, Any]] = {}
    for document in read.of("products"):
        for product_id, entry in (document.get("items") or {}).items():
            item = items.setdefault(
                product_id,
                {
                    "productId": product_id,
                    "categoryId": None,
                    "views": 0,
                    "addToCart": 0,
                    "orders": 0,
                    "units": 0,
                    "revenue": {},
                },
            )
            item["categoryId"] = item["categoryId"] or entry.get("categoryId")
            for name in ("views", "addToCart", "orders", "units"):
                item[name] += int(entry.get(name, 0))
            _merge_money(item["revenue"], entry.get("revenue") or {})
    categories: dict[str, dict[str, Any]] = {}
    for document in read.of("categories"):
        for category_id, entry in (document.get("items") or {}).items():
            item = categories.setdefault(
                category_id, {"categoryId": category_id, "orders": 0, "units": 0, "revenue": {}}
            )
            item["orders"] += int(entry.get("orders", 0))
            item["units"] += int(entry.get("units", 0))
            _merge_money(item["revenue"], entry.get("revenue") or {})
    for item in [*items.values(), *categories.values()]:
        orders = int(item["orders"])
        item["aov"] = (
            {c: round(a / orders, 2) for c, a in item["revenue"].items()} if orders else {}
        )

    def key(item: dict[str, Any]) -> tuple[int, str]:
        value = sum(item["revenue"].values()) if sort == "revenue" else int(item[sort])
        return (-value, str(item["productId"]))

    ranked = sorted(items.values(), key=key)
    return {
        "from": timestamp(window.start),
        "to": timestamp(window.end),
        "sort": sort,
        "items": ranked[:limit],
        "categories": sorted(
            categories.values(), key=lambda c: (-int(c["units"]), c["categoryId"])
        ),
    }


def percentile(histogram: Mapping[int, int], fraction: float) -> int | None:
    """The nearest-rank percentile of an exact histogram `{value: count}`."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def fulfilment(store: DocumentStore, window: Range) -> dict[str, Any]:
    """Paid-to-shipped and shipped-to-delivered times over whole days (seconds, exact p50
    and p90 by nearest rank), each counted on the day it ended."""
    read = _Days(store, window.days(), ("fulfilment",))
    result: dict[str, Any] = {"from": timestamp(window.start), "to": timestamp(window.end)}
    for name in ("paidToShipped", "shippedToDelivered"):
        histogram: dict[int, int] = {}
        for document in read.of("fulfilment"):
            for seconds, count in (document.get(name) or {}).items():
                histogram[int(seconds)] = histogram.get(int(seconds), 0) + int(count)
        result[name] = {
            "count": sum(histogram.values()),
            "p50Seconds": percentile(histogram, 0.5),
            "p90Seconds": percentile(histogram, 0.9),
        }
    return result


def search(store: DocumentStore, window: Range, *, limit: int) -> dict[str, Any]:
    """Searches over whole days: the top queries and the zero-result queries."""
    read = _Days(store, window.days(), ("searches",))
    queries: dict[str, dict[str, int]] = {}
    for document in read.of("searches"):
        for query, entry in (document.get("queries") or {}).items():
            item = queries.setdefault(query, {"count": 0, "zero": 0})
            item["count"] += int(entry.get("count", 0))
            item["zero"] += int(entry.get("zero", 0))
    top = sorted(queries.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
    zero = sorted(
        ((q, e) for q, e in queries.items() if e["zero"]), key=lambda kv: (-kv[1]["zero"], kv[0])
    )
    return {
        "from": timestamp(window.start),
        "to": timestamp(window.end),
        "searches": sum(e["count"] for e in queries.values()),
        "zeroResultSearches": sum(e["zero"] for e in queries.values()),
        "topQueries": [
            {"query": q, "count": e["count"], "zeroResults": e["zero"]} for q, e in top[:limit]
        ],
        "zeroResultQueries": [{"query": q, "count": e["zero"]} for q, e in zero[:limit]],
    }


def inventory(
    store: DocumentStore, *, now: datetime, low_stock: int, limit: int = 100
) -> dict[str, Any]:
    """SKUs out of stock now (and for how long), low stock, and recent stock-outs."""
    documents = read_bucket(store, INVENTORY_BUCKET, ("stock", "stockouts"))
    out, low = [], []
    for document in documents:
        if document.get("kind") != "stock":
            continue
        for sku, entry in (document.get("skus") or {}).items():
            available = int(entry.get("available", 0))
            since = parse_time(entry.get("outSince"))
            if available == 0 and since is not None:
                out.append(
                    {
                        "sku": sku,
                        "productId": entry.get("productId"),
                        "since": entry.get("outSince"),
                        "seconds": max(0, int((now - since).total_seconds())),
                    }
                )
            elif 0 < available <= low_stock:
                low.append(
                    {"sku": sku, "productId": entry.get("productId"), "available": available}
                )
    ended = [
        dict(entry)
        for document in documents
        if document.get("kind") == "stockouts"
        for entry in (document.get("items") or {}).values()
    ]
    ended.sort(key=lambda e: (str(e["to"]), str(e["sku"])), reverse=True)
    durations = {int(e["seconds"]): 0 for e in ended}
    for entry in ended:
        durations[int(entry["seconds"])] += 1
    return {
        "outOfStock": sorted(out, key=lambda e: (str(e["since"]), e["sku"])),
        "lowStock": sorted(low, key=lambda e: (int(e["available"]), e["sku"])),
        "lowStockThreshold": low_stock,
        "stockOuts": {
            "count": len(ended),
            "p50Seconds": percentile(durations, 0.5),
            "p90Seconds": percentile(durations, 0.9),
            "recent": ended[:limit],
        },
    }
