"""The roll-up documents and how facts are folded into them, each fact once.

The `analytics` container is partitioned by `/bucket`: one partition per UTC day
(`2030-01-01`) holds that day and its 24 hours, so one transactional batch updates the hour
and the day together; the partition `inventory` holds the current stock-out state.

Documents of a day partition:

- `totals`: `hours: {"00".."23": counters}`, the counters being views, add-to-carts,
  checkouts started, searches, zero-result searches, orders placed, paid, cancelled,
  imported, units, returned units, first orders, shipments, deliveries and
  `revenue: {currency: {gross, refunded, paid}}`;
- `visitors-<n>` (16 shards): `owners: {owner: bitmask of the hours seen}`;
- `carts-<n>` (16 shards): `owners: {owner: {cart, checkout}}`, the first add-to-cart and
  checkout-started times, and `aliases: {v:<visitor>: customer}`;
- `payers-<n>` (8 shards): `customers: {customer: {order: {at, first}}}`, paid orders;
- `products-<n>` (8 shards): `items: {product: {categoryId, views, addToCart, orders,
  units, revenue}}`;
- `categories`: `items: {category: {orders, units, revenue}}`;
- `fulfilment`: exact histograms `{seconds: count}`, `paidToShipped` and
  `shippedToDelivered`;
- `searches-<n>` (4 shards): `queries: {query: {count, zero}}`.

Every document's `kind` is its id without the shard number.

Partition `inventory`: `stock-<n>` (`stock`, 8 shards) `skus: {sku: {productId, available,
at, outSince}}` (the latest fact per SKU wins) and `stockouts` (`stockouts`): the most
recent `MAX_STOCKOUTS` ended stock-outs, `{sku}@{from}`, as the inventory announced them
(its stock documents keep the periods, so they do not depend on the order of events).

Exactly once: facts are grouped by partition; each partition's update is one transactional
batch holding a processed marker per fact (keyed on the fact, kept as long as the roll-up)
and the new versions of the documents it changes, If-Match their ETags. Markers already
present are skipped before the fold; a lost race (412, or a marker another delivery just
wrote) is read again. Every fold is a sum, a minimum, a set union or "latest time wins", so
the order in which facts arrive does not matter, and a late fact lands in its own bucket.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cloudcart.analytics.facts import Fact, parse_time
from cloudcart.core.errors import (
    BatchFailed,
    CloudcartError,
    Conflict,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.idempotency import processed_marker, processed_marker_id
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Query,
    strip_system,
)
from cloudcart.core.ports.documents import every as every_document

logger = logging.getLogger(__name__)

ANALYTICS = "analytics"
CONSUMER = "analytics"
"""Consumer name in the processed markers."""

INVENTORY_BUCKET = "inventory"
TOTALS_ID = "totals"
CATEGORIES_ID = "categories"
FULFILMENT_ID = "fulfilment"
STOCKOUTS_ID = "stockouts"

SHARDS: Mapping[str, int] = {
    "visitors": 16,
    "carts": 16,
    "payers": 8,
    "products": 8,
    "searches": 4,
    "stock": 8,
}
"""Documents per day (and for stock) that a growing map is spread over, by a hash of its
key, so no document nears Cosmos's 2 MB item limit (16 visitor shards hold ~500k visitors
a day)."""

DAY_KINDS = (
    "totals",
    "visitors",
    "carts",
    "payers",
    "products",
    "categories",
    "fulfilment",
    "searches",
)

MAX_STOCKOUTS = 2000
"""Ended stock-outs kept (the newest)."""

MAX_BATCH_OPERATIONS = 100
MAX_ATTEMPTS = 40

COUNTERS = (
    "views",
    "addToCart",
    "checkoutStarted",
    "searches",
    "zeroResultSearches",
    "placed",
    "paid",
    "cancelled",
    "imported",
    "units",
    "returnedUnits",
    "firstOrders",
    "shipments",
    "deliveries",
)
"""Counters of every hour."""


class AnalyticsBusy(CloudcartError):
    """A roll-up kept changing under concurrent updates; the message is retried."""


@lru_cache(maxsize=4096)
def day_key(at: datetime) -> str:
    """The partition (bucket) of a UTC day."""
    # Cached and formatted by hand: this runs several times per counted event, mostly for
    # the same few moments, and strftime is slow.
    utc = at.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"


@lru_cache(maxsize=4096)
def hour_key(at: datetime) -> str:
    """The hour of `at` within its day, `00`..`23`."""
    return f"{at.astimezone(UTC).hour:02d}"


def shard(name: str, key: str) -> str:
    """The id of the shard of document family `name` that holds `key`."""
    return f"{name}-{zlib.crc32(key.encode('utf-8')) % SHARDS[name]}"


def blank(doc_id: str, bucket: str) -> Document:
    """An empty roll-up document."""
    kind = doc_id.split("-", 1)[0]
    document: Document = {"id": doc_id, "bucket": bucket, "kind": kind}
    if kind == "totals":
        document["hours"] = {}
    elif kind in ("visitors", "carts"):
        document["owners"] = {}
        if kind == "carts":
            document["aliases"] = {}
    elif kind == "payers":
        document["customers"] = {}
    elif kind in ("products", "categories", "stockouts"):
        document["items"] = {}
    elif kind == "fulfilment":
        document["paidToShipped"] = {}
        document["shippedToDelivered"] = {}
    elif kind == "searches":
        document["queries"] = {}
    elif kind == "stock":
        document["skus"] = {}
    return document


def empty_counters() -> dict[str, Any]:
    """An hour with nothing counted."""
    counters: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
    counters["revenue"] = {}
    return counters


# --- folding --------------------------------------------------------------------------------

Mutation = Callable[[Document], None]


@dataclass(frozen=True)
class Change:
    """One mutation of one document in one partition."""

    bucket: str
    doc_id: str
    apply: Mutation


def _hour(document: Document, at: datetime) -> dict[str, Any]:
    hours: dict[str, Any] = document.setdefault("hours", {})
    counters: dict[str, Any] = hours.setdefault(hour_key(at), empty_counters())
    return counters


def _count(at: datetime, **deltas: int) -> Change:
    def apply(document: Document) -> None:
        counters = _hour(document, at)
        for name, delta in deltas.items():
            counters[name] = int(counters.get(name, 0)) + delta

    return Change(day_key(at), TOTALS_ID, apply)


def _money(at: datetime, currency: str, **deltas: int) -> Change:
    def apply(document: Document) -> None:
        revenue: dict[str, Any] = _hour(document, at).setdefault("revenue", {})
        entry = revenue.setdefault(currency, {"gross": 0, "refunded": 0, "paid": 0})
        for name, delta in deltas.items():
            entry[name] = int(entry.get(name, 0)) + delta

    return Change(day_key(at), TOTALS_ID, apply)


def _notifications(at: datetime, channel: str, status: str) -> Change:
    def apply(document: Document) -> None:
        per_channel: dict[str, Any] = _hour(document, at).setdefault("notifications", {})
        _add(per_channel.setdefault(channel, {}), status, 1)

    return Change(day_key(at), TOTALS_ID, apply)


def _add(target: dict[str, Any], name: str, delta: int) -> None:
    target[name] = int(target.get(name, 0)) + delta


def _product(at: datetime, product_id: str, category_id: str | None, **deltas: int) -> Change:
    def apply(document: Document) -> None:
        items: dict[str, Any] = document.setdefault("items", {})
        entry = items.setdefault(product_id, {"categoryId": category_id})
        if category_id and not entry.get("categoryId"):
            entry["categoryId"] = category_id
        for name, delta in deltas.items():
            _add(entry, name, delta)

    return Change(day_key(at), shard("products", product_id), apply)


def _product_revenue(at: datetime, product_id: str, currency: str, amount: int) -> Change:
    def apply(document: Document) -> None:
        entry = document.setdefault("items", {}).setdefault(product_id, {"categoryId": None})
        _add(entry.setdefault("revenue", {}), currency, amount)

    return Change(day_key(at), shard("products", product_id), apply)


def _category(
    at: datetime, category_id: str, currency: str, orders: int, units: int, revenue: int
) -> Change:
    def apply(document: Document) -> None:
        entry = document.setdefault("items", {}).setdefault(category_id, {})
        _add(entry, "orders", orders)
        _add(entry, "units", units)
        _add(entry.setdefault("revenue", {}), currency, revenue)

    return Change(day_key(at), CATEGORIES_ID, apply)


def _earliest(entry: dict[str, Any], name: str, at: str) -> None:
    current = entry.get(name)
    if current is None or at < current:
        entry[name] = at


@dataclass
class _StorefrontDay:
    """What one storefront batch adds to one day: gathered first, so a batch of many
    events costs one mutation per document instead of several per event."""

    hours: dict[int, dict[str, int]]
    seen: int = 0
    products: dict[str, dict[str, int]] | None = None
    cart: str | None = None
    checkout: str | None = None
    searches: dict[str, tuple[int, int]] | None = None


def _storefront_changes(fact: Fact) -> list[Change]:
    data = fact.data
    owner = str(data["owner"])
    days: dict[str, _StorefrontDay] = {}
    for event in data.get("events") or []:
        at = parse_time(event.get("at"))
        if at is None:
            continue
        kind = event.get("type")
        product_id = event.get("productId")
        hour = int(hour_key(at))
        day = days.setdefault(day_key(at), _StorefrontDay(hours={}))
        day.seen |= 1 << hour
        counters = day.hours.setdefault(hour, {})
        product_counter = None
        if kind in ("product_viewed", "recommendation_clicked"):
            _add(counters, "views", 1)
            product_counter = "views"
        elif kind == "add_to_cart":
            _add(counters, "addToCart", 1)
            product_counter = "addToCart"
            day.cart = min(day.cart or "~", timestamp(at))
        elif kind == "checkout_started":
            _add(counters, "checkoutStarted", 1)
            day.checkout = min(day.checkout or "~", timestamp(at))
        elif kind == "search":
            zero = int(event.get("resultsCount") == 0)
            _add(counters, "searches", 1)
            _add(counters, "zeroResultSearches", zero)
            query = normalise_query(str(event.get("query") or ""))
            searches = day.searches = day.searches or {}
            count, zeros = searches.get(query, (0, 0))
            searches[query] = (count + 1, zeros + zero)
        if product_counter and isinstance(product_id, str):
            products = day.products = day.products or {}
            _add(products.setdefault(product_id, {}), product_counter, 1)
    changes: list[Change] = []
    for bucket, day in days.items():
        changes.extend(_storefront_day(bucket, owner, day))
    customer_id, visitor_id = data.get("customerId"), data.get("visitorId")
    if customer_id and visitor_id:
        # The visitor signed in on this device: its earlier carts are the customer's.
        alias = f"v:{visitor_id}"

        def link(document: Document) -> None:
            document.setdefault("aliases", {})[alias] = str(customer_id)

        changes.append(Change(day_key(fact.at), shard("carts", alias), link))
    return changes


def _storefront_day(bucket: str, owner: str, day: _StorefrontDay) -> list[Change]:
    def seen(document: Document) -> None:
        owners: dict[str, int] = document.setdefault("owners", {})
        owners[owner] = int(owners.get(owner, 0)) | day.seen

    def count(document: Document) -> None:
        hours: dict[str, Any] = document.setdefault("hours", {})
        for hour, deltas in day.hours.items():
            counters = hours.setdefault(f"{hour:02d}", empty_counters())
            for name, delta in deltas.items():
                _add(counters, name, delta)

    changes = [Change(bucket, shard("visitors", owner), seen), Change(bucket, TOTALS_ID, count)]
    for product_id, deltas in (day.products or {}).items():

        def product(document: Document, product_id: str = product_id, deltas: Any = deltas) -> None:
            entry = document.setdefault("items", {}).setdefault(product_id, {"categoryId": None})
            for name, delta in deltas.items():
                _add(entry, name, delta)

        changes.append(Change(bucket, shard("products", product_id), product))
    if day.cart or day.checkout:

        def cart(document: Document) -> None:
            entry = document.setdefault("owners", {}).setdefault(owner, {})
            for name, stamp in (("cart", day.cart), ("checkout", day.checkout)):
                if stamp:
                    _earliest(entry, name, stamp)

        changes.append(Change(bucket, shard("carts", owner), cart))
    for query, (total, zeros) in (day.searches or {}).items():

        def search(
            document: Document, query: str = query, total: int = total, zeros: int = zeros
        ) -> None:
            entry = document.setdefault("queries", {}).setdefault(query, {"count": 0, "zero": 0})
            _add(entry, "count", total)
            _add(entry, "zero", zeros)

        changes.append(Change(bucket, shard("searches", query), search))
    return changes


def normalise_query(query: str) -> str:
    """A search query as counted: lower case, single spaces."""
    return " ".join(query.lower().split())[:200]


def _paid_changes(fact: Fact) -> list[Change]:
    data = fact.data
    at, currency = fact.at, str(data["currency"])
    lines: list[Mapping[str, Any]] = data.get("lines") or []
    units = sum(int(line["quantity"]) for line in lines)
    changes = [
        _count(at, paid=1, units=units, firstOrders=int(bool(data.get("first")))),
        _money(at, currency, gross=int(data["gross"]), paid=1),
    ]
    categories: dict[str, tuple[int, int]] = {}
    products: dict[str, tuple[str | None, int, int]] = {}
    for line in lines:
        quantity, amount = int(line["quantity"]), int(line["quantity"]) * int(line["unitPrice"])
        product_id, category_id = line.get("productId"), line.get("categoryId")
        if product_id:
            _, q, a = products.get(product_id, (category_id, 0, 0))
            products[product_id] = (category_id, q + quantity, a + amount)
        if category_id:
            q, a = categories.get(category_id, (0, 0))
            categories[category_id] = (q + quantity, a + amount)
    for product_id, (category_id, quantity, amount) in products.items():
        changes.append(_product(at, product_id, category_id, orders=1, units=quantity))
        changes.append(_product_revenue(at, product_id, currency, amount))
    for category_id, (quantity, amount) in categories.items():
        changes.append(_category(at, category_id, currency, 1, quantity, amount))
    customer_id, order_id, stamp = str(data["customerId"]), str(data["orderId"]), timestamp(at)

    def payer(document: Document) -> None:
        orders = document.setdefault("customers", {}).setdefault(customer_id, {})
        orders[order_id] = {"at": stamp, "first": bool(data.get("first"))}

    changes.append(Change(day_key(at), shard("payers", customer_id), payer))
    return changes


def _histogram(at: datetime, name: str, seconds: int | None) -> Change:
    def apply(document: Document) -> None:
        if seconds is not None:
            _add(document.setdefault(name, {}), str(seconds), 1)

    return Change(day_key(at), FULFILMENT_ID, apply)


def stockout_key(sku: str, start: str) -> str:
    """The key of an ended stock-out in the `stockouts` document."""
    return f"{sku}@{start}"


def keep_newest_stockouts(items: dict[str, Any]) -> None:
    """Drop all but the `MAX_STOCKOUTS` most recently ended stock-outs."""
    if len(items) > MAX_STOCKOUTS:
        oldest = sorted(items.items(), key=lambda kv: (kv[1]["to"], kv[0]))
        for key, _ in oldest[: len(items) - MAX_STOCKOUTS]:
            del items[key]


def _stock_changes(fact: Fact) -> list[Change]:
    data = fact.data
    sku, available, stamp = str(data["sku"]), int(data["available"]), timestamp(fact.at)

    def apply(document: Document) -> None:
        skus: dict[str, Any] = document.setdefault("skus", {})
        entry = skus.get(sku)
        if entry is not None and str(entry.get("at", "")) >= stamp:
            return  # an older fact than what is known: the latest wins
        skus[sku] = {
            "productId": data.get("productId"),
            "available": available,
            "at": stamp,
            "outSince": (data.get("outSince") or stamp) if available == 0 else None,
        }

    changes = [Change(INVENTORY_BUCKET, shard("stock", sku), apply)]
    ended = data.get("stockOut")
    if ended:
        start = str(ended["from"])
        stockout = {
            "sku": sku,
            "productId": data.get("productId"),
            "from": start,
            "to": str(ended["to"]),
            "seconds": int(ended["seconds"]),
        }

        def record(document: Document) -> None:
            items: dict[str, Any] = document.setdefault("items", {})
            items[stockout_key(sku, start)] = stockout
            keep_newest_stockouts(items)

        changes.append(Change(INVENTORY_BUCKET, STOCKOUTS_ID, record))
    return changes


def changes_of(fact: Fact) -> list[Change]:
    """The document mutations a fact makes."""
    data, at = fact.data, fact.at
    if fact.kind == "storefront":
        return _storefront_changes(fact)
    if fact.kind == "placed":
        return [_count(at, placed=1, imported=int(bool(data.get("imported"))))]
    if fact.kind == "paid":
        return _paid_changes(fact)
    if fact.kind == "cancelled":
        return [_count(at, cancelled=1)]
    if fact.kind == "refund":
        return [_money(at, str(data["currency"]), refunded=int(data["amount"]))]
    if fact.kind == "returned":
        return [_count(at, returnedUnits=int(data["units"]))]
    if fact.kind == "shipped":
        return [_count(at, shipments=1), _histogram(at, "paidToShipped", data.get("seconds"))]
    if fact.kind == "delivered":
        return [_count(at, deliveries=1), _histogram(at, "shippedToDelivered", data.get("seconds"))]
    if fact.kind == "stock":
        return _stock_changes(fact)
    if fact.kind == "notification":
        return [_notifications(at, str(data["channel"]), str(data["status"]))]
    raise ValueError(f"unknown fact kind {fact.kind!r}")


def fold(facts: Iterable[Fact]) -> dict[str, dict[str, Document]]:
    """The roll-up documents the facts make from nothing: `{bucket: {id: document}}`
    (for verify and rebuild; the consumer folds into the stored documents instead)."""
    buckets: dict[str, dict[str, Document]] = {}
    for fact in facts:
        for change in changes_of(fact):
            documents = buckets.setdefault(change.bucket, {})
            if change.doc_id not in documents:
                documents[change.doc_id] = blank(change.doc_id, change.bucket)
            change.apply(documents[change.doc_id])
    return buckets


# --- applying facts to the store, once each -------------------------------------------------


@dataclass
class Outcome:
    """What `apply_facts` did: facts counted now, facts found counted before."""

    applied: int = 0
    duplicates: int = 0


def container(store: DocumentStore) -> Container:
    """The `analytics` container."""
    return store.container(ANALYTICS)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


@dataclass(frozen=True)
class _Item:
    fact: Fact
    changes: tuple[Change, ...]

    @property
    def doc_ids(self) -> set[str]:
        return {change.doc_id for change in self.changes}


def _chunks(items: Sequence[_Item]) -> list[list[_Item]]:
    """Items in groups whose markers and documents fit one transactional batch."""
    chunks: list[list[_Item]] = []
    current: list[_Item] = []
    docs: set[str] = set()
    for item in items:
        wanted = docs | item.doc_ids
        if current and len(current) + 1 + len(wanted) > MAX_BATCH_OPERATIONS:
            chunks.append(current)
            current, wanted = [], set(item.doc_ids)
        current.append(item)
        docs = wanted
    if current:
        chunks.append(current)
    return chunks


def _read_all(target: Container, bucket: str, ids: Sequence[str]) -> dict[str, Document]:
    found = every_document(
        target,
        Query(filters=(Filter("id", "in", list(ids)),), limit=len(ids)),
        partition_key=bucket,
    )
    return {str(d["id"]): d for d in found}


def marker(bucket: str, key: str) -> BatchOp:
    """The processed marker of a fact in a bucket (kept as long as the roll-up: a replay
    months later must still count nothing)."""
    return processed_marker(
        CONSUMER, key, partition_key_field="bucket", partition_key=bucket, ttl_seconds=None
    )


def _commit(target: Container, bucket: str, items: Sequence[_Item]) -> Outcome:
    for attempt in range(MAX_ATTEMPTS):
        # One read for the facts' markers and every document they might change.
        markers = {item.fact.key: processed_marker_id(CONSUMER, item.fact.key) for item in items}
        wanted = dict.fromkeys(change.doc_id for item in items for change in item.changes)
        stored = _read_all(target, bucket, [*markers.values(), *wanted])
        todo = [item for item in items if markers[item.fact.key] not in stored]
        if not todo:
            return Outcome(duplicates=len(items))
        ids = list(dict.fromkeys(change.doc_id for item in todo for change in item.changes))
        working = {
            doc_id: strip_system(stored[doc_id]) if doc_id in stored else blank(doc_id, bucket)
            for doc_id in ids
        }
        for item in todo:
            for change in item.changes:
                change.apply(working[change.doc_id])
        stamp = timestamp(datetime.now(UTC))
        operations = [marker(bucket, item.fact.key) for item in todo]
        for doc_id in ids:
            document = {**working[doc_id], "updatedAt": stamp}
            if doc_id in stored:
                operations.append(
                    BatchOp("replace", document=document, if_match=str(stored[doc_id]["_etag"]))
                )
            else:
                operations.append(BatchOp("create", document=document))
        try:
            target.batch(bucket, operations)
        except BatchFailed as exc:
            if isinstance(exc.cause, PreconditionFailed | Conflict | NotFound):
                _pause(attempt)  # another delivery got there first: read again
                continue
            raise
        return Outcome(applied=len(todo), duplicates=len(items) - len(todo))
    raise AnalyticsBusy(f"analytics bucket {bucket} kept changing; the events will be retried")


def apply_facts(store: DocumentStore, facts: Iterable[Fact]) -> Outcome:
    """Fold facts into the stored roll-ups, each fact at most once per bucket.

    Facts are grouped by bucket, so a batch of deliveries costs one marker query, one read
    and one transactional batch per bucket (per ~100 operations), not per event.
    """
    by_bucket: dict[str, list[_Item]] = {}
    for fact in facts:
        per_bucket: dict[str, list[Change]] = {}
        for change in changes_of(fact):
            per_bucket.setdefault(change.bucket, []).append(change)
        for bucket, changes in per_bucket.items():
            by_bucket.setdefault(bucket, []).append(_Item(fact, tuple(changes)))
    total = Outcome()
    target = container(store)
    for bucket, items in by_bucket.items():
        for chunk in _chunks(items):
            outcome = _commit(target, bucket, chunk)
            total.applied += outcome.applied
            total.duplicates += outcome.duplicates
    return total


def days_between(start: datetime, end: datetime) -> list[str]:
    """The day buckets from `start`'s day up to and including `end`'s day."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while day <= end:
        found.append(day_key(day))
        day += timedelta(days=1)
    return found


def read_bucket(store: DocumentStore, bucket: str, kinds: Sequence[str]) -> list[Document]:
    """The roll-up documents of one bucket of the given kinds (one single-partition query)."""
    return every_document(
        container(store),
        Query(filters=(Filter("kind", "in", list(kinds)),), limit=100),
        partition_key=bucket,
    )
