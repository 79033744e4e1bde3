"""Catalog service: products, categories and stock, each change written with its events.

Storage (see the registry): the `catalog` container is partitioned by a synthetic `/pk`.
A product's partition is its own id, so a product page is one point read and the
product's outbox events share its transactional batch; every category lives in the
`categories` partition (few, read together). Stock lives in `inventory` (pk = SKU). The
documents' exact shapes are the TypedDicts of `cloudcart.catalog.documents`.

SKUs are unique across the catalog. Products sit in different partitions, so no batch
can check that; instead the inventory document of a SKU doubles as its claim: a product
creates the inventory documents of its SKUs (a create is atomic per SKU, so two products
can never both claim one) before it writes itself. A claim left behind by a crash
between the two writes names a product that does not exist, and the next claimant takes
it over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from cloudcart import inventory
from cloudcart.catalog.documents import (
    CategoryDocument,
    MediaDocument,
    MoneyDocument,
    ProductDocument,
    VariantDocument,
    as_document,
)
from cloudcart.catalog.events import CategoryCreated
from cloudcart.catalog.models import (
    CategoryIn,
    ProductIn,
    ProductStatus,
    SortOrder,
    VariantIn,
)
from cloudcart.core.clock import now_timestamp
from cloudcart.core.cursors import decode_token, encode_token
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.events import Event, new_event
from cloudcart.core.ids import new_id
from cloudcart.core.outbox import write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    Query,
    every,
    fill_page,
    strip_system,
)
from cloudcart.core.read_cache import CacheRegistry
from cloudcart.inventory import SkuNotFound as SkuNotFound  # re-exported: raised by this service

logger = logging.getLogger(__name__)

STOREFRONT_PAGES = CacheRegistry()
"""Encoded public list pages, per documents store; any catalog write in the process drops
its store's pages (`cloudcart.core.read_cache`)."""

CATEGORIES_PARTITION: Final = "categories"
PRODUCT_TYPE: Final = "product"
CATEGORY_TYPE: Final = "category"

PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
PRODUCT_ARCHIVED = "product.archived"
CATEGORY_CREATED = "category.created"

_SORTS: dict[str, Order] = {
    "newest": Order("createdAt", descending=True),
    "price_asc": Order("minPrice.amount"),
    "price_desc": Order("minPrice.amount", descending=True),
    "title": Order("sortTitle"),
}


# --- errors -------------------------------------------------------------------------------


class CatalogError(DomainError):
    """A catalog request that cannot be carried out; the class names its problem document."""

    status = 422
    title = "Unprocessable Content"


class ProductNotFound(CatalogError):
    """No such product (or not visible to this caller)."""

    status = 404
    problem_type = "product-not-found"
    title = "Not Found"


class UnknownCategory(CatalogError):
    """The category (or parent category) does not exist."""

    problem_type = "unknown-category"


class CategoryExists(CatalogError):
    """A category with that id exists already."""

    status = 409
    problem_type = "category-exists"
    title = "Conflict"


class SkuTaken(CatalogError):
    """A SKU belongs to another product."""

    status = 409
    problem_type = "sku-taken"
    title = "Conflict"

    def __init__(self, sku: str, owner: str) -> None:
        super().__init__(f"SKU {sku!r} already belongs to product {owner!r}")
        self.sku = sku
        self.owner = owner

    def problem_extra(self) -> dict[str, Any]:
        """The SKU, so a client can point at the offending variant."""
        return {"sku": self.sku}


class StaleProduct(CatalogError):
    """The product changed since the caller read it (If-Match did not hold)."""

    status = 412
    problem_type = "stale-etag"
    title = "Precondition Failed"


class InvalidCursor(CatalogError):
    """The cursor is malformed or belongs to a different query."""

    status = 400
    problem_type = "invalid-cursor"
    title = "Bad Request"


# --- helpers ------------------------------------------------------------------------------


def bare_etag(etag: str) -> str:
    """An ETag without its quotes or weak prefix (`W/"abc"` -> `abc`)."""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match header value (a list, or `*`) names `etag`."""
    if header.strip() == "*":
        return True
    wanted = bare_etag(etag)
    return any(bare_etag(part) == wanted for part in header.split(",") if part.strip())


def slugify(text: str) -> str:
    """A URL slug from a title: lower-case ASCII words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:200] or "product"


