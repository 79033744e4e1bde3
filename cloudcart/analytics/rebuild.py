"""`cloudcart analytics verify` and `rebuild`: recount the roll-ups from the source data.

The source data is read through its owners' public functions: every order (the orders
package), the storefront batches the insights area keeps, every notification record that
reached a counted status (the notifications package) and every SKU's stock (the inventory
package). The recount turns them into the same facts the consumer counts
(`cloudcart.analytics.facts.source_facts`) and folds them from nothing; verify compares the
result with the stored documents, rebuild replaces them (markers included, so events
delivered after a rebuild still count once).

What the source data cannot tell: ended stock-outs (stock keeps only its current figures),
so verify compares only which SKUs are out of stock and low now, and rebuild keeps the
ended stock-outs; storefront batches the insights area no longer keeps (older than its 30
days, cleared by the customer, withheld while personalisation is off, or merged from a
visitor into a customer), which verify reports as differences and rebuild would drop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudcart.analytics.facts import Fact, Lookups, source_facts
from cloudcart.analytics.rollups import (
    DAY_KINDS,
    INVENTORY_BUCKET,
    SHARDS,
    blank,
    changes_of,
    container,
    fold,
    marker,
    shard,
)
from cloudcart.core.documents.port import BatchOp, Document, DocumentStore, Filter, Query
from cloudcart.core.documents.port import every as every_document
from cloudcart.core.outbox import timestamp

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


def _batches(store: DocumentStore) -> Iterator[Mapping[str, Any]]:
    from cloudcart.insights.history import stored_batches

    yield from stored_batches(store)


def _notifications(store: DocumentStore) -> Iterator[Mapping[str, Any]]:
    from cloudcart.notifications.store import NotificationStore

    yield from NotificationStore(store).announced_records()


def recount(store: DocumentStore) -> tuple[list[Fact], dict[str, dict[str, Document]]]:
    """The facts of the source data and the day roll-ups they make."""
    lookups = Lookups(store)
    facts = list(
        source_facts(
            store,
            lookups,
            orders=lambda: _orders(store),
            batches=lambda: _batches(store),
            notifications=lambda: _notifications(store),
        )
    )
    return facts, fold(facts)


_IGNORED = frozenset({"updatedAt", "ttl"})


def _comparable(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if not k.startswith("_") and k not in _IGNORED}


def _diff(report: Report, bucket: str, doc_id: str, path: str, stored: Any, expected: Any) -> None:
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


def _stock_now(store: DocumentStore) -> dict[str, tuple[str, int]]:
    from cloudcart.inventory import all_levels

    return {level.sku: (level.product_id, level.available) for level in all_levels(store)}


def verify(store: DocumentStore, *, low_stock: int) -> Report:
    """Recount and compare; every difference is in the report."""
    facts, expected = recount(store)
    stored = _stored_day_buckets(store)
    report = Report(buckets=len(set(expected) | set(stored)), facts=len(facts))
    for bucket in sorted(set(expected) | set(stored)):
        want, have = expected.get(bucket, {}), stored.get(bucket, {})
        for doc_id in sorted(set(want) | set(have)):
            _diff(
                report,
                bucket,
                doc_id,
                "",
                _comparable(have.get(doc_id) or {}),
                _comparable(want.get(doc_id) or {}),
            )
    stock = _stored_stock(store)
    for sku, (_, available) in sorted(_stock_now(store).items()):
        known = stock.get(sku)
        state = "out" if available == 0 else "low" if available <= low_stock else "in"
        if known is None:
            if state != "in":
                report.add(INVENTORY_BUCKET, shard("stock", sku), f"skus.{sku}", None, state)
            continue
        stored_available = int(known.get("available", 0))
        stored_state = (
            "out" if stored_available == 0 else "low" if stored_available <= low_stock else "in"
        )
        if stored_state != state:
            report.add(INVENTORY_BUCKET, shard("stock", sku), f"skus.{sku}", stored_state, state)
    return report


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
    """Replace every day's roll-ups (and markers) with the recount, and the current stock
    state with the inventory's; returns what was written."""
    facts, expected = recount(store)
    target = container(store)
    buckets = sorted(set(expected) | set(_stored_day_buckets(store)))
    keys: dict[str, set[str]] = {}
    for fact in facts:
        for change in changes_of(fact):
            keys.setdefault(change.bucket, set()).add(fact.key)
    stamp = timestamp(datetime.now(UTC))
    for bucket in buckets:
        existing = every_document(target, Query(limit=500), partition_key=bucket)
        _write(store, bucket, [BatchOp("delete", id=str(d["id"])) for d in existing])
        operations = [marker(bucket, key) for key in sorted(keys.get(bucket, ()))]
        operations += [
            BatchOp("create", document={**document, "updatedAt": stamp})
            for document in expected.get(bucket, {}).values()
        ]
        _write(store, bucket, operations)
    _rebuild_stock(store, stamp)
    return {"buckets": len(buckets), "facts": len(facts)}


def _rebuild_stock(store: DocumentStore, stamp: str) -> None:
    target = container(store)
    stored = {
        str(d["id"]): d
        for d in every_document(
            target,
            Query(filters=(Filter("kind", "eq", "stock"),), limit=100),
            partition_key=INVENTORY_BUCKET,
        )
    }
    documents = {
        f"stock-{n}": blank(f"stock-{n}", INVENTORY_BUCKET) for n in range(SHARDS["stock"])
    }
    known: dict[str, dict[str, Any]] = {}
    for document in stored.values():
        known.update(document.get("skus") or {})
    for sku, (product_id, available) in _stock_now(store).items():
        before = known.get(sku) or {}
        out_since = before.get("outSince") if available == 0 else None
        documents[shard("stock", sku)]["skus"][sku] = {
            "productId": product_id,
            "available": available,
            "at": stamp,
            "outSince": out_since or (stamp if available == 0 else None),
        }
    _write(
        store,
        INVENTORY_BUCKET,
        [BatchOp("upsert", document={**d, "updatedAt": stamp}) for d in documents.values()],
    )
