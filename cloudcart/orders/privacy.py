"""The orders area's part in a customer's data export and erasure.

`register()` (called by `cloudcart.api.app.create_app`, the only place that mounts the
customers routes that run export and erasure) adds to `cloudcart.customers.privacy`:

- export sections `orders` (every order document of the customer, storage fields
  removed) and `cart` (the stored cart, or null);
- erasure steps `orders` (anonymise, see below) and `cart` (delete the cart).

**Anonymisation, not deletion.** Orders are kept for accounting: amounts, lines, SKUs,
statuses, payment and refund ids, dates and tax stay. What identifies a person goes:

- `shippingAddress` becomes `{"country": <as stored>, "anonymized": true}`: the country
  decided the tax, so it stays; name, phone, street, city, region and postal code go;
- free-text `reason`s (a customer's cancel or return reason, an admin's refund note)
  become `"[redacted]"` anywhere in the order, in the outbox events of the customer's
  `orders` partition and in the refund records of the `processed` container. Machine
  reason codes (`payment_expired`, `requested_by_customer`, ...) stay;
- idempotency records lose `requestHash` (a SHA-256 of the checkout body, i.e. of the
  address: a guessed address could be confirmed against it). A replay of such a key
  then answers 422 (key used with a different body) instead of the stored outcome;
- the order gets `anonymizedAt`.

**The customer id stays.** It is the partition key of the `orders` container, and Cosmos
cannot move a document to another partition (a copy-and-delete would not be atomic
across partitions, and would orphan the idempotency records, outbox events and stock
markers that name the order). It is also not, by itself, identifying: it is the identity
provider's opaque subject id (random; no name or e-mail in it), and after the profile,
addresses and sessions are gone nothing we hold links it to a person. The only link left
is the provider's account, which the `customer.erased` event lets the provider side
delete. Until then a customer who signs in again with the same account sees their past
orders, without the addresses.

**Safety.** Every write is an If-Match replace retried on 412, re-applying the change to
the fresh document, so a payment webhook or admin transition racing the erasure is not
lost (and they keep working afterwards: the state machine never reads the address). Each
step is a no-op on data already anonymised, so a retried erasure completes a half-done
one and a second erasure writes nothing. A checkout still in progress while the erasure
runs fails (its idempotency record changed under it, so its order batch is refused and
its stock released); an order whose checkout completed after the partition was read is
reached through its idempotency record's `orderId`. No events are published: the
`customer.erased` event already tells partners, and accounting's amounts do not change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from cloudcart.core.errors import NotFound, PreconditionFailed
from cloudcart.core.events import Event
from cloudcart.core.idempotency import PROCESSED_CONTAINER, SIDE_EFFECT_KIND
from cloudcart.core.outbox import OUTBOX_KIND
from cloudcart.core.ports.documents import (
    Container,
    Document,
    Filter,
    Query,
    each,
    every,
    strip_system,
)
from cloudcart.customers.privacy import (
    PrivacyContext,
    register_erasure_contributor,
    register_export_contributor,
)
from cloudcart.orders.cart import CART_ID, CARTS, Carts
from cloudcart.orders.checkout import IDEMPOTENCY_TYPE
from cloudcart.orders.documents import AnonymizedAddressDocument, OrderDocument
from cloudcart.orders.lifecycle import REFUNDS_CONSUMER
from cloudcart.orders.service import (
    ORDER_TYPE,
    OrderNotFound,
    now_stamp,
    orders_container,
    update_order,
)

ORDERS_SECTION = "orders"
CART_SECTION = "cart"
REDACTED = "[redacted]"
"""What a free-text reason becomes."""

_REASON_CODE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
"""A machine reason code; anything else in a `reason` field is free text a person wrote."""
_REWRITE_ATTEMPTS = 8


def register() -> None:
    """Register the orders area's export and erasure contributors (idempotent: a second
    call replaces them in place)."""
    register_export_contributor(ORDERS_SECTION, export_orders)
    register_export_contributor(CART_SECTION, export_cart)
    register_erasure_contributor(ORDERS_SECTION, anonymise_orders)
    register_erasure_contributor(CART_SECTION, erase_cart)


# --- export -------------------------------------------------------------------------------


def export_orders(ctx: PrivacyContext) -> list[Document]:
    """Every order of the customer as stored, oldest first (storage fields removed).

    Idempotency records (a hash and an order id) and outbox copies of order events only
    point to or repeat these orders, so they are not listed again. The fraud rules' `risk`
    is left out: naming the rules an order tripped would teach a fraudster to avoid them
    (docs/risk.md)."""
    container = orders_container(ctx.documents)
    found = [
        {k: v for k, v in strip_system(d).items() if k != "risk"}
        for d in each(
            container,
            Query(filters=[Filter("type", "eq", ORDER_TYPE)]),
            partition_key=ctx.customer_id,
        )
    ]
    found.sort(key=lambda d: str(d.get("createdAt", "")))
    return found


def export_cart(ctx: PrivacyContext) -> Document | None:
    """The customer's stored cart (SKUs and quantities), or None."""
    try:
        return strip_system(ctx.documents.container(CARTS).read(CART_ID, ctx.customer_id))
    except NotFound:
        return None


