"""Browsing history: one entry per product an owner viewed, newest view wins.

The consumer of `storefront.events_recorded` (`handle_event`, run by the `insights-history`
subscription) records the views of a batch; `read_history` serves `GET /api/me/history`;
`clear_history`, `export_history` and `erase_history` serve the customer's own deletion,
the personalisation opt-out and the privacy export and erasure.

Documents in an owner's partition of the `events` container (partition key = customer id,
or `v:<visitor id>` for an anonymous visitor):

| id | kind | holds |
|----|------|-------|
| `view:<productId>` | `view` | `productId`, `viewedAt` (the newest view), `updatedAt` |
| `batch:<event id>` | `storefront-batch` | the batch's normalised events, for analytics (30 days) |
| `history` | `history-state` | `clearedAt`; rewritten by every write, see below (14 days) |
| `rate:<window start>` | `rate-limit` | the rate counter of `cloudcart.insights.storefront` |

Views and batches live as long as the container's default TTL (90 days) after their last
write, so history older than that fades out by itself.

Idempotent without processed markers: a view entry only moves forward
(`viewedAt = max(stored, new)`), and a batch document's id is its event's id, so a
redelivered message writes the same values again. Every write of an owner's history is a
transactional batch that also rewrites the `history` document If-Match its ETag. That
serialises concurrent writers of one owner (a lost race is read again), and it is how a
clear wins over a message in flight: `clear_history` stamps `clearedAt` first, so a
message accepted before the clear either fails on the stale ETag or reads the stamp, and
records nothing.

Signed-in customers: nothing is recorded while their `personalization` preference is off
(`CustomerService.personalization_allowed`), and their history reads as empty. A visitor
id that comes with a signed-in request is merged into the customer's history (views keep
their newest time) and the visitor's partition is emptied; when the customer has
personalisation off, the visitor's history is deleted instead of merged.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudcart.catalog.service import CatalogService, ProductNotFound
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import (
    BatchFailed,
    CloudcartError,
    Conflict,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.events import Event
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    Query,
    every,
    fill_page,
)
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.customers.service import CustomerService
from cloudcart.insights.storefront import (
    EVENT_TYPE,
    EVENT_VERSION,
    EVENTS_CONTAINER,
    PRODUCT_ID_PATTERN,
    VIEW_TYPES,
    valid_visitor_id,
    visitor_key,
)

logger = logging.getLogger(__name__)

SUBSCRIPTION = "insights-history"

VIEW_KIND = "view"
BATCH_KIND = "storefront-batch"
STATE_KIND = "history-state"
STATE_ID = "history"

BATCH_TTL_SECONDS = 30 * 86_400
"""Raw events are kept a month for analytics; history entries last longer."""
STATE_TTL_SECONDS = 14 * 86_400
"""The `history` document outlives any message that could still arrive (a topic keeps a
message at most 14 days), which is all its `clearedAt` is needed for."""

MAX_HISTORY = 100
"""The most entries one read returns."""

_MAX_BATCH_OPS = 100
_RETRIES = 8
_CATALOG_LOOKUPS = 8
"""Concurrent catalog reads of one history read: its entries are checked in parallel, so
a full page costs about one round trip of time."""

_PRODUCT_ID = re.compile(PRODUCT_ID_PATTERN)


class HistoryBusy(CloudcartError):
    """An owner's history kept changing under a write; the message is retried later."""


def entry_id(product_id: str) -> str:
    """The id of the history entry of a product (one per owner and product)."""
    return f"view:{product_id}"


# --- the consumer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedBatch:
    """The parts of a `storefront.events_recorded` event the history needs."""

    event_id: str
    accepted_at: str
    owner_key: str
    customer_id: str | None
    visitor_id: str | None
    events: list[dict[str, Any]]

    def views(self) -> dict[str, str]:
        """The newest view time of each product the batch viewed."""
        newest: dict[str, str] = {}
        for event in self.events:
            if event["type"] in VIEW_TYPES:
                product_id = str(event["productId"])
                newest[product_id] = max(newest.get(product_id, ""), str(event["at"]))
        return newest


