"""Bulk import of products from NDJSON, and the NDJSON reading every bulk import shares.

**Products.** One product per line, in the shape of `POST /api/admin/products`
(`ProductIn`), optionally with `"id"` and `"stock": {sku: units}`. Every line goes through
`CatalogService` exactly like the admin API, so SKU claims, `product.*` and
`inventory.changed` events and search indexing behave the same. Which product a line is:

- its `id` when it has one;
- otherwise the product that owns its SKUs (a line whose SKUs belong to several products
  is rejected: give it an `id`);
- otherwise a new product `prd_<first SKU>`.

A product that exists is updated only when its content differs from the line (title, slug,
brand, category, description, attributes, variants in order, status; media are kept), and a
SKU's stock is set only when its available units differ, so re-importing a file changes
nothing and publishes nothing. `stock` units are units *available to order now*, like
`PUT /api/admin/inventory/{sku}` with `available`: reservations are left as they are.

**NDJSON.** `LineSplitter` cuts a byte stream into numbered lines, never holding more than
one line (and never more than `MAX_LINE_BYTES` of it: a longer line is reported and skipped
without being buffered). `NdjsonImport` gathers lines into chunks (`CHUNK_LINES`, at most
about `CHUNK_BYTES`), parses them and hands each chunk's JSON objects to a `ChunkHandler`
(an importer may group a chunk's writes; `one_by_one` adapts a per-line handler), and
keeps an `ImportSummary`. A bad line is recorded and the rest go on; only a body whose
first non-blank line is not a JSON object is refused as a whole (`NotNdjson`, 400), before
anything was written. The HTTP routes and the CLI drive the same objects
(`cloudcart.catalog.import_routes`, `cloudcart.local.cli_import`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, Literal

from pydantic import Field, StrictInt, StringConstraints, ValidationError, model_validator

from cloudcart import inventory
from cloudcart.catalog.documents import ProductDocument
from cloudcart.catalog.models import ProductIn
from cloudcart.catalog.service import (
    CATEGORIES_PARTITION,
    CatalogService,
    ProductNotFound,
    SkuTaken,
    StaleProduct,
    StoredProduct,
    UnknownCategory,
    public_product,
    slugify,
    variant_documents,
)
from cloudcart.core.errors import Conflict, DomainError
from cloudcart.core.ports.documents import DocumentStore, bulk
from cloudcart.inventory import SkuNotFound, StockBusy

MAX_LINE_BYTES = 1024 * 1024
"""The longest line accepted (1 MiB, newline excluded); a longer one is rejected unread."""

MAX_REJECTED = 1000
"""Rejected lines listed in a summary; `rejectedCount` counts them all."""

CHUNK_LINES = 500
"""Most lines handed to a handler at once: importers group a chunk's writes by partition
(fewer, larger transactions), and the HTTP route hops to a worker thread once per chunk."""

CHUNK_BYTES = 4 * 1024 * 1024
"""A chunk ends early once its lines hold this many bytes, so memory stays bounded."""

BULK_LINES = 100
"""Lines an importer hands the store to commit together (`bulk`): enough to spread the cost
of a commit, few enough that other writers of the embedded store wait well under a second."""

READ_BLOCK_BYTES = 64 * 1024
"""Bytes read from a file per call by `import_stream`."""

MAX_ERROR_CHARS = 500
"""An error message longer than this is cut: a summary must stay small."""

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
"""Product ids the admin API's paths accept."""

Outcome = Literal["imported", "updated", "unchanged"]
"""What a line did: created something, changed something, or nothing (identical)."""

LineHandler = Callable[[dict[str, Any]], Outcome]
"""Imports one parsed line; raises `LineRejected`, a pydantic `ValidationError` or a
`DomainError` to reject it."""


class NotNdjson(DomainError):
    """The body is not NDJSON at all (wrong content type, or the first line is not a JSON
    object); nothing was imported."""

    status = 400
    title = "Bad Request"
    problem_type = "not-ndjson"


class LineRejected(Exception):
    """One line cannot be imported; the message says why and names the field."""


LineResult = Outcome | LineRejected
"""What importing one line came to."""

ChunkHandler = Callable[[Sequence[dict[str, Any]]], list[LineResult]]
"""Imports the parsed lines of one chunk, in order; one result per line. Raises only for
errors that are not a line's fault (they end the import)."""


# --- reading lines ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawLine:
    """One non-blank line of the input: its 1-based number and bytes (None when the line
    was longer than the limit and was skipped unread)."""

    number: int
    data: bytes | None


