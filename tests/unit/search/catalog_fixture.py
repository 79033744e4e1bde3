"""A small hand-written catalog for the search tests (independent of the demo data)."""

from __future__ import annotations

from typing import Any

from cloudcart.core.search.documents import to_search_document

CATEGORIES = [
    {"id": "phones", "pk": "categories", "type": "category", "name": "Phones"},
    {
        "id": "phone-accessories",
        "pk": "categories",
        "type": "category",
        "name": "Phone accessories",
    },
    {"id": "laptops", "pk": "categories", "type": "category", "name": "Laptops"},
    {"id": "audio", "pk": "categories", "type": "category", "name": "Audio"},
    {"id": "kitchen", "pk": "categories", "type": "category", "name": "Kitchen"},
]

# (id, title, brand, category, description, attributes, [(sku, storage, price, stock)], created)
_ROWS: list[
    tuple[str, str, str, str, str, dict[str, str], list[tuple[str, str | None, int, int]], str]
] = [
    (
        "oppo-a92",
        "OPPO A92",
        "OPPO",
        "phones",
        "6.5 inch punch-hole display, 5000 mAh battery",
        {"os": "Android", "screenSize": "6.5 in"},
        [("OPPO-A92-128", "128 GB", 24990, 5)],
        "2024-01-01",
    ),
    (
        "oppo-a52",
        "OPPO A52",
        "OPPO",
        "phones",
        "6.5 inch display, quad camera",
        {"os": "Android"},
        [("OPPO-A52-64", "64 GB", 15990, 3)],
        "2024-01-02",
    ),
    (
        "oppo-reno-10",
        "OPPO Reno 10",
        "OPPO",
        "phones",
        "6.7 inch AMOLED, 64 MP telephoto camera",
        {"os": "Android"},
        [("OPPO-RENO10-256", "256 GB", 32999, 2)],
        "2024-01-03",
    ),
    (
        "oneplus-nord-n20",
        "OnePlus Nord N20",
        "OnePlus",
        "phones",
        "6.43 inch AMOLED, 64 MP camera",
        {"os": "Android"},
        [("OP-N20-64", "64 GB", 15999, 4)],
        "2024-01-04",
    ),
    (
        "oneplus-nord-ce3",
        "OnePlus Nord CE 3 Lite",
        "OnePlus",
        "phones",
        "120 Hz display, 108 MP camera",
        {"os": "Android"},
        [("OP-CE3-64", "64 GB", 17999, 0), ("OP-CE3-128", "128 GB", 19999, 6)],
        "2024-01-05",
    ),
    (
        "oneplus-11r",
        "OnePlus 11R",
        "OnePlus",
        "phones",
        "Snapdragon 8+ Gen 1, 100 W charging",
        {"os": "Android"},
        [("OP-11R-128", "128 GB", 39999, 1), ("OP-11R-256", "256 GB", 44999, 1)],
        "2024-01-06",
    ),
    (
        "galaxy-a14",
        "Samsung Galaxy A14",
        "Samsung",
        "phones",
        "6.6 inch display, 50 MP camera",
        {"os": "Android"},
        [("SM-A14-64", "64 GB", 13999, 9)],
        "2024-01-07",
    ),
    (
        "galaxy-s23",
        "Samsung Galaxy S23",
        "Samsung",
        "phones",
        "Dynamic AMOLED 2X, 50 MP camera",
        {"os": "Android"},
        [("SM-S23-128", "128 GB", 74999, 2)],
        "2024-01-08",
    ),
    (
        "iphone-15",
        "Apple iPhone 15",
        "Apple",
        "phones",
        "Super Retina XDR display, USB-C",
        {"os": "iOS"},
        [("IP15-128", "128 GB", 79900, 3)],
        "2024-01-09",
    ),
    (
        "pixel-8",
        "Google Pixel 8",
        "Google",
        "phones",
        "Google Tensor G3, seven years of updates",
        {"os": "Android"},
        [("PX8-128", "128 GB", 75999, 0)],
        "2024-01-10",
    ),
    (
        "case-oppo-a92",
        "Silicone Case for OPPO A92",
        "Spigen",
        "phone-accessories",
        "Slim case made for the OPPO A92 phone",
        {"compatibleWith": "OPPO A92"},
        [("SPG-A92", None, 999, 10)],
        "2024-01-11",
    ),
    (
        "case-android",
        "Rugged Android Phone Case",
        "Spigen",
        "phone-accessories",
        "Universal rugged case for Android phones up to 6.7 inch",
        {"os": "Android"},
        [("SPG-RUG", None, 1499, 10)],
        "2024-01-12",
    ),
    (
        "case-oneplus-11r",
        "Clear Case for OnePlus 11R",
        "Spigen",
        "phone-accessories",
        "Crystal clear case for the OnePlus 11R, 64 GB and 128 GB models",
        {},
        [("SPG-11R", None, 1199, 10)],
        "2024-01-13",
    ),
    (
        "charger-supervooc",
        "65 W SUPERVOOC Charger",
        "OPPO",
        "phone-accessories",
        "USB-C fast charger for OPPO and OnePlus phones",
        {},
        [("OPPO-CHG65", None, 2990, 10)],
        "2024-01-14",
    ),
    (
        "macbook-air",
        "MacBook Air 13 M2",
        "Apple",
        "laptops",
        "Apple M2 chip, 18 hours battery",
        {"os": "macOS", "storage": "256 GB"},
        [("MBA-M2", None, 114900, 1)],
        "2024-01-15",
    ),
    (
        "sony-xm5",
        "WH-1000XM5 Wireless Headphones",
        "Sony",
        "audio",
        "Noise cancelling over-ear headphones",
        {},
        [("SONY-XM5", None, 29990, 1)],
        "2024-01-16",
    ),
    (
        "skillet",
        "Cast Iron Skillet 26 cm",
        "Lodge",
        "kitchen",
        "Pre-seasoned cast iron pan",
        {},
        [("LODGE-26", None, 3499, 1)],
        "2024-01-17",
    ),
    (
        "draft-phone",
        "OPPO A92 Prototype",
        "OPPO",
        "phones",
        "Not for sale",
        {"os": "Android"},
        [("OPPO-PROTO", "64 GB", 1, 1)],
        "2024-01-18",
    ),
]