def _invalid(description: str) -> InvalidMessage:
    return InvalidMessage("InvalidStorefrontEvents", description)


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise _invalid(f"data.{key} must be a non-empty string or null")
    return value


def _stamp(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{where} must be an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{where} must be an ISO 8601 date-time") from None
    if moment.utcoffset() is None:
        raise _invalid(f"{where} must carry a time zone")
    return timestamp(moment)


def parse_recorded(event: Event) -> RecordedBatch:
    """The batch an event carries; InvalidMessage (dead-lettered at once) when the event is
    not a `storefront.events_recorded` of a version this code reads."""
    if event.type != EVENT_TYPE:
        raise InvalidMessage("UnexpectedEventType", f"{event.type} is not {EVENT_TYPE}")
    if event.version != EVENT_VERSION:
        raise InvalidMessage("UnsupportedVersion", f"{EVENT_TYPE} version {event.version}")
    data = event.data
    owner = data.get("ownerId")
    if not isinstance(owner, str) or not owner:
        raise _invalid("data.ownerId must be a non-empty string")
    customer_id = _optional_str(data, "customerId")
    visitor_id = _optional_str(data, "visitorId")
    if visitor_id is not None and not valid_visitor_id(visitor_id):
        raise _invalid("data.visitorId is not a visitor id")
    expected = customer_id if customer_id is not None else (visitor_id and visitor_key(visitor_id))
    if owner != expected:
        raise _invalid("data.ownerId must be the customer id, or v:<visitorId> without one")
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        raise _invalid("data.events must be a list")
    events: list[dict[str, Any]] = []
    for index, item in enumerate(raw_events):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise _invalid(f"data.events[{index}] must be an object with a type")
        normalised = {**item, "at": _stamp(item.get("at"), f"data.events[{index}].at")}
        if item["type"] in VIEW_TYPES:
            product_id = item.get("productId")
            if not isinstance(product_id, str) or not _PRODUCT_ID.match(product_id):
                raise _invalid(f"data.events[{index}].productId is not a product id")
        events.append(normalised)
    return RecordedBatch(
        event_id=event.id,
        accepted_at=timestamp(event.time),
        owner_key=owner,
        customer_id=customer_id,
        visitor_id=visitor_id,
        events=events,
    )


def handle_event(documents: DocumentStore, event: Event) -> str:
    """Record the history of one `storefront.events_recorded` event; returns what happened:
    `recorded`, `cleared` (the owner cleared their history after the batch was accepted),
    or `not-allowed` (the customer has personalisation off: nothing is recorded).

    Round trips: the customer's preference (signed in only), one read of the entries the
    batch touches, one transactional batch per 99 changed entries; a merge adds one read
    and the deletes of the visitor's partition.
    """
    batch = parse_recorded(event)
    container = documents.container(EVENTS_CONTAINER)
    if batch.customer_id is not None and not CustomerService(documents).personalization_allowed(
        batch.customer_id
    ):
        if batch.visitor_id is not None:
            clear_history(documents, visitor_key(batch.visitor_id))
        return "not-allowed"
    merged: dict[str, str] = {}
    visitor_documents: list[Document] = []
    if batch.customer_id is not None and batch.visitor_id is not None:
        visitor_documents = _partition(container, visitor_key(batch.visitor_id))
        merged = _views_of(visitor_documents)
    raw: Document = {
        "id": f"batch:{batch.event_id}",
        "kind": BATCH_KIND,
        "customerId": batch.owner_key,
        "eventId": batch.event_id,
        "acceptedAt": batch.accepted_at,
        "events": batch.events,
        "ttl": BATCH_TTL_SECONDS,
    }
    outcome = _write(
        container,
        batch.owner_key,
        own=batch.views(),
        merged=merged,
        accepted_at=batch.accepted_at,
        raw=raw,
    )
    if visitor_documents:
        _empty_after_merge(container, visitor_key(str(batch.visitor_id)), visitor_documents)
    return outcome


# --- writing --------------------------------------------------------------------------------


def _by_ids(container: Container, owner_key: str, ids: Sequence[str]) -> dict[str, Document]:
    found: dict[str, Document] = {}
    page = fill_page(
        container,
        Query(filters=(Filter("id", "in", list(ids)),), limit=len(ids)),
        partition_key=owner_key,
    )
    for document in page.items:
        found[str(document["id"])] = document
    return found


def _state_op(state: Document | None, owner_key: str, cleared_at: str | None) -> BatchOp:
    document: Document = {
        "id": STATE_ID,
        "kind": STATE_KIND,
        "customerId": owner_key,
        "clearedAt": cleared_at,
        "updatedAt": timestamp(utcnow()),
        "ttl": STATE_TTL_SECONDS,
    }
    if state is None:
        return BatchOp("create", document=document)
    return BatchOp("replace", document=document, if_match=str(state["_etag"]))


def _write(
    container: Container,
    owner_key: str,
    *,
    own: dict[str, str],
    merged: dict[str, str],
    accepted_at: str | None,
    raw: Document | None,
) -> str:
    """Move the owner's entries forward to the given view times, under the state guard.

    `own` (and `raw`) are the batch's own views and events: dropped when the owner cleared
    their history after `accepted_at`. `merged` are a visitor's views, applied regardless
    (they would be merged at the next read anyway).
    """
    products = sorted(set(own) | set(merged))
    for _ in range(_RETRIES):
        found = _by_ids(container, owner_key, [STATE_ID, *(entry_id(p) for p in products)])
        state = found.get(STATE_ID)
        cleared_at = None if state is None else state.get("clearedAt")
        cleared = (
            accepted_at is not None and cleared_at is not None and str(cleared_at) >= accepted_at
        )
        wanted = dict(merged)
        if not cleared:
            for product_id, at in own.items():
                wanted[product_id] = max(wanted.get(product_id, ""), at)
        now = timestamp(utcnow())
        ops: list[BatchOp] = []
        for product_id in sorted(wanted):
            at = wanted[product_id]
            existing = found.get(entry_id(product_id))
            if existing is not None and str(existing.get("viewedAt", "")) >= at:
                continue  # a newer (or the same) view is stored: max() keeps it
            document: Document = {
                "id": entry_id(product_id),
                "kind": VIEW_KIND,
                "customerId": owner_key,
                "productId": product_id,
                "viewedAt": at,
                "updatedAt": now,
            }
            ops.append(
                BatchOp("create", document=document)
                if existing is None
                else BatchOp("replace", document=document, if_match=str(existing["_etag"]))
            )
        if raw is not None and not cleared:
            ops.append(BatchOp("upsert", document=raw))
        if not ops:
            return "cleared" if cleared else "recorded"
        try:
            _commit(container, owner_key, state, cleared_at, ops)
        except BatchFailed as exc:
            if isinstance(exc.cause, PreconditionFailed | Conflict | NotFound):
                continue  # another writer (or a clear) got there first: read again
            raise
        return "cleared" if cleared else "recorded"
    raise HistoryBusy(f"the history of {owner_key} kept changing; retry later")


def _commit(
    container: Container,
    owner_key: str,
    state: Document | None,
    cleared_at: Any,
    ops: list[BatchOp],
) -> None:
    # Each transactional batch carries the state guard, so at most 99 entries go per batch;
    # a later batch continues from the state the previous one wrote.
    step = _MAX_BATCH_OPS - 1
    for start in range(0, len(ops), step):
        results = container.batch(
            owner_key,
            [_state_op(state, owner_key, cleared_at), *ops[start : start + step]],
        )
        state = results[0]


# --- reading ------------------------------------------------------------------------------


def _partition(container: Container, owner_key: str, *filters: Filter) -> list[Document]:
    return every(container, Query(filters=filters, limit=100), partition_key=owner_key)


def partition_documents(documents: DocumentStore, owner_key: str) -> list[Document]:
    """Every document of one owner's partition of `events` (export)."""
    return _partition(documents.container(EVENTS_CONTAINER), owner_key)


def _views_of(documents: Iterable[Document]) -> dict[str, str]:
    return {
        str(d["productId"]): str(d["viewedAt"])
        for d in documents
        if d.get("kind") == VIEW_KIND and d.get("productId") and d.get("viewedAt")
    }


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _lookup_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_CATALOG_LOOKUPS, thread_name_prefix="history-catalog")
        return _pool