class LineSplitter:
    """Cuts a byte stream fed in pieces into `RawLine`s; blank lines are counted but not
    returned. `\\r\\n` line ends are accepted."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._too_long = False
        self._number = 0

    def feed(self, data: bytes) -> list[RawLine]:
        """The lines that `data` completes."""
        lines: list[RawLine] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end == -1:
                self._keep(data[start:])
                return lines
            self._keep(data[start:end])
            self._emit(lines)
            start = end + 1

    def finish(self) -> list[RawLine]:
        """The last line when the stream did not end with a newline."""
        lines: list[RawLine] = []
        if self._buffer or self._too_long:
            self._emit(lines)
        return lines

    def _keep(self, piece: bytes) -> None:
        if self._too_long:
            return
        if len(self._buffer) + len(piece) > self.max_line_bytes + 1:  # +1: a trailing \r
            # Drop what was collected: the line is rejected without being held in memory.
            self._too_long = True
            self._buffer.clear()
            return
        self._buffer += piece

    def _emit(self, lines: list[RawLine]) -> None:
        self._number += 1
        if self._too_long:
            lines.append(RawLine(self._number, None))
        else:
            data = bytes(self._buffer[:-1] if self._buffer.endswith(b"\r") else self._buffer)
            if len(data) > self.max_line_bytes:
                lines.append(RawLine(self._number, None))
            elif data.strip():
                lines.append(RawLine(self._number, data))
        self._buffer.clear()
        self._too_long = False


# --- the summary --------------------------------------------------------------------------


@dataclass
class ImportSummary:
    """Counts of one import and its first `max_rejected` rejected lines."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_count: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    max_rejected: int = MAX_REJECTED

    def count(self, outcome: Outcome) -> None:
        """Count one imported line."""
        if outcome == "imported":
            self.imported += 1
        elif outcome == "updated":
            self.updated += 1
        else:
            self.unchanged += 1

    def reject(self, line: int, error: str) -> None:
        """Record a rejected line (listed while fewer than `max_rejected` are)."""
        self.rejected_count += 1
        if len(self.rejected) < self.max_rejected:
            if len(error) > MAX_ERROR_CHARS:
                error = error[: MAX_ERROR_CHARS - 1] + "…"
            self.rejected.append({"line": line, "error": error})

    def to_dict(self) -> dict[str, Any]:
        """The API's answer: `imported`, `updated`, `rejected` (the first ones) and
        `rejectedCount` (all of them). Identical lines count in neither number."""
        return {
            "imported": self.imported,
            "updated": self.updated,
            "rejected": list(self.rejected),
            "rejectedCount": self.rejected_count,
        }


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """`field.path: message` for each problem (the first `limit`), as one line of text."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def rejection(exc: Exception) -> LineRejected | None:
    """The rejection an error of one line amounts to, or None for an error that is not the
    line's fault (a store outage, a bug): those end the import."""
    if isinstance(exc, LineRejected):
        return exc
    if isinstance(exc, ValidationError):
        return LineRejected(describe_validation_error(exc))
    if isinstance(exc, DomainError):
        return LineRejected(str(exc))
    return None


def one_by_one(handler: LineHandler) -> ChunkHandler:
    """A chunk handler that imports each record of a chunk with `handler`, in order."""

    def handle(records: Sequence[dict[str, Any]]) -> list[LineResult]:
        results: list[LineResult] = []
        for record in records:
            try:
                results.append(handler(record))
            except Exception as exc:
                rejected = rejection(exc)
                if rejected is None:
                    raise
                results.append(rejected)
        return results

    return handle


