"""`POST /api/admin/import/products` (Admin role), and the streaming NDJSON driver every
bulk-import route uses (`import_ndjson`).

The body is read as it arrives (`request.stream()`), cut into lines and imported
a chunk at a time in a worker thread, so memory stays at one chunk whatever the size
of the file. The answer is always 200 with the counts and the rejected lines, unless the
body is not NDJSON at all (400 problem+json). A store that stops answering mid-way ends the
request with 503; what was imported stays, and running the same file again resumes
(imports are idempotent).

Mount: `app.include_router(cloudcart.catalog.import_routes.router)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.responses import problem_responses
from cloudcart.catalog.importer import (
    MAX_LINE_BYTES,
    MAX_REJECTED,
    ChunkHandler,
    NdjsonImport,
    NotNdjson,
    ProductImporter,
)
from cloudcart.composition import Services
from cloudcart.core.audit import record_audit
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import Admin

NDJSON_MEDIA_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
        # What generic clients send for a JSON-ish or unlabelled file.
        "application/json",
        "text/plain",
        "application/octet-stream",
    }
)
"""Content types an import accepts (a missing one too); anything else is refused."""

router = APIRouter(prefix="/api/admin/import", tags=["admin: import"])


class RejectedLine(BaseModel):
    """A line that was not imported."""

    line: int = Field(description="1-based line number in the body (blank lines count).")
    error: str = Field(description="Why, naming the field: `variants.0.price.amount: ...`.")


class ImportResult(BaseModel):
    """The outcome of a bulk import. A line identical to what is stored counts in neither
    `imported` nor `updated`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    imported: int = Field(description="Lines that created something.")
    updated: int = Field(description="Lines that changed something that existed.")
    rejected: list[RejectedLine] = Field(
        description=f"The first {MAX_REJECTED} rejected lines, in order."
    )
    rejected_count: int = Field(description="Every rejected line, listed or not.")


NDJSON_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        # An empty body is an empty file: it imports nothing (200), so it is not required.
        "required": False,
        "description": (
            "NDJSON: one JSON object per line (UTF-8, lines up to "
            f"{MAX_LINE_BYTES} bytes; blank lines are ignored). A body whose first line is "
            "not a JSON object is refused (400 `not-ndjson`); an empty body imports nothing."
        ),
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            # Also declared because generic clients (and generated SDKs) can send text.
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
"""OpenAPI request body of an NDJSON import route (the route reads the stream itself)."""

IMPORT_RESPONSES = problem_responses(400, 401, 403, 503)
"""Problems an import route answers with."""


def check_content_type(request: Request) -> None:
    """Raise NotNdjson when the request's Content-Type is clearly not NDJSON."""
    header = request.headers.get("content-type")
    if header is None:
        return
    media_type = header.split(";", 1)[0].strip().lower()
    if media_type and media_type not in NDJSON_MEDIA_TYPES:
        raise NotNdjson(
            f"Content-Type {media_type!r} is not NDJSON; send application/x-ndjson "
            "(one JSON object per line)"
        )


async def import_ndjson(request: Request, handler: ChunkHandler) -> dict[str, Any]:
    """Stream the request body through `handler`, chunk by chunk; the summary as the API
    answers it. Raises NotNdjson (400) for a body that is not NDJSON."""
    check_content_type(request)
    run = NdjsonImport(handler)
    async for data in request.stream():
        for chunk in run.feed(data):
            # The store is synchronous; a worker thread keeps the event loop serving.
            await run_in_threadpool(run.process, chunk)
    for chunk in run.finish():
        await run_in_threadpool(run.process, chunk)
    return run.summary.to_dict()


def audit_import(services: Services, caller: Caller, action: str, result: dict[str, Any]) -> None:
    """Leave the import's counts in the audit trail."""
    record_audit(
        services.documents,
        actor_id=caller.customer_id,
        action=action,
        target={
            "imported": result["imported"],
            "updated": result["updated"],
            "rejected": result["rejectedCount"],
        },
        correlation_id=correlation_id.get(),
    )


@router.post(
    "/products",
    response_model=ImportResult,
    responses=IMPORT_RESPONSES,
    summary="Import products (NDJSON)",
    openapi_extra=NDJSON_REQUEST_BODY,
)
async def import_products(request: Request, services: ServicesDep, caller: Admin) -> Any:
    """Create or update products from NDJSON, one `POST /api/admin/products` body per line,
    optionally with `id` and `stock` (`{sku: units available}`).

    Each line goes through the catalog service like the admin API (events, SKU claims,
    search). A line without `id` updates the product that owns its SKUs, or creates
    `prd_<first SKU>`. A line identical to the stored product changes and publishes
    nothing. Bad lines are listed in `rejected` and never stop the others.
    """
    importer = ProductImporter(services.documents, correlation_id=correlation_id.get())
    result = await import_ndjson(request, importer.import_records)
    await run_in_threadpool(audit_import, services, caller, "import.products", result)
    return result
