"""The demo shop: categories, 300+ products and their stock, loaded by `cloudcart seed`
and `cloudcart serve --demo`.

Everything is written through `CatalogService`, the same code the admin API uses, so the
documents are valid, each change lands in the outbox with its event, and the search
indexer sees the demo catalog exactly as it would see a real one. Loading happens once,
into an empty catalog only, so restarting never duplicates or overwrites what a user
changed. The data is deterministic (no randomness): ids, SKUs, prices and stock are the
same on every machine, which the relevance benchmark's judgments rely on.

Prices are INR in minor units (paise).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.service import CATEGORIES_PARTITION, CatalogService
from cloudcart.core.documents.port import Query, first
from cloudcart.core.services import Services

log = logging.getLogger(__name__)

CATEGORY_PARTITION = CATEGORIES_PARTITION
"""Partition of the catalog container that holds every category."""

CATEGORIES: tuple[tuple[str, str, str | None], ...] = (
    ("electronics", "Electronics", None),
    ("phones", "Mobile Phones", "electronics"),
    ("phone-accessories", "Phone Accessories", "electronics"),
    ("phone-cases", "Cases & Covers", "phone-accessories"),
    ("screen-protectors", "Screen Protectors", "phone-accessories"),
    ("chargers", "Chargers & Cables", "phone-accessories"),
    ("laptops", "Laptops", "electronics"),
    ("tablets", "Tablets", "electronics"),
    ("audio", "Headphones & Speakers", "electronics"),
    ("wearables", "Smartwatches & Bands", "electronics"),
    ("home", "Home", None),
    ("kitchen", "Kitchen & Dining", "home"),
    ("home-decor", "Home Decor", "home"),
    ("fashion", "Fashion", None),
    ("clothing", "Clothing", "fashion"),
    ("footwear", "Footwear", "fashion"),
    ("sports", "Sports & Fitness", None),
)


@dataclass(frozen=True)
class _Phone:
    brand: str
    model: str
    os: str
    screen: str
    chip: str
    camera: int
    battery: int
    configs: tuple[tuple[int, int | None, int], ...]
    """(storage GB, RAM GB or None, price in rupees)."""
    colours: tuple[str, ...]


def _p(
    brand: str,
    model: str,
    screen: str,
    chip: str,
    camera: int,
    battery: int,
    configs: tuple[tuple[int, int | None, int], ...],
    colours: tuple[str, ...],
    os: str = "Android",
) -> _Phone:
    return _Phone(brand, model, os, screen, chip, camera, battery, configs, colours)


_IOS = "iOS"
PHONES: tuple[_Phone, ...] = (
    # OPPO
    _p(
        "OPPO",
        "A92",
        "6.5",
        "Snapdragon 665",
        48,
        5000,
        ((128, 8, 24990),),
        ("Twilight Black", "Shining White"),
    ),
    _p(
        "OPPO",
        "A78 5G",
        "6.56",
        "Dimensity 700",
        50,
        5000,
        ((128, 8, 18999),),
        ("Glowing Black", "Glowing Blue"),
    ),
    _p(
        "OPPO",
        "A58",
        "6.72",
        "Helio G85",
        50,
        5000,
        ((128, 6, 14999),),
        ("Glowing Black", "Dazzling Green"),
    ),
    _p(
        "OPPO",
        "A38",
        "6.56",
        "Helio G85",
        50,
        5000,
        ((128, 4, 12999),),
        ("Glowing Black", "Glowing Gold"),
    ),
    _p(
        "OPPO",
        "F25 Pro 5G",
        "6.7",
        "Dimensity 7050",
        64,
        5000,
        ((128, 8, 23999), (256, 8, 25999)),
        ("Lava Red", "Ocean Blue"),
    ),
    _p(
        "OPPO",
        "Reno 10 5G",
        "6.7",
        "Dimensity 7050",
        64,
        5000,
        ((256, 8, 32999),),
        ("Silvery Grey", "Ice Blue"),
    ),
    _p(
        "OPPO",
        "Reno 11 Pro 5G",
        "6.74",
        "Dimensity 8200",
        50,
        4600,
        ((256, 12, 39999),),
        ("Rock Grey", "Pearl White"),
    ),
    _p(
        "OPPO",
        "Find N3 Flip",
        "6.8",
        "Dimensity 9200",
        50,
        4300,
        ((256, 12, 94999),),
        ("Sleek Black", "Cream Gold"),
    ),
    _p(
        "OPPO",
        "K10",
        "6.59",
        "Snapdragon 680",
        50,
        5000,
        ((128, 6, 14990),),
        ("Black Carbon", "Blue Flame"),
    ),
    # OnePlus (64 GB variants on purpose: the search benchmark asks for them)
    _p(
        "OnePlus",
        "Nord CE 3 Lite 5G",
        "6.72",
        "Snapdragon 695",
        108,
        5000,
        ((64, 6, 17999), (128, 8, 19999), (256, 8, 21999)),
        ("Pastel Lime", "Chromatic Gray"),
    ),
    _p(
        "OnePlus",
        "Nord N20 SE",
        "6.56",
        "Helio G35",
        50,
        5000,
        ((64, 4, 11999),),
        ("Celestial Black", "Blue Oasis"),
    ),
    _p(
        "OnePlus",
        "Nord N200 5G",
        "6.49",
        "Snapdragon 480",
        13,
        5000,
        ((64, 4, 15999),),
        ("Blue Quantum",),
    ),
    _p(
        "OnePlus",
        "Nord CE 2 Lite 5G",
        "6.59",
        "Snapdragon 695",
        64,
        5000,
        ((64, 6, 18999), (128, 8, 20999)),
        ("Black Dusk", "Blue Tide"),
    ),
    _p(
        "OnePlus",
        "Nord 3 5G",
        "6.74",
        "Dimensity 9000",
        50,
        5000,
        ((128, 8, 33999), (256, 16, 37999)),
        ("Tempest Gray", "Misty Green"),
    ),
    _p(
        "OnePlus",
        "Nord CE 4",
        "6.7",
        "Snapdragon 7 Gen 3",
        50,
        5500,
        ((128, 8, 24999), (256, 8, 26999)),
        ("Celadon Marble", "Dark Chrome"),
    ),
    _p(
        "OnePlus",
        "11R 5G",
        "6.74",
        "Snapdragon 8+ Gen 1",
        50,
        5000,
        ((128, 8, 39999), (256, 16, 44999)),
        ("Galactic Silver", "Sonic Black"),
    ),
    _p(
        "OnePlus",
        "12",
        "6.82",
        "Snapdragon 8 Gen 3",
        50,
        5400,
        ((256, 12, 64999), (512, 16, 69999)),
        ("Flowy Emerald", "Silky Black"),
    ),
    _p(
        "OnePlus",
        "12R",
        "6.78",
        "Snapdragon 8 Gen 2",
        50,
        5500,
        ((128, 8, 39999), (256, 16, 45999)),
        ("Cool Blue", "Iron Gray"),
    ),
    _p(
        "OnePlus",
        "8T",
        "6.55",
        "Snapdragon 865",
        48,
        4500,
        ((128, 8, 42999),),
        ("Lunar Silver", "Aquamarine Green"),
    ),
    # Apple
    _p(
        "Apple",
        "iPhone 15",
        "6.1",
        "A16 Bionic",
        48,
        3349,
        ((128, None, 79900), (256, None, 89900)),
        ("Black", "Pink"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone 15 Plus",
        "6.7",
        "A16 Bionic",
        48,
        4383,
        ((128, None, 89900),),
        ("Blue", "Yellow"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone 15 Pro",
        "6.1",
        "A17 Pro",
        48,
        3274,
        ((128, None, 134900), (256, None, 144900)),
        ("Natural Titanium", "Black Titanium"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone 15 Pro Max",
        "6.7",
        "A17 Pro",
        48,
        4422,
        ((256, None, 159900),),
        ("Blue Titanium", "White Titanium"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone 14",
        "6.1",
        "A15 Bionic",
        12,
        3279,
        ((128, None, 69900),),
        ("Midnight", "Starlight"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone 13",
        "6.1",
        "A15 Bionic",
        12,
        3240,
        ((128, None, 59900), (256, None, 69900)),
        ("Midnight", "Green"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone SE (3rd generation)",
        "4.7",
        "A15 Bionic",
        12,
        2018,
        ((64, None, 43900), (128, None, 48900)),
        ("Midnight", "(PRODUCT)RED"),
        _IOS,
    ),
    _p(
        "Apple",
        "iPhone 12",
        "6.1",
        "A14 Bionic",
        12,
        2815,
        ((64, None, 49900),),
        ("Black", "White"),
        _IOS,
    ),
    # Samsung
    _p(
        "Samsung",
        "Galaxy S24 Ultra",
        "6.8",
        "Snapdragon 8 Gen 3 for Galaxy",
        200,
        5000,
        ((256, 12, 129999), (512, 12, 139999)),
        ("Titanium Gray", "Titanium Violet"),
    ),
    _p(
        "Samsung",
        "Galaxy S24",
        "6.2",
        "Exynos 2400",
        50,
        4000,
        ((256, 8, 79999),),
        ("Onyx Black", "Cobalt Violet"),
    ),
    _p(
        "Samsung",
        "Galaxy S23",
        "6.1",
        "Snapdragon 8 Gen 2 for Galaxy",
        50,
        3900,
        ((128, 8, 74999), (256, 8, 79999)),
        ("Phantom Black", "Cream"),
    ),
    _p(
        "Samsung",
        "Galaxy S23 FE",
        "6.4",
        "Exynos 2200",
        50,
        4500,
        ((128, 8, 59999),),
        ("Mint", "Graphite"),
    ),
    _p(
        "Samsung",
        "Galaxy Z Flip5",
        "6.7",
        "Snapdragon 8 Gen 2 for Galaxy",
        12,
        3700,
        ((256, 8, 99999),),
        ("Mint", "Graphite"),
    ),
    _p(
        "Samsung",
        "Galaxy Z Fold5",
        "7.6",
        "Snapdragon 8 Gen 2 for Galaxy",
        50,
        4400,
        ((256, 12, 154999),),
        ("Icy Blue", "Phantom Black"),
    ),
    _p(
        "Samsung",
        "Galaxy A55 5G",
        "6.6",
        "Exynos 1480",
        50,
        5000,
        ((128, 8, 39999),),
        ("Awesome Iceblue", "Awesome Navy"),
    ),
    _p(
        "Samsung",
        "Galaxy A35 5G",
        "6.6",
        "Exynos 1380",
        50,
        5000,
        ((128, 8, 30999),),
        ("Awesome Lilac", "Awesome Navy"),
    ),
    _p(
        "Samsung",
        "Galaxy A14 5G",
        "6.6",
        "Exynos 1330",
        50,
        5000,
        ((64, 4, 13999), (128, 6, 15999)),
        ("Light Green", "Dark Red"),
    ),
    _p(
        "Samsung",
        "Galaxy M34 5G",
        "6.5",
        "Exynos 1280",
        50,
        6000,
        ((128, 6, 16999),),
        ("Midnight Blue", "Prism Silver"),
    ),
    _p(
        "Samsung",
        "Galaxy F15 5G",
        "6.5",
        "Dimensity 6100+",
        50,
        6000,
        ((128, 4, 12999),),
        ("Ash Black", "Groovy Violet"),
    ),
    # Google
    _p(
        "Google",
        "Pixel 8 Pro",
        "6.7",
        "Google Tensor G3",
        50,
        5050,
        ((128, 12, 106999),),
        ("Obsidian", "Bay"),
    ),
    _p(
        "Google",
        "Pixel 8",
        "6.2",
        "Google Tensor G3",
        50,
        4575,
        ((128, 8, 75999),),
        ("Obsidian", "Hazel"),
    ),
    _p(
        "Google",
        "Pixel 7a",
        "6.1",
        "Google Tensor G2",
        64,
        4385,
        ((128, 8, 43999),),
        ("Charcoal", "Sea"),
    ),
    _p(
        "Google",
        "Pixel 7",
        "6.3",
        "Google Tensor G2",
        50,
        4355,
        ((128, 8, 59999),),
        ("Obsidian", "Snow"),
    ),
    # Xiaomi / Redmi / POCO
    _p(
        "Xiaomi",
        "14",
        "6.36",
        "Snapdragon 8 Gen 3",
        50,
        4610,
        ((512, 12, 69999),),
        ("Black", "Jade Green"),
    ),
    _p(
        "Xiaomi",
        "Redmi Note 13 Pro+ 5G",
        "6.67",
        "Dimensity 7200 Ultra",
        200,
        5000,
        ((256, 8, 31999),),
        ("Fusion Purple", "Midnight Black"),
    ),
    _p(
        "Xiaomi",
        "Redmi Note 13 5G",
        "6.67",
        "Dimensity 6080",
        108,
        5000,
        ((128, 6, 17999),),
        ("Arctic White", "Prism Gold"),
    ),
    _p(
        "Xiaomi",
        "Redmi Note 12",
        "6.67",
        "Snapdragon 685",
        50,
        5000,
        ((64, 4, 14999), (128, 6, 16999)),
        ("Onyx Gray", "Ice Blue"),
    ),
    _p(
        "Xiaomi",
        "Redmi 13C",
        "6.74",
        "Helio G85",
        50,
        5000,
        ((128, 4, 8999),),
        ("Starfrost White", "Stardust Black"),
    ),
    _p(
        "Xiaomi",
        "Redmi 12 5G",
        "6.79",
        "Snapdragon 4 Gen 2",
        50,
        5000,
        ((128, 4, 11999),),
        ("Jade Black", "Pastel Blue"),
    ),
    _p(
        "Xiaomi",
        "POCO X6 Pro 5G",
        "6.67",
        "Dimensity 8300 Ultra",
        64,
        5000,
        ((256, 8, 23999),),
        ("Racing Grey", "POCO Yellow"),
    ),
    _p(
        "Xiaomi",
        "POCO M6 Pro 5G",
        "6.79",
        "Snapdragon 4 Gen 2",
        50,
        5000,
        ((64, 4, 10999), (128, 6, 12999)),
        ("Power Black", "Forest Green"),
    ),
    # vivo / iQOO
    _p(
        "vivo",
        "V29 5G",
        "6.78",
        "Snapdragon 778G",
        50,
        4600,
        ((128, 8, 32999),),
        ("Himalayan Blue", "Space Black"),
    ),
    _p(
        "vivo",
        "Y56 5G",
        "6.58",
        "Dimensity 700",
        50,
        5000,
        ((128, 8, 19999),),
        ("Black Engine", "Orange Shimmer"),
    ),
    _p(
        "vivo",
        "T2x 5G",
        "6.58",
        "Dimensity 6020",
        50,
        5000,
        ((128, 4, 12999),),
        ("Marine Blue", "Glimmer Black"),
    ),
    _p(
        "vivo",
        "X100 Pro",
        "6.78",
        "Dimensity 9300",
        50,
        5400,
        ((512, 16, 89999),),
        ("Asteroid Black",),
    ),
    _p(
        "vivo",
        "iQOO Neo 7",
        "6.78",
        "Dimensity 8200",
        64,
        5000,
        ((128, 8, 29999),),
        ("Interstellar Black", "Frost Blue"),
    ),
    _p(
        "vivo",
        "iQOO Z7 5G",
        "6.38",
        "Dimensity 920",
        64,
        4500,
        ((128, 6, 18999),),
        ("Norway Blue", "Pacific Night"),
    ),
    # realme
    _p(
        "realme",
        "11 Pro+ 5G",
        "6.7",
        "Dimensity 7050",
        200,
        5000,
        ((256, 8, 27999),),
        ("Sunrise Beige", "Astral Black"),
    ),
    _p(
        "realme",
        "Narzo 60 5G",
        "6.43",
        "Dimensity 6020",
        64,
        5000,
        ((128, 8, 17999),),
        ("Mars Orange", "Cosmic Black"),
    ),
    _p(
        "realme",
        "C55",
        "6.72",
        "Helio G88",
        64,
        5000,
        ((64, 4, 10999), (128, 6, 12999)),
        ("Rainforest", "Sunshower"),
    ),
    _p(
        "realme",
        "12 Pro 5G",
        "6.7",
        "Snapdragon 6 Gen 1",
        50,
        5000,
        ((128, 8, 25999),),
        ("Submarine Blue", "Navigator Beige"),
    ),
    # Motorola, Nothing, Nokia
    _p(
        "Motorola",
        "Edge 40",
        "6.55",
        "Dimensity 8020",
        50,
        4400,
        ((256, 8, 29999),),
        ("Eclipse Black", "Nebula Green"),
    ),
    _p(
        "Motorola",
        "moto g84 5G",
        "6.55",
        "Snapdragon 695",
        50,
        5000,
        ((256, 12, 19999),),
        ("Midnight Blue", "Viva Magenta"),
    ),
    _p(
        "Motorola",
        "moto g54 5G",
        "6.5",
        "Dimensity 7020",
        50,
        6000,
        ((128, 8, 15999),),
        ("Pearl Blue", "Mint Green"),
    ),
    _p(
        "Nothing",
        "Phone (2)",
        "6.7",
        "Snapdragon 8+ Gen 1",
        50,
        4700,
        ((128, 8, 44999), (256, 12, 49999)),
        ("White", "Dark Grey"),
    ),
    _p(
        "Nothing",
        "Phone (2a)",
        "6.7",
        "Dimensity 7200 Pro",
        50,
        5000,
        ((128, 8, 23999),),
        ("Black", "White"),
    ),
    _p(
        "Nokia",
        "G42 5G",
        "6.56",
        "Snapdragon 480+",
        50,
        5000,
        ((128, 6, 12599),),
        ("So Purple", "So Grey"),
    ),
    _p(
        "Nokia",
        "C32",
        "6.5",
        "Unisoc SC9863A",
        50,
        5000,
        ((64, 4, 8999),),
        ("Charcoal", "Autumn Green"),
    ),
)


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


def _phone_items() -> Iterator[_Item]:
    for phone in PHONES:
        title = _phone_title(phone)
        ram_text = (
            f", up to {max(c[1] for c in phone.configs if c[1])} GB RAM"
            if any(c[1] for c in phone.configs)
            else ""
        )
        item = _Item(
            title=title,
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
        for index, (storage, ram, price) in enumerate(phone.configs):
            colours = phone.colours if index == 0 else phone.colours[:1]
            for colour in colours:
                attrs: dict[str, Any] = {"storage": f"{storage} GB", "colour": colour}
                if ram is not None:
                    attrs["ram"] = f"{ram} GB"
                item.variants.append((attrs, price))
        yield item


_CASE_MAKERS = ("Spigen", "ESR", "Ringke", "OtterBox", "Amazon Basics")
_CASE_KINDS = (
    ("Liquid Air Case", "Matte black TPU case with a slim, grippy finish", "Black", 999),
    ("Clear Case", "Crystal clear shock-absorbing case that does not yellow", "Clear", 799),
    ("Rugged Armor Case", "Drop-tested rugged case with air cushion corners", "Matte Black", 1299),
    ("Leather Flip Cover", "Vegan leather flip cover with card slot and stand", "Brown", 1499),
    ("Silicone Case", "Soft-touch silicone case with microfibre lining", "Navy", 899),
)


def _accessory_items() -> Iterator[_Item]:
    phones = [_phone_title(p) for p in PHONES]
    for index, name in enumerate(phones[:52]):
        kind, blurb, colour, price = _CASE_KINDS[index % len(_CASE_KINDS)]
        maker = _CASE_MAKERS[index % len(_CASE_MAKERS)]
        yield _Item(
            f"{kind} for {name}",
            maker,
            "phone-cases",
            f"{blurb}. Made for the {name}, with precise cut-outs for buttons and cameras.",
            {"compatibleWith": name, "material": "TPU" if "Leather" not in kind else "PU leather"},
            [({"colour": colour}, price + (index % 3) * 100)],
        )
    for index, name in enumerate(phones[::2]):
        yield _Item(
            f"Tempered Glass Screen Protector for {name} (2 pack)",
            ("Spigen", "ESR", "Amazon Basics")[index % 3],
            "screen-protectors",
            f"9H tempered glass with easy alignment frame, fits the {name}.",
            {"compatibleWith": name, "material": "Tempered glass"},
            [({}, 499 + (index % 4) * 100)],
        )
    chargers = (
        (
            "OPPO 67W SUPERVOOC Charger",
            "OPPO",
            "67 W",
            "USB-C",
            "OPPO Reno 11 Pro 5G, OPPO F25 Pro 5G and OnePlus Nord CE 4",
            2490,
        ),
        (
            "OPPO 33W SUPERVOOC Charger",
            "OPPO",
            "33 W",
            "USB-C",
            "OPPO A92, OPPO A78 5G and OPPO K10",
            1490,
        ),
        (
            "OnePlus SUPERVOOC 100W Power Adapter",
            "OnePlus",
            "100 W",
            "USB-C",
            "OnePlus 12, OnePlus 12R and OnePlus 11R 5G",
            3990,
        ),
        (
            "OnePlus Warp Charge 30 Power Adapter",
            "OnePlus",
            "30 W",
            "USB-C",
            "OnePlus 8T and OnePlus Nord CE 2 Lite 5G",
            1990,
        ),
        (
            "Apple 20W USB-C Power Adapter",
            "Apple",
            "20 W",
            "USB-C",
            "iPhone 15, iPhone 14, iPhone 13 and iPhone 12",
            1900,
        ),
        (
            "Apple MagSafe Charger",
            "Apple",
            "15 W",
            "MagSafe",
            "iPhone 15 Pro, iPhone 15 and iPhone 14",
            4500,
        ),
        (
            "Samsung 25W Super Fast Charger",
            "Samsung",
            "25 W",
            "USB-C",
            "Galaxy S24, Galaxy A55 5G and Galaxy M34 5G",
            1699,
        ),
        (
            "Samsung 45W Super Fast Charger 2.0",
            "Samsung",
            "45 W",
            "USB-C",
            "Galaxy S24 Ultra and Galaxy S23",
            3499,
        ),
        (
            "Google 30W USB-C Charger",
            "Google",
            "30 W",
            "USB-C",
            "Pixel 8 Pro, Pixel 8 and Pixel 7a",
            2999,
        ),
        (
            "Xiaomi 67W HyperCharge Adapter",
            "Xiaomi",
            "67 W",
            "USB-C",
            "Redmi Note 13 Pro+ 5G and POCO X6 Pro 5G",
            1999,
        ),
        (
            "Anker 735 Charger (Nano II 65W)",
            "Anker",
            "65 W",
            "USB-C",
            "iPhone 15, Galaxy S24 and Pixel 8",
            4999,
        ),
        (
            "Belkin BoostCharge 3-in-1 MagSafe Stand",
            "Belkin",
            "15 W",
            "MagSafe",
            "iPhone 15 Pro Max, Apple Watch and AirPods",
            11999,
        ),
        (
            "Portronics Adapto 65W GaN Charger",
            "Portronics",
            "65 W",
            "USB-C",
            "OnePlus 12, OPPO Reno 10 5G and laptops",
            2199,
        ),
        (
            "Ambrane 20000 mAh Power Bank",
            "Ambrane",
            "22.5 W",
            "USB-C",
            "iPhone 15, OnePlus Nord CE 3 Lite 5G and Galaxy A14 5G",
            1799,
        ),
        (
            "Mi 10000 mAh Power Bank 3i",
            "Xiaomi",
            "18 W",
            "USB-C",
            "Redmi Note 12, POCO M6 Pro 5G and other phones",
            1099,
        ),
    )
    for title, brand, power, connector, phones_text, price in chargers:
        yield _Item(
            title,
            brand,
            "chargers",
            f"{power} fast charging ({connector}) for {phones_text}.",
            {"power": power, "connector": connector, "compatibleWith": phones_text},
            [({}, price)],
        )
    cables = (
        ("USB-C to USB-C Cable 1 m", "Anker", "USB-C", 799),
        ("USB-C to Lightning Cable 1 m", "Apple", "Lightning", 1900),
        ("OPPO SUPERVOOC USB-C Cable", "OPPO", "USB-C", 599),
        ("OnePlus Warp Charge Type-C Cable", "OnePlus", "USB-C", 699),
        ("Braided USB-C Cable 2 m", "boAt", "USB-C", 399),
    )
    for title, brand, connector, price in cables:
        yield _Item(
            title,
            brand,
            "chargers",
            f"Charge and sync cable with a {connector} connector, tested for 10000 bends.",
            {"connector": connector},
            [({}, price)],
        )


def _simple(category: str, rows: tuple[tuple[Any, ...], ...]) -> Iterator[_Item]:
    """Rows of (title, brand, description, attributes, price) or with a variant list."""
    for title, brand, description, attributes, price in rows:
        variants = price if isinstance(price, list) else [({}, price)]
        yield _Item(title, brand, category, description, dict(attributes), list(variants))


_LAPTOPS = tuple(
    (
        f"{brand} {model}",
        brand,
        f"{screen} inch laptop with {cpu}, {ram} GB RAM and {ssd} GB SSD.",
        {
            "os": os,
            "screenSize": f"{screen} in",
            "processor": cpu,
            "ram": f"{ram} GB",
            "storage": f"{ssd} GB",
            "model": model,
        },
        price,
    )
    for brand, model, screen, cpu, ram, ssd, os, price in (
        ("Apple", "MacBook Air 13 M2", "13.6", "Apple M2", 8, 256, "macOS", 99900),
        ("Apple", "MacBook Air 15 M3", "15.3", "Apple M3", 8, 256, "macOS", 134900),
        ("Apple", "MacBook Pro 14 M3", "14.2", "Apple M3", 8, 512, "macOS", 169900),
        ("Lenovo", "ThinkPad E14 Gen 5", "14", "Intel Core i5-1335U", 16, 512, "Windows 11", 72990),
        ("Lenovo", "IdeaPad Slim 3", "15.6", "AMD Ryzen 5 7520U", 8, 512, "Windows 11", 42990),
        ("Lenovo", "Yoga Slim 7", "14", "Intel Core Ultra 7", 16, 1024, "Windows 11", 104990),
        ("Lenovo", "LOQ 15", "15.6", "Intel Core i5-12450HX", 16, 512, "Windows 11", 69990),
        ("HP", "Pavilion 15", "15.6", "Intel Core i5-1335U", 16, 512, "Windows 11", 64990),
        ("HP", "Victus 15", "15.6", "AMD Ryzen 5 7535HS", 16, 512, "Windows 11", 61990),
        ("HP", "Envy x360 14", "14", "Intel Core Ultra 5", 16, 512, "Windows 11", 94990),
        ("HP", "255 G9", "15.6", "AMD Ryzen 3 5425U", 8, 512, "Windows 11", 33990),
        ("Dell", "Inspiron 15 3520", "15.6", "Intel Core i3-1215U", 8, 512, "Windows 11", 38990),
        ("Dell", "Vostro 3420", "14", "Intel Core i5-1235U", 16, 512, "Windows 11", 55990),
        ("Dell", "XPS 13 9340", "13.4", "Intel Core Ultra 7", 16, 512, "Windows 11", 159990),
        ("ASUS", "Vivobook 15", "15.6", "Intel Core i5-1235U", 16, 512, "Windows 11", 49990),
        ("ASUS", "TUF Gaming F15", "15.6", "Intel Core i7-12700H", 16, 1024, "Windows 11", 84990),
        ("ASUS", "Zenbook 14 OLED", "14", "Intel Core Ultra 5", 16, 512, "Windows 11", 89990),
        ("ASUS", "ROG Strix G16", "16", "Intel Core i7-13650HX", 16, 1024, "Windows 11", 134990),
        ("Acer", "Aspire 7", "15.6", "Intel Core i5-12450H", 16, 512, "Windows 11", 54990),
        ("Acer", "Swift Go 14", "14", "Intel Core i5-13500H", 16, 512, "Windows 11", 67990),
        ("Acer", "Nitro V 15", "15.6", "Intel Core i5-13420H", 16, 512, "Windows 11", 69990),
        ("MSI", "Modern 14", "14", "Intel Core i5-1235U", 8, 512, "Windows 11", 44990),
        ("MSI", "Thin GF63", "15.6", "Intel Core i7-12650H", 16, 512, "Windows 11", 67990),
        (
            "Microsoft",
            "Surface Laptop Go 3",
            "12.4",
            "Intel Core i5-1235U",
            8,
            256,
            "Windows 11",
            79999,
        ),
        ("Samsung", "Galaxy Book3", "15.6", "Intel Core i5-1335U", 16, 512, "Windows 11", 65990),
    )
)

_TABLETS = tuple(
    (
        f"{brand} {model}",
        brand,
        f"{screen} inch tablet with {chip}; great for streaming, notes and video calls.",
        {"os": os, "screenSize": f"{screen} in", "processor": chip, "model": model},
        [({"storage": f"{s} GB", "connectivity": "Wi-Fi"}, p) for s, p in configs],
    )
    for brand, model, screen, chip, os, configs in (
        (
            "Apple",
            "iPad (10th generation)",
            "10.9",
            "A14 Bionic",
            "iPadOS",
            ((64, 39900), (256, 54900)),
        ),
        ("Apple", "iPad Air 11 M2", "11", "Apple M2", "iPadOS", ((128, 59900),)),
        ("Apple", "iPad Pro 11 M4", "11", "Apple M4", "iPadOS", ((256, 99900),)),
        ("Apple", "iPad mini (6th generation)", "8.3", "A15 Bionic", "iPadOS", ((64, 49900),)),
        ("Samsung", "Galaxy Tab S9 FE", "10.9", "Exynos 1380", "Android", ((128, 36999),)),
        (
            "Samsung",
            "Galaxy Tab A9+",
            "11",
            "Snapdragon 695",
            "Android",
            ((64, 18999), (128, 20999)),
        ),
        ("Samsung", "Galaxy Tab S9", "11", "Snapdragon 8 Gen 2", "Android", ((128, 72999),)),
        ("OnePlus", "Pad", "11.61", "Dimensity 9000", "Android", ((128, 37999),)),
        ("OnePlus", "Pad Go", "11.35", "Helio G99", "Android", ((128, 19999),)),
        ("Xiaomi", "Pad 6", "11", "Snapdragon 870", "Android", ((128, 26999),)),
        ("Lenovo", "Tab M10 (3rd Gen)", "10.1", "Unisoc T610", "Android", ((64, 12999),)),
        ("realme", "Pad 2", "11.5", "Helio G99", "Android", ((128, 17999),)),
        ("OPPO", "Pad Air", "10.36", "Snapdragon 680", "Android", ((64, 16999), (128, 19999))),
    )
)

_AUDIO = (
    (
        "Sony WH-1000XM5 Wireless Headphones",
        "Sony",
        "Industry-leading noise cancelling over-ear headphones, 30 hours battery.",
        {"type": "Over-ear", "connectivity": "Bluetooth 5.2"},
        29990,
    ),
    (
        "Sony WF-1000XM5 Earbuds",
        "Sony",
        "Noise cancelling true wireless earbuds with LDAC.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        24990,
    ),
    (
        "Sony WH-CH520 Headphones",
        "Sony",
        "Lightweight on-ear headphones with 50 hours battery.",
        {"type": "On-ear", "connectivity": "Bluetooth 5.2"},
        4490,
    ),
    (
        "Apple AirPods Pro (2nd generation)",
        "Apple",
        "Active noise cancellation, adaptive audio, USB-C MagSafe case.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        24900,
    ),
    (
        "Apple AirPods (3rd generation)",
        "Apple",
        "Spatial audio with dynamic head tracking, Lightning case.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.0"},
        19900,
    ),
    (
        "Apple AirPods Max",
        "Apple",
        "Over-ear headphones with computational audio.",
        {"type": "Over-ear", "connectivity": "Bluetooth 5.0"},
        59900,
    ),
    (
        "OnePlus Buds 3",
        "OnePlus",
        "Dual driver earbuds with 49 dB adaptive noise cancellation.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        5499,
    ),
    (
        "OnePlus Buds Pro 2",
        "OnePlus",
        "Earbuds co-created with Dynaudio, spatial audio.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        11999,
    ),
    (
        "OnePlus Nord Buds 2r",
        "OnePlus",
        "Budget earbuds with 12.4 mm drivers and 38 hours playback.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        1999,
    ),
    (
        "OPPO Enco Buds 2",
        "OPPO",
        "True wireless earbuds with AI call noise cancellation.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.2"},
        1799,
    ),
    (
        "OPPO Enco Air3 Pro",
        "OPPO",
        "Earbuds with bamboo fibre diaphragm and 49 dB ANC.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        4999,
    ),
    (
        "Samsung Galaxy Buds2 Pro",
        "Samsung",
        "24-bit Hi-Fi sound earbuds with intelligent ANC.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        17999,
    ),
    (
        "Samsung Galaxy Buds FE",
        "Samsung",
        "Comfortable earbuds with active noise cancellation.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.2"},
        6999,
    ),
    (
        "Google Pixel Buds A-Series",
        "Google",
        "Earbuds with adaptive sound and hands-free Google Assistant.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.0"},
        9999,
    ),
    (
        "boAt Airdopes 141",
        "boAt",
        "42 hours playback, ENx noise cancellation for calls.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.1"},
        1299,
    ),
    (
        "boAt Rockerz 450",
        "boAt",
        "On-ear wireless headphones with 15 hours playback.",
        {"type": "On-ear", "connectivity": "Bluetooth 4.2"},
        1499,
    ),
    (
        "boAt Stone 350 Speaker",
        "boAt",
        "10 W portable Bluetooth speaker, IPX7 water resistance.",
        {"type": "Speaker", "connectivity": "Bluetooth 5.0"},
        1999,
    ),
    (
        "JBL Flip 6 Speaker",
        "JBL",
        "Portable waterproof speaker with bold JBL Pro Sound.",
        {"type": "Speaker", "connectivity": "Bluetooth 5.1"},
        11999,
    ),
    (
        "JBL Go 3 Speaker",
        "JBL",
        "Ultra-portable speaker, IP67 dust and waterproof.",
        {"type": "Speaker", "connectivity": "Bluetooth 5.1"},
        3499,
    ),
    (
        "JBL Tune 760NC Headphones",
        "JBL",
        "Over-ear headphones with active noise cancelling.",
        {"type": "Over-ear", "connectivity": "Bluetooth 5.0"},
        7999,
    ),
    (
        "JBL Tune Beam Earbuds",
        "JBL",
        "True wireless earbuds with 48 hours playback.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        5999,
    ),
    (
        "Bose QuietComfort Ultra Headphones",
        "Bose",
        "World-class noise cancellation with immersive audio.",
        {"type": "Over-ear", "connectivity": "Bluetooth 5.3"},
        35900,
    ),
    (
        "Bose SoundLink Flex Speaker",
        "Bose",
        "Rugged portable Bluetooth speaker with PositionIQ.",
        {"type": "Speaker", "connectivity": "Bluetooth 4.2"},
        14900,
    ),
    (
        "Marshall Emberton II Speaker",
        "Marshall",
        "Compact portable speaker with 30+ hours playtime.",
        {"type": "Speaker", "connectivity": "Bluetooth 5.1"},
        16999,
    ),
    (
        "Sennheiser Momentum 4 Wireless",
        "Sennheiser",
        "Audiophile headphones with 60 hours battery.",
        {"type": "Over-ear", "connectivity": "Bluetooth 5.2"},
        29990,
    ),
    (
        "Amazon Echo Dot (5th Gen)",
        "Amazon",
        "Smart speaker with Alexa and improved bass.",
        {"type": "Smart speaker", "connectivity": "Wi-Fi"},
        5499,
    ),
    (
        "Realme Buds Air 5",
        "realme",
        "50 dB ANC earbuds with 12.4 mm drivers.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.3"},
        3699,
    ),
    (
        "Noise Buds VS104",
        "Noise",
        "Earbuds with 45 hours playtime and quad mic ENC.",
        {"type": "In-ear", "connectivity": "Bluetooth 5.2"},
        1099,
    ),
    (
        "Sony SRS-XB100 Speaker",
        "Sony",
        "Compact speaker with extra bass and strap.",
        {"type": "Speaker", "connectivity": "Bluetooth 5.3"},
        4990,
    ),
    (
        "Skullcandy Crusher Evo",
        "Skullcandy",
        "Headphones with sensory bass you can feel.",
        {"type": "Over-ear", "connectivity": "Bluetooth 5.0"},
        19999,
    ),
)

_WEARABLES = (
    (
        "Apple Watch Series 9 GPS 45mm",
        "Apple",
        "Smartwatch with S9 chip, double tap and bright display.",
        {"os": "watchOS", "compatibleWith": "iPhone"},
        44900,
    ),
    (
        "Apple Watch SE GPS 40mm",
        "Apple",
        "Essential smartwatch features for iPhone users.",
        {"os": "watchOS", "compatibleWith": "iPhone"},
        29900,
    ),
    (
        "Apple Watch Ultra 2",
        "Apple",
        "Rugged titanium smartwatch for outdoor adventures.",
        {"os": "watchOS", "compatibleWith": "iPhone"},
        89900,
    ),
    (
        "Samsung Galaxy Watch6 44mm",
        "Samsung",
        "Wear OS smartwatch with sleep coaching and BIA sensor.",
        {"os": "Wear OS", "compatibleWith": "Android phones"},
        32999,
    ),
    (
        "Samsung Galaxy Watch6 Classic",
        "Samsung",
        "Rotating bezel smartwatch with advanced health tracking.",
        {"os": "Wear OS", "compatibleWith": "Android phones"},
        36999,
    ),
    (
        "Google Pixel Watch 2",
        "Google",
        "Wear OS watch with Fitbit health features.",
        {"os": "Wear OS", "compatibleWith": "Android phones"},
        39900,
    ),
    (
        "OnePlus Watch 2",
        "OnePlus",
        "Dual-engine smartwatch with 100 hours battery.",
        {"os": "Wear OS", "compatibleWith": "Android phones"},
        24999,
    ),
    (
        "OPPO Watch Free",
        "OPPO",
        "Fitness band with AMOLED display and sleep tracking.",
        {"compatibleWith": "Android phones"},
        5999,
    ),
    (
        "Xiaomi Smart Band 8",
        "Xiaomi",
        "Fitness band with 16 days battery and 150+ workout modes.",
        {"compatibleWith": "Android and iPhone"},
        3999,
    ),
    (
        "Amazfit GTR 4",
        "Amazfit",
        "GPS smartwatch with 14 days battery.",
        {"compatibleWith": "Android and iPhone"},
        16999,
    ),
    (
        "Noise ColorFit Pro 5",
        "Noise",
        "Smartwatch with AMOLED display and Bluetooth calling.",
        {"compatibleWith": "Android and iPhone"},
        3999,
    ),
    (
        "boAt Wave Call 2",
        "boAt",
        "Smartwatch with Bluetooth calling and 700+ active modes.",
        {"compatibleWith": "Android and iPhone"},
        1499,
    ),
    (
        "Fitbit Charge 6",
        "Fitbit",
        "Fitness tracker with built-in GPS and Google apps.",
        {"compatibleWith": "Android and iPhone"},
        14999,
    ),
    (
        "Garmin Forerunner 265",
        "Garmin",
        "Running smartwatch with AMOLED display and training readiness.",
        {"compatibleWith": "Android and iPhone"},
        44990,
    ),
    (
        "Fire-Boltt Phoenix Pro",
        "Fire-Boltt",
        "Smartwatch with Bluetooth calling and metal body.",
        {"compatibleWith": "Android and iPhone"},
        1799,
    ),
)

_KITCHEN = (
    (
        "Lodge Cast Iron Skillet 26 cm",
        "Lodge",
        "Pre-seasoned cast iron pan for stove, oven and campfire.",
        {"material": "Cast iron"},
        3499,
    ),
    (
        "Prestige Svachh Pressure Cooker 5 L",
        "Prestige",
        "Aluminium pressure cooker with spillage control lid.",
        {"capacity": "5 L", "material": "Aluminium"},
        2299,
    ),
    (
        "Hawkins Contura Pressure Cooker 3 L",
        "Hawkins",
        "Hard anodised pressure cooker, induction compatible.",
        {"capacity": "3 L", "material": "Hard anodised"},
        2450,
    ),
    (
        "Philips HD9252 Air Fryer",
        "Philips",
        "Air fryer with rapid air technology, 4.1 L.",
        {"capacity": "4.1 L", "power": "1400 W"},
        8999,
    ),
    (
        "Instant Pot Duo 7-in-1 5.7 L",
        "Instant Pot",
        "Electric pressure cooker, slow cooker and rice cooker.",
        {"capacity": "5.7 L", "power": "1000 W"},
        10999,
    ),
    (
        "Bajaj Rex 500W Mixer Grinder",
        "Bajaj",
        "Mixer grinder with 3 stainless steel jars.",
        {"power": "500 W"},
        2499,
    ),
    (
        "Preethi Zodiac Mixer Grinder",
        "Preethi",
        "750 W mixer grinder with 5 jars.",
        {"power": "750 W"},
        8999,
    ),
    (
        "Philips Daily Collection Hand Blender",
        "Philips",
        "250 W hand blender for soups and smoothies.",
        {"power": "250 W"},
        1599,
    ),
    (
        "Kent Electric Kettle 1.8 L",
        "Kent",
        "Stainless steel kettle with auto shut-off.",
        {"capacity": "1.8 L", "power": "1500 W"},
        1299,
    ),
    (
        "Milton Thermosteel Flask 1 L",
        "Milton",
        "Vacuum insulated flask keeps drinks hot for 24 hours.",
        {"capacity": "1 L", "material": "Stainless steel"},
        899,
    ),
    (
        "Borosil Glass Lunch Box Set",
        "Borosil",
        "Set of 3 microwave safe glass containers.",
        {"material": "Borosilicate glass"},
        1190,
    ),
    (
        "Tupperware Water Bottle Set of 4",
        "Tupperware",
        "1 L leak-proof bottles for fridge and travel.",
        {"capacity": "1 L"},
        1150,
    ),
    (
        "Wonderchef Nutri-Blend",
        "Wonderchef",
        "400 W personal blender for smoothies.",
        {"power": "400 W"},
        2999,
    ),
    (
        "Pigeon Non-Stick Cookware Set",
        "Pigeon",
        "3 piece induction base non-stick set.",
        {"material": "Aluminium"},
        1799,
    ),
    (
        "Cello Opalware Dinner Set 18 pcs",
        "Cello",
        "Toughened opal glass dinner set for 6.",
        {"material": "Opalware"},
        1999,
    ),
    (
        "Morphy Richards OTG 28 L",
        "Morphy Richards",
        "Oven toaster grill with convection and rotisserie.",
        {"capacity": "28 L", "power": "1500 W"},
        8499,
    ),
    (
        "Havells Pop-up Toaster",
        "Havells",
        "2 slice toaster with 7 browning levels.",
        {"power": "750 W"},
        1699,
    ),
    (
        "Butterfly Gas Stove 3 Burner",
        "Butterfly",
        "Toughened glass top gas stove with brass burners.",
        {"material": "Glass"},
        4999,
    ),
    (
        "Solimo Stainless Steel Knife Set",
        "Solimo",
        "5 piece kitchen knife set with stand.",
        {"material": "Stainless steel"},
        799,
    ),
    (
        "Nescafe Classic Coffee 200 g",
        "Nescafe",
        "Instant coffee granules in a glass jar.",
        {"weight": "200 g"},
        599,
    ),
    (
        "Tata Tea Gold 1 kg",
        "Tata Tea",
        "Blend of Assam CTC and long leaf tea.",
        {"weight": "1 kg"},
        560,
    ),
    (
        "Agaro Digital Kitchen Scale",
        "Agaro",
        "Weighing scale up to 10 kg with tare function.",
        {"capacity": "10 kg"},
        649,
    ),
    (
        "Inalsa Sandwich Maker",
        "Inalsa",
        "Non-stick grill plates for 4 sandwiches.",
        {"power": "750 W"},
        1499,
    ),
    (
        "Vinod Stainless Steel Kadai 24 cm",
        "Vinod",
        "Triply kadai with lid, induction friendly.",
        {"material": "Stainless steel"},
        2199,
    ),
    (
        "Eureka Forbes Aquaguard Water Purifier",
        "Eureka Forbes",
        "RO+UV water purifier with 7 L tank.",
        {"capacity": "7 L"},
        15999,
    ),
)

_DECOR = (
    (
        "Philips Hue White and Colour Bulb E27",
        "Philips",
        "Smart LED bulb with 16 million colours.",
        {"power": "9 W"},
        3499,
    ),
    (
        "Wipro Smart LED Bulb 9 W",
        "Wipro",
        "Wi-Fi smart bulb that works with Alexa and Google.",
        {"power": "9 W"},
        699,
    ),
    (
        "Ajanta Quartz Wall Clock",
        "Ajanta",
        "Silent sweep wall clock, 30 cm.",
        {"material": "Plastic"},
        649,
    ),
    (
        "IKEA FEJKA Artificial Plant",
        "IKEA",
        "Artificial potted plant that stays fresh year after year.",
        {"material": "Plastic"},
        799,
    ),
    (
        "Story@Home Blackout Curtains (2 pack)",
        "Story@Home",
        "Thermal insulated blackout curtains, 7 ft.",
        {"material": "Polyester"},
        1299,
    ),
    (
        "Solimo Cotton Bedsheet Double",
        "Solimo",
        "144 TC cotton double bedsheet with 2 pillow covers.",
        {"material": "Cotton"},
        699,
    ),
    (
        "Sleepwell Memory Foam Pillow",
        "Sleepwell",
        "Contour memory foam pillow for neck support.",
        {"material": "Memory foam"},
        1499,
    ),
    (
        "Wakefit Orthopaedic Mattress Queen",
        "Wakefit",
        "Memory foam mattress, 6 inch, queen size.",
        {"material": "Memory foam"},
        12999,
    ),
    (
        "Home Centre Scented Candle Set",
        "Home Centre",
        "Set of 3 lavender scented candles.",
        {"material": "Wax"},
        599,
    ),
    (
        "Jaipur Rugs Hand Tufted Rug",
        "Jaipur Rugs",
        "Wool rug in indigo, 5 x 8 ft.",
        {"material": "Wool"},
        8999,
    ),
    (
        "Amazon Basics Photo Frame Set",
        "Amazon Basics",
        "Set of 6 wall photo frames.",
        {"material": "Wood"},
        999,
    ),
    (
        "Fabindia Cushion Covers (Set of 5)",
        "Fabindia",
        "Hand block printed cotton cushion covers.",
        {"material": "Cotton"},
        1499,
    ),
    (
        "Syska LED Table Lamp",
        "Syska",
        "Rechargeable study lamp with 3 colour modes.",
        {"power": "5 W"},
        899,
    ),
    (
        "Bombay Dyeing Bath Towel Set",
        "Bombay Dyeing",
        "Set of 2 cotton bath towels.",
        {"material": "Cotton"},
        749,
    ),
    (
        "Nilkamal Plastic Storage Rack",
        "Nilkamal",
        "4 shelf storage rack for kitchen and bathroom.",
        {"material": "Plastic"},
        1899,
    ),
)

_CLOTHING = tuple(
    (
        title,
        brand,
        description,
        {"material": material},
        [({"size": size, "colour": colour}, price) for size in ("S", "M", "L")],
    )
    for title, brand, description, material, colour, price in (
        (
            "Classic Cotton Crew Neck T-Shirt",
            "Uniqlo",
            "Soft cotton T-shirt with a relaxed fit.",
            "Cotton",
            "Navy",
            990,
        ),
        (
            "Slim Fit Stretch Jeans",
            "Levi's",
            "511 slim fit jeans with stretch denim.",
            "Denim",
            "Dark Indigo",
            3299,
        ),
        (
            "Oxford Casual Shirt",
            "Allen Solly",
            "Regular fit Oxford cotton shirt.",
            "Cotton",
            "White",
            1799,
        ),
        (
            "Polo T-Shirt",
            "U.S. Polo Assn.",
            "Pique cotton polo with embroidered logo.",
            "Cotton",
            "Black",
            1499,
        ),
        (
            "Anarkali Kurta",
            "Biba",
            "Printed cotton anarkali kurta for women.",
            "Cotton",
            "Maroon",
            2499,
        ),
        (
            "Straight Kurta",
            "W",
            "Rayon straight kurta with three-quarter sleeves.",
            "Rayon",
            "Teal",
            1599,
        ),
        (
            "Hooded Sweatshirt",
            "H&M",
            "Relaxed fit hoodie in cotton blend.",
            "Cotton blend",
            "Grey Melange",
            1999,
        ),
        (
            "Puffer Jacket",
            "Decathlon Quechua",
            "Lightweight padded jacket for hiking.",
            "Polyester",
            "Black",
            2999,
        ),
        ("Chino Trousers", "Marks & Spencer", "Slim fit stretch chinos.", "Cotton", "Beige", 2499),
        (
            "Linen Shirt",
            "FabIndia",
            "Pure linen shirt, mandarin collar.",
            "Linen",
            "Sky Blue",
            2290,
        ),
        (
            "Track Pants",
            "Puma",
            "DryCELL track pants with zip pockets.",
            "Polyester",
            "Black",
            1799,
        ),
        (
            "Saree with Blouse Piece",
            "Kalini",
            "Georgette saree with printed border.",
            "Georgette",
            "Mustard",
            1299,
        ),
    )
)

_FOOTWEAR = tuple(
    (
        title,
        brand,
        description,
        {"material": material},
        [({"size": f"UK {size}"}, price) for size in (7, 8, 9)],
    )
    for title, brand, description, material, price in (
        (
            "Revolution 6 Running Shoes",
            "Nike",
            "Lightweight running shoes with foam cushioning.",
            "Mesh",
            3695,
        ),
        (
            "Ultraboost Light Running Shoes",
            "Adidas",
            "Responsive BOOST cushioning for long runs.",
            "Primeknit",
            16999,
        ),
        (
            "Softride Enzo Sneakers",
            "Puma",
            "Everyday sneakers with SoftFoam+ insole.",
            "Mesh",
            4999,
        ),
        ("Classic Leather Sneakers", "Reebok", "Timeless leather sneakers.", "Leather", 5999),
        ("Chuck Taylor All Star", "Converse", "Canvas high-top sneakers.", "Canvas", 4499),
        ("Formal Derby Shoes", "Red Tape", "Leather derby shoes for office wear.", "Leather", 2799),
        ("Comfort Sandals", "Bata", "Cushioned sandals for everyday wear.", "Synthetic", 999),
        ("Flip Flops", "Crocs", "Classic flip flops with Croslite foam.", "Croslite", 1995),
        ("Kalenji Run Support Shoes", "Decathlon", "Running shoes for beginners.", "Mesh", 1999),
        (
            "Woodland Trekking Boots",
            "Woodland",
            "Nubuck leather boots for trails.",
            "Nubuck leather",
            5495,
        ),
        (
            "Skechers Go Walk 6",
            "Skechers",
            "Slip-on walking shoes with ULTRA GO cushioning.",
            "Mesh",
            5999,
        ),
        ("Campus North Plus Running Shoes", "Campus", "Affordable running shoes.", "Mesh", 1499),
    )
)

_SPORTS = (
    (
        "Yonex Nanoray Light 18i Badminton Racquet",
        "Yonex",
        "Lightweight graphite racquet for beginners.",
        {"weight": "77 g"},
        1999,
    ),
    (
        "Yonex Mavis 350 Shuttlecocks (6 pack)",
        "Yonex",
        "Nylon shuttlecocks for practice and play.",
        {"type": "Nylon"},
        1290,
    ),
    (
        "SG Kashmir Willow Cricket Bat",
        "SG",
        "Full size Kashmir willow bat.",
        {"material": "Kashmir willow"},
        2199,
    ),
    (
        "Cosco Cricket Tennis Ball (6 pack)",
        "Cosco",
        "Heavy tennis balls for street cricket.",
        {"type": "Tennis ball"},
        480,
    ),
    (
        "Nivia Storm Football Size 5",
        "Nivia",
        "Machine stitched football for grass and turf.",
        {"size": "5"},
        599,
    ),
    (
        "Boldfit Yoga Mat 6 mm",
        "Boldfit",
        "Anti-slip TPE yoga mat with strap.",
        {"material": "TPE"},
        799,
    ),
    (
        "Kore PVC Dumbbells 10 kg Set",
        "Kore",
        "Pair of adjustable dumbbells with rods.",
        {"weight": "10 kg"},
        1299,
    ),
    (
        "Decathlon Domyos Resistance Bands",
        "Decathlon",
        "Set of 3 resistance bands for home workouts.",
        {"material": "Latex"},
        799,
    ),
    (
        "Hero Sprint 26T Bicycle",
        "Hero",
        "Single speed city bike with 26 inch wheels.",
        {"wheelSize": "26 in"},
        8999,
    ),
    (
        "Strauss Skipping Rope",
        "Strauss",
        "Adjustable rope with ball bearings.",
        {"material": "PVC"},
        299,
    ),
    (
        "Spalding NBA Basketball Size 7",
        "Spalding",
        "Rubber basketball for outdoor courts.",
        {"size": "7"},
        1499,
    ),
    (
        "Wildcraft Hiking Backpack 45 L",
        "Wildcraft",
        "Rucksack with rain cover for treks.",
        {"capacity": "45 L"},
        3499,
    ),
)


def demo_items() -> list[_Item]:
    """Every demo product, in a fixed order."""
    items = [*_phone_items(), *_accessory_items()]
    items += _simple("laptops", _LAPTOPS)
    items += _simple("tablets", _TABLETS)
    items += _simple("audio", _AUDIO)
    items += _simple("wearables", _WEARABLES)
    items += _simple("kitchen", _KITCHEN)
    items += _simple("home-decor", _DECOR)
    items += _simple("clothing", _CLOTHING)
    items += _simple("footwear", _FOOTWEAR)
    items += _simple("sports", _SPORTS)
    return items


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
