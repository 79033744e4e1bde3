"""`POST /api/admin/import/orders` (Admin role): historical orders from NDJSON.

The body is streamed and imported chunk by chunk like every bulk import
(`cloudcart.catalog.import_routes.import_ndjson`); the rules of an imported order are in
`cloudcart.orders.importer`.

Mount: `app.include_router(cloudcart.orders.import_routes.router)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.catalog.import_routes import (
    IMPORT_RESPONSES,
    NDJSON_REQUEST_BODY,
    ImportResult,
    audit_import,
    import_ndjson,
)
from cloudcart.identity.dependencies import Admin
from cloudcart.orders.importer import OrderImporter

router = APIRouter(prefix="/api/admin/import", tags=["admin: import"])


@router.post(
    "/orders",
    response_model=ImportResult,
    responses=IMPORT_RESPONSES,
    summary="Import historical orders (NDJSON)",
    openapi_extra=NDJSON_REQUEST_BODY,
)
async def import_orders(request: Request, services: ServicesDep, caller: Admin) -> Any:
    """Store past orders, one per line: `{orderId, customerId, placedAt, lines: [{sku,
    quantity, unitPrice?, currency?}], status?, currency?}`; `status` is one of delivered
    (default), cancelled, returned, paid, shipped.

    Each order is written to its customer's orders, marked `imported`, with an
    `order.imported` event; no stock, payment, journal entry or notification is touched.
    Idempotent on `orderId`: an identical line changes nothing, a changed one updates the
    order. Bad lines are listed in `rejected` and never stop the others.
    """
    importer = OrderImporter(
        services.documents,
        default_currency=services.settings.ledger_currency,
        correlation_id=correlation_id.get(),
    )
    result = await import_ndjson(request, importer.import_records)
    await run_in_threadpool(audit_import, services, caller, "import.orders", result)
    return result