def visible_products(documents: DocumentStore, product_ids: Sequence[str]) -> set[str]:
    """The products among `product_ids` a customer can still see (active in the catalog).

    One catalog point read per product, through the catalog's public `get_product`, run in
    parallel; each read keeps the caller's context (its throttling budget).
    """
    catalog = CatalogService(documents)

    def active(product_id: str) -> bool:
        try:
            return catalog.get_product(product_id).document.get("status") == "active"
        except ProductNotFound:
            return False

    unique = list(dict.fromkeys(product_ids))
    if len(unique) <= 1:
        return {p for p in unique if active(p)}
    pool = _lookup_pool()
    futures = {p: pool.submit(contextvars.copy_context().run, active, p) for p in unique}
    return {p for p, future in futures.items() if future.result()}


def history_items(documents: DocumentStore, owner_key: str, limit: int) -> list[dict[str, str]]:
    """The owner's history, newest first, one entry per product, without products that are
    no longer for sale; at most `limit` (1..100) entries, whatever was left out."""
    limit = max(1, min(limit, MAX_HISTORY))
    container = documents.container(EVENTS_CONTAINER)
    items: list[dict[str, str]] = []
    continuation: str | None = None
    while len(items) < limit:
        page = fill_page(
            container,
            Query(
                filters=(Filter("kind", "eq", VIEW_KIND),),
                order_by=(Order("viewedAt", descending=True),),
                limit=limit - len(items),
            ),
            partition_key=owner_key,
            continuation=continuation,
        )
        ids = [str(d["productId"]) for d in page.items]
        visible = visible_products(documents, ids)
        items.extend(
            {"productId": str(d["productId"]), "viewedAt": str(d["viewedAt"])}
            for d in page.items
            if d["productId"] in visible
        )
        continuation = page.continuation
        if continuation is None:
            break
    return items[:limit]


