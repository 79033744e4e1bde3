"""The demo shop: big and realistic enough for search, loaded once through the service."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cloudcart.catalog.service import CatalogService
from cloudcart.core.documents.port import Filter, Query
from cloudcart.core.services import Services
from cloudcart.core.settings import Settings
from cloudcart.local.demo_data import CATEGORIES, demo_products, demo_stock, seed


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
