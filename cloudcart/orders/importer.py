"""Import of historical orders (placed before the shop ran on Cloudcart) from NDJSON.

One order per line::

    {"orderId": "100234", "customerId": "<the customer's id>", "placedAt": "2024-03-01T10:00:00Z",
     "status": "delivered", "currency": "INR",
     "lines": [{"sku": "PHN-1", "quantity": 1, "unitPrice": 2499000, "currency": "INR"}]}

`status` is one of `IMPORTABLE_STATUSES` (default `delivered`); `unitPrice` (minor units) and
`currency` (per line or per order; default the `LEDGER_CURRENCY` setting) are optional.

Each order becomes an order document in the customer's partition of `orders`, beside the
orders placed here, so it shows in `GET /api/orders` like them. It differs in what history
cannot give: `imported: true`, `placedAt` as given (also its `createdAt`, so lists sort by
it), no payment, no shipping address, `capturedAmount` 0, tax 0 (prices are taken as paid,
tax included and not recorded), totals summed over the lines that have a `unitPrice` (a
line without one shows a null price), one history entry (`status` at `placedAt`, reason
`imported`), and `stock: "none"`. Nothing touches stock, payments, the journal or
notifications: no `order.placed`, `order.paid` or `inventory.*` event is written and no
stock is reserved. The one event is `order.imported` (docs/events/order.imported.schema.json),
in the same batch as the document, for consumers such as recommendations.

**Idempotent on `orderId`.** The document keeps `importHash`, a hash of what the line
decides (customer, date, status, currency, lines and the products their SKUs resolve to):

- an identical line changes nothing and writes no event (a line whose SKUs now resolve to
  a product that was imported since is a change);
- a changed line replaces the document (If-Match) and writes `order.imported` again with
  a new event id, the document's `importRevision` counting the versions;
- an `orderId` that names an order placed in this shop is rejected, never overwritten.

Order ids are unique across customers (admin routes find an order by id alone), but each
order lives in its customer's partition, where a batch cannot see other partitions. So an
imported id is first claimed in the partition `~imports` (`{"id": orderId, "owner":
customerId}`): the claim of another customer rejects the line; a claim of the same customer
left by a crash before the order was written is simply used again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from cloudcart.catalog.importer import BULK_LINES, LineRejected, LineResult, Outcome, rejection
from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.catalog.service import CatalogService, ProductNotFound
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import MAX_BATCH_OPERATIONS, timestamp, write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Query,
    bulk,
    every,
)
from cloudcart.inventory import SkuNotFound
from cloudcart.orders.documents import OrderDocument, OrderLineDocument
from cloudcart.orders.events import ImportedLine, OrderImported
from cloudcart.orders.service import ORDER_TYPE, orders_container

ORDER_IMPORTED = "order.imported"
"""The event an imported (or re-imported, changed) order writes."""

IMPORTABLE_STATUSES = ("delivered", "cancelled", "returned", "paid", "shipped")
"""Statuses an imported order may have: where a past order can have ended up."""

ImportableStatus = Literal["delivered", "cancelled", "returned", "paid", "shipped"]

IMPORT_CLAIMS_PARTITION = "~imports"
"""Partition of `orders` holding one claim per imported order id (no customer id starts
with `~`)."""

IMPORT_CLAIM_TYPE = "order-import-claim"

STOCK_NOT_TRACKED: Final = "none"
"""`stock` of an imported order: no stock move is owed (the lifecycle and reconciliation
act only on `reserved`, `sold`, `released` and `restocked`)."""

IMPORTED_REASON = "imported"
"""`reason` of an imported order's history entry (a machine code: erasure keeps it)."""

MAX_LINES = 500
"""Lines of one imported order: far below the 2 MB document limit."""

MAX_QUANTITY = 1_000_000
FUTURE_SKEW = timedelta(minutes=5)
"""How far in the future `placedAt` may be (clock differences); later is refused."""

