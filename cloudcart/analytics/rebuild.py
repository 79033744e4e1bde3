"""`cloudcart analytics verify` and `rebuild`: recount the roll-ups from the source data.

The source data is read through its owners' public functions: every order (the orders
package), every notification record that reached a counted status (the notifications
package) and every SKU's stock with its out-of-stock periods (the inventory package).
Storefront events have no owner that keeps them all (the insights history drops what a
customer clears or withholds), so their facts come from the facts journal, which keeps
them `STOREFRONT_DAYS`. The recount turns all of it into the same facts the consumer
counts (`cloudcart.analytics.facts`) and folds them from nothing; verify compares the
result with the stored documents, rebuild replaces them (processed markers are kept and
completed, so events delivered after a rebuild still count once).

What the source data cannot tell:
- the storefront figures of days older than the journal keeps: verify leaves them out of
  the comparison and rebuild keeps them as stored;
- ended stock-outs beyond what the inventory keeps (each stock document keeps its newest
  `STOCK_OUTS_KEPT` periods): verify compares the periods both sides keep, and rebuild adds
  the inventory's to those already counted.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudcart.analytics import journal
from cloudcart.analytics.facts import Fact, Lookups, source_facts
from cloudcart.analytics.rollups import (
    CONSUMER,
    DAY_KINDS,
    INVENTORY_BUCKET,
    MAX_STOCKOUTS,
    SHARDS,
    STOCKOUTS_ID,
    blank,
    changes_of,
    container,
    day_key,
    empty_counters,
    fold,
    keep_newest_stockouts,
    marker,
    shard,
    stockout_key,
)
from cloudcart.core.errors import NotFound
from cloudcart.core.idempotency import PROCESSED_KIND, processed_marker_id
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import (
    BatchOp,
    Document,
    DocumentStore,
    Filter,
    Query,
    strip_system,
)
from cloudcart.core.ports.documents import every as every_document
from cloudcart.inventory import STOCK_OUTS_KEPT, StockLevel, all_levels

MAX_REPORTED = 200
"""Differences listed in a report (all are counted)."""


@dataclass
class Report:
    """What verify found: `differences` (bucket, document, path, stored, expected)."""

    buckets: int = 0
    facts: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    @property
    def ok(self) -> bool:
        """Whether the roll-ups match the source data."""
        return self.count == 0

    def add(self, bucket: str, doc_id: str, path: str, stored: Any, expected: Any) -> None:
        """Record one difference."""
        self.count += 1
        if len(self.differences) < MAX_REPORTED:
            self.differences.append(
                {
                    "bucket": bucket,
                    "document": doc_id,
                    "path": path,
                    "stored": stored,
                    "expected": expected,
                }
            )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "ok": self.ok,
            "buckets": self.buckets,
            "facts": self.facts,
            "differenceCount": self.count,
            "differences": self.differences,
        }


def _orders(store: DocumentStore) -> Iterator[Mapping[str, Any]]:
    from cloudcart.orders.service import list_orders

    cursor: str | None = None
    while True:
        items, cursor = list_orders(store, customer_id=None, cursor=cursor, limit=100)
        yield from items
        if cursor is None:
            return


def _notifications(store: DocumentStore) -> Iterator[Mapping[str, Any]]:
    from cloudcart.notifications.store import NotificationStore

    yield from NotificationStore(store).announced_records()


def recount(store: DocumentStore) -> tuple[list[Fact], dict[str, dict[str, Document]]]:
    """The facts of the source data and the day roll-ups they make."""
    lookups = Lookups(store)
    facts = [
        *source_facts(
            lookups, orders=lambda: _orders(store), notifications=lambda: _notifications(store)
        ),
        *journal.storefront_facts(store),
    ]
    return facts, fold(facts)


STOREFRONT_KINDS = frozenset({"visitors", "carts", "searches"})
"""Roll-up documents that only storefront facts write."""
STOREFRONT_COUNTERS = ("views", "addToCart", "checkoutStarted", "searches", "zeroResultSearches")
STOREFRONT_PRODUCT_FIELDS = ("views", "addToCart")
_IDENTITY = frozenset({"id", "bucket", "kind"})


def horizon(now: datetime) -> str:
    """The oldest day whose storefront figures the journal still recounts in full: a
    storefront fact is recorded after its events and kept `STOREFRONT_DAYS` from then."""
    return day_key(now - timedelta(days=journal.STOREFRONT_DAYS - 1))


def _without_storefront(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document less its storefront figures (for days older than the horizon)."""
    kind = document.get("kind")
    if kind in STOREFRONT_KINDS:
        return {}
    # Figures only: a document that holds nothing else exists on one side alone.
    result = copy.deepcopy({k: v for k, v in document.items() if k not in _IDENTITY})
    if kind == "totals":
        for counters in (result.get("hours") or {}).values():
            for name in STOREFRONT_COUNTERS:
                counters.pop(name, None)
    elif kind == "products":
        for entry in (result.get("items") or {}).values():
            for name in STOREFRONT_PRODUCT_FIELDS:
                entry.pop(name, None)
    return result


