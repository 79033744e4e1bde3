"""The demo shop: categories, 300+ products and their stock, loaded by `cloudcart seed`
and `cloudcart serve --demo`.

Everything is written through `CatalogService`, the same code the admin API uses, so the
documents are valid, each change lands in the outbox with its event, and the search
indexer sees the demo catalog exactly as it would see a real one. Loading happens once,
into an empty catalog only, so restarting never duplicates or overwrites what a user
changed. The data is deterministic (no randomness): ids, SKUs, prices and stock are the
same on every machine, which the relevance benchmark's judgments
(benchmarks/relevance_queries.json) rely on; tests/unit/test_demo_data.py pins a digest of
the whole generated catalog, so a change to it is always deliberate.

The facts live in `demo_catalog.json` next to this module, shipped as package data: one
row per real-world item (a phone with its storage options and colours, a case style, a
laptop, a kettle), not the expanded products. Expanded, the same shop is 468 variants whose
titles, descriptions and SKUs repeat what the row already says; as facts it is about 300
reviewable lines, and a phone edited there regenerates its variants and SKUs consistently.
JSON rather than CSV because rows are nested (configurations, colours, attributes); one
record per line keeps a diff to the rows it changes. The rules stay here, in code: titles,
descriptions, variants, slugs, SKUs, compare-at prices and stock.

Prices are INR: whole rupees in the data file, minor units (paise) in the products.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.service import CATEGORIES_PARTITION, CatalogService
from cloudcart.composition import Services
from cloudcart.core.ports.documents import Query, first

log = logging.getLogger(__name__)

DATA_FILE = "demo_catalog.json"
"""The demo shop's facts, a resource of this package."""


class _Row(BaseModel):
    # Unknown keys are refused so that a misspelt field in the data file fails loudly
    # instead of silently dropping a fact.
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class _Category(_Row):
    id: str
    name: str
    parent: str | None


class _PhoneConfig(_Row):
    storage: int
    ram: int | None
    price: int


class _Phone(_Row):
    brand: str
    model: str
    os: str
    screen: str
    chip: str
    camera: int
    battery: int
    configs: tuple[_PhoneConfig, ...]
    colours: tuple[str, ...]


class _CaseKind(_Row):
    kind: str
    blurb: str
    colour: str
    material: str
    price: int


class _Cases(_Row):
    makers: tuple[str, ...]
    kinds: tuple[_CaseKind, ...]


class _ScreenProtectors(_Row):
    makers: tuple[str, ...]
    price: int


class _Charger(_Row):
    title: str
    brand: str
    power: str
    connector: str
    compatible_with: str
    price: int


class _Cable(_Row):
    title: str
    brand: str
    connector: str
    price: int


class _Laptop(_Row):
    brand: str
    model: str
    screen: str
    chip: str
    ram: int
    storage: int
    os: str
    price: int


class _TabletConfig(_Row):
    storage: int
    price: int


class _Tablet(_Row):
    brand: str
    model: str
    screen: str
    chip: str
    os: str
    configs: tuple[_TabletConfig, ...]


class _Simple(_Row):
    """A product stated in full, sold as a single variant."""

    title: str
    brand: str
    description: str
    attributes: dict[str, str]
    price: int


class _Apparel(_Row):
    title: str
    brand: str
    description: str
    material: str
    colour: str | None = None
    price: int


class _Sized(_Row):
    """Apparel rows, each sold in every one of `sizes`."""

    sizes: tuple[str, ...]
    items: tuple[_Apparel, ...]


class _Facts(_Row):
    description: str
    categories: tuple[_Category, ...]
    phones: tuple[_Phone, ...]
    cases: _Cases
    screen_protectors: _ScreenProtectors
    chargers: tuple[_Charger, ...]
    cables: tuple[_Cable, ...]
    laptops: tuple[_Laptop, ...]
    tablets: tuple[_Tablet, ...]
    simple: dict[str, tuple[_Simple, ...]]
    """Category id to its products."""
    clothing: _Sized
    footwear: _Sized


def _load_facts() -> _Facts:
    # Read as a package resource, not beside __file__, so it works from any installed form.
    text = resources.files("cloudcart.local").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return _Facts.model_validate_json(text)


_FACTS = _load_facts()

CATEGORY_PARTITION = CATEGORIES_PARTITION
"""Partition of the catalog container that holds every category."""

CATEGORIES: tuple[tuple[str, str, str | None], ...] = tuple(
    (c.id, c.name, c.parent) for c in _FACTS.categories
)
"""(id, name, parent id) of every demo category, parents first."""

