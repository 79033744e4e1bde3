"""Demo data loads once, into an empty store, with consistent catalog and inventory."""

from __future__ import annotations

from pathlib import Path

from cloudcart.core.documents.port import Filter, Query
from cloudcart.core.services import Services
from cloudcart.core.settings import Settings
from cloudcart.local.demo_data import CATEGORY_PARTITION, demo_documents, load_demo_data


def _services(tmp_path: Path) -> Services:
    return Services(Settings(data_dir=tmp_path))


def test_demo_data_is_consistent() -> None:
    categories, products, inventory = demo_documents()
    category_ids = {c["id"] for c in categories}
    assert {c["parentId"] for c in categories} - {None} <= category_ids
    assert {p["categoryId"] for p in products} <= category_ids
    skus = [v["sku"] for p in products for v in p["variants"]]
    assert len(skus) == len(set(skus)), "SKUs must be unique"
    assert sorted(skus) == sorted(i["sku"] for i in inventory)
    assert len({p["id"] for p in products}) == len(products)
    for product in products:
        for variant in product["variants"]:
            assert isinstance(variant["price"]["amount"], int)
            assert variant["price"]["amount"] > 0
    titles = {p["title"] for p in products}
    assert "OPPO A92" in titles
    assert any(
        p["brand"] == "OnePlus" and v["attributes"].get("storage") == "64 GB"
        for p in products
        for v in p["variants"]
    )


def test_load_demo_data_only_into_an_empty_store(tmp_path: Path) -> None:
    services = _services(tmp_path)
    try:
        assert load_demo_data(services) is True
        catalog = services.documents.container("catalog")
        phones = catalog.query(
            Query(filters=[Filter("type", "eq", "product")], limit=100), partition_key="phones"
        ).items
        assert any(p["title"] == "OPPO A92" for p in phones)
        cats = catalog.query(Query(limit=100), partition_key=CATEGORY_PARTITION).items
        assert len(cats) == len(demo_documents()[0])

        sku = phones[0]["variants"][0]["sku"]
        stock = services.documents.container("inventory").read(sku, sku)
        assert stock["available"] > 0

        # A second start changes nothing, even after a user edited a product.
        edited = dict(phones[0], title="Edited by the shop owner")
        catalog.replace(edited)
        assert load_demo_data(services) is False
        assert catalog.read(edited["id"], "phones")["title"] == "Edited by the shop owner"
    finally:
        services.close()
