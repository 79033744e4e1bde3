"""The partner links' part in a customer's data export: which partner systems received the
customer's data, when, and when they confirmed its deletion (the data-processing record).

`register()` is called by `cloudcart.api.app.create_app`, beside the orders area's."""

from __future__ import annotations

from typing import Any

from cloudcart.customers.privacy import PrivacyContext, register_export_contributor
from cloudcart.integrations.partners.links import processing_records

SECTION = "partnerSystems"


def _export(ctx: PrivacyContext) -> Any:
    return processing_records(ctx.documents, ctx.customer_id)


def register() -> None:
    """Add the `partnerSystems` export section."""
    register_export_contributor(SECTION, _export)