_PHONES_WITH_CASES = 52
"""The first this many phones of the table get a case; every second phone a screen protector."""


@dataclass
class _Item:
    title: str
    brand: str
    category: str
    description: str
    attributes: dict[str, Any]
    variants: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    """(variant attributes, price in rupees)."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _sku(*parts: str) -> str:
    words = [w for p in parts for w in re.split(r"[^A-Za-z0-9]+", p.upper()) if w]
    return "-".join(words)[:64]


def _phone_title(phone: _Phone) -> str:
    # Apple sells "iPhone 15", not "Apple iPhone 15"; the others lead with the brand.
    return phone.model if phone.brand == "Apple" else f"{phone.brand} {phone.model}"


def _phone_items(facts: _Facts) -> Iterator[_Item]:
    for phone in facts.phones:
        rams = [c.ram for c in phone.configs if c.ram]
        ram_text = f", up to {max(rams)} GB RAM" if rams else ""
        item = _Item(
            title=_phone_title(phone),
            brand=phone.brand,
            category="phones",
            description=(
                f"{phone.brand} {phone.os} smartphone with a {phone.screen} inch display, "
                f"{phone.chip}, {phone.camera} MP main camera and {phone.battery} mAh "
                f"battery{ram_text}."
            ),
            attributes={
                "os": phone.os,
                "screenSize": f"{phone.screen} in",
                "model": phone.model,
                "processor": phone.chip,
                "camera": f"{phone.camera} MP",
                "battery": f"{phone.battery} mAh",
            },
        )
        # Every colour in the base configuration, the first colour only in the larger ones,
        # as shops usually stock them.
        for index, config in enumerate(phone.configs):
            colours = phone.colours if index == 0 else phone.colours[:1]
            for colour in colours:
                attrs: dict[str, Any] = {"storage": f"{config.storage} GB", "colour": colour}
                if config.ram is not None:
                    attrs["ram"] = f"{config.ram} GB"
                item.variants.append((attrs, config.price))
        yield item


def _accessory_items(facts: _Facts) -> Iterator[_Item]:
    phones = [_phone_title(p) for p in facts.phones]
    cases = facts.cases
    for index, name in enumerate(phones[:_PHONES_WITH_CASES]):
        # Makers and styles rotate through the phones; prices step so that sorting by
        # price has something to sort.
        kind = cases.kinds[index % len(cases.kinds)]
        yield _Item(
            f"{kind.kind} for {name}",
            cases.makers[index % len(cases.makers)],
            "phone-cases",
            f"{kind.blurb}. Made for the {name}, with precise cut-outs for buttons and cameras.",
            {"compatibleWith": name, "material": kind.material},
            [({"colour": kind.colour}, kind.price + (index % 3) * 100)],
        )
    protectors = facts.screen_protectors
    for index, name in enumerate(phones[::2]):
        yield _Item(
            f"Tempered Glass Screen Protector for {name} (2 pack)",
            protectors.makers[index % len(protectors.makers)],
            "screen-protectors",
            f"9H tempered glass with easy alignment frame, fits the {name}.",
            {"compatibleWith": name, "material": "Tempered glass"},
            [({}, protectors.price + (index % 4) * 100)],
        )
    for charger in facts.chargers:
        yield _Item(
            charger.title,
            charger.brand,
            "chargers",
            f"{charger.power} fast charging ({charger.connector}) for {charger.compatible_with}.",
            {
                "power": charger.power,
                "connector": charger.connector,
                "compatibleWith": charger.compatible_with,
            },
            [({}, charger.price)],
        )
    for cable in facts.cables:
        yield _Item(
            cable.title,
            cable.brand,
            "chargers",
            f"Charge and sync cable with a {cable.connector} connector, tested for 10000 bends.",
            {"connector": cable.connector},
            [({}, cable.price)],
        )


def _laptop_items(facts: _Facts) -> Iterator[_Item]:
    for laptop in facts.laptops:
        yield _Item(
            f"{laptop.brand} {laptop.model}",
            laptop.brand,
            "laptops",
            f"{laptop.screen} inch laptop with {laptop.chip}, {laptop.ram} GB RAM and "
            f"{laptop.storage} GB SSD.",
            {
                "os": laptop.os,
                "screenSize": f"{laptop.screen} in",
                "processor": laptop.chip,
                "ram": f"{laptop.ram} GB",
                "storage": f"{laptop.storage} GB",
                "model": laptop.model,
            },
            [({}, laptop.price)],
        )


def _tablet_items(facts: _Facts) -> Iterator[_Item]:
    for tablet in facts.tablets:
        yield _Item(
            f"{tablet.brand} {tablet.model}",
            tablet.brand,
            "tablets",
            f"{tablet.screen} inch tablet with {tablet.chip}; great for streaming, notes and "
            "video calls.",
            {
                "os": tablet.os,
                "screenSize": f"{tablet.screen} in",
                "processor": tablet.chip,
                "model": tablet.model,
            },
            [
                ({"storage": f"{c.storage} GB", "connectivity": "Wi-Fi"}, c.price)
                for c in tablet.configs
            ],
        )


def _simple_items(facts: _Facts, category: str) -> Iterator[_Item]:
    for row in facts.simple[category]:
        # Copied: callers may change an item without touching the loaded facts.
        attributes: dict[str, Any] = dict(row.attributes)
        yield _Item(row.title, row.brand, category, row.description, attributes, [({}, row.price)])


def _sized_items(category: str, sized: _Sized) -> Iterator[_Item]:
    for row in sized.items:
        colour = {} if row.colour is None else {"colour": row.colour}
        yield _Item(
            row.title,
            row.brand,
            category,
            row.description,
            {"material": row.material},
            [({"size": size, **colour}, row.price) for size in sized.sizes],
        )


def demo_items() -> list[_Item]:
    """Every demo product, in a fixed order."""
    facts = _FACTS
    return [
        *_phone_items(facts),
        *_accessory_items(facts),
        *_laptop_items(facts),
        *_tablet_items(facts),
        *_simple_items(facts, "audio"),
        *_simple_items(facts, "wearables"),
        *_simple_items(facts, "kitchen"),
        *_simple_items(facts, "home-decor"),
        *_sized_items("clothing", facts.clothing),
        *_sized_items("footwear", facts.footwear),
        *_simple_items(facts, "sports"),
    ]


def demo_stock(sku: str) -> int:
    """Deterministic stock for a SKU: mostly in stock, about one in twelve sold out."""
    value = zlib.crc32(sku.encode())
    return 0 if value % 12 == 0 else 3 + value % 60


def demo_products() -> list[tuple[str, ProductIn]]:
    """(product id, validated product) for every demo product; ids are title slugs."""
    products: list[tuple[str, ProductIn]] = []
    for item in demo_items():
        variants = []
        for attributes, price in item.variants:
            suffix = [str(v) for k, v in attributes.items() if k in ("storage", "colour", "size")]
            sku = _sku(item.title, *suffix)
            variants.append(
                {
                    "sku": sku,
                    "attributes": attributes,
                    "price": {"amount": price * 100, "currency": "INR"},
                    # A struck-through "was" price on some items, as shops show them.
                    "compareAtPrice": (
                        {"amount": price * 115, "currency": "INR"}
                        if zlib.crc32(sku.encode()) % 4 == 0
                        else None
                    ),
                }
            )
        body = {
            "title": item.title,
            "brand": item.brand,
            "categoryId": item.category,
            "description": item.description,
            "attributes": item.attributes,
            "variants": variants,
            "status": "active",
        }
        products.append((_slug(item.title), ProductIn.model_validate(body)))
    return products


def _catalog_is_empty(services: Services) -> bool:
    return first(services.documents.container("catalog"), Query()) is None


def seed(services: Services) -> bool:
    """Load the demo shop into an empty catalog; return whether anything was loaded.

    Writes through `CatalogService`, so every product and stock level is announced in the
    outbox (`product.created`, `inventory.changed`) and the search index fills itself.
    """
    services.documents.ensure_containers()
    if not _catalog_is_empty(services):
        log.info("demo data skipped: the catalog is not empty")
        return False
    catalog = CatalogService(services.documents, correlation_id="demo-seed")
    for category_id, name, parent in CATEGORIES:
        catalog.create_category(CategoryIn(id=category_id, name=name, parent_id=parent))
    skus = 0
    products = demo_products()
    for product_id, body in products:
        catalog.create_product(body, product_id=product_id)
        for variant in body.variants:
            catalog.set_inventory(variant.sku, demo_stock(variant.sku))
            skus += 1
    log.info(
        "demo data loaded",
        extra={"categories": len(CATEGORIES), "products": len(products), "skus": skus},
    )
    return True


load_demo_data = seed
"""The name `cloudcart serve --demo` imports."""
