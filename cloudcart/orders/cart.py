"""Carts: one per signed-in customer (`carts` container, partition = customer id) or per
anonymous visitor (partition `anon:<cart id>`, the id a random 128-bit token returned in
`X-Cart-Id`). The container's default TTL expires abandoned carts (every write renews it).

A cart stores only SKUs, product ids and quantities; prices and availability are read
from the catalog on every view, so a cart never shows a stale price. The first signed-in
cart call that presents an anonymous cart id merges it into the customer's cart
(quantities summed, capped by what is available) and deletes it.

Every change to a signed-in customer's cart writes `cart.updated` (its lines) in the same
batch; anonymous carts announce nothing.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final, cast

from cloudcart import inventory
from cloudcart.core.errors import DomainError, NotFound
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    DocumentStore,
    Query,
    every,
    strip_system,
)
from cloudcart.orders.documents import CartDocument, CartItemDocument
from cloudcart.orders.events import CartLine, CartUpdated
from cloudcart.orders.models import MAX_QUANTITY
from cloudcart.orders.service import now_stamp

CARTS = "carts"
CART_ID: Final = "cart"
ANON_PREFIX = "anon:"
CART_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
"""Anonymous cart ids: what `new_cart_id` makes (22 characters), with margin."""
_CART_ID = re.compile(CART_ID_PATTERN)
CART_UPDATED = "cart.updated"


class CartError(DomainError):
    """A cart request that cannot be carried out: the problem's detail and its catalogued
    type, which gives the status and title."""

    def __init__(self, detail: str, type_: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problem_type = type_
        self.catalogued(type_)


@dataclass(frozen=True)
class Offer:
    """What the catalog says about a SKU right now."""

    sku: str
    product_id: str
    title: str
    unit_price: int
    currency: str
    available: int
    active: bool


def offer(store: DocumentStore, sku: str) -> Offer:
    """The current price and stock of a SKU; CartError 404 if no product sells it."""
    stock = inventory.stock_level(store, sku)
    if stock is None:
        raise CartError(f"no product sells SKU {sku!r}", "unknown-sku")
    product_id = stock.product_id
    try:
        product = store.container("catalog").read(product_id, product_id)
    except NotFound:
        raise CartError(f"no product sells SKU {sku!r}", "unknown-sku") from None
    for variant in product.get("variants", []):
        if variant.get("sku") == sku:
            return Offer(
                sku=sku,
                product_id=product_id,
                title=str(product.get("title", "")),
                unit_price=int(variant["price"]["amount"]),
                currency=str(variant["price"]["currency"]),
                available=stock.available,
                active=product.get("status") == "active",
            )
    raise CartError(f"no product sells SKU {sku!r}", "unknown-sku")


def cart_updated_event(cart: CartDocument) -> Event:
    """`cart.updated`: a signed-in customer's cart after a change (its lines and when)."""
    items: list[CartLine] = [
        {"sku": i["sku"], "productId": i.get("productId"), "quantity": int(i["quantity"])}
        for i in cart["items"]
    ]
    data: CartUpdated = {
        "customerId": cart["customerId"],
        "items": items,
        "itemCount": sum(i["quantity"] for i in items),
        "updatedAt": cart["updatedAt"],
    }
    return new_event(CART_UPDATED, cart["customerId"], data)


