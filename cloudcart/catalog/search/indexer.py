"""Keeps the search index in step with the catalog and stock.

The Service Bus topic trigger (`indexer_functions`) on the `search-indexer` subscription of
the events topic hands `product.created|updated|archived` and `inventory.changed` to
`handle_event`. It does not trust the event's payload: it re-reads the product, its category
and its SKUs' stock from the documents port and upserts the search document (or deletes it
when the product is no longer active). So the handler is idempotent by nature, and a late
or replayed event can never put an old version back. `reindex_all` rebuilds the whole index
from the catalog (`cloudcart serve --demo` after loading the demo data, tests, recovery).
"""

from __future__ import annotations

import logging

from cloudcart import inventory
from cloudcart.composition import Services
from cloudcart.core.errors import NotFound
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import Container, Document, Filter, Query, each, first
from cloudcart.core.ports.search import SearchIndex
from cloudcart.core.read_cache import CacheRegistry
from cloudcart.core.search.documents import to_search_document

log = logging.getLogger(__name__)

PRODUCT_EVENTS = ("product.created", "product.updated", "product.archived")
INVENTORY_CHANGED = inventory.INVENTORY_CHANGED
CATEGORIES_PARTITION = "categories"

SEARCH_RESULTS = CacheRegistry()
"""Encoded public search responses, per search index; every write to the index from this
process drops them (`cloudcart.core.read_cache`)."""


def product_id_of(event: Event) -> str | None:
    """The product an event is about, or None for an event this indexer ignores."""
    if event.type in PRODUCT_EVENTS:
        data = event.data
        return str(data.get("productId") or data.get("id") or event.subject)
    if event.type == INVENTORY_CHANGED:
        product_id = event.data.get("productId")
        return str(product_id) if product_id else None
    return None


def stock_flip(event: Event) -> bool:
    """Whether a stock event may change what search shows: only `inStock` per variant is
    indexed, so a move that leaves the SKU available (or unavailable) changes nothing.
    Events without both figures count as a flip."""
    data = event.data
    before, after = data.get("availableBefore"), data.get("available")
    if not isinstance(before, int) or not isinstance(after, int):
        return True
    return (before > 0) != (after > 0)


def handle_event(services: Services, event: Event) -> str | None:
    """Sync the product an event is about; returns its id (None when ignored)."""
    product_id = product_id_of(event)
    if product_id is None:
        log.info("search indexer ignores %s", event.type)
        return None
    if event.type == INVENTORY_CHANGED and not stock_flip(event):
        # Most moves (a sale of one of many units) leave `inStock` as it is; skipping them
        # keeps indexing off the hot path of every order and stock count.
        return None
    sync_product(services, product_id)
    return product_id


def _read_product(catalog: Container, product_id: str) -> Document | None:
    # The catalog is partitioned by `/pk` (= product id) for products; fall back to a
    # query when a deployment still uses another partition key.
    if catalog.spec.partition_key_field == "pk":
        try:
            return catalog.read(product_id, product_id)
        except NotFound:
            return None
    return first(catalog, Query(filters=[Filter("id", "eq", product_id)]))


def _read_category(catalog: Container, category_id: str) -> Document | None:
    if catalog.spec.partition_key_field == "pk":
        try:
            return catalog.read(category_id, CATEGORIES_PARTITION)
        except NotFound:
            return None
    return first(
        catalog, Query(filters=[Filter("id", "eq", category_id), Filter("type", "eq", "category")])
    )


def _stock(services: Services, skus: list[str]) -> dict[str, dict[str, int]]:
    levels = inventory.stock_levels(services.documents, skus)
    return {sku: {"available": level.available} for sku, level in levels.items()}


def _skus(product: Document) -> list[str]:
    return [str(v["sku"]) for v in product.get("variants") or [] if v.get("sku")]


def sync_product(services: Services, product_id: str) -> bool:
    """Bring one product's search document up to date; True when it is (now) indexed,
    False when it was removed (missing, draft or archived)."""
    catalog = services.documents.container("catalog")
    product = _read_product(catalog, product_id)
    document = None
    if product is not None and product.get("type", "product") == "product":
        category = _read_category(catalog, str(product.get("categoryId", "")))
        document = to_search_document(product, _stock(services, _skus(product)), category)
    try:
        if document is None:
            services.search.delete([product_id])
            return False
        services.search.upsert([document])
        return True
    finally:
        SEARCH_RESULTS.changed(services.search)


def reindex_all(services: Services, index: SearchIndex | None = None) -> int:
    """Rebuild the whole index from the catalog in one swap; returns the products indexed.

    `index` defaults to `services.search`; `cloudcart search init` passes the new versioned
    Azure index it fills before the alias switches to it."""
    catalog = services.documents.container("catalog")
    categories = {
        str(c["id"]): c
        for c in each(catalog, Query(filters=[Filter("type", "eq", "category")], limit=500))
    }
    stock = {
        level.sku: {"available": level.available}
        for level in inventory.all_levels(services.documents)
    }
    documents = []
    for product in each(catalog, Query(filters=[Filter("type", "eq", "product")], limit=500)):
        document = to_search_document(
            product, stock, categories.get(str(product.get("categoryId", "")))
        )
        if document is not None:
            documents.append(document)
    target = index or services.search
    try:
        count = target.replace_all(documents)
    finally:
        SEARCH_RESULTS.changed(target)
    log.info("search index rebuilt with %d products", count)
    return count


def init_index(
    services: Services, *, reindex: bool = False, allow_index_downtime: bool = False
) -> str:
    """Make the search alias of these services serve this spec's index, built and filled
    from the catalog (`services.documents`) when it is new (`cloudcart search init`, the
    deploy hook); returns what was done, in a sentence. `reindex` refills it even when the
    alias serves it already.

    `allow_index_downtime` is accepted for callers written before indexes were versioned
    and has no effect: a new shape is a new index, so no update takes an index offline.
    """
    del allow_index_downtime
    # Imported here: only the CLI and the deploy hook initialise an index, and the module
    # is the Azure engine's.
    from cloudcart.core.search.azure import AzureSearchIndex

    index = services.search
    if not isinstance(index, AzureSearchIndex):
        return "embedded search index: nothing to initialise (built on first use)"

    def fill(target: SearchIndex) -> int:
        return reindex_all(services, target)

    return index.deploy(fill, force_reindex=reindex).describe()