def catalog() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Categories, products (catalog container documents) and inventory documents."""
    products: list[dict[str, Any]] = []
    inventory: list[dict[str, Any]] = []
    for pid, title, brand, category, description, attributes, variants, created in _ROWS:
        products.append(
            {
                "id": pid,
                "pk": pid,
                "type": "product",
                "title": title,
                "slug": pid,
                "brand": brand,
                "categoryId": category,
                "description": description,
                "attributes": attributes,
                "variants": [
                    {
                        "sku": sku,
                        "attributes": {"storage": storage} if storage else {},
                        "price": {"amount": price, "currency": "INR"},
                        "compareAtPrice": None,
                    }
                    for sku, storage, price, _ in variants
                ],
                "media": [],
                "status": "draft" if pid == "draft-phone" else "active",
                "createdAt": created + "T00:00:00+00:00",
                "updatedAt": created + "T00:00:00+00:00",
            }
        )
        for sku, _, _, stock in variants:
            inventory.append(
                {"id": sku, "sku": sku, "productId": pid, "available": stock, "reserved": 0}
            )
    return CATEGORIES, products, inventory


def search_documents() -> list[dict[str, Any]]:
    """The fixture catalog as search documents (active products only)."""
    categories, products, inventory = catalog()
    stock = {d["sku"]: d for d in inventory}
    by_id = {c["id"]: c for c in categories}
    docs = [to_search_document(p, stock, by_id.get(p["categoryId"])) for p in products]
    return [d for d in docs if d is not None]