def merge_visitor(documents: DocumentStore, customer_id: str, visitor_id: str) -> int:
    """Merge a visitor's history into the customer's (newest view wins) and empty the
    visitor's partition; returns how many views the visitor had. Idempotent: once merged,
    the visitor has nothing left (one read)."""
    container = documents.container(EVENTS_CONTAINER)
    source = visitor_key(visitor_id)
    visitor_documents = _partition(container, source)
    views = _views_of(visitor_documents)
    if views:
        _write(container, customer_id, own={}, merged=views, accepted_at=None, raw=None)
    if visitor_documents:
        _empty_after_merge(container, source, visitor_documents)
    return len(views)


def read_history(
    documents: DocumentStore, customer_id: str, *, limit: int, visitor_id: str | None = None
) -> list[dict[str, str]]:
    """`GET /api/me/history`: the customer's history (empty while personalisation is off),
    after merging the visitor's history when `visitor_id` is given."""
    allowed = CustomerService(documents).personalization_allowed(customer_id)
    if visitor_id is not None:
        if allowed:
            merge_visitor(documents, customer_id, visitor_id)
        else:
            clear_history(documents, visitor_key(visitor_id))
    if not allowed:
        return []
    return history_items(documents, customer_id, limit)


# --- clearing, export, erasure ----------------------------------------------------------------


