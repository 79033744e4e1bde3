"""Demo data for `cloudcart serve --demo`: a small shop so a new user sees something real.

Loaded once, into an empty store only, so restarting `make run` never duplicates or
overwrites what a user changed. Documents use the catalog's public field names (title,
brand, categoryId, attributes, variants with SKU and price in minor units).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from cloudcart.core.clock import utcnow
from cloudcart.core.documents.port import BatchOp, Document, DocumentStore, Query
from cloudcart.core.services import Services

log = logging.getLogger(__name__)

CATEGORY_PARTITION = "_categories"
"""Categories share one partition of the catalog container: they are few and read together."""

CATEGORIES: tuple[tuple[str, str, str | None], ...] = (
    ("electronics", "Electronics", None),
    ("phones", "Phones", "electronics"),
    ("phone-accessories", "Phone accessories", "electronics"),
    ("laptops", "Laptops", "electronics"),
    ("audio", "Audio", "electronics"),
    ("home", "Home", None),
    ("kitchen", "Kitchen", "home"),
    ("fashion", "Fashion", None),
)

# (title, brand, category, description, attributes, [(storage, ram, colour, price)], stock)
_Variant = tuple[str | None, str | None, str, int]
_PHONES: tuple[tuple[str, str, str, dict[str, str], list[_Variant]], ...] = (
    (
        "OPPO A92",
        "OPPO",
        "6.5 inch punch-hole display, 5000 mAh battery, 48 MP quad camera",
        {"os": "Android", "screenSize": "6.5 in"},
        [("128 GB", "8 GB", "Black", 24990), ("128 GB", "8 GB", "White", 24990)],
    ),
    (
        "OPPO Reno 10",
        "OPPO",
        "6.7 inch AMOLED, 64 MP telephoto portrait camera, 67 W SUPERVOOC charging",
        {"os": "Android", "screenSize": "6.7 in"},
        [("256 GB", "8 GB", "Silvery Grey", 32999)],
    ),
    (
        "OnePlus Nord CE 3 Lite",
        "OnePlus",
        "6.72 inch 120 Hz display, 108 MP camera, 5000 mAh battery",
        {"os": "Android", "screenSize": "6.72 in"},
        [("64 GB", "6 GB", "Pastel Lime", 17999), ("128 GB", "8 GB", "Chromatic Gray", 19999)],
    ),
    (
        "OnePlus 11R",
        "OnePlus",
        "Snapdragon 8+ Gen 1, 6.74 inch 120 Hz AMOLED, 100 W charging",
        {"os": "Android", "screenSize": "6.74 in"},
        [("128 GB", "8 GB", "Galactic Silver", 39999), ("256 GB", "16 GB", "Sonic Black", 44999)],
    ),
    (
        "OnePlus Nord N20",
        "OnePlus",
        "6.43 inch AMOLED, 64 MP triple camera, 33 W fast charging",
        {"os": "Android", "screenSize": "6.43 in"},
        [("64 GB", "4 GB", "Blue Smoke", 15999)],
    ),
    (
        "Samsung Galaxy S23",
        "Samsung",
        "6.1 inch Dynamic AMOLED 2X, Snapdragon 8 Gen 2 for Galaxy, 50 MP camera",
        {"os": "Android", "screenSize": "6.1 in"},
        [("128 GB", "8 GB", "Phantom Black", 74999), ("256 GB", "8 GB", "Cream", 79999)],
    ),
    (
        "Samsung Galaxy A14",
        "Samsung",
        "6.6 inch display, 50 MP triple camera, 5000 mAh battery",
        {"os": "Android", "screenSize": "6.6 in"},
        [("64 GB", "4 GB", "Light Green", 13999)],
    ),
    (
        "Apple iPhone 15",
        "Apple",
        "6.1 inch Super Retina XDR, Dynamic Island, 48 MP main camera, USB-C",
        {"os": "iOS", "screenSize": "6.1 in"},
        [("128 GB", None, "Black", 79900), ("256 GB", None, "Pink", 89900)],
    ),
    (
        "Apple iPhone 13",
        "Apple",
        "6.1 inch Super Retina XDR, A15 Bionic, dual 12 MP camera",
        {"os": "iOS", "screenSize": "6.1 in"},
        [("128 GB", None, "Midnight", 59900)],
    ),
    (
        "Google Pixel 8",
        "Google",
        "6.2 inch Actua display, Google Tensor G3, seven years of OS updates",
        {"os": "Android", "screenSize": "6.2 in"},
        [("128 GB", "8 GB", "Obsidian", 75999)],
    ),
    (
        "Xiaomi Redmi Note 12",
        "Xiaomi",
        "6.67 inch AMOLED, 50 MP camera, 5000 mAh battery",
        {"os": "Android", "screenSize": "6.67 in"},
        [("64 GB", "4 GB", "Onyx Gray", 14999), ("128 GB", "6 GB", "Ice Blue", 16999)],
    ),
)

_OTHERS: tuple[tuple[str, str, str, str, dict[str, str], int], ...] = (
    (
        "Silicone Case for OPPO A92",
        "Spigen",
        "phone-accessories",
        "Slim shock-absorbing case made for the OPPO A92",
        {"compatibleWith": "OPPO A92", "colour": "Black"},
        999,
    ),
    (
        "Clear Case for OnePlus 11R",
        "Spigen",
        "phone-accessories",
        "Crystal clear TPU case for the OnePlus 11R with raised camera lip",
        {"compatibleWith": "OnePlus 11R", "colour": "Clear"},
        1199,
    ),
    (
        "MagSafe Case for iPhone 15",
        "Apple",
        "phone-accessories",
        "Silicone case with MagSafe for iPhone 15",
        {"compatibleWith": "iPhone 15", "colour": "Storm Blue"},
        4900,
    ),
    (
        "65 W SUPERVOOC Charger",
        "OPPO",
        "phone-accessories",
        "USB-C fast charger for OPPO and OnePlus phones",
        {"power": "65 W", "connector": "USB-C"},
        2990,
    ),
    (
        "20 W USB-C Power Adapter",
        "Apple",
        "phone-accessories",
        "Fast charging for iPhone",
        {"power": "20 W", "connector": "USB-C"},
        1900,
    ),
    (
        "MacBook Air 13 M2",
        "Apple",
        "laptops",
        "13.6 inch Liquid Retina, Apple M2 chip, 18 hours battery",
        {"os": "macOS", "screenSize": "13.6 in", "storage": "256 GB", "ram": "8 GB"},
        114900,
    ),
    (
        "ThinkPad E14 Gen 5",
        "Lenovo",
        "laptops",
        "14 inch WUXGA, Intel Core i5, spill-resistant keyboard",
        {"os": "Windows 11", "screenSize": "14 in", "storage": "512 GB", "ram": "16 GB"},
        72990,
    ),
    (
        "WH-1000XM5 Wireless Headphones",
        "Sony",
        "audio",
        "Noise cancelling over-ear headphones, 30 hours battery",
        {"connectivity": "Bluetooth 5.2", "colour": "Black"},
        29990,
    ),
    (
        "Buds 2 Pro",
        "OnePlus",
        "audio",
        "True wireless earbuds with adaptive noise cancellation",
        {"connectivity": "Bluetooth 5.3", "colour": "Obsidian Black"},
        11999,
    ),
    (
        "Cast Iron Skillet 26 cm",
        "Lodge",
        "kitchen",
        "Pre-seasoned cast iron pan for stove, oven and campfire",
        {"material": "Cast iron", "diameter": "26 cm"},
        3499,
    ),
    (
        "Classic Cotton T-Shirt",
        "Uniqlo",
        "fashion",
        "Crew neck T-shirt in soft cotton",
        {"material": "Cotton", "colour": "Navy"},
        990,
    ),
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _sku(title: str, *parts: str | None) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", title.upper()) if w]
    tail = [re.sub(r"[^A-Z0-9]", "", p.upper().replace(" GB", "")) for p in parts if p]
    return "-".join(words + tail)[:64]


def demo_documents() -> tuple[list[Document], list[Document], list[Document]]:
    """The demo categories, products and inventory documents (deterministic)."""
    now = utcnow().isoformat()
    categories: list[Document] = [
        {
            "id": cid,
            "type": "category",
            "categoryId": CATEGORY_PARTITION,
            "name": name,
            "parentId": parent,
            "slug": cid,
        }
        for cid, name, parent in CATEGORIES
    ]
    products: list[Document] = []
    inventory: list[Document] = []

    def add(
        title: str,
        brand: str,
        category: str,
        description: str,
        attributes: dict[str, str],
        variants: list[dict[str, Any]],
    ) -> None:
        products.append(
            {
                "id": _slug(title),
                "type": "product",
                "title": title,
                "slug": _slug(title),
                "brand": brand,
                "categoryId": category,
                "description": description,
                "attributes": attributes,
                "variants": variants,
                "media": [],
                "status": "active",
                "createdAt": now,
                "updatedAt": now,
            }
        )
        for index, variant in enumerate(variants):
            inventory.append(
                {"id": variant["sku"], "sku": variant["sku"], "available": 25 + 7 * index}
            )

    for title, brand, description, attributes, phone_variants in _PHONES:
        variants = []
        for storage, ram, colour, price in phone_variants:
            variant_attributes = {"storage": storage, "ram": ram, "colour": colour}
            variants.append(
                {
                    "sku": _sku(title, storage, colour),
                    "attributes": {k: v for k, v in variant_attributes.items() if v},
                    "price": {"amount": price * 100, "currency": "INR"},
                }
            )
        add(title, brand, "phones", description, attributes, variants)

    for title, brand, category, description, attributes, price in _OTHERS:
        add(
            title,
            brand,
            category,
            description,
            attributes,
            [
                {
                    "sku": _sku(title),
                    "attributes": {},
                    "price": {"amount": price * 100, "currency": "INR"},
                }
            ],
        )
    return categories, products, inventory


def load_demo_data(services: Services) -> bool:
    """Load the demo shop into an empty catalog; return whether anything was loaded."""
    store: DocumentStore = services.documents
    store.ensure_containers()
    catalog = store.container("catalog")
    if catalog.query(Query(limit=1)).items:
        log.info("demo data skipped: the catalog is not empty")
        return False
    categories, products, inventory = demo_documents()
    catalog.batch(CATEGORY_PARTITION, [BatchOp("create", document=c) for c in categories])
    for product in products:
        catalog.create(product)
    stock = store.container("inventory")
    for item in inventory:
        stock.upsert(item)
    log.info(
        "demo data loaded",
        extra={"categories": len(categories), "products": len(products), "skus": len(inventory)},
    )
    return True
