"""Back in stock: customers ask to hear when a sold-out SKU returns; when its availability
goes from 0 to more, every subscriber is notified once and the subscription ends.

A subscription is two documents (`cloudcart.marketing.store`): the one the restock reads,
in the SKU's partition (id = customer id), and an index entry in the customer's partition
(`notify:<sku>`) for their list, export and erasure. Both carry the same `subscriptionId`.

Exactly once per subscription, whatever is redelivered or replayed:

1. the restock handler *claims* each subscription by setting `firedBy` to the event id
   with a conditional patch (only if unset), so two restock events cannot both take it;
2. it hands the claimed subscribers to `send_bulk` with the source id
   `back-in-stock:<event id>`, from which the notification records' ids derive;
3. it ends the subscriptions (deletes, If-Match the claimed version).

A crash after 1 or 2 redelivers the event: the handler finds the subscriptions it
already claimed, and `send_bulk` sends only what is not sent yet. A subscription created
after the restock happened is left for the next one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudcart.catalog.service import CatalogService, ProductNotFound
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Conflict, DomainError, NotFound, PreconditionFailed
from cloudcart.core.events import Event
from cloudcart.core.ids import new_id
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import (
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    PatchOp,
    Query,
    every,
    fill_page,
)
from cloudcart.marketing.store import container, customer_key, read_or_none, sku_key
from cloudcart.notifications.service import NotificationsPending, send_bulk

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

TEMPLATE = "back-in-stock"
SUBSCRIPTION_KIND = "back-in-stock"
INDEX_KIND = "back-in-stock-index"

MAX_SUBSCRIPTIONS = 100
"""Open subscriptions one customer may hold."""

PAGE = 200
"""Subscribers claimed and handed to notifications at a time."""


class UnknownSku(DomainError):
    """The product does not sell that SKU."""

    problem_type = "unknown-sku"


class SubscriptionNotFound(DomainError):
    """The customer has no back-in-stock subscription for that SKU."""

    problem_type = "notify-me-not-found"


class TooManySubscriptions(DomainError):
    """The customer already holds the most subscriptions allowed."""

    problem_type = "too-many-notify-me"


def index_id(sku: str) -> str:
    """The id of a subscription's entry in the customer's partition."""
    return f"notify:{sku}"


def public(index: Document) -> dict[str, Any]:
    """A subscription as the API returns it."""
    return {
        "productId": index["productId"],
        "sku": index["sku"],
        "createdAt": index["createdAt"],
    }


# --- the customer's side ------------------------------------------------------------------


def _own_subscriptions(target: Container, customer_id: str, limit: int) -> list[Document]:
    query = Query(
        filters=(Filter("kind", "eq", INDEX_KIND),),
        order_by=(Order("createdAt", descending=True),),
        limit=limit,
    )
    return fill_page(target, query, partition_key=customer_key(customer_id)).items


def subscribe(
    documents: DocumentStore,
    customer_id: str,
    product_id: str,
    sku: str,
    *,
    now: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Subscribe the customer to `sku` of `product_id`; returns the subscription and
    whether it is new (a repeat answers the existing one and changes nothing).

    Raises ProductNotFound (no such active product), UnknownSku, TooManySubscriptions.
    """
    product = CatalogService(documents).get_product(product_id)
    if product.document["status"] != "active":
        raise ProductNotFound(f"product {product_id!r} does not exist")
    if sku not in {v["sku"] for v in product.document["variants"]}:
        raise UnknownSku(f"product {product_id!r} has no SKU {sku!r}")
    target = container(documents)
    key = customer_key(customer_id)
    existing = read_or_none(target, index_id(sku), key)
    created = False
    if existing is None:
        if len(_own_subscriptions(target, customer_id, MAX_SUBSCRIPTIONS)) >= MAX_SUBSCRIPTIONS:
            raise TooManySubscriptions(
                f"at most {MAX_SUBSCRIPTIONS} back-in-stock subscriptions at a time"
            )
        index: Document = {
            "id": index_id(sku),
            "key": key,
            "kind": INDEX_KIND,
            "subscriptionId": new_id("bis_"),
            "customerId": customer_id,
            "productId": product_id,
            "sku": sku,
            "createdAt": timestamp(now or utcnow()),
        }
        try:
            existing = target.create(index)
            created = True
        except Conflict:
            existing = target.read(index_id(sku), key)
    _ensure_subscriber(target, existing)
    return public(existing), created


def _ensure_subscriber(target: Container, index: Document) -> None:
    """Write the SKU-side document of a subscription (a retried subscribe completes a
    half-written one; a notified one still waiting to be ended is replaced)."""
    subscriber: Document = {
        "id": index["customerId"],
        "key": sku_key(index["sku"]),
        "kind": SUBSCRIPTION_KIND,
        "subscriptionId": index["subscriptionId"],
        "customerId": index["customerId"],
        "productId": index["productId"],
        "sku": index["sku"],
        "createdAt": index["createdAt"],
    }
    for _ in range(3):
        current = read_or_none(target, subscriber["id"], subscriber["key"])
        try:
            if current is None:
                target.create(subscriber)
            elif current.get("subscriptionId") != index["subscriptionId"]:
                target.replace(subscriber, if_match=current["_etag"])
            return
        except (Conflict, PreconditionFailed, NotFound):
            continue
    raise PreconditionFailed("the subscription kept changing; try again")


