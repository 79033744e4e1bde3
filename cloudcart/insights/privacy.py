"""The insights area's part in a customer's data export and erasure, and in the
personalisation opt-out.

`register()` (called by the app factory) adds:

- the export section `history`: every view entry of the customer's browsing history
  (newest first, whatever became of the product) and the raw storefront events kept for
  analytics;
- the export section `events`: every document of the customer's partition of the `events`
  container as stored (the section the customers area exported before insights owned it);
- the erasure step `history`: deletes every document of the customer's partition of the
  `events` container, then stamps the partition so a batch accepted before the erasure
  records nothing when its message arrives late;
- the export section and erasure step `recommendations`: the customer's purchase profile
  (what they bought, how often, when last); co-purchase counts and popularity are
  aggregates that name nobody and stay;
- the personalisation hook `history`: when the customer turns personalization off, their
  recorded history is deleted (`cloudcart.customers.service`).
"""

from __future__ import annotations

from typing import Any

from cloudcart.core.ports.documents import DocumentStore, strip_system
from cloudcart.customers.privacy import (
    PrivacyContext,
    register_erasure_contributor,
    register_export_contributor,
)
from cloudcart.customers.service import register_personalization_withdrawn
from cloudcart.insights import history, recommendations

SECTION = "history"


def export(ctx: PrivacyContext) -> dict[str, Any]:
    """What the browsing history holds about the customer."""
    return history.export_history(ctx.documents, ctx.customer_id)


def export_stored(ctx: PrivacyContext) -> list[dict[str, Any]]:
    """Every document of the customer's `events` partition, as stored."""
    stored = history.partition_documents(ctx.documents, ctx.customer_id)
    return [strip_system(d) for d in stored if d["id"] != history.STATE_ID]


def erase(ctx: PrivacyContext) -> None:
    """Delete the customer's history and storefront events (idempotent)."""
    history.erase_history(ctx.documents, ctx.customer_id)


def export_recommendations(ctx: PrivacyContext) -> dict[str, Any]:
    """The customer's purchase profile."""
    return recommendations.export_customer(ctx.documents, ctx.customer_id)


def erase_recommendations(ctx: PrivacyContext) -> None:
    """Delete the customer's purchase profile (idempotent)."""
    recommendations.erase_customer(ctx.documents, ctx.customer_id)


def personalization_withdrawn(documents: DocumentStore, customer_id: str) -> None:
    """Delete the history of a customer who turned personalisation off, and the views their
    recommendations learnt from it (idempotent)."""
    history.clear_history(documents, customer_id)
    recommendations.forget_views(documents, customer_id)


def register() -> None:
    """Add the `history` export section, erasure step and personalisation hook."""
    register_export_contributor(SECTION, export)
    register_export_contributor("events", export_stored)
    register_export_contributor("recommendations", export_recommendations)
    register_erasure_contributor("recommendations", erase_recommendations)
    register_erasure_contributor(SECTION, erase)
    register_personalization_withdrawn(SECTION, personalization_withdrawn)