# --- erasure ------------------------------------------------------------------------------


def redact_reasons(value: Any) -> bool:
    """Replace free-text `reason` values anywhere in `value` (in place); True if any."""
    changed = False
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reason" and isinstance(item, str):
                if item != REDACTED and not _REASON_CODE.fullmatch(item):
                    value[key] = REDACTED
                    changed = True
            else:
                changed = redact_reasons(item) or changed
    elif isinstance(value, list):
        for item in value:
            changed = redact_reasons(item) or changed
    return changed


def anonymise_order_document(document: OrderDocument) -> bool:
    """Strip personal data from an order document in place; True if anything changed."""
    changed = False
    address = document.get("shippingAddress")
    if isinstance(address, dict):
        kept = cast(
            AnonymizedAddressDocument, {"country": address.get("country"), "anonymized": True}
        )
        if address != kept:
            document["shippingAddress"] = kept
            changed = True
    changed = redact_reasons(document) or changed
    if changed and not document.get("anonymizedAt"):
        document["anonymizedAt"] = now_stamp()
    return changed


def _scrub_record(document: Document) -> bool:
    if "requestHash" not in document:
        return False
    del document["requestHash"]
    document["anonymized"] = True
    return True


def _rewrite(
    container: Container,
    document: Document,
    partition_key: str,
    scrub: Callable[[Document], bool],
) -> Document | None:
    """Apply `scrub` to the document and replace it If-Match; on 412 read it again and
    re-apply. Returns the stored document (None if it is gone)."""
    current: Document | None = document
    for _ in range(_REWRITE_ATTEMPTS):
        if current is None:
            try:
                current = container.read(str(document["id"]), partition_key)
            except NotFound:
                return None
        changed = strip_system(current)
        if not scrub(changed):
            return current
        try:
            return container.replace(changed, if_match=str(current["_etag"]))
        except PreconditionFailed:
            current = None  # changed meanwhile: re-read and scrub the new version
        except NotFound:
            return None
    raise PreconditionFailed(f"document {document['id']} kept changing during erasure")


def _anonymise_order(ctx: PrivacyContext, order_id: str) -> None:
    def mutate(document: OrderDocument) -> list[Event] | None:
        # [] = write without events; None = nothing to do (already anonymised).
        return [] if anonymise_order_document(document) else None

    try:
        stored, _ = update_order(ctx.documents, ctx.customer_id, order_id, mutate)
    except OrderNotFound:
        return
    _scrub_refund_records(ctx, order_id, len(stored.get("refunds", [])))


def _scrub_refund_records(ctx: PrivacyContext, order_id: str, refunds: int) -> None:
    # `SideEffectGuard` keeps each refund's result (with its reason) for 14 days under
    # `side-effect:<orderId>:refund:<n>` in the consumer's partition.
    container = ctx.documents.container(PROCESSED_CONTAINER)
    for number in range(1, refunds + 1):
        record_id = f"{SIDE_EFFECT_KIND}:{order_id}:refund:{number}"
        try:
            record = container.read(record_id, REFUNDS_CONSUMER)
        except NotFound:
            continue
        _rewrite(container, record, REFUNDS_CONSUMER, redact_reasons)


def anonymise_orders(ctx: PrivacyContext) -> None:
    """Anonymise every order, idempotency record and outbox event of the customer's
    `orders` partition (see the module docs). Idempotent."""
    container = orders_container(ctx.documents)
    # Collect first, write after: rewriting while paging could shift later pages.
    documents = every(container, Query(), partition_key=ctx.customer_id)
    order_ids: set[str] = set()
    for document in documents:
        kind = document.get("type")
        if kind == ORDER_TYPE:
            order_ids.add(str(document["id"]))
        elif kind == IDEMPOTENCY_TYPE:
            stored = _rewrite(container, document, ctx.customer_id, _scrub_record)
            # A checkout that completed after the partition was read: its order is new.
            if stored is not None and isinstance(stored.get("orderId"), str):
                order_ids.add(stored["orderId"])
        elif document.get("kind") == OUTBOX_KIND:
            _rewrite(container, document, ctx.customer_id, redact_reasons)
    for order_id in sorted(order_ids):
        _anonymise_order(ctx, order_id)


def erase_cart(ctx: PrivacyContext) -> None:
    """Delete the customer's cart and its change events (idempotent)."""
    Carts(ctx.documents, ctx.customer_id).forget()


__all__ = [
    "CART_SECTION",
    "ORDERS_SECTION",
    "REDACTED",
    "anonymise_order_document",
    "anonymise_orders",
    "erase_cart",
    "export_cart",
    "export_orders",
    "redact_reasons",
    "register",
]