EARLIEST_PLACED_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""Older dates are refused: they are typos, and some cannot even be converted to UTC."""

_ATTEMPTS = 5
_MAX_GROUP_BYTES = 1_000_000
"""Estimated bytes of the orders and events in one batch (Cosmos DB allows 2 MB)."""
_MAX_CACHED_SKUS = 100_000
_CATALOG_SKU = re.compile(SKU_PATTERN)

ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
"""Imported order ids: what the order routes' paths accept, and valid Cosmos ids."""

CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@|-]{0,127}$"
"""Customer ids as the identity providers issue them (`sub`, or `{oid}.{tid}`)."""

CURRENCY_PATTERN = r"^[A-Z]{3}$"


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]


class ImportedLineIn(_Body):
    """One line of a historical order."""

    sku: Annotated[
        str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S(?:[^\x00-\x1f]*\S)?$")
    ]
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
    unit_price: Annotated[StrictInt, Field(ge=0, le=10**12)] | None = Field(
        None, description="Price of one unit in minor units, as paid."
    )
    currency: Currency | None = None


class ImportedOrderIn(_Body):
    """A historical order, one NDJSON line of `POST /api/admin/import/orders`."""

    order_id: Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    placed_at: AwareDatetime
    lines: list[ImportedLineIn] = Field(min_length=1, max_length=MAX_LINES)
    status: ImportableStatus = "delivered"
    currency: Currency | None = None

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> ImportedOrderIn:
        seen: set[str] = set()
        for line in self.lines:
            if line.sku in seen:
                raise ValueError(f"lines: SKU {line.sku!r} appears twice; merge those lines")
            seen.add(line.sku)
        return self


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class _Plan:
    """One valid line of a chunk on its way to the store."""

    index: int
    order_id: str
    customer_id: str
    content: dict[str, Any]
    digest: str
    current: Document | None = None
    size: int = 0