def _keep_storefront(bucket: str, expected: dict[str, Document], stored: Document) -> None:
    """Carry a stored document's storefront figures into the recount of its day."""
    doc_id, kind = str(stored["id"]), stored.get("kind")
    if kind in STOREFRONT_KINDS:
        expected[doc_id] = _comparable(stored)
        return
    if kind not in ("totals", "products"):
        return
    target = expected.setdefault(doc_id, blank(doc_id, bucket))
    if kind == "totals":
        for hour, counters in (stored.get("hours") or {}).items():
            kept = {name: counters[name] for name in STOREFRONT_COUNTERS if counters.get(name)}
            if kept:
                target.setdefault("hours", {}).setdefault(hour, empty_counters()).update(kept)
        return
    for product_id, entry in (stored.get("items") or {}).items():
        kept = {n: entry[n] for n in STOREFRONT_PRODUCT_FIELDS if entry.get(n)}
        if kept:
            items = target.setdefault("items", {})
            items.setdefault(product_id, {"categoryId": entry.get("categoryId")}).update(kept)


_IGNORED = frozenset({"updatedAt", "ttl"})


def _comparable(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in strip_system(document).items() if k not in _IGNORED}


def _diff(report: Report, bucket: str, doc_id: str, path: str, stored: Any, expected: Any) -> None:
    # A missing entry equals one whose figures are all empty (an hour of zeros).
    if isinstance(stored, Mapping) and expected is None:
        expected = {}
    if isinstance(expected, Mapping) and stored is None:
        stored = {}
    if isinstance(stored, Mapping) and isinstance(expected, Mapping):
        for key in sorted(set(stored) | set(expected)):
            _diff(
                report,
                bucket,
                doc_id,
                f"{path}.{key}" if path else str(key),
                stored.get(key),
                expected.get(key),
            )
    elif stored != expected and not (_empty(stored) and _empty(expected)):
        report.add(bucket, doc_id, path, stored, expected)


def _empty(value: Any) -> bool:
    return value is None or value == 0 or value == {} or value == []


def _stored_day_buckets(store: DocumentStore) -> dict[str, dict[str, Document]]:
    found: dict[str, dict[str, Document]] = {}
    for document in every_document(
        container(store), Query(filters=(Filter("kind", "in", list(DAY_KINDS)),), limit=500)
    ):
        found.setdefault(str(document["bucket"]), {})[str(document["id"])] = document
    return found


def _stock_now(store: DocumentStore) -> dict[str, StockLevel]:
    return {level.sku: level for level in all_levels(store)}


def verify(store: DocumentStore, *, low_stock: int) -> Report:
    """Recount and compare; every difference is in the report."""
    facts, expected = recount(store)
    stored = _stored_day_buckets(store)
    oldest = horizon(datetime.now(UTC))
    report = Report(buckets=len(set(expected) | set(stored)), facts=len(facts))
    for bucket in sorted(set(expected) | set(stored)):
        want, have = expected.get(bucket, {}), stored.get(bucket, {})
        for doc_id in sorted(set(want) | set(have)):
            pair = [_comparable(have.get(doc_id) or {}), _comparable(want.get(doc_id) or {})]
            if bucket < oldest:
                pair = [_without_storefront(document) for document in pair]
            _diff(report, bucket, doc_id, "", pair[0], pair[1])
    levels = _stock_now(store)
    _verify_stock(report, _stored_stock(store), levels, low_stock)
    _verify_stockouts(report, _stored_stockouts(store), levels)
    return report


def _state(available: int, low_stock: int) -> str:
    return "out" if available == 0 else "low" if available <= low_stock else "in"


def _verify_stock(
    report: Report,
    stored: Mapping[str, Mapping[str, Any]],
    levels: Mapping[str, StockLevel],
    low_stock: int,
) -> None:
    """Which SKUs are out of stock and low now, and since when they are out."""
    for sku, level in sorted(levels.items()):
        doc_id, known = shard("stock", sku), stored.get(sku)
        state = _state(level.available, low_stock)
        if known is None:
            # A SKU that never had a unit is not announced until its first move.
            if state == "low" or (state == "out" and level.out_since):
                report.add(INVENTORY_BUCKET, doc_id, f"skus.{sku}", None, state)
            continue
        stored_state = _state(int(known.get("available", 0)), low_stock)
        if stored_state != state:
            report.add(INVENTORY_BUCKET, doc_id, f"skus.{sku}", stored_state, state)
        elif state == "out" and level.out_since and known.get("outSince") != level.out_since:
            path = f"skus.{sku}.outSince"
            report.add(INVENTORY_BUCKET, doc_id, path, known.get("outSince"), level.out_since)


