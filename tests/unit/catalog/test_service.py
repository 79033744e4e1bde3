"""CatalogService on the embedded store: validation, SKU ownership, events in the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.service import (
    CatalogService,
    CategoryExists,
    InvalidCursor,
    SkuNotFound,
    SkuTaken,
    StaleProduct,
    UnknownCategory,
)
from cloudcart.composition import Services
from cloudcart.core.ports.documents import Filter, Query
from tests.unit.catalog.conftest import product_body, product_in


def outbox_events(services: Services, container: str, partition_key: str) -> list[dict[str, Any]]:
    docs = (
        services.documents.container(container)
        .query(Query(filters=[Filter("kind", "eq", "outbox")]), partition_key=partition_key)
        .items
    )
    return [d["event"] for d in sorted(docs, key=lambda d: d["createdAt"])]


def test_create_product_writes_the_product_and_its_event(
    catalog: CatalogService, services: Services
) -> None:
    stored = catalog.create_product(product_in())
    doc = stored.document
    assert doc["pk"] == doc["id"] and doc["type"] == "product"
    assert doc["slug"] == "oppo-a92"
    assert doc["minPrice"] == {"amount": 2499000, "currency": "INR"}
    events = outbox_events(services, "catalog", doc["id"])
    assert [e["type"] for e in events] == ["product.created"]
    assert events[0]["subject"] == doc["id"]
    assert events[0]["data"]["title"] == "OPPO A92"
    assert events[0]["data"]["productId"] == doc["id"]
    # The SKU is claimed with an empty stock record.
    stock = services.documents.container("inventory").read("OPPO-A92-128-BLK", "OPPO-A92-128-BLK")
    assert (stock["productId"], stock["available"], stock["reserved"]) == (doc["id"], 0, 0)


def test_unknown_category_is_refused_and_nothing_is_claimed(
    catalog: CatalogService, services: Services
) -> None:
    with pytest.raises(UnknownCategory):
        catalog.create_product(product_in(category="no-such"))
    inventory = services.documents.container("inventory")
    assert inventory.query(Query()).items == []


def test_a_sku_belongs_to_one_product(catalog: CatalogService) -> None:
    first = catalog.create_product(product_in())
    with pytest.raises(SkuTaken) as info:
        catalog.create_product(product_in(title="Other phone"))
    assert info.value.owner == first.document["id"]
    # The same product may keep its SKU on update.
    catalog.update_product(first.document["id"], product_in(title="OPPO A92 (2020)"))


def test_an_orphaned_sku_claim_is_taken_over(catalog: CatalogService, services: Services) -> None:
    services.documents.container("inventory").create(
        {"id": "SKU-1", "sku": "SKU-1", "productId": "prd_never_written", "available": 0}
    )
    stored = catalog.create_product(product_in(sku="SKU-1"))
    stock = services.documents.container("inventory").read("SKU-1", "SKU-1")
    assert stock["productId"] == stored.document["id"]


def test_update_replaces_content_releases_dropped_skus_and_announces(
    catalog: CatalogService, services: Services
) -> None:
    created = catalog.create_product(product_in())
    pid = created.document["id"]
    updated = catalog.update_product(
        pid, product_in(title="OPPO A92s", sku="OPPO-A92S-1"), if_match=created.etag
    )
    assert updated.document["title"] == "OPPO A92s"
    assert updated.document["createdAt"] == created.document["createdAt"]
    inventory = services.documents.container("inventory")
    assert [d["id"] for d in inventory.query(Query()).items] == ["OPPO-A92S-1"]
    # The old SKU is free again for another product.
    catalog.create_product(product_in(title="Reissue"))
    with pytest.raises(StaleProduct):
        catalog.update_product(pid, product_in(sku="OPPO-A92S-1"), if_match=created.etag)
    types = [e["type"] for e in outbox_events(services, "catalog", pid)]
    assert types == ["product.created", "product.updated"]


def test_archive_announces_once(catalog: CatalogService, services: Services) -> None:
    pid = catalog.create_product(product_in()).document["id"]
    assert catalog.archive_product(pid).document["status"] == "archived"
    assert catalog.archive_product(pid).document["status"] == "archived"
    types = [e["type"] for e in outbox_events(services, "catalog", pid)]
    assert types == ["product.created", "product.archived"]


def test_set_inventory_keeps_reserved_and_announces(
    catalog: CatalogService, services: Services
) -> None:
    pid = catalog.create_product(product_in()).document["id"]
    inventory = services.documents.container("inventory")
    doc = inventory.read("OPPO-A92-128-BLK", "OPPO-A92-128-BLK")
    inventory.replace(dict(doc, reserved=3))
    result = catalog.set_inventory("OPPO-A92-128-BLK", 17)
    assert (result.available, result.reserved, result.on_hand) == (17, 3, 20)
    events = outbox_events(services, "inventory", "OPPO-A92-128-BLK")
    assert [(e["type"], e["data"]) for e in events] == [
        (
            "inventory.changed",
            {
                "sku": "OPPO-A92-128-BLK",
                "productId": pid,
                "available": 17,
                "availableBefore": 0,
                "onHand": 20,
                "reserved": 3,
                "move": "set",
                "quantity": 20,
                "reference": "admin",
                "outSince": None,
                "stockOut": None,
            },
        )
    ]
    assert catalog.set_inventory("OPPO-A92-128-BLK", on_hand=2).to_public() == {
        "sku": "OPPO-A92-128-BLK",
        "productId": pid,
        "onHand": 2,
        "reserved": 3,
        "available": 0,
        "shortfall": 1,
        "updatedAt": catalog.get_inventory("OPPO-A92-128-BLK").updated_at,
    }
    with pytest.raises(SkuNotFound):
        catalog.set_inventory("NOPE", 1)


def test_categories_tree_and_duplicates(catalog: CatalogService) -> None:
    with pytest.raises(CategoryExists):
        catalog.create_category(CategoryIn(id="phones", name="Again"))
    with pytest.raises(UnknownCategory):
        catalog.create_category(CategoryIn(id="x", name="X", parent_id="missing"))
    tree = catalog.category_tree()
    assert [n["id"] for n in tree] == ["electronics", "kitchen"]
    assert tree[0]["children"][0]["id"] == "phones"
    assert tree[0]["children"][0]["children"][0]["id"] == "android"
    assert sorted(catalog.category_with_descendants("electronics")) == [
        "android",
        "electronics",
        "phones",
    ]


def test_list_filters_sorts_and_pages(catalog: CatalogService) -> None:
    prices = [5, 3, 9, 1, 7]
    for index, price in enumerate(prices):
        catalog.create_product(
            product_in(
                title=f"Phone {index}",
                sku=f"SKU-{index}",
                amount=price * 1000,
                category="android" if index % 2 else "phones",
            )
        )
    catalog.create_product(product_in(title="Draft", sku="D-1", status="draft"))
    catalog.create_product(product_in(title="Pan", sku="P-1", category="kitchen", brand="Lodge"))

    seen: list[int] = []
    cursor = None
    while True:
        items, cursor = catalog.list_products(
            category="electronics", sort="price_asc", limit=2, cursor=cursor
        )
        seen.extend(i["minPrice"]["amount"] // 1000 for i in items)
        if cursor is None:
            break
    assert seen == sorted(prices)

    items, _ = catalog.list_products(category="android", sort="price_desc", limit=10)
    assert [(i["title"], i["minPrice"]["amount"]) for i in items] == [
        ("Phone 1", 3000),
        ("Phone 3", 1000),
    ]
    items, _ = catalog.list_products(brand="lodge")
    assert [i["title"] for i in items] == ["Pan"]

    _, cursor = catalog.list_products(sort="title", limit=1)
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        catalog.list_products(sort="newest", limit=1, cursor=cursor)
    with pytest.raises(InvalidCursor):
        catalog.list_products(cursor="not-a-cursor")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"variants": []}, "variants"),
        ({"status": "deleted"}, "status"),
        ({"variants": [{"sku": "A", "price": {"amount": 0, "currency": "INR"}}]}, "amount"),
        ({"variants": [{"sku": "A", "price": {"amount": 10, "currency": "inr"}}]}, "currency"),
        (
            {
                "variants": [
                    {
                        "sku": "A",
                        "price": {"amount": 10, "currency": "INR"},
                        "compareAtPrice": {"amount": 9, "currency": "INR"},
                    }
                ]
            },
            "compareAtPrice",
        ),
        (
            {
                "variants": [
                    {"sku": "A", "price": {"amount": 10, "currency": "INR"}},
                    {"sku": "A", "price": {"amount": 11, "currency": "INR"}},
                ]
            },
            "twice",
        ),
        ({"attributes": {"storage": "lots"}}, "size"),
    ],
)
def test_invalid_products_are_rejected(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProductIn.model_validate(product_body(**change))
    assert needle in str(info.value)


def test_sizes_are_normalised() -> None:
    body = ProductIn.model_validate(
        product_body(attributes={"storage": "64gb", "screenSize": '6.5"', "model": "CPH2059"})
    )
    assert body.attributes.to_json() == {
        "storage": "64 GB",
        "screenSize": "6.5 in",
        "model": "CPH2059",
    }
