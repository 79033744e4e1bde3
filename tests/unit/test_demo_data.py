"""The demo shop: big and realistic enough for search, loaded once through the service."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.local.demo_data import CATEGORIES, DATA_FILE, demo_products, demo_stock, seed

# The whole generated shop (categories, products, stock) pinned by a digest. Changing the
# demo data or its generator changes the digest: update it deliberately, together with the
# relevance judgments (benchmarks/relevance_queries.json) when product ids or SKUs change.
CATALOG_SHA256 = "d902567feeb67257ff84bc6eb8727470f989ee531bf30e14990e802c917d99e1"


def test_demo_catalog_shape() -> None:
    products = demo_products()
    assert len(products) >= 300
    assert len({pid for pid, _ in products}) == len(products)
    categories = {c for c, _, _ in CATEGORIES}
    used = Counter(p.category_id for _, p in products)
    assert set(used) <= categories and len(used) >= 8
    phones = [p for _, p in products if p.category_id == "phones"]
    assert len(phones) >= 60
    assert {"Android", "iOS"} <= {p.attributes.os for p in phones}
    assert any(p.title == "OPPO A92" for p in phones)
    assert {"Apple", "Samsung", "OnePlus", "OPPO", "Google", "Xiaomi"} <= {p.brand for p in phones}
    assert any(
        p.brand == "OnePlus" and v.attributes.storage == "64 GB" for p in phones for v in p.variants
    )
    skus = [v.sku for _, p in products for v in p.variants]
    assert len(skus) == len(set(skus))
    assert all(v.price.currency == "INR" for _, p in products for v in p.variants)
    accessories = [p for _, p in products if p.category_id in ("phone-cases", "chargers")]
    assert any("OPPO A92" in p.title for p in accessories)
    assert any("OnePlus" in p.description for p in accessories if p.category_id == "chargers")
    stock = [demo_stock(s) for s in skus]
    assert 0 in stock and max(stock) > 0
    assert demo_products() == products  # deterministic


def test_seed_loads_once_through_the_service_with_events(tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path))
    try:
        assert seed(services) is True
        catalog = CatalogService(services.documents)
        product = catalog.get_product("oppo-a92").document
        assert product["status"] == "active" and product["categoryId"] == "phones"
        sku = product["variants"][0]["sku"]
        stock = services.documents.container("inventory").read(sku, sku)
        assert stock["available"] == demo_stock(sku)

        outbox = Query(filters=[Filter("kind", "eq", "outbox")], limit=100)
        created = services.documents.container("catalog").query(outbox, partition_key="oppo-a92")
        assert [d["event"]["type"] for d in created.items] == ["product.created"]
        changed = services.documents.container("inventory").query(outbox, partition_key=sku)
        assert [d["event"]["type"] for d in changed.items] == ["inventory.changed"]

        items, _ = catalog.list_products(category="electronics", limit=100)
        assert len(items) == 100

        # A second run changes nothing, even after the shop owner edited a product.
        services.documents.container("catalog").replace(dict(product, title="Edited"))
        assert seed(services) is False
        assert catalog.get_product("oppo-a92").document["title"] == "Edited"
    finally:
        services.close()


def test_generated_catalog_is_pinned() -> None:
    products = demo_products()
    catalog = {
        "categories": CATEGORIES,
        # What the generator states, as on the wire: a field added to the product model
        # with a default leaves the demo shop, and so the digest, unchanged.
        "products": [
            (pid, p.model_dump(mode="json", by_alias=True, exclude_unset=True))
            for pid, p in products
        ],
        "stock": {v.sku: demo_stock(v.sku) for _, p in products for v in p.variants},
    }
    assert (len(CATEGORIES), len(products), len(catalog["stock"])) == (17, 332, 468)
    canonical = json.dumps(catalog, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == CATALOG_SHA256


def test_data_file_is_consistent() -> None:
    # Read the way the module reads it: a resource of the installed package.
    text = resources.files("cloudcart.local").joinpath(DATA_FILE).read_text(encoding="utf-8")
    facts: dict[str, Any] = json.loads(text)

    ids = [c["id"] for c in facts["categories"]]
    assert len(ids) == len(set(ids))
    for index, category in enumerate(facts["categories"]):
        # Parents first: seeding creates categories in file order.
        assert category["parent"] is None or category["parent"] in ids[:index]
    assert set(facts["simple"]) <= set(ids)

    products = demo_products()
    assert {p.category_id for _, p in products} <= set(ids)
    product_ids = [pid for pid, _ in products]
    assert len(product_ids) == len(set(product_ids))
    skus = [v.sku for _, p in products for v in p.variants]
    assert len(skus) == len(set(skus))