def _verify_stockouts(
    report: Report, stored: Mapping[str, Mapping[str, Any]], levels: Mapping[str, StockLevel]
) -> None:
    """Ended stock-outs, over the periods both sides still keep: each stock document keeps
    its newest `STOCK_OUTS_KEPT`, the roll-up the newest `MAX_STOCKOUTS` of all."""
    kept_from = min((str(p["to"]) for p in stored.values()), default="")
    if len(stored) < MAX_STOCKOUTS:
        kept_from = ""

    def cutoff(level: StockLevel) -> str:
        if len(level.stock_outs) < STOCK_OUTS_KEPT:
            return kept_from
        return max(kept_from, min(str(p["to"]) for p in level.stock_outs))

    expected = {
        stockout_key(sku, str(p["from"])): {
            "sku": sku,
            "productId": level.product_id,
            "from": str(p["from"]),
            "to": str(p["to"]),
            "seconds": int(p["seconds"]),
        }
        for sku, level in levels.items()
        for p in level.stock_outs
        if str(p["to"]) >= cutoff(level)
    }
    have = {
        key: dict(item)
        for key, item in stored.items()
        if item.get("sku") in levels and str(item.get("to")) >= cutoff(levels[item["sku"]])
    }
    for key in sorted(set(expected) | set(have)):
        if have.get(key) != expected.get(key):
            report.add(
                INVENTORY_BUCKET, STOCKOUTS_ID, f"items.{key}", have.get(key), expected.get(key)
            )


def _stored_stockouts(store: DocumentStore) -> dict[str, dict[str, Any]]:
    try:
        document = container(store).read(STOCKOUTS_ID, INVENTORY_BUCKET)
    except NotFound:
        return {}
    return dict(document.get("items") or {})


def _stored_stock(store: DocumentStore) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    documents = every_document(
        container(store),
        Query(filters=(Filter("kind", "eq", "stock"),), limit=100),
        partition_key=INVENTORY_BUCKET,
    )
    for document in documents:
        found.update(document.get("skus") or {})
    return found


def _write(store: DocumentStore, bucket: str, operations: list[BatchOp]) -> None:
    target = container(store)
    for start in range(0, len(operations), 100):
        target.batch(bucket, operations[start : start + 100])


def rebuild(store: DocumentStore) -> dict[str, Any]:
    """Replace every day's roll-ups with the recount (storefront figures older than the
    journal kept as stored), complete the processed markers, and replace the current stock
    state with the inventory's; returns what was written."""
    facts, expected = recount(store)
    target = container(store)
    buckets = sorted(set(expected) | set(_stored_day_buckets(store)))
    keys: dict[str, set[str]] = {}
    for fact in facts:
        for change in changes_of(fact):
            keys.setdefault(change.bucket, set()).add(fact.key)
    stamp = timestamp(datetime.now(UTC))
    oldest = horizon(datetime.now(UTC))
    for bucket in buckets:
        existing = every_document(target, Query(limit=500), partition_key=bucket)
        # Markers stay: a fact counted before must not count again, recounted or not.
        marked = {str(d["id"]) for d in existing if d.get("kind") == PROCESSED_KIND}
        documents = expected.get(bucket, {})
        if bucket < oldest:
            for document in existing:
                if document.get("kind") in DAY_KINDS:
                    _keep_storefront(bucket, documents, document)
        _write(
            store,
            bucket,
            [BatchOp("delete", id=str(d["id"])) for d in existing if str(d["id"]) not in marked],
        )
        operations = [
            marker(bucket, key)
            for key in sorted(keys.get(bucket, ()))
            if processed_marker_id(CONSUMER, key) not in marked
        ]
        operations += [
            BatchOp("create", document={**document, "updatedAt": stamp})
            for document in documents.values()
        ]
        _write(store, bucket, operations)
    _rebuild_stock(store, stamp)
    return {"buckets": len(buckets), "facts": len(facts)}


def _rebuild_stock(store: DocumentStore, stamp: str) -> None:
    """The current state of every SKU from the inventory, and the ended stock-outs it keeps
    added to those already counted."""
    documents = {
        f"stock-{n}": blank(f"stock-{n}", INVENTORY_BUCKET) for n in range(SHARDS["stock"])
    }
    stockouts = blank(STOCKOUTS_ID, INVENTORY_BUCKET)
    stockouts["items"] = _stored_stockouts(store)
    for sku, level in _stock_now(store).items():
        out = level.available == 0
        documents[shard("stock", sku)]["skus"][sku] = {
            "productId": level.product_id,
            "available": level.available,
            "at": level.updated_at or stamp,
            "outSince": (level.out_since or stamp) if out else None,
        }
        for period in level.stock_outs:
            stockouts["items"][stockout_key(sku, str(period["from"]))] = {
                "sku": sku,
                "productId": level.product_id,
                "from": str(period["from"]),
                "to": str(period["to"]),
                "seconds": int(period["seconds"]),
            }
    keep_newest_stockouts(stockouts["items"])
    _write(
        store,
        INVENTORY_BUCKET,
        [
            BatchOp("upsert", document={**d, "updatedAt": stamp})
            for d in [*documents.values(), stockouts]
        ],
    )