def new_cart_id() -> str:
    """A fresh anonymous cart id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def valid_cart_id(cart_id: str) -> bool:
    """Whether a header value can be one of our cart ids (cheap shape check)."""
    # ASCII only, as the documented pattern says (str.isalnum would pass other scripts).
    return _CART_ID.fullmatch(cart_id) is not None


def anon_owner(cart_id: str) -> str:
    """The partition key of an anonymous cart."""
    return ANON_PREFIX + cart_id


class Carts:
    """Cart operations for one owner (a customer id or `anon:<cart id>`)."""

    def __init__(self, store: DocumentStore, owner: str) -> None:
        self.store = store
        self.owner = owner
        self._container: Container = store.container(CARTS)

    def load(self) -> CartDocument:
        """The stored cart (an empty one if there is none)."""
        try:
            return cast(CartDocument, self._container.read(CART_ID, self.owner))
        except NotFound:
            return {"id": CART_ID, "customerId": self.owner, "items": []}

    def _save(self, cart: CartDocument) -> None:
        cart["updatedAt"] = now_stamp()
        document = strip_system(cart)
        if self.owner.startswith(ANON_PREFIX):
            self._container.upsert(document)
            return
        # A signed-in cart announces each change, so reminders can be scheduled from it
        # without anyone scanning the carts container.
        write_with_events(
            self._container,
            self.owner,
            [BatchOp("upsert", document=document)],
            [cart_updated_event(cast(CartDocument, document))],
        )

    def add(self, sku: str, quantity: int) -> CartDocument:
        """Add units (summed with what is there, capped at 99 and at availability)."""
        current = offer(self.store, sku)
        cart = self.load()
        items: list[CartItemDocument] = cart["items"]
        existing = next((i for i in items if i["sku"] == sku), None)
        total = quantity + (int(existing["quantity"]) if existing else 0)
        self._check(current, total)
        if existing:
            existing["quantity"] = total
        else:
            items.append({"sku": sku, "productId": current.product_id, "quantity": total})
        self._save(cart)
        return cart

    def set_quantity(self, sku: str, quantity: int) -> CartDocument:
        """Set a line's quantity; 404 if the SKU is not in the cart."""
        cart = self.load()
        line = next((i for i in cart["items"] if i["sku"] == sku), None)
        if line is None:
            raise CartError(f"SKU {sku!r} is not in the cart", "not-in-cart")
        self._check(offer(self.store, sku), quantity)
        line["quantity"] = quantity
        self._save(cart)
        return cart

    def remove(self, sku: str) -> CartDocument:
        """Remove a line; 404 if the SKU is not in the cart."""
        cart = self.load()
        kept = [i for i in cart["items"] if i["sku"] != sku]
        if len(kept) == len(cart["items"]):
            raise CartError(f"SKU {sku!r} is not in the cart", "not-in-cart")
        cart["items"] = kept
        self._save(cart)
        return cart

    def clear(self) -> None:
        """Forget the cart (after checkout)."""
        with contextlib.suppress(NotFound):
            self._container.delete(CART_ID, self.owner)

    def forget(self) -> None:
        """Delete the cart and the `cart.updated` events still kept beside it (erasure)."""
        for document in every(self._container, Query(limit=100), partition_key=self.owner):
            with contextlib.suppress(NotFound):
                self._container.delete(document["id"], self.owner)

    def merge_from(self, anonymous: Carts) -> None:
        """Move an anonymous cart's lines into this cart and delete it."""
        source = anonymous.load()
        if not source["items"]:
            return
        cart = self.load()
        by_sku = {i["sku"]: i for i in cart["items"]}
        for item in source["items"]:
            try:
                current = offer(self.store, item["sku"])
            except CartError:
                continue  # the product is gone: nothing to merge
            held = by_sku.get(item["sku"])
            total = int(item["quantity"]) + int(held.get("quantity", 0) if held else 0)
            total = min(total, MAX_QUANTITY, current.available)
            if total <= 0:
                continue
            if item["sku"] in by_sku:
                by_sku[item["sku"]]["quantity"] = total
            else:
                line: CartItemDocument = {
                    "sku": item["sku"],
                    "productId": current.product_id,
                    "quantity": total,
                }
                cart["items"].append(line)
                by_sku[item["sku"]] = line
        self._save(cart)
        anonymous.clear()

    @staticmethod
    def _check(current: Offer, quantity: int) -> None:
        if not current.active:
            raise CartError(f"SKU {current.sku!r} is not for sale", "not-for-sale")
        if quantity > MAX_QUANTITY:
            raise CartError(
                f"at most {MAX_QUANTITY} units of one SKU",
                "quantity-too-large",
            )
        if quantity > current.available:
            raise CartError(
                f"only {current.available} unit(s) of {current.sku!r} are available",
                "insufficient-stock",
            )

    def view(self, cart: CartDocument) -> dict[str, Any]:
        """The cart as the API returns it, priced from the catalog right now."""
        lines = []
        subtotal = 0
        currency: str | None = None
        for item in cart["items"]:
            try:
                current = offer(self.store, item["sku"])
            except CartError:
                lines.append(
                    {
                        "sku": item["sku"],
                        "quantity": item["quantity"],
                        "available": 0,
                        "inStock": False,
                        "productId": item.get("productId"),
                        "title": None,
                        "unitPrice": None,
                        "lineTotal": None,
                    }
                )
                continue
            line_total = current.unit_price * int(item["quantity"])
            subtotal += line_total
            currency = currency or current.currency
            lines.append(
                {
                    "sku": current.sku,
                    "productId": current.product_id,
                    "title": current.title,
                    "quantity": item["quantity"],
                    "unitPrice": {"amount": current.unit_price, "currency": current.currency},
                    "lineTotal": {"amount": line_total, "currency": current.currency},
                    "available": current.available,
                    "inStock": current.active and current.available >= int(item["quantity"]),
                }
            )
        return {
            "items": lines,
            "subtotal": {"amount": subtotal, "currency": currency} if currency else None,
            "updatedAt": cart.get("updatedAt"),
        }