class NdjsonImport:
    """One NDJSON import: cuts the bytes fed to it into chunks of lines, and imports each
    chunk through `handler`, keeping the summary.

    Drive it with `feed` / `finish`, which return the chunks that are ready, and `process`
    each chunk, in order (never two at once). A chunk holds up to `chunk_lines` lines and
    about `chunk_bytes` bytes. Raises `NotNdjson` when the first non-blank line is not a
    JSON object.
    """

    def __init__(
        self,
        handler: ChunkHandler,
        *,
        max_rejected: int = MAX_REJECTED,
        chunk_lines: int = CHUNK_LINES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.handler = handler
        self.summary = ImportSummary(max_rejected=max_rejected)
        self.chunk_lines = chunk_lines
        self.chunk_bytes = chunk_bytes
        self._splitter = LineSplitter()
        self._pending: list[RawLine] = []
        self._pending_bytes = 0
        self._started = False

    def feed(self, data: bytes) -> list[list[RawLine]]:
        """Take the next bytes of the body; the chunks that are now complete."""
        return self._collect(self._splitter.feed(data), final=False)

    def finish(self) -> list[list[RawLine]]:
        """The body ended: the chunks left."""
        return self._collect(self._splitter.finish(), final=True)

    def _collect(self, lines: list[RawLine], *, final: bool) -> list[list[RawLine]]:
        chunks: list[list[RawLine]] = []
        for line in lines:
            self._pending.append(line)
            self._pending_bytes += len(line.data or b"")
            if len(self._pending) >= self.chunk_lines or self._pending_bytes >= self.chunk_bytes:
                chunks.append(self._pending)
                self._pending, self._pending_bytes = [], 0
        if final and self._pending:
            chunks.append(self._pending)
            self._pending, self._pending_bytes = [], 0
        return chunks

    def process(self, chunk: Sequence[RawLine]) -> None:
        """Parse and import one chunk; each bad line is recorded as rejected, in order."""
        outcomes: list[tuple[int, LineResult | None]] = []
        records: list[dict[str, Any]] = []
        for line in chunk:
            try:
                record = self._parse(line)
            except LineRejected as exc:
                outcomes.append((line.number, exc))
                continue
            outcomes.append((line.number, None))
            records.append(record)
        results = iter(self.handler(records) if records else [])
        for number, outcome in outcomes:
            result = outcome if outcome is not None else next(results, None)
            if result is None:
                raise RuntimeError("an import handler must answer once per record")
            if isinstance(result, LineRejected):
                self.summary.reject(number, str(result))
            else:
                self.summary.count(result)

    def _parse(self, line: RawLine) -> dict[str, Any]:
        """The line's JSON object; LineRejected when it is not one (NotNdjson for the first
        line of the body)."""
        first = not self._started
        self._started = True
        error: str
        if line.data is None:
            error = f"the line is longer than {MAX_LINE_BYTES} bytes"
        else:
            try:
                value = json.loads(line.data.decode("utf-8"))
            except UnicodeDecodeError:
                error = "the line is not UTF-8 text"
            except ValueError as exc:
                error = f"the line is not JSON: {exc}"
            else:
                if isinstance(value, dict):
                    return value
                error = f"the line is a JSON {_json_kind(value)}, not an object"
        if first:
            # Nothing was imported yet, so refusing the body as a whole loses nothing; it
            # is most likely a JSON array, CSV or a compressed file rather than NDJSON.
            raise NotNdjson(
                f"the body is not NDJSON (one JSON object per line): line {line.number}: {error}"
            )
        raise LineRejected(error)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def import_stream(
    stream: IO[bytes],
    run: NdjsonImport,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import a binary stream (a file) through `run`, chunk by chunk.

    `on_progress` is called with the bytes read since its last call.
    """
    while block := stream.read(READ_BLOCK_BYTES):
        for chunk in run.feed(block):
            run.process(chunk)
        if on_progress is not None:
            on_progress(len(block))
    for chunk in run.finish():
        run.process(chunk)
    return run.summary


# --- products -----------------------------------------------------------------------------


class ProductLine(ProductIn):
    """A product line of an import: a `ProductIn` with an optional `id` and `stock`."""

    id: Annotated[str, StringConstraints(pattern=PRODUCT_ID_PATTERN)] | None = Field(
        None, description="The product's id; see the module docs for lines without one."
    )
    stock: dict[str, Annotated[StrictInt, Field(ge=0, le=10**9)]] | None = Field(
        None, description="Units available to order now, per SKU of this product."
    )

    @model_validator(mode="after")
    def _stock_of_own_skus(self) -> ProductLine:
        if self.id == CATEGORIES_PARTITION:
            raise ValueError(f"id {CATEGORIES_PARTITION!r} is reserved")
        skus = {v.sku for v in self.variants}
        for sku in self.stock or {}:
            if sku not in skus:
                raise ValueError(f"stock names SKU {sku!r}, which is not a variant of this line")
        return self


_NOT_FROM_A_LINE = frozenset({"id", "productId", "media", "minPrice", "createdAt", "updatedAt"})


def _content(document: ProductDocument) -> dict[str, Any]:
    """What a product line decides, from a stored product (media, dates: not)."""
    return {k: v for k, v in public_product(document).items() if k not in _NOT_FROM_A_LINE}


def _line_content(line: ProductIn) -> dict[str, Any]:
    """The same fields as `_content`, as the service would store this line."""
    return {
        "title": line.title,
        "slug": line.slug or slugify(line.title),
        "brand": line.brand,
        "categoryId": line.category_id,
        "description": line.description,
        "attributes": line.attributes.to_json(),
        "variants": variant_documents(line.variants),
        "status": line.status.value,
    }


def derived_product_id(first_sku: str) -> str:
    """The id of a new product imported without one: `prd_<first SKU>`."""
    return f"prd_{first_sku}"


class ProductImporter:
    """Creates or updates products, one NDJSON line at a time, through `CatalogService`."""

    def __init__(self, store: DocumentStore, *, correlation_id: str | None = None) -> None:
        self.store = store
        self.catalog = CatalogService(store, correlation_id=correlation_id)

    def import_records(self, records: Sequence[dict[str, Any]]) -> list[LineResult]:
        """Import the lines of one chunk, one after the other (a `ChunkHandler`): products
        are each in their own partition, so there is nothing to group, but the store may
        commit `BULK_LINES` lines at a time (`bulk`)."""
        results: list[LineResult] = []
        for start in range(0, len(records), BULK_LINES):
            with bulk(self.store):
                results.extend(one_by_one(self.import_record)(records[start : start + BULK_LINES]))
        return results

    def import_record(self, record: dict[str, Any]) -> Outcome:
        """Import one product line (a `LineHandler`)."""
        line = ProductLine.model_validate(record)
        try:
            if line.id is not None:
                outcome = self._write_product(line.id, line, derived=False)
            else:
                product_id, derived = self._product_of(line)
                outcome = self._write_product(product_id, line, derived=derived)
        except UnknownCategory as exc:
            raise LineRejected(f"categoryId: {exc}") from None
        except SkuTaken as exc:
            raise LineRejected(f"variants: {exc}") from None
        except StaleProduct:
            raise LineRejected(
                "the product changed while it was imported; import the line again"
            ) from None
        if outcome == "imported":
            return outcome  # created with its stock
        stock_changed = self._set_stock(line.stock or {})
        if outcome == "unchanged" and stock_changed:
            return "updated"
        return outcome

    def _product_of(self, line: ProductLine) -> tuple[str, bool]:
        """The product a line without an id is: the owner of its SKUs, else a derived id
        (then True)."""
        owners: dict[str, None] = {}
        for variant in line.variants:
            try:
                owners[self.catalog.get_inventory(variant.sku).product_id] = None
            except SkuNotFound:
                continue
        if len(owners) > 1:
            raise LineRejected(
                "variants: the SKUs belong to several products "
                f"({', '.join(owners)}); give the line the id of the one to update"
            )
        if owners:
            return next(iter(owners)), False
        return derived_product_id(line.variants[0].sku), True

    def _write_product(self, product_id: str, line: ProductLine, *, derived: bool) -> Outcome:
        try:
            current: StoredProduct | None = self.catalog.get_product(product_id)
        except ProductNotFound:
            current = None
        if current is not None and derived:
            # No product owns the line's SKUs, so the product under the derived id is
            # another one (its variants were changed since): never replace it.
            raise LineRejected(
                f"id: no product owns these SKUs and {product_id!r} is a product with other "
                "SKUs; give the line an id"
            )
        if current is None:
            try:
                self.catalog.create_product(line, product_id=product_id, stock=line.stock)
            except Conflict:
                # Created meanwhile by a concurrent import: the next run compares with it.
                raise LineRejected(
                    f"id: product {product_id!r} was created while the line was imported; "
                    "import the line again"
                ) from None
            return "imported"
        if _content(current.document) == _line_content(line):
            return "unchanged"
        self.catalog.update_product(product_id, line, if_match=current.etag)
        return "updated"

    def _set_stock(self, stock: dict[str, int]) -> bool:
        # The line's stock names only its own SKUs (`ProductLine`), which the product this
        # line just wrote holds: the inventory is asked directly, without the catalog's
        # check that a product owns each SKU (`CatalogService.set_inventory`).
        changed = False
        for sku, units in stock.items():
            try:
                level = inventory.stock_level(self.store, sku)
                if level is None:
                    raise SkuNotFound(f"SKU {sku!r} belongs to no product")
                if level.available == units:
                    continue
                inventory.set_stock(
                    self.store, sku, available=units, correlation_id=self.catalog.correlation_id
                )
            except (SkuNotFound, StockBusy) as exc:
                raise LineRejected(
                    f"stock.{sku}: the product was saved; stock not set: {exc}"
                ) from None
            changed = True
        return changed


__all__ = [
    "CHUNK_BYTES",
    "CHUNK_LINES",
    "MAX_LINE_BYTES",
    "MAX_REJECTED",
    "ChunkHandler",
    "ImportSummary",
    "LineHandler",
    "LineRejected",
    "LineResult",
    "LineSplitter",
    "NdjsonImport",
    "NotNdjson",
    "Outcome",
    "ProductImporter",
    "ProductLine",
    "RawLine",
    "derived_product_id",
    "describe_validation_error",
    "import_stream",
    "one_by_one",
    "rejection",
]
