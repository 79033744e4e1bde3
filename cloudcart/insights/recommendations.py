"""Recommendations: also bought, order again and for you, kept up to date by events.

Every read is a few point reads of precomputed documents in the `insights` container
(partition key `/key`); nothing scans orders at request time. The consumer on the
`insights-recommendations` subscription keeps these documents, one logical partition per
key:

- `nbr:<productId>`: id `neighbours` holds what orders taught about the product,
  `orders` (paid or imported orders that contain it) and `counts` (`{otherId: orders
  holding both}`), and what catalog and stock events said, `categoryId`, `status`, `skus`
  and `stock` (`{sku: {inStock, at}}`). Its companion `top` (same partition, same batch)
  holds the scored `top` list and the `categoryId`: all that also-bought reads, so the
  fallback to the category's best sellers needs no catalog read.
- `cust:<customerId>`: id `profile`, the purchase profile `products: {productId: {count,
  lastAt, weight}}`, the latest product views `views: {productId: viewedAt}`, and the
  precomputed neighbour lists `forYou` (of purchases) and `fromViews` (of views).
- `pop:<categoryId>` and `pop:all`: id `popularity` holds `orders` and `counts` (orders per
  product), its companion `top` the best sellers.
- `unavailable`: `products: {productId: reason}` for every product that is archived, a
  draft, unknown to the catalog, or has no SKU in stock, so a read drops them with one
  point read.

Scoring (docs/insights.md, "Recommendations", has the evaluation):

- Also bought: `score(i -> j) = (c_ij / n_i) * (c_ij / (c_ij + SUPPORT_SHRINKAGE)) /
  n_j ** POPULARITY_DAMPING`, where `c_ij` counts orders holding both, `n_i` and `n_j`
  orders holding each (`n_j` from `pop:all` when the list is rebuilt). The first factor is
  the confidence P(j | i); the second shrinks pairs seen only once or twice; the third
  damps universally popular products, so a product page does not show the shop's best
  sellers whatever the product.
- Order again: an exponentially decayed purchase count (half-life `HALF_LIFE_DAYS`), the
  sum of `2 ** (-age / half-life)` over the orders that contained the product, so both
  repeat frequency and recency count. It is stored as a log-weight against a fixed epoch,
  which makes updates commutative (events may arrive in any order).
- For you: three ranked lists fused by reciprocal rank (`FUSION_K`): the customer's own
  repeat purchases (bought in at least `REPEAT_PURCHASES` orders, ranked as order again),
  the also-bought lists of their `FOR_YOU_SEEDS` strongest
  purchases (each weighted by its decayed count relative to the strongest, summed per
  candidate), and the also-bought lists of their `VIEW_SEEDS` latest product views
  (weighted by age, half-life `VIEW_HALF_LIFE_DAYS`). What they bought within
  `JUST_BOUGHT_WINDOW` of the read is left out. The two neighbour lists are computed when
  the customer orders or views, so a read needs no neighbour documents.

Idempotency: an order touches many partitions and a batch is one partition, so every
partition's update carries its own processed marker (`cloudcart.core.idempotency`) in the
same batch, If-Match the document's ETag. The marker is keyed on the order (see
`record_order`). A redelivery finds the marker in every partition it already changed and
changes only the rest; a lost If-Match round (hot documents such as `pop:all`) is read
again and retried. Catalog and stock facts are last-writer-wins by their time, which is
idempotent as it is.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudcart.catalog.service import CatalogService, ProductNotFound
from cloudcart.core.clock import parse_utc, utcnow
from cloudcart.core.errors import (
    BatchFailed,
    CloudcartError,
    Conflict,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.events import Event
from cloudcart.core.idempotency import is_duplicate, processed_marker
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Query,
    each,
    strip_system,
)
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.customers.service import CustomerService
from cloudcart.inventory import SkuNotFound
from cloudcart.orders.service import OrderNotFound, get_order

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

INSIGHTS = "insights"
CONSUMER = "recommendations"
"""Consumer name in the processed markers."""

ORDER_EVENTS = ("order.paid", "order.imported")
PRODUCT_EVENTS = ("product.created", "product.updated", "product.archived")
STOCK_EVENTS = ("inventory.changed",)
VIEW_EVENTS = ("storefront.events_recorded",)
EVENTS = (*ORDER_EVENTS, *PRODUCT_EVENTS, *STOCK_EVENTS, *VIEW_EVENTS)
"""Every event type the consumer acts on (its subscription's filter)."""

POPULARITY_DAMPING = 0.25
"""Exponent of the neighbour's popularity in the also-bought score (0 = plain confidence,
1 = lift)."""

SUPPORT_SHRINKAGE = 1.0
"""`c / (c + SUPPORT_SHRINKAGE)`: a pair bought together once counts half."""

HALF_LIFE_DAYS = 30.0
"""A purchase counts half after this many days (order again, for-you seed weights)."""

JUST_BOUGHT_WINDOW = timedelta(days=1)
"""Products bought this long before a for-you read count as just bought (left out)."""

FOR_YOU_SEEDS = 20
"""How many of the customer's strongest purchases seed the for-you list."""

VIEW_SEEDS = 10
"""How many of the customer's latest product views seed the for-you list."""

VIEW_HALF_LIFE_DAYS = 7.0
"""A view counts half, as a for-you seed, after this many days (interest fades faster than
purchase habits)."""

MAX_PROFILE_VIEWS = 50
"""Latest product views kept per profile."""

REPEAT_PURCHASES = 2
"""Orders a product must have been in before for-you suggests it again (`bought-before`)."""

FUSION_K = 60
"""The constant of reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): each
source contributes `1 / (FUSION_K + rank)`, so no source's raw scores need calibrating
against another's, and a product several sources agree on rises."""

MAX_LIMIT = 50
"""The most items a read returns."""

TOP_STORED = 60
"""Length of every precomputed list: the largest limit and some to spare, so that leaving
out unavailable products rarely needs a fallback read."""

MAX_NEIGHBOURS = 300
"""Co-purchase counts kept per product; the weakest are pruned beyond it, which bounds the
document (Cosmos items stop at 2 MB) at the cost of forgetting one-off pairs."""

MAX_POPULARITY = 1000
"""Product counts kept per popularity document (the weakest are pruned beyond it)."""

MAX_PROFILE_PRODUCTS = 1000
"""Products kept per purchase profile (the weakest are pruned beyond it)."""

MAX_ATTEMPTS = 40
"""If-Match rounds before an update gives up (the message is then retried)."""

OBSERVATION_MARGIN = timedelta(seconds=5)
"""A fact read from the catalog or inventory is stamped this much before the read, so an
event about a change that committed just before the read still wins over it."""

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
"""Reference time of the decayed purchase weights."""

_LN2 = math.log(2.0)
_UNCOUNTED_STATUSES = frozenset({"pending_payment", "payment_failed", "cancelled"})
"""Imported orders in these states were never bought, so they teach us nothing."""

NEIGHBOURS_ID = "neighbours"
TOP_ID = "top"
"""The small companion of every neighbours and popularity document, in its partition and
written in the same batch: what the reads need (the ranked list, the category) without the
counts, so a read parses a few kilobytes whatever the counts hold."""
PROFILE_ID = "profile"
POPULARITY_ID = "popularity"
UNAVAILABLE_ID = UNAVAILABLE_KEY = "unavailable"


class RecommendationsBusy(CloudcartError):
    """A document kept changing under concurrent updates; the message is retried."""


# --- keys ---------------------------------------------------------------------------------


def product_key(product_id: str) -> str:
    """Partition key of a product's neighbours document."""
    return f"nbr:{product_id}"


def customer_key(customer_id: str) -> str:
    """Partition key of a customer's purchase profile."""
    return f"cust:{customer_id}"


def popularity_key(category_id: str | None = None) -> str:
    """Partition key of a category's popularity (`pop:all` for the whole shop)."""
    return f"pop:{category_id}" if category_id else "pop:all"


def _container(store: DocumentStore) -> Container:
    return store.container(INSIGHTS)


def _decay_exponent(at: datetime) -> float:
    """`ln(2 ** (days since EPOCH / half-life))`: one purchase's log-weight."""
    return (at - EPOCH).total_seconds() / 86_400 / HALF_LIFE_DAYS * _LN2


def _log_add(a: float | None, b: float) -> float:
    if a is None:
        return b
    high, low = (a, b) if a >= b else (b, a)
    return high + math.log1p(math.exp(low - high))


def decayed_count(weight: float, now: datetime) -> float:
    """The purchases behind a stored log-weight, each counted `2 ** (-age / half-life)`."""
    return math.exp(weight - _decay_exponent(now))


def pair_score(together: int, orders_i: int, orders_j: int) -> float:
    """The also-bought score of j on i's page (see the module docs)."""
    if together <= 0:
        return 0.0
    confidence = together / max(orders_i, together)
    support = together / (together + SUPPORT_SHRINKAGE)
    return float(confidence * support / max(orders_j, 1) ** POPULARITY_DAMPING)


# --- the read-modify-write loop -------------------------------------------------------------


def _pause(attempt: int) -> None:
    # Jittered and short: a lost round means another update committed, so the next try is
    # likely to win; jitter keeps concurrent handlers of a hot document out of lock-step.
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


@dataclass
class _Written:
    """What `_update` did: the document now stored (None if there is none), whether this
    call wrote it, whether the event had been applied to this partition before, and the
    companion it wrote."""

    document: Document | None
    written: bool = False
    duplicate: bool = False
    top: Document | None = None


def _read(container: Container, doc_id: str, key: str) -> Document | None:
    try:
        return container.read(doc_id, key)
    except NotFound:
        return None


def _update(
    container: Container,
    key: str,
    doc_id: str,
    change: Callable[[Document | None], Document | None],
    *,
    marker: str | None = None,
    companion: Callable[[Document], Document] | None = None,
) -> _Written:
    """Read the document, let `change` build its next version, write it If-Match.

    `change` gets a private copy (None when the document does not exist) and returns the
    document to store, or None to leave it as it is. With `marker`, the write carries a
    processed marker in the same batch, so the event changes this partition once. With
    `companion`, the document it derives from the new version is upserted as `TOP_ID` in
    the same batch.
    """
    for attempt in range(MAX_ATTEMPTS):
        current = _read(container, doc_id, key)
        proposed = change(None if current is None else strip_system(current))
        if proposed is None:
            return _Written(current)
        proposed["id"] = doc_id
        proposed["key"] = key
        proposed["updatedAt"] = timestamp(utcnow())
        operations: list[BatchOp] = []
        if marker is not None:
            operations.append(
                processed_marker(CONSUMER, marker, partition_key_field="key", partition_key=key)
            )
        main = len(operations)
        if current is None:
            operations.append(BatchOp("create", document=proposed))
        else:
            operations.append(BatchOp("replace", document=proposed, if_match=str(current["_etag"])))
        if companion is not None:
            derived = companion(proposed)
            derived.update(id=TOP_ID, key=key, updatedAt=proposed["updatedAt"])
            operations.append(BatchOp("upsert", document=derived))
        try:
            results = container.batch(key, operations)
        except BatchFailed as exc:
            if marker is not None and is_duplicate(exc):
                return _Written(current, duplicate=True)
            if exc.index == main and isinstance(
                exc.cause, PreconditionFailed | Conflict | NotFound
            ):
                _pause(attempt)
                continue
            raise
        top = results[main + 1] if companion is not None else None
        return _Written(results[main], written=True, top=top)
    raise RecommendationsBusy(f"{key} kept changing; the event will be retried")


# --- catalog and stock facts ----------------------------------------------------------------


@dataclass(frozen=True)
class ProductFacts:
    """What the catalog says about a product at `at` (None fields are unknown), and stock
    facts per SKU, each with its own time: `{sku: (in stock, at)}`."""

    at: datetime
    category_id: str | None = None
    status: str | None = None
    skus: tuple[str, ...] | None = None
    stock: Mapping[str, tuple[bool, datetime]] = field(default_factory=dict)


def unavailable_reason(document: Mapping[str, Any] | None) -> str | None:
    """Why a product must not be recommended (`archived`, `draft`, `missing`,
    `out-of-stock`), or None when it may be. Unknown products are presumed available."""
    if document is None:
        return None
    status = document.get("status")
    if status in ("archived", "draft", "missing"):
        return str(status)
    stock: Mapping[str, Any] = document.get("stock") or {}
    skus = document.get("skus")
    if skus is not None:
        if not any((stock.get(sku) or {}).get("inStock") for sku in skus):
            return "out-of-stock"
    elif stock and not any(entry.get("inStock") for entry in stock.values()):
        return "out-of-stock"
    return None


def _blank_neighbours(product_id: str) -> Document:
    return {
        "type": "neighbours",
        "productId": product_id,
        "categoryId": None,
        "status": None,
        "skus": None,
        "productAt": None,
        "stock": {},
        "orders": 0,
        "counts": {},
    }


def _neighbours_top(document: Mapping[str, Any], top: list[dict[str, Any]]) -> Document:
    return {
        "type": "neighbours-top",
        "productId": document.get("productId"),
        "categoryId": document.get("categoryId"),
        "productAt": document.get("productAt"),
        "orders": int(document.get("orders", 0)),
        "top": top,
    }


def _popularity_top(document: Mapping[str, Any]) -> Document:
    counts: Mapping[str, int] = document.get("counts", {})
    best = heapq.nsmallest(TOP_STORED, counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "type": "popularity-top",
        "categoryId": document.get("categoryId"),
        "orders": int(document.get("orders", 0)),
        "top": [{"productId": p, "count": n} for p, n in best],
    }


def _apply_facts(document: Document, facts: ProductFacts) -> bool:
    """Apply facts newer than what the document holds; True if anything changed."""
    changed = False
    known_at = parse_utc(document.get("productAt"))
    if facts.status is not None and (known_at is None or facts.at > known_at):
        document["productAt"] = timestamp(facts.at)
        document["status"] = facts.status
        document["categoryId"] = facts.category_id or document.get("categoryId")
        document["skus"] = list(facts.skus) if facts.skus is not None else document.get("skus")
        changed = True
    elif facts.category_id and not document.get("categoryId"):
        document["categoryId"] = facts.category_id
        changed = True
    stock: dict[str, Any] = document.setdefault("stock", {})
    for sku, (in_stock, at) in facts.stock.items():
        entry = stock.get(sku) or {}
        entry_at = parse_utc(entry.get("at"))
        if entry_at is None or at > entry_at:
            stock[sku] = {"inStock": in_stock, "at": timestamp(at)}
            changed = True
    return changed


def _apply_product_facts(
    store: DocumentStore, product_id: str, facts: ProductFacts
) -> Document | None:
    """Record catalog or stock facts on the product's document and, when that changes
    whether the product may be recommended, on the `unavailable` document."""
    container = _container(store)
    key = product_key(product_id)
    before: list[str | None] = []
    kept_top: list[list[dict[str, Any]]] = []

    def change(current: Document | None) -> Document | None:
        document = current if current is not None else _blank_neighbours(product_id)
        before[:] = [unavailable_reason(current)]
        if not _apply_facts(document, facts):
            return None
        # The neighbour list stays as it is: read after the document, and written If-Match
        # its ETag, so no order's newer list can be overwritten with this one.
        kept = _read(container, TOP_ID, key) if current is not None else None
        kept_top[:] = [list((kept or {}).get("top", []))]
        return document

    outcome = _update(
        container,
        key,
        NEIGHBOURS_ID,
        change,
        companion=lambda document: _neighbours_top(document, kept_top[0]),
    )
    reason = unavailable_reason(outcome.document)
    if outcome.written:
        if before and reason != before[0]:
            _sync_unavailable(store, product_id)
    elif outcome.document is not None and unavailable_products(store).get(product_id) != reason:
        # Nothing new, yet the list disagrees: an earlier delivery of this event changed the
        # product and stopped before the list; finish its work.
        _sync_unavailable(store, product_id)
    return outcome.document


def _sync_unavailable(store: DocumentStore, product_id: str) -> None:
    """Make the `unavailable` document agree with the product's own document.

    The `unavailable` document is read before the product's and always rewritten If-Match,
    even when it already agrees: a concurrent sync that read an older product state then
    loses its round and reads again, so the last write always reflects the latest state.
    """
    container = _container(store)
    for attempt in range(MAX_ATTEMPTS):
        current = _read(container, UNAVAILABLE_ID, UNAVAILABLE_KEY)
        reason = unavailable_reason(_read(container, NEIGHBOURS_ID, product_key(product_id)))
        document: Document = (
            strip_system(current)
            if current is not None
            else {"id": UNAVAILABLE_ID, "key": UNAVAILABLE_KEY, "type": "unavailable"}
        )
        products: dict[str, str] = document.setdefault("products", {})
        if reason is None:
            products.pop(product_id, None)
        else:
            products[product_id] = reason
        document["updatedAt"] = timestamp(utcnow())
        try:
            if current is None:
                container.create(document)
            else:
                container.replace(document, if_match=str(current["_etag"]))
        except (PreconditionFailed, Conflict, NotFound):
            _pause(attempt)
            continue
        return
    raise RecommendationsBusy("the unavailable list kept changing; the event will be retried")


def observe_product(store: DocumentStore, product_id: str) -> ProductFacts:
    """The catalog's and inventory's current facts about a product, read through their
    public functions (for products whose events predate this consumer)."""
    observed_at = utcnow() - OBSERVATION_MARGIN
    catalog = CatalogService(store)
    try:
        product = catalog.get_product(product_id).document
    except ProductNotFound:
        return ProductFacts(at=observed_at, status="missing", skus=())
    skus = tuple(str(v["sku"]) for v in product.get("variants", []))
    stock = {sku: (units > 0, observed_at) for sku, units in catalog.availability(skus).items()}
    return ProductFacts(
        at=observed_at,
        category_id=str(product["categoryId"]),
        status=str(product["status"]),
        skus=skus,
        stock=stock,
    )


def _product_event_facts(event: Event) -> tuple[str, ProductFacts]:
    data = event.data
    product_id = data.get("id") or data.get("productId") or event.subject
    variants = data.get("variants")
    status = data.get("status")
    if not isinstance(product_id, str) or not isinstance(status, str):
        raise InvalidMessage("InvalidEvent", f"{event.type} without a product id and status")
    if not isinstance(variants, list):
        raise InvalidMessage("InvalidEvent", f"{event.type} without variants")
    at = parse_utc(data.get("updatedAt")) or event.time
    skus = tuple(str(v["sku"]) for v in variants if isinstance(v, dict) and "sku" in v)
    category = data.get("categoryId")
    return product_id, ProductFacts(
        at=at,
        category_id=category if isinstance(category, str) else None,
        status=status,
        skus=skus,
    )


def _handle_product_event(store: DocumentStore, event: Event) -> str:
    product_id, facts = _product_event_facts(event)
    current = _read(_container(store), NEIGHBOURS_ID, product_key(product_id))
    known_stock: Mapping[str, Any] = (current or {}).get("stock") or {}
    unknown = [sku for sku in facts.skus or () if sku not in known_stock]
    if unknown:
        # SKUs we have not heard of yet (a new product, or one older than this consumer):
        # ask inventory once, so that a product in stock is not left out for lack of news.
        observed_at = utcnow() - OBSERVATION_MARGIN
        available = CatalogService(store).availability(unknown)
        stock = {sku: (units > 0, observed_at) for sku, units in available.items()}
        facts = replace(facts, stock=stock)
    _apply_product_facts(store, product_id, facts)
    return f"product {product_id} {facts.status}"


def _handle_stock_event(store: DocumentStore, event: Event) -> str:
    data = event.data
    sku, product_id, available = data.get("sku"), data.get("productId"), data.get("available")
    if not isinstance(sku, str) or not isinstance(product_id, str) or not product_id:
        raise InvalidMessage("InvalidEvent", "inventory.changed without sku and productId")
    if not isinstance(available, int):
        raise InvalidMessage("InvalidEvent", "inventory.changed without available")
    facts = ProductFacts(at=event.time, stock={sku: (available > 0, event.time)})
    _apply_product_facts(store, product_id, facts)
    return f"stock {sku} of {product_id}: {'in' if available > 0 else 'out of'} stock"


# --- orders -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchasedOrder:
    """What one order teaches: who bought which products when."""

    order_id: str
    customer_id: str
    placed_at: datetime
    product_ids: tuple[str, ...]

    @property
    def marker_key(self) -> str:
        """What the processed markers are keyed on: the order, not the event (see
        `record_order`)."""
        return f"order:{self.order_id}"


def _resolve_products(store: DocumentStore, lines: Iterable[Mapping[str, Any]]) -> list[str]:
    found: dict[str, None] = {}
    catalog = CatalogService(store)
    for line in lines:
        product_id = line.get("productId")
        if not isinstance(product_id, str) or not product_id:
            sku = line.get("sku")
            if not isinstance(sku, str) or not sku:
                continue
            try:
                product_id = catalog.get_inventory(sku).product_id
            except SkuNotFound:
                logger.warning("recommendations: SKU %s belongs to no product; line skipped", sku)
                continue
        quantity = line.get("quantity", 1)
        if isinstance(quantity, int | float) and quantity <= 0:
            continue
        found[product_id] = None
    return list(found)


def _order_from_event(store: DocumentStore, event: Event) -> PurchasedOrder | None:
    data = event.data
    order_id, customer_id = data.get("orderId"), data.get("customerId")
    if not isinstance(order_id, str) or not isinstance(customer_id, str):
        raise InvalidMessage("InvalidEvent", f"{event.type} without orderId and customerId")
    if event.type == "order.paid":
        try:
            order = get_order(store, customer_id, order_id)
        except OrderNotFound:
            raise InvalidMessage("OrderNotFound", f"no order {order_id!r}") from None
        lines: Any = order.get("lines") or []
        placed_at = event.time
    else:
        lines = data.get("lines")
        if not isinstance(lines, list):
            raise InvalidMessage("InvalidEvent", "order.imported without lines")
        if data.get("status") in _UNCOUNTED_STATUSES:
            return None
        placed_at = parse_utc(data.get("placedAt")) or event.time
    products = _resolve_products(store, (line for line in lines if isinstance(line, dict)))
    if not products:
        return None
    return PurchasedOrder(order_id, customer_id, placed_at, tuple(products))


class _Neighbours:
    """The neighbour lists (`TOP_ID` companions) seen while handling one event: those of
    the order's products as just written, the others as read."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.written: dict[str, Document | None] = {}
        self._tops: dict[str, Document | None] = {}

    def top_of(self, product_id: str) -> Mapping[str, Any] | None:
        if product_id in self.written:
            return self.written[product_id]
        if product_id not in self._tops:
            self._tops[product_id] = _read(self.container, TOP_ID, product_key(product_id))
        return self._tops[product_id]


@dataclass(frozen=True)
class _ShopPopularity:
    """How many orders hold each product, from `pop:all` as read when an order arrives.

    Products pruned from it (or not in it yet) count as `floor`, the least a kept product
    has; with a damping exponent well below one the approximation barely moves a score.
    """

    counts: Mapping[str, int]
    floor: int
    this_order: frozenset[str]

    @classmethod
    def read(cls, container: Container, order: PurchasedOrder) -> _ShopPopularity:
        document = _read(container, POPULARITY_ID, popularity_key(None)) or {}
        counts: Mapping[str, int] = document.get("counts") or {}
        floor = min(counts.values()) if len(counts) >= MAX_POPULARITY else 1
        return cls(counts, floor, frozenset(order.product_ids))

    def orders_of(self, product_id: str) -> int:
        """Orders holding the product once this order is counted."""
        known = int(self.counts.get(product_id, self.floor))
        return known + 1 if product_id in self.this_order else known


def _top_neighbours(
    document: Mapping[str, Any], orders_of: Callable[[str], int]
) -> list[dict[str, Any]]:
    orders_i = int(document.get("orders", 0))
    counts: Mapping[str, int] = document.get("counts", {})
    scored = (
        (pair_score(int(together), orders_i, max(int(together), orders_of(other))), other)
        for other, together in counts.items()
    )
    # Ties go to the smaller id, so the list does not depend on the order of the counts.
    best = heapq.nsmallest(TOP_STORED, scored, key=lambda pair: (-pair[0], pair[1]))
    return [{"productId": other, "score": round(score, 6)} for score, other in best if score > 0]


def _prune(mapping: dict[str, Any], limit: int, key: Callable[[str], Any]) -> dict[str, Any]:
    if len(mapping) <= limit:
        return mapping
    kept = heapq.nlargest(limit, mapping, key=key)
    return {k: mapping[k] for k in kept}


def _neighbours_change(
    product_id: str, order: PurchasedOrder
) -> Callable[[Document | None], Document | None]:
    others = [p for p in order.product_ids if p != product_id]

    def change(current: Document | None) -> Document:
        document = current if current is not None else _blank_neighbours(product_id)
        document["orders"] = int(document.get("orders", 0)) + 1
        counts: dict[str, int] = document.setdefault("counts", {})
        for other in others:
            counts[other] = int(counts.get(other, 0)) + 1
        current_order = set(others)
        document["counts"] = _prune(
            counts, MAX_NEIGHBOURS, lambda p: (counts[p], p in current_order)
        )
        return document

    return change


def _profile_change(
    order: PurchasedOrder, neighbours: _Neighbours
) -> Callable[[Document | None], Document]:
    def change(current: Document | None) -> Document:
        document = current or {
            "type": "profile",
            "customerId": order.customer_id,
            "products": {},
            "lastOrderAt": None,
        }
        products: dict[str, dict[str, Any]] = document.setdefault("products", {})
        exponent = _decay_exponent(order.placed_at)
        placed = timestamp(order.placed_at)
        for product_id in order.product_ids:
            entry = products.get(product_id) or {"count": 0, "lastAt": None, "weight": None}
            entry["count"] = int(entry["count"]) + 1
            entry["lastAt"] = max(entry["lastAt"] or placed, placed)
            entry["weight"] = _log_add(entry.get("weight"), exponent)
            products[product_id] = entry
        document["products"] = _prune(
            products, MAX_PROFILE_PRODUCTS, lambda p: float(products[p]["weight"])
        )
        document["lastOrderAt"] = max(document.get("lastOrderAt") or placed, placed)
        document["forYou"] = _for_you_list(document, neighbours.top_of)
        return document

    return change


def just_bought(profile: Mapping[str, Any], now: datetime) -> set[str]:
    """The products the customer bought within `JUST_BOUGHT_WINDOW` before `now`."""
    since = now - JUST_BOUGHT_WINDOW
    products: Mapping[str, Mapping[str, Any]] = profile.get("products", {})
    return {
        product_id
        for product_id, entry in products.items()
        if (at := parse_utc(entry.get("lastAt"))) is not None and at >= since
    }


def _neighbour_candidates(
    seeds: Sequence[tuple[str, float]],
    neighbours_of: Callable[[str], Mapping[str, Any] | None],
    leave_out: set[str],
) -> list[dict[str, Any]]:
    """The also-bought lists of weighted seeds, summed per candidate, best first; `via` is
    the seed that contributed most."""
    scores: dict[str, float] = {}
    best_via: dict[str, tuple[float, str]] = {}
    for seed, weight in seeds:
        document = neighbours_of(seed)
        if document is None:
            continue
        for item in document.get("top", []):
            candidate = str(item["productId"])
            if candidate in leave_out:
                continue
            contribution = weight * float(item["score"])
            scores[candidate] = scores.get(candidate, 0.0) + contribution
            if contribution > best_via.get(candidate, (0.0, ""))[0]:
                best_via[candidate] = (contribution, seed)
    best = heapq.nsmallest(TOP_STORED, scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"productId": p, "score": round(s, 6), "via": best_via[p][1]} for p, s in best if s > 0]


def _for_you_list(
    profile: Mapping[str, Any], neighbours_of: Callable[[str], Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """Neighbours of the customer's strongest purchases, each weighted by its decayed
    count relative to the strongest."""
    products: Mapping[str, Mapping[str, Any]] = profile.get("products", {})
    seeds = heapq.nlargest(FOR_YOU_SEEDS, products, key=lambda p: float(products[p]["weight"]))
    if not seeds:
        return []
    strongest = float(products[seeds[0]]["weight"])
    weighted = [(seed, math.exp(float(products[seed]["weight"]) - strongest)) for seed in seeds]
    # What counts as just bought depends on when the list is read: `for_you` leaves it out.
    return _neighbour_candidates(weighted, neighbours_of, set())


def _from_views_list(
    profile: Mapping[str, Any], neighbours_of: Callable[[str], Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """Neighbours of the customer's latest views, each weighted by its age relative to the
    newest (half-life `VIEW_HALF_LIFE_DAYS`)."""
    views: Mapping[str, str] = profile.get("views", {})
    latest = heapq.nlargest(VIEW_SEEDS, views.items(), key=lambda kv: (kv[1], kv[0]))
    newest = parse_utc(latest[0][1]) if latest else None
    if newest is None:
        return []
    weighted: list[tuple[str, float]] = []
    for product_id, at in latest:
        seen = parse_utc(at) or newest
        age_days = (newest - seen).total_seconds() / 86_400
        weighted.append((product_id, 2.0 ** (-age_days / VIEW_HALF_LIFE_DAYS)))
    return _neighbour_candidates(weighted, neighbours_of, set())


def _popularity_change(
    category_id: str | None, product_ids: Sequence[str]
) -> Callable[[Document | None], Document]:
    def change(current: Document | None) -> Document:
        document = current or {"type": "popularity", "categoryId": category_id, "counts": {}}
        document["orders"] = int(document.get("orders", 0)) + 1
        counts: dict[str, int] = document.setdefault("counts", {})
        for product_id in product_ids:
            counts[product_id] = int(counts.get(product_id, 0)) + 1
        fresh = set(product_ids)
        counts = _prune(counts, MAX_POPULARITY, lambda p: (counts[p], p in fresh))
        document["counts"] = counts
        return document

    return change


def record_order(store: DocumentStore, order: PurchasedOrder) -> dict[str, int]:
    """Apply one bought order to every partition it touches, once per partition.

    The markers are keyed on the order id rather than the event id: that covers a
    redelivered event (same event, same order) and also an order imported again with a
    correction, which the importer announces with a new event id; an order counts once,
    as first learnt. Returns how many partitions were changed now and how many had it
    already.
    """
    container = _container(store)
    neighbours = _Neighbours(container)
    for product_id in order.product_ids:
        known = _read(container, TOP_ID, product_key(product_id))
        if known is None or known.get("productAt") is None:
            # Its catalog events predate this consumer (or have not arrived yet): learn its
            # category and availability from the catalog once.
            _apply_product_facts(store, product_id, observe_product(store, product_id))
    # Every neighbour's popularity, fresh for all of them (one read for the whole order);
    # stale by at most the orders being handled concurrently.
    shop = _ShopPopularity.read(container, order)
    tally = {"changed": 0, "alreadyApplied": 0}

    def count(outcome: _Written) -> None:
        tally["alreadyApplied" if outcome.duplicate else "changed"] += 1

    categories: dict[str, list[str]] = {}
    for product_id in order.product_ids:
        outcome = _update(
            container,
            product_key(product_id),
            NEIGHBOURS_ID,
            _neighbours_change(product_id, order),
            marker=order.marker_key,
            companion=lambda document: _neighbours_top(
                document, _top_neighbours(document, shop.orders_of)
            ),
        )
        count(outcome)
        if outcome.top is not None:
            neighbours.written[product_id] = outcome.top
        category = (outcome.document or {}).get("categoryId")
        if isinstance(category, str) and category:
            categories.setdefault(category, []).append(product_id)
    count(
        _update(
            container,
            customer_key(order.customer_id),
            PROFILE_ID,
            _profile_change(order, neighbours),
            marker=order.marker_key,
        )
    )
    for category, product_ids in sorted(categories.items()):
        count(
            _update(
                container,
                popularity_key(category),
                POPULARITY_ID,
                _popularity_change(category, product_ids),
                marker=order.marker_key,
                companion=_popularity_top,
            )
        )
    count(
        _update(
            container,
            popularity_key(None),
            POPULARITY_ID,
            _popularity_change(None, order.product_ids),
            marker=order.marker_key,
            companion=_popularity_top,
        )
    )
    return tally


def record_views(store: DocumentStore, customer_id: str, views: Mapping[str, str]) -> bool:
    """Note a signed-in customer's product views (`{productId: viewed at}`) in their
    profile and recompute the neighbours of their latest views; returns whether anything
    changed. The newest view of a product wins, so a redelivery changes nothing.

    Round trips: the profile, the neighbours of up to `VIEW_SEEDS` viewed products, one
    conditional write.
    """
    container = _container(store)
    neighbours = _Neighbours(container)

    def change(current: Document | None) -> Document | None:
        document = current or {
            "type": "profile",
            "customerId": customer_id,
            "products": {},
            "lastOrderAt": None,
        }
        seen: dict[str, str] = dict(document.get("views") or {})
        newer = {p: at for p, at in views.items() if at > seen.get(p, "")}
        if not newer:
            return None
        seen.update(newer)
        latest = heapq.nlargest(MAX_PROFILE_VIEWS, seen.items(), key=lambda kv: (kv[1], kv[0]))
        document["views"] = dict(latest)
        document["fromViews"] = _from_views_list(document, neighbours.top_of)
        return document

    return _update(container, customer_key(customer_id), PROFILE_ID, change).written


def _handle_views(store: DocumentStore, event: Event) -> str:
    # Imported here: history imports the storefront rules, which only this branch needs.
    from cloudcart.insights.history import parse_recorded

    batch = parse_recorded(event)
    views = batch.views()
    if batch.customer_id is None or not views:
        # A visitor's views reach the profile once they sign in and view again; for-you is
        # for signed-in customers only.
        return f"{event.type} {event.id}: no customer views"
    if not CustomerService(store).personalization_allowed(batch.customer_id):
        return f"{event.type} {event.id}: personalization off"
    changed = record_views(store, batch.customer_id, views)
    return f"{event.type} {event.id}: {len(views)} views, {'changed' if changed else 'known'}"


def handle_event(services: Services, event: Event) -> str:
    """Apply one event of the `insights-recommendations` subscription (at most once in
    effect); returns a short outcome for the log."""
    store = services.documents
    if event.type in VIEW_EVENTS:
        return _handle_views(store, event)
    if event.type in ORDER_EVENTS:
        order = _order_from_event(store, event)
        if order is None:
            return f"{event.type} {event.subject}: nothing bought"
        tally = record_order(store, order)
        return (
            f"{event.type} {order.order_id}: {len(order.product_ids)} products, "
            f"{tally['changed']} documents changed, {tally['alreadyApplied']} already applied"
        )
    if event.type in PRODUCT_EVENTS:
        return _handle_product_event(store, event)
    if event.type in STOCK_EVENTS:
        return _handle_stock_event(store, event)
    return f"{event.type}: ignored"


# --- reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """One recommended product; `reason` is set on personal recommendations."""

    product_id: str
    score: float
    reason: str | None = None

    def to_public(self) -> dict[str, Any]:
        """The API's item (`productId`, `score`, and `reason` when there is one)."""
        item: dict[str, Any] = {"productId": self.product_id, "score": self.score}
        if self.reason is not None:
            item["reason"] = self.reason
        return item


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


def unavailable_products(store: DocumentStore) -> Mapping[str, str]:
    """Products that must not be recommended, with the reason (one point read)."""
    document = _read(_container(store), UNAVAILABLE_ID, UNAVAILABLE_KEY)
    return dict((document or {}).get("products") or {})


def _popular_fill(
    store: DocumentStore,
    keys: Sequence[str],
    picked: list[Recommendation],
    limit: int,
    skip: Callable[[str], bool],
    reason: str | None,
) -> None:
    """Top up `picked` from popularity documents, in order, one point read each."""
    container = _container(store)
    for key in keys:
        if len(picked) >= limit:
            return
        document = _read(container, TOP_ID, key)
        if document is None:
            continue
        orders = max(int(document.get("orders", 0)), 1)
        for entry in document.get("top", []):
            if len(picked) >= limit:
                return
            product_id = str(entry["productId"])
            if skip(product_id) or any(r.product_id == product_id for r in picked):
                continue
            # The share of orders holding it, capped so the list stays sorted by score.
            share = int(entry["count"]) / orders
            ceiling = picked[-1].score if picked else 1.0
            picked.append(Recommendation(product_id, round(min(share, ceiling), 6), reason))


def also_bought(store: DocumentStore, product_id: str, limit: int = 10) -> list[Recommendation]:
    """Products bought together with `product_id`, best first.

    Two point reads (the product's neighbours, the unavailable list); a product with too
    few neighbours is topped up from its category's popularity, then the shop's (one more
    point read each). The product itself and unavailable products are left out.
    """
    _check_limit(limit)
    document = _read(_container(store), TOP_ID, product_key(product_id))
    unavailable = unavailable_products(store)

    def skip(candidate: str) -> bool:
        return candidate == product_id or candidate in unavailable

    picked: list[Recommendation] = []
    for entry in (document or {}).get("top", []):
        if len(picked) >= limit:
            break
        candidate = str(entry["productId"])
        if not skip(candidate):
            picked.append(Recommendation(candidate, float(entry["score"])))
    category = (document or {}).get("categoryId")
    keys = [popularity_key(category)] if isinstance(category, str) and category else []
    keys.append(popularity_key(None))
    _popular_fill(store, keys, picked, limit, skip, None)
    return picked


def _profile(store: DocumentStore, customer_id: str) -> Document | None:
    return _read(_container(store), PROFILE_ID, customer_key(customer_id))


def order_again(
    store: DocumentStore, customer_id: str, limit: int = 10, *, now: datetime | None = None
) -> list[Recommendation]:
    """What the customer bought before, by decayed purchase count (frequency and recency),
    leaving out unavailable products. Two point reads (one without a purchase history)."""
    _check_limit(limit)
    profile = _profile(store, customer_id)
    products: Mapping[str, Mapping[str, Any]] = (profile or {}).get("products") or {}
    if not products:
        return []
    unavailable = unavailable_products(store)
    now = now or utcnow()
    ranked = sorted(
        products,
        key=lambda p: (-float(products[p]["weight"]), -int(products[p]["count"]), p),
    )
    picked: list[Recommendation] = []
    for product_id in ranked:
        if product_id in unavailable:
            continue
        score = round(decayed_count(float(products[product_id]["weight"]), now), 6)
        picked.append(Recommendation(product_id, score, "bought-before"))
        if len(picked) >= limit:
            break
    return picked


def _fused(
    sources: Sequence[Iterable[tuple[str, str]]], skip: Callable[[str], bool], limit: int
) -> list[Recommendation]:
    """Reciprocal rank fusion of ranked `(productId, reason)` lists (see `FUSION_K`); a
    product's reason is that of the source that ranked it highest."""
    scores: dict[str, float] = {}
    reasons: dict[str, tuple[float, str]] = {}
    for source in sources:
        rank = 0
        for product_id, reason in source:
            if skip(product_id):
                continue
            rank += 1
            contribution = 1.0 / (FUSION_K + rank)
            scores[product_id] = scores.get(product_id, 0.0) + contribution
            if contribution > reasons.get(product_id, (0.0, ""))[0]:
                reasons[product_id] = (contribution, reason)
    best = heapq.nsmallest(limit, scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Recommendation(p, round(score, 6), reasons[p][1]) for p, score in best]


def for_you(
    store: DocumentStore,
    customer_id: str,
    limit: int = 10,
    *,
    now: datetime | None = None,
) -> list[Recommendation]:
    """The customer's own history blended with the neighbours of their purchases and of
    their latest views, leaving out what they just bought and unavailable products, topped
    up with the shop's best sellers (reason `popular`).

    Three ranked lists, fused by reciprocal rank (`FUSION_K`): what they bought in at least
    `REPEAT_PURCHASES` orders, by decayed count (reason `bought-before`), products bought
    with their strongest purchases (`bought-with:<productId>`) and with their latest views
    (`viewed-with:<productId>`).
    Two point reads (profile, unavailable list), a third when the list needs topping up.
    """
    _check_limit(limit)
    profile = _profile(store, customer_id) or {}
    unavailable = unavailable_products(store)
    leave_out = just_bought(profile, now or utcnow())

    def skip(candidate: str) -> bool:
        return candidate in unavailable or candidate in leave_out

    products: Mapping[str, Mapping[str, Any]] = profile.get("products") or {}
    # Only what they bought more than once: a habit worth suggesting again, where a single
    # purchase (a phone, a sofa) is more likely done with.
    repeats = [p for p in products if int(products[p]["count"]) >= REPEAT_PURCHASES]
    history = sorted(
        repeats, key=lambda p: (-float(products[p]["weight"]), -int(products[p]["count"]), p)
    )
    picked = _fused(
        [
            ((p, "bought-before") for p in history),
            ((str(e["productId"]), f"bought-with:{e['via']}") for e in profile.get("forYou") or []),
            (
                (str(e["productId"]), f"viewed-with:{e['via']}")
                for e in profile.get("fromViews") or []
            ),
        ],
        skip,
        limit,
    )
    _popular_fill(store, [popularity_key(None)], picked, limit, skip, "popular")
    return picked


# --- privacy --------------------------------------------------------------------------------


def export_customer(store: DocumentStore, customer_id: str) -> dict[str, Any]:
    """What recommendations keep about one customer: the products they bought, how often
    and when last, and their latest views (co-purchase counts and popularity are aggregates
    and name nobody)."""
    profile = _profile(store, customer_id) or {}
    products: Mapping[str, Mapping[str, Any]] = profile.get("products") or {}
    views: Mapping[str, str] = profile.get("views") or {}
    return {
        "purchases": [
            {"productId": p, "count": int(e["count"]), "lastAt": e["lastAt"]}
            for p, e in sorted(products.items(), key=lambda kv: str(kv[1]["lastAt"]), reverse=True)
        ],
        "views": [
            {"productId": p, "viewedAt": at}
            for p, at in sorted(views.items(), key=lambda kv: kv[1], reverse=True)
        ],
    }


def forget_views(store: DocumentStore, customer_id: str) -> bool:
    """Drop the views a customer's recommendations learnt (personalisation turned off);
    returns whether there were any. Idempotent."""

    def change(current: Document | None) -> Document | None:
        if current is None or not (current.get("views") or current.get("fromViews")):
            return None
        current.pop("views", None)
        current.pop("fromViews", None)
        return current

    return _update(_container(store), customer_key(customer_id), PROFILE_ID, change).written


def erase_customer(store: DocumentStore, customer_id: str) -> int:
    """Delete the customer's purchase profile and its processed markers (idempotent);
    returns how many documents were deleted."""
    container = _container(store)
    key = customer_key(customer_id)
    # Collect first, delete after: deleting while paging would shift later pages.
    ids = [str(document["id"]) for document in each(container, Query(limit=100), partition_key=key)]
    deleted = 0
    for doc_id in ids:
        try:
            container.delete(doc_id, key)
            deleted += 1
        except NotFound:
            pass
    return deleted