def list_subscriptions(documents: DocumentStore, customer_id: str) -> list[dict[str, Any]]:
    """The customer's open subscriptions, newest first."""
    return [public(d) for d in _own_subscriptions(container(documents), customer_id, 1000)]


def unsubscribe(documents: DocumentStore, customer_id: str, sku: str) -> None:
    """End the customer's subscription to `sku`; SubscriptionNotFound when there is none."""
    target = container(documents)
    index = read_or_none(target, index_id(sku), customer_key(customer_id))
    if index is None:
        raise SubscriptionNotFound(f"no back-in-stock subscription for SKU {sku!r}")
    subscriber = read_or_none(target, customer_id, sku_key(sku))
    if subscriber is not None and subscriber.get("subscriptionId") == index["subscriptionId"]:
        _delete(target, subscriber)
    _delete(target, index)


def _delete(target: Container, document: Document) -> None:
    # Already gone, or replaced by a newer subscription that must stay.
    with contextlib.suppress(NotFound, PreconditionFailed):
        target.delete(document["id"], document["key"], if_match=document.get("_etag"))


# --- the restock ----------------------------------------------------------------------------


def is_restock(event: Event) -> bool:
    """Whether an `inventory.changed` event takes its SKU from 0 available to more."""
    before = event.data.get("availableBefore")
    after = event.data.get("available")
    return (
        event.type == "inventory.changed"
        and isinstance(before, int)
        and isinstance(after, int)
        and before == 0
        and after > 0
    )


def _claim(target: Container, subscriber: Document, event_id: str, at: str) -> Document | None:
    try:
        return target.patch(
            subscriber["id"],
            subscriber["key"],
            [PatchOp("set", "firedBy", event_id), PatchOp("set", "firedAt", at)],
            condition=[Filter("firedBy", "exists", False)],
        )
    except NotFound:
        return None  # unsubscribed meanwhile
    except PreconditionFailed:
        current = read_or_none(target, subscriber["id"], subscriber["key"])
        return current if current is not None and current.get("firedBy") == event_id else None


def _product_data(documents: DocumentStore, product_id: str, sku: str) -> dict[str, Any] | None:
    try:
        product = CatalogService(documents).get_product(product_id).document
    except ProductNotFound:
        return None
    if product.get("status") != "active":
        return None
    variant = next((v for v in product["variants"] if v["sku"] == sku), None)
    if variant is None:
        return None
    return {
        "productId": product_id,
        "sku": sku,
        "name": product["title"],
        "price": variant["price"]["amount"],
        "currency": variant["price"]["currency"],
    }


def _notify(services: Services, event: Event, subscribers: Sequence[Document]) -> int:
    target = container(services.documents)
    by_product: dict[str, list[Document]] = {}
    for subscriber in subscribers:
        by_product.setdefault(subscriber["productId"], []).append(subscriber)
    base = services.settings.public_base_url.rstrip("/")
    sent = 0
    for product_id, group in by_product.items():
        data = _product_data(services.documents, product_id, group[0]["sku"])
        if data is not None:
            data["url"] = f"{base}/products/{product_id}"
            outcome = send_bulk(
                services,
                source_id=f"{TEMPLATE}:{event.id}",
                template=TEMPLATE,
                customer_ids=[s["customerId"] for s in group],
                data=data,
                source_type=event.type,
            )
            if outcome.pending:
                # Claimed and recorded: the redelivery sends what is left, once.
                raise NotificationsPending(f"back in stock {event.id}: {outcome}")
            sent += len(group)
        # A product gone or no longer for sale ends its subscriptions without a message.
        for subscriber in group:
            _end(target, subscriber)
    return sent


def _end(target: Container, subscriber: Document) -> None:
    index = read_or_none(
        target, index_id(subscriber["sku"]), customer_key(subscriber["customerId"])
    )
    if index is not None and index.get("subscriptionId") == subscriber["subscriptionId"]:
        _delete(target, index)
    _delete(target, subscriber)


def handle_restock(services: Services, event: Event) -> int:
    """Notify the subscribers of a restocked SKU, once each, and end their subscriptions.
    Returns how many were notified (0 for an event that is not a restock)."""
    if not is_restock(event):
        return 0
    sku = str(event.data.get("sku") or event.subject)
    target = container(services.documents)
    key = sku_key(sku)
    notified = 0
    # A redelivery first finishes what this event already claimed.
    mine = every(
        target, Query(filters=(Filter("firedBy", "eq", event.id),), limit=PAGE), partition_key=key
    )
    if mine:
        notified += _notify(services, event, mine)
    happened = timestamp(event.time)
    waiting = Query(
        filters=(
            Filter("kind", "eq", SUBSCRIPTION_KIND),
            Filter("firedBy", "exists", False),
            Filter("createdAt", "le", happened),
        ),
        limit=PAGE,
    )
    while True:
        page = fill_page(target, waiting, partition_key=key)
        if not page.items:
            break
        at = timestamp(utcnow())
        claimed = [c for c in (_claim(target, s, event.id, at) for s in page.items) if c]
        if claimed:
            notified += _notify(services, event, claimed)
    logger.info("restock of %s (%s): %d subscriber(s) notified", sku, event.id, notified)
    return notified