def public_product(document: ProductDocument) -> dict[str, Any]:
    """The product as the API returns it and `product.*` events carry it (no system or
    storage-only fields)."""
    return {
        "id": document["id"],
        "productId": document["id"],
        "title": document["title"],
        "slug": document["slug"],
        "brand": document["brand"],
        "categoryId": document["categoryId"],
        "description": document.get("description", ""),
        "attributes": document.get("attributes", {}),
        "variants": [
            {
                "sku": v["sku"],
                "attributes": v.get("attributes", {}),
                "price": v["price"],
                "compareAtPrice": v.get("compareAtPrice"),
            }
            for v in document["variants"]
        ],
        "media": document.get("media", []),
        "status": document["status"],
        "minPrice": document["minPrice"],
        "createdAt": document["createdAt"],
        "updatedAt": document["updatedAt"],
    }


def variant_documents(variants: Sequence[VariantIn]) -> list[VariantDocument]:
    """The variants of a product as its document stores them (the service's writes and the
    importer's comparison agree on this shape)."""
    return [
        {
            "sku": v.sku,
            "attributes": v.attributes.to_json(),
            "price": cast(MoneyDocument, v.price.model_dump()),
            "compareAtPrice": None
            if v.compare_at_price is None
            else cast(MoneyDocument, v.compare_at_price.model_dump()),
        }
        for v in variants
    ]


def _product_document(
    product_id: str, body: ProductIn, *, created_at: str, media: list[MediaDocument]
) -> ProductDocument:
    variants = variant_documents(body.variants)
    cheapest = min(body.variants, key=lambda v: v.price.amount)
    return {
        "id": product_id,
        "pk": product_id,
        "type": PRODUCT_TYPE,
        "title": body.title,
        "slug": body.slug or slugify(body.title),
        "brand": body.brand,
        "categoryId": body.category_id,
        "description": body.description,
        "attributes": body.attributes.to_json(),
        "variants": variants,
        "media": media,
        "status": body.status.value,
        # Derived, stored so lists can sort and filter without reading every variant.
        "minPrice": cast(MoneyDocument, cheapest.price.model_dump()),
        "brandKey": body.brand.casefold(),
        "sortTitle": body.title.casefold(),
        "createdAt": created_at,
        "updatedAt": now_timestamp(),
    }


@dataclass(frozen=True)
class StoredProduct:
    """A product document and its ETag (for If-Match on the next write)."""

    document: ProductDocument
    etag: str

    @property
    def public(self) -> dict[str, Any]:
        """The API representation."""
        return public_product(self.document)


def _stored_product(document: Document) -> StoredProduct:
    """A product document as the store returned it (with `_etag`), typed: no copy."""
    return StoredProduct(cast(ProductDocument, document), document["_etag"])