class OrderImporter:
    """Writes historical orders from NDJSON lines (`import_records`, a chunk at a time).

    One importer serves one import run: it caches which product each SKU belongs to.
    Within a chunk, the claims of new order ids are written in one batch and the orders of
    one customer share batches (an order and its event stay together), which is what makes
    an import fast; when a batch meets a concurrent writer its orders are redone one by one.
    """

    def __init__(
        self,
        store: DocumentStore,
        *,
        default_currency: str,
        correlation_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.default_currency = default_currency
        self.correlation_id = correlation_id
        self.clock = clock
        self._catalog = CatalogService(store, correlation_id=correlation_id)
        self._products: dict[str, tuple[str, str | None] | None] = {}

    @property
    def _orders(self) -> Container:
        return orders_container(self.store)

    def import_records(self, records: Sequence[dict[str, Any]]) -> list[LineResult]:
        """Import the lines of one chunk (a `ChunkHandler`): one result per line, in order.

        When an order id comes back within the chunk, what came before is written first,
        so the later line wins as it would one line at a time.
        """
        results: list[LineResult | None] = [None] * len(records)
        for start in range(0, len(records), BULK_LINES):
            with bulk(self.store):
                self._import_slice(records, start, min(start + BULK_LINES, len(records)), results)
        done = [r for r in results if r is not None]
        assert len(done) == len(records), "every line has a result"
        return done

    def _import_slice(
        self,
        records: Sequence[dict[str, Any]],
        start: int,
        end: int,
        results: list[LineResult | None],
    ) -> None:
        segment: list[_Plan] = []
        order_ids: set[str] = set()
        for index in range(start, end):
            record = records[index]
            try:
                plan = self._plan(index, record)
            except Exception as exc:
                rejected = rejection(exc)
                if rejected is None:
                    raise
                results[index] = rejected
                continue
            if plan.order_id in order_ids:
                self._apply(segment, results)
                segment, order_ids = [], set()
            segment.append(plan)
            order_ids.add(plan.order_id)
        self._apply(segment, results)

    def import_record(self, record: dict[str, Any]) -> Outcome:
        """Import one order line: `imported`, `updated` or `unchanged`.

        Raises LineRejected for a line that cannot be imported.
        """
        [result] = self.import_records([record])
        if isinstance(result, LineRejected):
            raise result
        return result

    # --- one chunk ----------------------------------------------------------------------

    def _plan(self, index: int, record: dict[str, Any]) -> _Plan:
        order = ImportedOrderIn.model_validate(record)
        if order.placed_at > self.clock() + FUTURE_SKEW:
            raise LineRejected("placedAt: the order date is in the future")
        if order.placed_at < EARLIEST_PLACED_AT:
            raise LineRejected("placedAt: the order date is before 1970")
        content = self._content(order)
        canonical = _canonical(content)
        # The stored order and its event each repeat the content with a few more fields.
        size = 3 * len(canonical) + 2048
        digest = hashlib.sha256(canonical).hexdigest()
        return _Plan(index, order.order_id, order.customer_id, content, digest, size=size)

    def _apply(self, segment: list[_Plan], results: list[LineResult | None]) -> None:
        """Write a segment of a chunk (its order ids are distinct)."""
        pending: list[_Plan] = []
        # Every imported order has a claim, so an id without one is new: only ids already
        # claimed need their order read (one query for the segment's claims).
        claimed = self._claimed(plan.order_id for plan in segment)
        for plan in segment:
            plan.current = None
            if plan.order_id in claimed:
                with suppress(NotFound):
                    plan.current = self._orders.read(plan.order_id, plan.customer_id)
            try:
                if self._unchanged(plan):
                    results[plan.index] = "unchanged"
                    continue
            except LineRejected as exc:
                results[plan.index] = exc
                continue
            pending.append(plan)
        self._claim_all([p for p in pending if p.current is None], results)
        by_customer: dict[str, list[_Plan]] = {}
        for plan in pending:
            if results[plan.index] is None:
                by_customer.setdefault(plan.customer_id, []).append(plan)
        for customer_id, plans in by_customer.items():
            for group in _batches(plans):
                self._write_group(customer_id, group, results)

    def _write_group(
        self, customer_id: str, group: list[_Plan], results: list[LineResult | None]
    ) -> None:
        try:
            write_with_events(
                self._orders,
                customer_id,
                [self._operation(plan) for plan in group],
                [self._event(plan.content) for plan in group],
            )
        except BatchFailed as exc:
            if not isinstance(exc.cause, Conflict | PreconditionFailed | NotFound):
                raise
            # A concurrent import wrote one of these orders: nothing of the batch was
            # written, so each order is read and decided again on its own.
            for plan in group:
                try:
                    results[plan.index] = self._import_one(plan)
                except LineRejected as rejected:
                    results[plan.index] = rejected
            return
        for plan in group:
            results[plan.index] = "imported" if plan.current is None else "updated"

    def _import_one(self, plan: _Plan) -> Outcome:
        """Write one order alone, reading it again after each lost race."""
        for _ in range(_ATTEMPTS):
            try:
                plan.current = self._orders.read(plan.order_id, plan.customer_id)
            except NotFound:
                plan.current = None
            if self._unchanged(plan):
                return "unchanged"
            if plan.current is None:
                self._claim(plan.order_id, plan.customer_id)
            try:
                write_with_events(
                    self._orders,
                    plan.customer_id,
                    [self._operation(plan)],
                    [self._event(plan.content)],
                )
            except BatchFailed as exc:
                if exc.index == 0 and isinstance(
                    exc.cause, Conflict | PreconditionFailed | NotFound
                ):
                    continue
                raise
            return "imported" if plan.current is None else "updated"
        raise LineRejected("orderId: the order kept changing while it was imported; try again")

    def _unchanged(self, plan: _Plan) -> bool:
        """Whether the stored order is this very line; LineRejected when the id belongs to
        something an import may not replace."""
        current = plan.current
        if current is None:
            return False
        if current.get("type") != ORDER_TYPE:
            raise LineRejected(f"orderId: {plan.order_id!r} is the id of another kind of record")
        if not current.get("imported"):
            raise LineRejected(
                f"orderId: order {plan.order_id!r} was placed in this shop; "
                "it cannot be replaced by an import"
            )
        return current.get("importHash") == plan.digest

    def _operation(self, plan: _Plan) -> BatchOp:
        document = cast(Document, self._document(plan.content, plan.digest, plan.current))
        if plan.current is None:
            return BatchOp("create", document=document)
        return BatchOp("replace", document=document, if_match=str(plan.current["_etag"]))

    # --- building -----------------------------------------------------------------------

    def _content(self, order: ImportedOrderIn) -> dict[str, Any]:
        """What the line decides, normalised: the hashed part of the document."""
        currencies = {line.currency for line in order.lines if line.currency is not None}
        if order.currency is not None:
            currencies.add(order.currency)
        if len(currencies) > 1:
            raise LineRejected(
                "currency: every line of an order must be in one currency, not "
                + ", ".join(sorted(currencies))
            )
        currency = currencies.pop() if currencies else self.default_currency
        lines = []
        for line in order.lines:
            item: dict[str, Any] = {
                "sku": line.sku,
                "quantity": line.quantity,
                "unitPrice": line.unit_price,
            }
            product = self._product_of(line.sku)
            item["productId"] = None if product is None else product[0]
            lines.append(item)
        return {
            "orderId": order.order_id,
            "customerId": order.customer_id,
            "placedAt": timestamp(order.placed_at),
            "status": order.status,
            "currency": currency,
            "lines": lines,
        }

    def _document(
        self, content: dict[str, Any], digest: str, current: Document | None
    ) -> OrderDocument:
        now = timestamp(self.clock())
        currency = content["currency"]
        lines: list[OrderLineDocument] = []
        subtotal = 0
        for item in content["lines"]:
            price = item["unitPrice"]
            line_total = None if price is None else price * item["quantity"]
            subtotal += line_total or 0
            product = self._product_of(item["sku"])
            lines.append(
                {
                    "sku": item["sku"],
                    "productId": item["productId"],
                    "title": None if product is None else product[1],
                    "quantity": item["quantity"],
                    "unitPrice": price,
                    "currency": currency,
                    "lineTotal": line_total,
                    "tax": 0,
                    "refundedQuantity": 0,
                }
            )
        placed_at = content["placedAt"]
        return {
            "id": content["orderId"],
            "type": ORDER_TYPE,
            "customerId": content["customerId"],
            "status": content["status"],
            "imported": True,
            "importHash": digest,
            "importRevision": 1 if current is None else int(current.get("importRevision", 1)) + 1,
            "importedAt": now if current is None else current.get("importedAt", now),
            "placedAt": placed_at,
            "lines": lines,
            "totals": {
                "currency": currency,
                "subtotal": subtotal,
                "shipping": 0,
                "tax": 0,
                "taxInclusive": True,
                "total": subtotal,
            },
            "shippingAddress": None,
            "shippingMethod": None,
            "reservationExpiresAt": None,
            "payment": None,
            "capturedAmount": 0,
            "refundedAmount": 0,
            "refunds": [],
            "paymentEvents": [],
            "stock": STOCK_NOT_TRACKED,
            "history": [{"status": content["status"], "at": placed_at, "reason": IMPORTED_REASON}],
            "createdAt": placed_at,
            "updatedAt": now,
        }

    def _event(self, content: dict[str, Any]) -> Event:
        lines: list[ImportedLine] = []
        for item in content["lines"]:
            line: ImportedLine = {"sku": item["sku"], "quantity": item["quantity"]}
            if item["unitPrice"] is not None:
                line["unitPrice"] = item["unitPrice"]
            if item["productId"] is not None:
                line["productId"] = item["productId"]
            lines.append(line)
        data: OrderImported = {
            "orderId": content["orderId"],
            "customerId": content["customerId"],
            "placedAt": content["placedAt"],
            "status": content["status"],
            "currency": content["currency"],
            "lines": lines,
        }
        return new_event(
            ORDER_IMPORTED, content["orderId"], data, correlation_id=self.correlation_id
        )

    # --- lookups ------------------------------------------------------------------------

    def _product_of(self, sku: str) -> tuple[str, str | None] | None:
        """(product id, title) of the product that has `sku`, or None (cached)."""
        if sku in self._products:
            return self._products[sku]
        found: tuple[str, str | None] | None = None
        # Anything else can be no catalog SKU (and may not be a valid store id).
        if _CATALOG_SKU.match(sku):
            try:
                product_id = self._catalog.get_inventory(sku).product_id
                title = self._catalog.get_product(product_id).document.get("title")
                found = (product_id, title)
            except (SkuNotFound, ProductNotFound):
                found = None
        if len(self._products) >= _MAX_CACHED_SKUS:
            self._products.clear()
        self._products[sku] = found
        return found

    def _claimed(self, order_ids: Iterable[str]) -> set[str]:
        """Which of `order_ids` hold an import claim (one single-partition query per 100)."""
        ids = list(order_ids)
        found: set[str] = set()
        for start in range(0, len(ids), MAX_BATCH_OPERATIONS):
            query = Query(
                filters=[Filter("id", "in", ids[start : start + MAX_BATCH_OPERATIONS])],
                limit=MAX_BATCH_OPERATIONS,
            )
            documents = every(self._orders, query, partition_key=IMPORT_CLAIMS_PARTITION)
            found.update(str(d["id"]) for d in documents)
        return found

    def _claim_document(self, order_id: str, customer_id: str) -> Document:
        return {
            "id": order_id,
            "customerId": IMPORT_CLAIMS_PARTITION,
            "type": IMPORT_CLAIM_TYPE,
            "owner": customer_id,
            "createdAt": timestamp(self.clock()),
        }

    def _claim_all(self, plans: list[_Plan], results: list[LineResult | None]) -> None:
        """Claim the ids of new orders, a batch at a time; a line whose id another customer
        holds gets its rejection in `results`."""
        for start in range(0, len(plans), MAX_BATCH_OPERATIONS):
            group = plans[start : start + MAX_BATCH_OPERATIONS]
            operations = [
                BatchOp("create", document=self._claim_document(p.order_id, p.customer_id))
                for p in group
            ]
            try:
                self._orders.batch(IMPORT_CLAIMS_PARTITION, operations)
                continue
            except BatchFailed as exc:
                if not isinstance(exc.cause, Conflict):
                    raise
            # Some ids were claimed before (a re-run after a crash, or another customer's
            # order): the batch wrote nothing, so claim each on its own.
            for plan in group:
                try:
                    self._claim(plan.order_id, plan.customer_id)
                except LineRejected as rejected:
                    results[plan.index] = rejected

    def _claim(self, order_id: str, customer_id: str) -> None:
        """Claim `order_id` for the customer; LineRejected when another customer has it."""
        try:
            self._orders.create(self._claim_document(order_id, customer_id))
            return
        except Conflict:
            pass
        owner = self._orders.read(order_id, IMPORT_CLAIMS_PARTITION).get("owner")
        if owner != customer_id:
            raise LineRejected(
                f"orderId: order {order_id!r} was imported for another customer ({owner}); "
                "an order cannot move between customers"
            )


def _batches(plans: list[_Plan]) -> Iterator[list[_Plan]]:
    """`plans` (one customer's) in groups that fit one transactional batch: an order and its
    event each, and well under the 2 MB a batch may carry."""
    group: list[_Plan] = []
    size = 0
    for plan in plans:
        if group and (
            2 * (len(group) + 1) > MAX_BATCH_OPERATIONS or size + plan.size > _MAX_GROUP_BYTES
        ):
            yield group
            group, size = [], 0
        group.append(plan)
        size += plan.size
    if group:
        yield group


__all__ = [
    "IMPORTABLE_STATUSES",
    "ORDER_IMPORTED",
    "ImportedLineIn",
    "ImportedOrderIn",
    "OrderImporter",
]