def _delete_documents(container: Container, owner_key: str, documents: list[Document]) -> None:
    """Delete what was read, each only if unchanged since (a newer view stays for the next
    merge or clear); one transactional batch per 100 when nothing changed meanwhile."""
    for start in range(0, len(documents), _MAX_BATCH_OPS):
        chunk = documents[start : start + _MAX_BATCH_OPS]
        try:
            container.batch(
                owner_key,
                [BatchOp("delete", id=str(d["id"]), if_match=str(d["_etag"])) for d in chunk],
            )
            continue
        except BatchFailed:
            pass
        for document in chunk:
            with suppress(NotFound, PreconditionFailed):
                container.delete(str(document["id"]), owner_key, if_match=str(document["_etag"]))


def _empty_after_merge(container: Container, owner_key: str, documents: list[Document]) -> None:
    # The `history` document stays: its `clearedAt` must keep dropping the visitor's
    # batches accepted before a clear, and it expires by itself.
    doomed = [d for d in documents if d["id"] != STATE_ID]
    if doomed:
        _delete_documents(container, owner_key, doomed)


def clear_history(documents: DocumentStore, owner_key: str) -> int:
    """Delete the owner's history and raw events (`DELETE /api/me/history`, personalisation
    turned off); returns how many entries went. Idempotent.

    `clearedAt` is stamped first, so no message accepted before the clear can bring an
    entry back, and what was written after it (by a later batch) is kept.
    """
    container = documents.container(EVENTS_CONTAINER)
    cleared_at = timestamp(utcnow())
    for _ in range(_RETRIES):
        state = _by_ids(container, owner_key, [STATE_ID]).get(STATE_ID)
        try:
            container.batch(owner_key, [_state_op(state, owner_key, cleared_at)])
            break
        except BatchFailed as exc:
            if isinstance(exc.cause, PreconditionFailed | Conflict | NotFound):
                continue
            raise
    else:
        raise HistoryBusy(f"the history of {owner_key} kept changing; retry")
    doomed = [
        d
        for d in _partition(container, owner_key, Filter("kind", "in", [VIEW_KIND, BATCH_KIND]))
        if str(d.get("updatedAt") or d.get("acceptedAt") or "") <= cleared_at
    ]
    _delete_documents(container, owner_key, doomed)
    return sum(1 for d in doomed if d.get("kind") == VIEW_KIND)


def export_history(documents: DocumentStore, customer_id: str) -> dict[str, Any]:
    """Everything the history holds about the customer: every view entry (newest first,
    whatever the product's state) and the raw events of the batches kept."""
    container = documents.container(EVENTS_CONTAINER)
    stored = _partition(container, customer_id)
    views = sorted(
        (d for d in stored if d.get("kind") == VIEW_KIND),
        key=lambda d: str(d.get("viewedAt")),
        reverse=True,
    )
    batches = sorted(
        (d for d in stored if d.get("kind") == BATCH_KIND),
        key=lambda d: str(d.get("acceptedAt")),
    )
    return {
        "items": [{"productId": d.get("productId"), "viewedAt": d.get("viewedAt")} for d in views],
        "events": [event for d in batches for event in d.get("events", [])],
    }


def erase_history(documents: DocumentStore, customer_id: str) -> None:
    """Delete every document of the customer's partition of `events` (history, raw events,
    rate counters), then stamp `clearedAt` so a message accepted before the erasure records
    nothing when it arrives late. Idempotent."""
    container = documents.container(EVENTS_CONTAINER)
    for document in _partition(container, customer_id):
        if document["id"] != STATE_ID:
            with suppress(NotFound):
                container.delete(str(document["id"]), customer_id)
    clear_history(documents, customer_id)