class CatalogService:
    """Catalog operations on a documents store. Cheap to build: one per request is fine."""

    def __init__(self, store: DocumentStore, *, correlation_id: str | None = None) -> None:
        self.store = store
        self.correlation_id = correlation_id
        self._known_categories: set[str] = set()

    @property
    def _catalog(self) -> Container:
        return self.store.container("catalog")

    # --- categories ---------------------------------------------------------------------

    def categories(self) -> list[CategoryDocument]:
        """Every category document (id, name, parentId)."""
        found = every(
            self._catalog,
            Query(filters=[Filter("type", "eq", CATEGORY_TYPE)], limit=100),
            partition_key=CATEGORIES_PARTITION,
        )
        return cast(list[CategoryDocument], found)

    def category_tree(self) -> list[dict[str, Any]]:
        """Categories as nested `{id, name, parentId, children}` nodes, siblings by name."""
        nodes: dict[str, dict[str, Any]] = {
            c["id"]: {
                "id": c["id"],
                "name": c["name"],
                "parentId": c.get("parentId"),
                "children": [],
            }
            for c in self.categories()
        }
        roots: list[dict[str, Any]] = []
        for node in sorted(nodes.values(), key=lambda n: (n["name"].casefold(), n["id"])):
            parent = nodes.get(node["parentId"]) if node["parentId"] else None
            (parent["children"] if parent is not None else roots).append(node)
        return roots

    def category_with_descendants(self, category_id: str) -> list[str]:
        """The category id and the ids of every category below it; UnknownCategory if none."""
        children: dict[str, list[str]] = {}
        known: set[str] = set()
        for c in self.categories():
            known.add(c["id"])
            parent = c.get("parentId")
            if parent:
                children.setdefault(parent, []).append(c["id"])
        if category_id not in known:
            raise UnknownCategory(f"category {category_id!r} does not exist")
        found: list[str] = []
        stack = [category_id]
        while stack:
            current = stack.pop()
            if current in found:
                continue  # a cycle can only come from hand-edited data; do not loop on it
            found.append(current)
            stack.extend(children.get(current, []))
        return found

    def _require_category(self, category_id: str) -> None:
        # Categories are never deleted, so one this service has seen stays valid (an
        # importer's long-lived service reads each category once).
        if category_id in self._known_categories:
            return
        try:
            self._catalog.read(category_id, CATEGORIES_PARTITION)
        except NotFound:
            raise UnknownCategory(f"category {category_id!r} does not exist") from None
        self._known_categories.add(category_id)

    def create_category(self, body: CategoryIn) -> CategoryDocument:
        """Create a category (its parent must exist); CategoryExists on a duplicate id."""
        if body.parent_id is not None:
            if body.parent_id == body.id:
                raise UnknownCategory("a category cannot be its own parent")
            self._require_category(body.parent_id)
        document: CategoryDocument = {
            "id": body.id,
            "pk": CATEGORIES_PARTITION,
            "type": CATEGORY_TYPE,
            "name": body.name,
            "parentId": body.parent_id,
            "createdAt": now_timestamp(),
        }
        data: CategoryCreated = {"id": body.id, "name": body.name, "parentId": body.parent_id}
        event = new_event(CATEGORY_CREATED, body.id, data, correlation_id=self.correlation_id)
        try:
            written = self._write(
                CATEGORIES_PARTITION,
                BatchOp("create", document=as_document(document)),
                event,
            )
        except BatchFailed as exc:
            if isinstance(exc.cause, Conflict):
                raise CategoryExists(f"category {body.id!r} already exists") from None
            raise
        return cast(CategoryDocument, written)

    # --- products -----------------------------------------------------------------------

    def get_product(self, product_id: str) -> StoredProduct:
        """The product whatever its status; ProductNotFound if it does not exist."""
        if product_id == CATEGORIES_PARTITION:
            raise ProductNotFound(f"product {product_id!r} does not exist")
        try:
            document = self._catalog.read(product_id, product_id)
        except NotFound:
            raise ProductNotFound(f"product {product_id!r} does not exist") from None
        if document.get("type") != PRODUCT_TYPE:
            raise ProductNotFound(f"product {product_id!r} does not exist")
        return _stored_product(document)

    def create_product(
        self,
        body: ProductIn,
        *,
        product_id: str | None = None,
        stock: Mapping[str, int] | None = None,
    ) -> StoredProduct:
        """Create a product and announce it (`product.created`).

        `product_id` is for deterministic seed data and imports; the API lets the service
        choose. `stock` (units available per SKU of the product) is set with each SKU's
        claim, one write instead of two; a SKU the catalog held before keeps its stock
        (`set_inventory` changes it). Raises UnknownCategory, SkuTaken, or Conflict when
        `product_id` exists.
        """
        product_id = product_id or new_id("prd_")
        self._require_category(body.category_id)
        document = _product_document(product_id, body, created_at=now_timestamp(), media=[])
        claimed, stocked = self._claim_skus(product_id, [v.sku for v in body.variants], stock or {})
        try:
            written = self._write(
                product_id,
                BatchOp("create", document=as_document(document)),
                self._product_event(PRODUCT_CREATED, document),
            )
        except BaseException as exc:
            self._release_skus(product_id, claimed)
            if isinstance(exc, BatchFailed) and isinstance(exc.cause, Conflict):
                raise Conflict(f"product {product_id!r} already exists") from None
            raise
        for sku, units in (stock or {}).items():
            if sku not in stocked:
                self.set_inventory(sku, units)
        return _stored_product(written)

    def update_product(
        self, product_id: str, body: ProductIn, *, if_match: str | None = None
    ) -> StoredProduct:
        """Replace a product's content (media and createdAt are kept) and announce it:
        `product.archived` when this moves it to archived, `product.updated` otherwise.

        With `if_match`, only if the product's ETag still matches (StaleProduct otherwise).
        """
        current = self.get_product(product_id)
        if if_match is not None and not etag_matches(if_match, current.etag):
            raise StaleProduct("the product changed since it was read; read it again")
        self._require_category(body.category_id)
        document = _product_document(
            product_id,
            body,
            created_at=current.document["createdAt"],
            media=list(current.document.get("media", [])),
        )
        old_skus = [v["sku"] for v in current.document["variants"]]
        new_skus = [v.sku for v in body.variants]
        claimed, _ = self._claim_skus(product_id, [s for s in new_skus if s not in old_skus])
        archived = (
            body.status == ProductStatus.archived
            and current.document["status"] != ProductStatus.archived
        )
        event_type = PRODUCT_ARCHIVED if archived else PRODUCT_UPDATED
        # What each SKU cost before, so consumers see a price change without keeping
        # their own copy of every price.
        previous = {"previousPrices": {v["sku"]: v["price"] for v in current.document["variants"]}}
        event = self._product_event(
            event_type, document, previous if event_type == PRODUCT_UPDATED else {}
        )
        try:
            written = self._write(
                product_id,
                BatchOp("replace", document=as_document(document), if_match=current.etag),
                event,
            )
        except BaseException as exc:
            self._release_skus(product_id, claimed)
            if isinstance(exc, BatchFailed) and isinstance(exc.cause, PreconditionFailed):
                raise StaleProduct("the product changed while it was being updated") from None
            raise
        self._release_skus(product_id, [s for s in old_skus if s not in new_skus])
        return _stored_product(written)

    def archive_product(self, product_id: str, *, if_match: str | None = None) -> StoredProduct:
        """Archive a product (hidden from customers, kept for orders) and announce it
        (`product.archived`). Archiving an archived product changes nothing."""
        current = self.get_product(product_id)
        if if_match is not None and not etag_matches(if_match, current.etag):
            raise StaleProduct("the product changed since it was read; read it again")
        if current.document["status"] == ProductStatus.archived:
            return current
        document = cast(ProductDocument, strip_system(current.document))
        document["status"] = ProductStatus.archived.value
        document["updatedAt"] = now_timestamp()
        try:
            written = self._write(
                product_id,
                BatchOp("replace", document=as_document(document), if_match=current.etag),
                self._product_event(PRODUCT_ARCHIVED, document),
            )
        except BatchFailed as exc:
            if isinstance(exc.cause, PreconditionFailed):
                raise StaleProduct("the product changed while it was being archived") from None
            raise
        return _stored_product(written)

    def _write(self, partition_key: str, operation: BatchOp, event: Event) -> Document:
        """Write one catalog document with its event through the outbox. Storefront pages
        read before the write are not served again, even when the outcome is unknown."""
        try:
            return write_with_events(self._catalog, partition_key, [operation], [event])[0]
        finally:
            STOREFRONT_PAGES.changed(self.store)

    def _product_event(
        self, event_type: str, document: ProductDocument, extra: dict[str, Any] | None = None
    ) -> Any:
        return new_event(
            event_type,
            document["id"],
            {**public_product(document), **(extra or {})},
            correlation_id=self.correlation_id,
        )

    def list_products(
        self,
        *,
        category: str | None = None,
        brand: str | None = None,
        sort: SortOrder = "newest",
        limit: int = 24,
        cursor: str | None = None,
    ) -> tuple[list[ProductDocument], str | None]:
        """Active products, newest first by default; `category` includes its descendants.

        Returns the page and the opaque cursor of the next one (None on the last page).
        The cursor is bound to the query, so it cannot be replayed with other filters.
        """
        filters = [
            Filter("type", "eq", PRODUCT_TYPE),
            Filter("status", "eq", ProductStatus.active.value),
        ]
        if category is not None:
            filters.append(Filter("categoryId", "in", self.category_with_descendants(category)))
        if brand is not None:
            filters.append(Filter("brandKey", "eq", brand.casefold()))
        fingerprint = _fingerprint(category, brand, sort, limit)
        continuation = None if cursor is None else _decode_cursor(cursor, fingerprint)
        try:
            page = fill_page(
                self._catalog,
                Query(filters=filters, order_by=[_SORTS[sort]], limit=limit),
                continuation=continuation,
            )
        except ValueError:
            if continuation is None:
                raise
            # A forged cursor that carried a malformed store continuation.
            raise InvalidCursor("the cursor is not one this API returned") from None
        next_cursor = (
            None if page.continuation is None else _encode_cursor(page.continuation, fingerprint)
        )
        return cast(list[ProductDocument], page.items), next_cursor

    def availability(self, skus: Iterable[str]) -> dict[str, int]:
        """Units available per SKU (0 for a SKU without stock)."""
        return inventory.available_units(self.store, skus)

    # --- SKU claims and stock -----------------------------------------------------------

    def _claim_skus(
        self, product_id: str, skus: Sequence[str], stock: Mapping[str, int] | None = None
    ) -> tuple[list[str], list[str]]:
        """Claim `skus` for the product in inventory, new ones with their `stock`; return
        those claimed here (to release them if the product write fails) and those whose
        claim set their stock. SkuTaken if another product owns one; nothing stays claimed
        then."""
        claimed: list[str] = []
        stocked: list[str] = []
        try:
            for sku in skus:
                outcome = self._claim_sku(product_id, sku, (stock or {}).get(sku, 0))
                if outcome != "held":
                    claimed.append(sku)
                if outcome == "created":
                    stocked.append(sku)
        except BaseException:
            self._release_skus(product_id, claimed)
            raise
        return claimed, stocked

    def _claim_sku(self, product_id: str, sku: str, on_hand: int = 0) -> str:
        """`created` (with `on_hand`), `held` (the product had it) or `taken` (an orphaned
        claim moved to the product, its stock as it was)."""
        outcome = inventory.claim_sku(
            self.store, product_id, sku, on_hand=on_hand, correlation_id=self.correlation_id
        )
        if isinstance(outcome, bool):
            return "created" if outcome else "held"
        if self._product_exists(outcome):
            raise SkuTaken(sku, outcome)
        # An orphaned claim (its product was never written): take it over, unless a
        # concurrent claimant got there first.
        if not inventory.take_over_orphan(self.store, sku, outcome, product_id):
            raise SkuTaken(sku, "another product")
        return "taken"

    def _product_exists(self, product_id: str) -> bool:
        try:
            self._catalog.read(product_id, product_id)
            return True
        except NotFound:
            return False

    def _release_skus(self, product_id: str, skus: Sequence[str]) -> None:
        """Give SKUs a product no longer uses back, unless orders still need them."""
        for sku in skus:
            try:
                inventory.release_sku(self.store, product_id, sku)
            except Exception:  # best effort: an orphaned claim is taken over later
                logger.warning("could not release SKU %s of %s", sku, product_id, exc_info=True)

    def get_inventory(self, sku: str) -> inventory.StockLevel:
        """The stock of a SKU; SkuNotFound if no product has it."""
        level = inventory.stock_level(self.store, sku)
        if level is None or not self._product_exists(level.product_id):
            raise SkuNotFound(f"SKU {sku!r} belongs to no product")
        return level

    def set_inventory(
        self, sku: str, available: int | None = None, *, on_hand: int | None = None
    ) -> inventory.StockLevel:
        """Set a SKU's stock: units `available` to order now (reservations are left as they
        are) or units `on_hand`. Announced by `inventory.changed`."""
        self.get_inventory(sku)
        return inventory.set_stock(
            self.store,
            sku,
            available=available,
            on_hand=on_hand,
            correlation_id=self.correlation_id,
        )


# --- cursors ------------------------------------------------------------------------------


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


CURSOR_PATTERN = r"^[A-Za-z0-9_-]{42,}={0,2}$"
"""Every cursor `_encode_cursor` makes: unpadded base64url of at least 31 bytes."""
_CURSOR = re.compile(CURSOR_PATTERN)


def _encode_cursor(continuation: str, fingerprint: str) -> str:
    return encode_token({"c": continuation, "f": fingerprint}, padded=False)


def _decode_cursor(cursor: str, fingerprint: str) -> str:
    # The base64 decoder would skip characters outside the alphabet.
    if _CURSOR.fullmatch(cursor) is None:
        raise InvalidCursor("the cursor is not one this API returned")
    try:
        data = decode_token(cursor)
        continuation, found = data["c"], data["f"]
    except (ValueError, KeyError):
        raise InvalidCursor("the cursor is not one this API returned") from None
    if not isinstance(continuation, str) or found != fingerprint:
        raise InvalidCursor("the cursor belongs to a different query; start without one")
    return continuation
