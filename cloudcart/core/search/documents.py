"""Product + inventory (+ category) -> search document: one pure function, both engines.

Only active products are searchable; `to_search_document` returns None for a draft or an
archived product so the indexer removes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

from cloudcart.core.ports.search import SearchDocument
from cloudcart.core.search.spec import ACCESSORY_WORDS, analyze, normalise_unit_value

_TEXT_ATTRIBUTES_SKIPPED = frozenset({"model"})


def _model_name(product: Mapping[str, Any]) -> str:
    attributes = product.get("attributes") or {}
    model = attributes.get("model")
    if isinstance(model, str) and model.strip():
        return model.strip()
    title = str(product.get("title", ""))
    brand = str(product.get("brand", ""))
    if brand and title.lower().startswith(brand.lower()):
        return title[len(brand) :].strip()
    return title


def _is_accessory(product: Mapping[str, Any], category_name: str) -> bool:
    # The category decides when it says so ("Phone accessories"); otherwise the title's own
    # nouns do ("Silicone Case for OPPO A92").
    category_words = set(analyze(f"{product.get('categoryId', '')} {category_name}"))
    if category_words & (ACCESSORY_WORDS | {"accessory"}):
        return True
    title_words = set(analyze(str(product.get("title", ""))))
    return bool(title_words & ACCESSORY_WORDS)


def _first_image(product: Mapping[str, Any]) -> str | None:
    for media in product.get("media") or []:
        if media.get("kind") == "image":
            thumbnails = media.get("thumbnails") or {}
            for size in ("medium", "small", "large"):
                thumb = thumbnails.get(size)
                if isinstance(thumb, str):
                    return thumb
                if isinstance(thumb, dict) and isinstance(thumb.get("blob"), str):
                    return str(thumb["blob"])
            blob = media.get("blob")
            return str(blob) if blob else None
    return None


def _attribute_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return str(value)


def to_search_document(
    product: Mapping[str, Any],
    inventory: Mapping[str, Mapping[str, Any]],
    category: Mapping[str, Any] | None = None,
) -> SearchDocument | None:
    """The search document of a product, or None when it must not be searchable.

    `inventory` maps SKU -> inventory document (missing SKUs count as out of stock);
    `category` is the product's category document, for its display name.
    """
    if product.get("status", "active") != "active" or product.get("type", "product") != "product":
        return None
    attributes: dict[str, Any] = dict(product.get("attributes") or {})
    variants_in: list[Mapping[str, Any]] = list(product.get("variants") or [])
    category_name = str((category or {}).get("name") or "")

    variants: list[dict[str, Any]] = []
    storage: list[str] = []
    ram: list[str] = []
    attribute_values: list[str] = []
    for name, value in attributes.items():
        text = _attribute_text(value)
        if text and name not in _TEXT_ATTRIBUTES_SKIPPED:
            attribute_values.append(text)
    for variant in variants_in:
        v_attrs: Mapping[str, Any] = variant.get("attributes") or {}
        sku = str(variant.get("sku", ""))
        stock = inventory.get(sku) or {}
        available = int(stock.get("available", 0) or 0)
        v_storage = v_attrs.get("storage") or attributes.get("storage")
        v_ram = v_attrs.get("ram") or attributes.get("ram")
        price = variant.get("price") or {}
        variants.append(
            {
                "sku": sku,
                "storage": normalise_unit_value(str(v_storage)) if v_storage else None,
                "ram": normalise_unit_value(str(v_ram)) if v_ram else None,
                "colour": v_attrs.get("colour"),
                "price": {"amount": int(price.get("amount", 0)), "currency": price.get("currency")},
                "inStock": available > 0,
            }
        )
        if v_storage and normalise_unit_value(str(v_storage)) not in storage:
            storage.append(normalise_unit_value(str(v_storage)))
        if v_ram and normalise_unit_value(str(v_ram)) not in ram:
            ram.append(normalise_unit_value(str(v_ram)))
        for value in v_attrs.values():
            text = _attribute_text(value)
            if text and text not in attribute_values:
                attribute_values.append(text)

    priced = [v for v in variants if v["price"]["currency"]]
    cheapest = min(priced, key=lambda v: v["price"]["amount"], default=None)
    os_value = attributes.get("os")
    return {
        "id": str(product["id"]),
        "title": str(product.get("title", "")),
        "model": _model_name(product),
        "brand": str(product.get("brand", "")),
        "categoryId": str(product.get("categoryId", "")),
        "categoryName": category_name,
        "attributes": attribute_values,
        "description": str(product.get("description", "")),
        "storage": storage,
        "ram": ram,
        "os": str(os_value) if isinstance(os_value, str) else None,
        "kind": "accessory" if _is_accessory(product, category_name) else "product",
        "price": cheapest["price"]["amount"] if cheapest else 0,
        "currency": cheapest["price"]["currency"] if cheapest else None,
        "inStock": any(v["inStock"] for v in variants),
        "createdAt": str(product.get("createdAt", "")),
        "slug": str(product.get("slug", "")),
        "image": _first_image(product),
        "variants": json.dumps(variants, separators=(",", ":")),
    }


def brand_key(brand: str) -> str:
    """The filter key of a brand: analysed and joined (`One Plus` and `OnePlus` -> `oneplus`)."""
    return "".join(analyze(brand)) or re.sub(r"\s+", "", brand.lower())


def public_item(document: Mapping[str, Any], variant_sku: str | None = None) -> dict[str, Any]:
    """The public JSON of a search hit (`items[]` of `GET /api/search`).

    With `variant_sku` the price and SKU are that variant's (the one the query asked for,
    e.g. the 64 GB one); otherwise the cheapest variant's.
    """
    variants: list[dict[str, Any]] = orjson.loads(document.get("variants") or "[]")
    chosen = next((v for v in variants if v["sku"] == variant_sku), None)
    if chosen is None and variants:
        chosen = min(variants, key=lambda v: v["price"]["amount"])
    item: dict[str, Any] = {
        "productId": document["id"],
        "title": document["title"],
        "slug": document.get("slug"),
        "brand": document["brand"],
        "categoryId": document["categoryId"],
        "price": chosen["price"] if chosen else None,
        "sku": chosen["sku"] if chosen else None,
        "inStock": bool(document.get("inStock")),
        "storage": document.get("storage") or [],
        "os": document.get("os"),
    }
    if document.get("image"):
        item["image"] = document["image"]
    return item
