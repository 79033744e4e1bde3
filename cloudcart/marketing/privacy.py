"""The marketing area's part in a customer's export and erasure, and in the
personalisation opt-out.

`register()` (called by the app factory) adds:

- the export section `marketing`: the customer's back-in-stock subscriptions, their
  abandoned-cart and price-drop records and the products they viewed recently (every
  document of the `marketing` container that names them);
- the erasure step `marketing`: deletes all of those, the SKU-side subscription documents
  included;
- the personalisation hook `marketing`: turning personalization off deletes the
  recent-viewer entries, so no price drop is sent from earlier views.
"""

from __future__ import annotations

import contextlib
from typing import Any

from cloudcart.core.errors import NotFound
from cloudcart.core.ports.documents import DocumentStore, Filter, Query, every
from cloudcart.customers.privacy import (
    PrivacyContext,
    register_erasure_contributor,
    register_export_contributor,
)
from cloudcart.customers.service import register_personalization_withdrawn
from cloudcart.marketing import back_in_stock, price_drop
from cloudcart.marketing.store import container, customer_key, without_system

SECTION = "marketing"


def _documents_of(documents: DocumentStore, customer_id: str) -> list[dict[str, Any]]:
    # Cross-partition: a customer's subscriptions sit in SKU partitions and their views in
    # product partitions. Export and erasure are rare.
    query = Query(filters=(Filter("customerId", "eq", customer_id),), limit=500)
    return every(container(documents), query)


def export(ctx: PrivacyContext) -> dict[str, Any]:
    """What the marketing area holds about the customer."""
    found = _documents_of(ctx.documents, ctx.customer_id)
    own = [d for d in found if d["key"] == customer_key(ctx.customer_id)]
    return {
        "backInStock": [
            back_in_stock.public(d) for d in own if d.get("kind") == back_in_stock.INDEX_KIND
        ],
        "records": without_system(d for d in own if d.get("kind") != back_in_stock.INDEX_KIND),
        "recentlyViewed": [
            {"productId": d["productId"], "viewedAt": d["viewedAt"]}
            for d in found
            if d.get("kind") == price_drop.VIEWER_KIND
        ],
    }


def erase(ctx: PrivacyContext) -> None:
    """Delete everything the marketing area holds about the customer (idempotent)."""
    target = container(ctx.documents)
    for document in _documents_of(ctx.documents, ctx.customer_id):
        with contextlib.suppress(NotFound):
            target.delete(document["id"], document["key"])


def personalization_withdrawn(documents: DocumentStore, customer_id: str) -> None:
    """Forget which products the customer viewed (idempotent)."""
    price_drop.forget_views(documents, customer_id)


def register() -> None:
    """Add the `marketing` export section, erasure step and personalisation hook."""
    register_export_contributor(SECTION, export)
    register_erasure_contributor(SECTION, erase)
    register_personalization_withdrawn(SECTION, personalization_withdrawn)
