"""Price drop: when a product gets cheaper, the customers who viewed it in the last 30
days hear about it, each at most once a week, and only with marketing consent and the
`personalization` preference on.

The insights area owns browsing history; this area keeps only what it needs, a
recent-viewers index per product (`views:<product id>`, one entry per customer with a
`ttl` that ends it 30 days after the view), built from `storefront.events_recorded`.
Views of a customer whose personalization is off are not recorded, and turning it off
deletes their entries (`cloudcart.marketing.privacy`).

A drop is read from `product.updated`: its `previousPrices` (each SKU's price before the
change) against the new variants, in the same currency. Per customer, the weekly slot is
taken in their `price-drop` record (If-Match) *before* `send_bulk` with the source id
`price-drop:<event id>`; a redelivery finds its own claim and sends only what is unsent.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Conflict, NotFound, PreconditionFailed
from cloudcart.core.events import Event
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import Container, Document, DocumentStore, Filter, Query, pages
from cloudcart.customers.service import CustomerService
from cloudcart.insights import history
from cloudcart.marketing.store import (
    container,
    customer_key,
    marketing_allowed,
    parse_time,
    read_or_none,
    views_key,
)
from cloudcart.notifications.service import NotificationsPending, send_bulk

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

TEMPLATE = "price-drop"
VIEWER_KIND = "viewer"
STATE_ID = "price-drop"

VIEW_WINDOW = timedelta(days=30)
"""How recent a view must be for a price drop to be worth telling."""

SEND_GAP = timedelta(days=7)
"""At most one price-drop message per customer in this time."""

PAGE = 200
_ATTEMPTS = 5


# --- the viewers index --------------------------------------------------------------------


def record_views(documents: DocumentStore, event: Event, *, now: datetime | None = None) -> int:
    """Add a signed-in customer's viewed products to their recent-viewers entries (newest
    view wins, so a redelivery changes nothing). Returns how many entries were written."""
    batch = history.parse_recorded(event)
    customer_id = batch.customer_id
    if customer_id is None:
        return 0
    if not CustomerService(documents).personalization_allowed(customer_id):
        return 0
    now = now or utcnow()
    target = container(documents)
    written = 0
    for product_id, viewed_at in batch.views().items():
        left = VIEW_WINDOW - (now - parse_time(viewed_at))
        if left <= timedelta(0):
            continue
        key = views_key(product_id)
        current = read_or_none(target, customer_id, key)
        if current is not None and current["viewedAt"] >= viewed_at:
            continue
        target.upsert(
            {
                "id": customer_id,
                "key": key,
                "kind": VIEWER_KIND,
                "customerId": customer_id,
                "productId": product_id,
                "viewedAt": viewed_at,
                "ttl": int(left.total_seconds()) + 1,
            }
        )
        written += 1
    return written


def forget_views(documents: DocumentStore, customer_id: str) -> int:
    """Delete every recent-viewer entry of a customer (a cross-partition query: it runs on
    a withdrawal or an erasure, rarely)."""
    target = container(documents)
    query = Query(
        filters=(Filter("kind", "eq", VIEWER_KIND), Filter("customerId", "eq", customer_id)),
        limit=PAGE,
    )
    deleted = 0
    while True:
        page = target.query(query)
        items = page.items
        continuation = page.continuation
        while not items and continuation is not None:
            page = target.query(query, continuation=continuation)
            items, continuation = page.items, page.continuation
        if not items:
            return deleted
        for document in items:
            with contextlib.suppress(NotFound):
                target.delete(document["id"], document["key"])
                deleted += 1


# --- the drop -------------------------------------------------------------------------------


def price_drop(event: Event) -> dict[str, Any] | None:
    """The biggest drop (by share of the old price) a `product.updated` announces, as the
    template's data without `url`; None when no active SKU got cheaper."""
    data = event.data
    previous = data.get("previousPrices")
    if event.type != "product.updated" or not isinstance(previous, dict):
        return None
    if data.get("status") != "active":
        return None
    best: tuple[float, dict[str, Any]] | None = None
    for variant in data.get("variants") or []:
        before = previous.get(variant.get("sku"))
        price = variant.get("price") or {}
        if not isinstance(before, dict) or before.get("currency") != price.get("currency"):
            continue
        old, new = before.get("amount"), price.get("amount")
        if not isinstance(old, int) or not isinstance(new, int) or not 0 < new < old:
            continue
        share = (old - new) / old
        if best is None or share > best[0]:
            best = (
                share,
                {
                    "productId": event.subject,
                    "sku": variant["sku"],
                    "name": data.get("title") or variant["sku"],
                    "price": new,
                    "previousPrice": old,
                    "currency": price["currency"],
                },
            )
    return None if best is None else best[1]


def _claim_week(target: Container, customer_id: str, source_id: str, now: datetime) -> bool:
    """Take the customer's weekly slot for `source_id` (True), or find it taken (False)."""
    key = customer_key(customer_id)
    for _ in range(_ATTEMPTS):
        state = read_or_none(target, STATE_ID, key)
        if state is not None:
            if state["sourceId"] == source_id:
                return True
            if parse_time(state["sentAt"]) > now - SEND_GAP:
                return False
        document: Document = {
            "id": STATE_ID,
            "key": key,
            "kind": "price-drop",
            "customerId": customer_id,
            "sourceId": source_id,
            "sentAt": timestamp(now),
        }
        try:
            if state is None:
                target.create(document)
            else:
                target.replace(document, if_match=state["_etag"])
            return True
        except (Conflict, PreconditionFailed):
            continue
    raise PreconditionFailed("the price-drop record kept changing")


def _eligible(documents: DocumentStore, customer_id: str) -> bool:
    return CustomerService(documents).personalization_allowed(customer_id) and marketing_allowed(
        documents, customer_id, TEMPLATE
    )


def handle_price_change(services: Services, event: Event, *, now: datetime | None = None) -> int:
    """Tell the product's recent viewers about a price drop, each at most once a week.
    Returns how many customers were handed to notifications."""
    drop = price_drop(event)
    if drop is None:
        return 0
    now = now or utcnow()
    documents = services.documents
    target = container(documents)
    product_id = event.subject
    drop["url"] = f"{services.settings.public_base_url.rstrip('/')}/products/{product_id}"
    source_id = f"{TEMPLATE}:{event.id}"
    query = Query(
        filters=(
            Filter("kind", "eq", VIEWER_KIND),
            Filter("viewedAt", "ge", timestamp(now - VIEW_WINDOW)),
        ),
        limit=PAGE,
    )
    told = 0
    # Claims change other partitions only, so the continuation stays valid.
    for page in pages(target, query, partition_key=views_key(product_id)):
        chosen = [
            viewer["customerId"]
            for viewer in page.items
            if _eligible(documents, viewer["customerId"])
            and _claim_week(target, viewer["customerId"], source_id, now)
        ]
        if chosen:
            outcome = send_bulk(
                services,
                source_id=source_id,
                template=TEMPLATE,
                customer_ids=chosen,
                data=drop,
                source_type=event.type,
                now=now,
            )
            if outcome.pending:
                raise NotificationsPending(f"price drop {event.id}: {outcome}")
            told += len(chosen)
    logger.info("price drop of %s (%s): %d customer(s)", product_id, event.id, told)
    return told
