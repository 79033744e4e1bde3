"""The `marketing` container: its partitions, document ids and the small helpers the
triggers share.

Partitions (`key`):

- `sku:<sku>`: the back-in-stock subscriptions of one SKU, one document per customer
  (id = customer id), so a restock reads its subscribers from one partition;
- `cus:<customer id>`: what concerns one customer: their subscriptions (`notify:<sku>`,
  the index `GET /api/me/notify-me` reads), the abandoned-cart and price-drop decisions,
  and when they last placed an order;
- `views:<product id>`: who viewed the product recently (id = customer id), each entry with
  its own `ttl` so it expires 30 days after the view.

Every document carries `customerId`, so a customer's export and erasure find them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cloudcart.core.clock import parse_utc
from cloudcart.core.errors import NotFound
from cloudcart.core.ports.documents import Container, Document, DocumentStore, strip_system
from cloudcart.customers.service import CustomerService
from cloudcart.notifications import templates

CONTAINER = "marketing"


def sku_key(sku: str) -> str:
    """The partition of a SKU's back-in-stock subscriptions."""
    return f"sku:{sku}"


def customer_key(customer_id: str) -> str:
    """The partition of one customer's records."""
    return f"cus:{customer_id}"


def views_key(product_id: str) -> str:
    """The partition of a product's recent viewers."""
    return f"views:{product_id}"


def container(documents: DocumentStore) -> Container:
    """The marketing container."""
    return documents.container(CONTAINER)


def read_or_none(target: Container, id: str, key: str) -> Document | None:
    """A point read that answers None for a missing document."""
    try:
        return target.read(id, key)
    except NotFound:
        return None


def parse_time(value: str) -> datetime:
    """A stored ISO 8601 time as an aware UTC datetime."""
    moment = parse_utc(value)
    if moment is None:
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    return moment


def marketing_allowed(documents: DocumentStore, customer_id: str, template: str) -> bool:
    """Whether the customer gave marketing consent on at least one channel of `template`.

    The notifications area checks consent per channel again when it plans the sends; this
    check keeps a customer without any consent from using up a once-per-period slot."""
    consents: Mapping[str, Any] = (
        CustomerService(documents).get_preferences(customer_id).get("consents", {})
    )
    return any(
        bool(consents.get(channel, {}).get("marketing", {}).get("granted"))
        for channel in templates.TEMPLATES[template].channels
    )


def without_system(documents: Iterable[Document]) -> list[Document]:
    """Documents without their system properties (for exports)."""
    return [strip_system(d) for d in documents]
