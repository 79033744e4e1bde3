"""`POST /api/checkout`: the cart becomes an order, exactly once per Idempotency-Key.

Write path (what the checkout benchmark counts):

1. create the idempotency record `idempotency:<sha256(key)>` (status `in_progress`) in
   the customer's `orders` partition. A Conflict means another request owns the key:
   a different body answers 422; otherwise wait for its outcome (bounded) and answer
   the same thing, or 409 `checkout-in-progress` when it takes too long.
2. one conditional replace of the record naming this attempt and its lines (SKU,
   quantity), then one batch per SKU on `inventory`: a `reserve:{attempt}` marker and the
   conditional patch (`available >= qty`), released again if a later step fails;
3. ONE transactional batch in the customer's partition: the order (`pending_payment`),
   the idempotency record completed (If-Match the ETag of step 2, so a taken-over record
   cannot be completed twice) and `order.placed` + `inventory.reserved` in the outbox;
4. the gateway payment, `idempotency_key = order id`, then one patch storing it and the
   response on the order. Replays answer that stored response byte for byte.

If the gateway call fails the order stays `pending_payment` without a payment and the
client gets 503: retrying with the SAME Idempotency-Key resumes at step 4 (the gateway's
own idempotency on the order id means never two payments); if nobody retries, the expiry
timer cancels the order and releases its stock. A crash between steps 2 and 3 leaves the
record `in_progress` with its reservation: a retry after the lease takes the key over and
first releases it; otherwise the expiry timer (`recover_abandoned_checkouts`) releases it
and marks the record `abandoned`, and a retry with that key starts afresh. Business
failures (empty cart, out of stock, unknown shipping method) are stored on the record,
so the same key keeps answering the same problem; a new attempt needs a new key.
Step 5 (outside the contract) empties the cart.

A shop that takes no payments (`CLOUDCART_PAYMENTS_PROVIDER=disabled`, or Stripe without
usable credentials) answers 503 `payments-disabled` before step 1: nothing is written and
no stock is held, so the same key works once payments are on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from cloudcart import risk
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Conflict, DomainError, NotFound, PreconditionFailed
from cloudcart.core.events import new_event
from cloudcart.core.ids import new_id
from cloudcart.core.outbox import timestamp, write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Document,
    Filter,
    PatchOp,
    Query,
    fill_page,
    first,
)
from cloudcart.core.ports.payments import DisabledGateway, PaymentsDisabled
from cloudcart.inventory import OutOfStock, release_reservation, reserve_stock
from cloudcart.orders.cart import CartError, Carts, offer
from cloudcart.orders.documents import (
    OrderDocument,
    OrderLineDocument,
    OrderPaymentDocument,
    OrderRiskDocument,
    ShippingAddressDocument,
)
from cloudcart.orders.events import (
    InventoryReserved,
    OrderPlaced,
    OrderStatusChanged,
    PlacedTotals,
)
from cloudcart.orders.lifecycle import gateway
from cloudcart.orders.models import CheckoutIn
from cloudcart.orders.pricing import PricingError, price_lines
from cloudcart.orders.service import (
    ORDER_TYPE,
    as_order,
    money,
    now_stamp,
    orders_container,
    public_line,
    public_payment,
)

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

IDEMPOTENCY_TYPE = "idempotency"
IDEMPOTENCY_TTL_SECONDS = 7 * 86_400
LEASE = timedelta(seconds=30)
"""How long an in-progress checkout is trusted before a retry may take the key over."""
WAIT_SECONDS = 25.0
"""How long a concurrent retry waits for the owner's outcome before answering 409."""
_POLL_SECONDS = 0.05
ABANDON_GRACE = timedelta(seconds=60)
"""How long after its lease ran out an `in_progress` checkout is declared crashed."""
RECOVERY_BATCH = 100
DECLINED = "checkout-declined"
"""Problem type of a checkout the fraud rules decline (422); the rules are not named."""


@dataclass
class _Lease:
    """The owner's view of its idempotency record (its ETag moves as the attempt records
    its reservation)."""

    record: Document
    attempt: str = field(default_factory=lambda: new_id("att_"))


class CheckoutFailure(DomainError):
    """A checkout that placed nothing, or placed the order but could not start its payment:
    the problem's detail and its catalogued type (which gives the status and title), the
    order when there is one (`orderId`) and `retry_after` when waiting helps.

    Its `to_problem()` is what the route answers and what the idempotency record stores, so
    a replay with the same key answers the same document.
    """

    def __init__(
        self,
        detail: str,
        type_: str,
        *,
        order_id: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem_type = type_
        self.catalogued(type_)
        self.order_id = order_id
        self.retry_after = retry_after

    def problem_extra(self) -> dict[str, Any]:
        """`orderId` when the order was placed."""
        return {} if self.order_id is None else {"orderId": self.order_id}


@dataclass(frozen=True)
class CheckoutResponse:
    """What the route answers: `status` and `body` (a problem document when >= 400)."""

    status: int
    body: dict[str, Any]
    retry_after: int | None = None

    @classmethod
    def refused(cls, failure: CheckoutFailure) -> CheckoutResponse:
        """The answer to a failed checkout: its problem document."""
        return cls(failure.status, failure.to_problem(), failure.retry_after)


def request_hash(body: CheckoutIn) -> str:
    """SHA-256 of the body's canonical JSON (keys sorted, defaults filled in)."""
    canonical = json.dumps(
        body.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_id(key: str) -> str:
    """The idempotency record's id for a client key (hashed: keys may hold any character)."""
    return "idempotency:" + hashlib.sha256(key.encode()).hexdigest()


def _lease_until() -> str:
    return timestamp(utcnow() + LEASE)


@dataclass(frozen=True)
class CheckoutContext:
    """What the request tells about the shopper besides the body, for the fraud rules:
    the client IP (from the platform's trusted header only) and the signed-in email."""

    ip: str | None = None
    email: str | None = None


def checkout(
    services: Services,
    customer_id: str,
    key: str,
    body: CheckoutIn,
    context: CheckoutContext | None = None,
) -> CheckoutResponse:
    """Place the customer's cart as an order once per `key` (see the module docs)."""
    context = context or CheckoutContext()
    if isinstance(gateway(services), DisabledGateway):
        # Refused before anything is written: an order that can never be paid would only
        # hold stock until the expiry timer releases it.
        return CheckoutResponse.refused(
            CheckoutFailure(
                "this shop is not taking payments at the moment; nothing was ordered",
                "payments-disabled",
            )
        )
    container = orders_container(services.documents)
    digest = request_hash(body)
    record: Document = {
        "id": record_id(key),
        "type": IDEMPOTENCY_TYPE,
        "customerId": customer_id,
        "requestHash": digest,
        "status": "in_progress",
        "leaseUntil": _lease_until(),
        "createdAt": now_stamp(),
        "ttl": IDEMPOTENCY_TTL_SECONDS,
    }
    try:
        created = container.create(record)
    except Conflict:
        return _follow(services, customer_id, key, body, digest, context)
    return _own(services, customer_id, body, created, context)


def _own(
    services: Services,
    customer_id: str,
    body: CheckoutIn,
    record: Document,
    context: CheckoutContext,
) -> CheckoutResponse:
    container = orders_container(services.documents)
    lease = _Lease(record)
    try:
        # A taken-over (or abandoned) record names the previous attempt's reservation:
        # give it back before anything else, so no path below can leak it.
        _release_recorded(services, record)
        order = _place(services, customer_id, body, lease, context)
    except CheckoutFailure as failure:
        response = CheckoutResponse.refused(failure)
        record = lease.record
        stored = {
            **_clean(record),
            "status": "failed",
            "response": {"status": response.status, "body": response.body},
        }
        try:
            container.replace(stored, if_match=str(record["_etag"]))
        except (PreconditionFailed, NotFound):
            logger.warning("idempotency record %s changed under its owner", record["id"])
        return response
    except BaseException:
        # Unexpected: give back this attempt's stock and free the key so a retry starts
        # again. If the stock cannot be given back the record stays `in_progress` with its
        # reservation, and the expiry timer's recovery releases it once the lease is over.
        record = lease.record
        try:
            _release_recorded(services, record)
        except Exception:
            logger.exception("checkout %s left its reservation to recovery", record["id"])
            raise
        with contextlib.suppress(PreconditionFailed, NotFound):
            container.delete(str(record["id"]), customer_id, if_match=str(record["_etag"]))
        raise
    response = attach_payment(services, order)
    Carts(services.documents, customer_id).clear()
    return response


def _clean(document: Document) -> Document:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def _release_recorded(services: Services, record: Document) -> int:
    """Release the reservation recorded on an idempotency record (idempotent)."""
    reservation = record.get("reservation")
    if not isinstance(reservation, dict):
        return 0
    skus = [str(line["sku"]) for line in reservation.get("lines", [])]
    return release_reservation(services.documents, str(reservation["attempt"]), skus)


def _follow(
    services: Services,
    customer_id: str,
    key: str,
    body: CheckoutIn,
    digest: str,
    context: CheckoutContext,
) -> CheckoutResponse:
    """Another request holds the key: answer what it answers."""
    container = orders_container(services.documents)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            record = container.read(record_id(key), customer_id)
        except NotFound:
            # The owner failed unexpectedly and freed the key: start afresh.
            return checkout(services, customer_id, key, body, context)
        if record.get("requestHash") != digest:
            return CheckoutResponse.refused(
                CheckoutFailure(
                    "this Idempotency-Key was used with a different request body",
                    "idempotency-key-reused",
                )
            )
        status = record.get("status")
        expired = str(record.get("leaseUntil", "")) < timestamp(utcnow())
        if status == "failed":
            stored = record["response"]
            return CheckoutResponse(int(stored["status"]), stored["body"])
        if status == "completed":
            order = container.read(str(record["orderId"]), customer_id)
            if order.get("checkoutResponse"):
                return CheckoutResponse(201, order["checkoutResponse"])
            if expired:
                return attach_payment(services, as_order(order))
        elif expired or status == "abandoned":
            # A crashed owner (lease over) or one the recovery timer released: start
            # again under this key; `_own` first releases what the record says is held.
            taken = {**_clean(record), "status": "in_progress", "leaseUntil": _lease_until()}
            try:
                mine = container.replace(taken, if_match=str(record["_etag"]))
            except (PreconditionFailed, NotFound):
                continue
            return _own(services, customer_id, body, mine, context)
        if time.monotonic() > deadline:
            return CheckoutResponse.refused(
                CheckoutFailure(
                    "a checkout with this Idempotency-Key is still in progress; retry with the "
                    "same key shortly",
                    "checkout-in-progress",
                    retry_after=1,
                )
            )
        time.sleep(_POLL_SECONDS)


def _place(
    services: Services, customer_id: str, body: CheckoutIn, lease: _Lease, context: CheckoutContext
) -> OrderDocument:
    store = services.documents
    settings = services.settings
    cart = Carts(store, customer_id).load()
    if not cart["items"]:
        raise CheckoutFailure("the cart is empty", "cart-empty")
    address = _address(services, customer_id, body)
    lines: list[dict[str, Any]] = []
    for item in cart["items"]:
        try:
            current = offer(store, item["sku"])
        except CartError as exc:
            raise CheckoutFailure(exc.detail, "sku-unavailable") from None
        if not current.active:
            raise CheckoutFailure(f"SKU {current.sku!r} is not for sale", "sku-unavailable")
        lines.append(
            {
                "sku": current.sku,
                "productId": current.product_id,
                "title": current.title,
                "quantity": int(item["quantity"]),
                "unitPrice": current.unit_price,
                "currency": current.currency,
                "refundedQuantity": 0,
            }
        )
    try:
        totals = price_lines(
            lines, country=str(address["country"]), method=body.shipping_method, settings=settings
        )
    except PricingError as exc:
        raise CheckoutFailure(str(exc), "cannot-price") from None

    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line["sku"]] = quantities.get(line["sku"], 0) + int(line["quantity"])
    # The fraud rules run before any stock moves: a declined checkout changes nothing.
    check = _assess(services, customer_id, context, address, quantities, totals.to_document())
    if check is not None and check.blocks:
        raise CheckoutFailure(
            "this order cannot be placed; please contact the shop if you think this is a mistake",
            DECLINED,
        )
    # Record what this attempt is about to reserve BEFORE touching stock (If-Match: a
    # record taken over meanwhile stops us here), so a crash from now on leaves enough on
    # the record for the next attempt or the recovery timer to release it exactly.
    lease.record = orders_container(store).replace(
        {
            **_clean(lease.record),
            "reservation": {
                "attempt": lease.attempt,
                "lines": [{"sku": s, "quantity": q} for s, q in quantities.items()],
            },
        },
        if_match=str(lease.record["_etag"]),
    )
    record = lease.record
    try:
        reserve_stock(store, lease.attempt, quantities)
    except OutOfStock as exc:
        raise CheckoutFailure(
            f"not enough stock of {exc.sku!r} for {exc.requested} unit(s)",
            "out-of-stock",
        ) from None

    order_id = new_id("ord_")
    now = utcnow()
    expires_at = timestamp(now + timedelta(minutes=settings.payment_window_minutes))
    order: OrderDocument = {
        "id": order_id,
        "type": ORDER_TYPE,
        "customerId": customer_id,
        "status": "pending_payment",
        "lines": cast(list[OrderLineDocument], lines),  # priced by `price_lines` above
        "totals": totals.to_document(),
        # A checkout address or a saved one: `_address` gives every member.
        "shippingAddress": cast(ShippingAddressDocument, address),
        "shippingMethod": body.shipping_method,
        "reservationExpiresAt": expires_at,
        "payment": None,
        "capturedAmount": 0,
        "refundedAmount": 0,
        "refunds": [],
        "paymentEvents": [],
        "stock": "reserved",
        "idempotencyRecord": record["id"],
        "history": [{"status": "pending_payment", "at": timestamp(now)}],
        "createdAt": timestamp(now),
        "updatedAt": timestamp(now),
    }
    if check is not None:
        order["risk"] = cast(OrderRiskDocument, check.to_document())
    held = check is not None and check.holds
    if held:
        # Held for review from the start: the customer still pays, but nothing is sent to
        # fulfilment until an admin approves (POST /api/admin/orders/{id}/review).
        order["status"] = "on_hold"
        order["heldFrom"] = "pending_payment"
        order["history"].append({"status": "on_hold", "at": timestamp(now)})
    completed = {
        **_clean(record),
        "status": "completed",
        "orderId": order_id,
        "leaseUntil": _lease_until(),
    }
    placed: OrderPlaced = {
        "orderId": order_id,
        "customerId": customer_id,
        "status": "pending_payment",
        "lines": [
            {"sku": ln["sku"], "quantity": ln["quantity"], "unitPrice": ln["unitPrice"]}
            for ln in lines
        ],
        # The stored totals always carry `taxInclusive`; the event's may lack it.
        "totals": cast("PlacedTotals", totals.to_document()),
    }
    reserved: InventoryReserved = {
        "orderId": order_id,
        "customerId": customer_id,
        "expiresAt": expires_at,
        "lines": [{"sku": s, "quantity": q} for s, q in quantities.items()],
    }
    events = [
        new_event("order.placed", order_id, placed),
        new_event("inventory.reserved", order_id, reserved),
    ]
    if held:
        on_hold: OrderStatusChanged = {
            "orderId": order_id,
            "customerId": customer_id,
            "from": "pending_payment",
            "to": "on_hold",
        }
        events.append(new_event("order.status_changed", order_id, on_hold))
    # A failure here is released by `_own` from the record's reservation.
    results = write_with_events(
        orders_container(store),
        customer_id,
        [
            BatchOp("create", document=cast(Document, order)),
            BatchOp("replace", document=completed, if_match=str(record["_etag"])),
        ],
        events,
    )
    if check is not None:
        try:
            risk.record_checkout(services, check, order_id)
        except Exception:
            # The order stands: a counter that misses one order is better than a placed
            # order whose checkout fails (and whose stock the failure path would release).
            logger.warning("order %s was not counted by the fraud rules", order_id, exc_info=True)
    return as_order(results[0])


def _assess(
    services: Services,
    customer_id: str,
    context: CheckoutContext,
    address: dict[str, Any],
    quantities: dict[str, int],
    totals: Mapping[str, Any],
) -> risk.CheckoutCheck | None:
    """The fraud rules' decision, or None when they are off or cannot be read (fail open:
    a risk store outage must not stop every sale)."""
    store = services.documents

    def is_first_order() -> bool:
        found = first(
            orders_container(store),
            Query(filters=(Filter("type", "eq", ORDER_TYPE),)),
            partition_key=customer_id,
        )
        return found is None

    signals = risk.CheckoutSignals(
        customer_id=customer_id,
        email=context.email,
        ip=context.ip,
        shipping_address=address,
        lines=quantities,
        total=int(totals["total"]),
        currency=str(totals["currency"]),
    )
    try:
        return risk.assess_checkout(services, signals, is_first_order=is_first_order)
    except risk.RiskConfigError:
        raise
    except Exception:
        logger.exception("fraud rules unavailable; checkout of %s goes on unchecked", customer_id)
        return None


def _address(services: Services, customer_id: str, body: CheckoutIn) -> dict[str, Any]:
    if body.shipping_address is not None:
        return body.shipping_address.model_dump(mode="json", by_alias=True)
    found = _saved_address(services, customer_id, str(body.address_id))
    if found is None:
        raise CheckoutFailure("unknown address", "unknown-address")
    return found


def _saved_address(services: Services, customer_id: str, address_id: str) -> dict[str, Any] | None:
    # The customers package owns addresses: read them through its public service (a point
    # read in the caller's partition, so another customer's address id is unknown here).
    from cloudcart.customers.service import CustomerService

    try:
        found = CustomerService(services.documents).get_address(customer_id, address_id)
    except NotFound:
        return None
    fields = ("name", "line1", "line2", "city", "region", "postalCode", "country", "phone")
    return {f: found.get(f) for f in fields}


def attach_payment(services: Services, order: OrderDocument) -> CheckoutResponse:
    """Create the order's gateway payment (idempotent on the order id) and store it with the
    checkout response; 503 (order kept, key resumable) if the gateway fails."""
    store = services.documents
    container = orders_container(store)
    order_id = str(order["id"])
    customer_id = str(order["customerId"])
    totals = order["totals"]
    try:
        payment = gateway(services).create_payment(
            order_id=order_id,
            customer_id=customer_id,
            amount=int(totals["total"]),
            currency=str(totals["currency"]),
            idempotency_key=order_id,
        )
    except PaymentsDisabled as disabled:
        # Payments were switched off after the order was placed (or while a retry resumed
        # it): the same key resumes here once they are on; otherwise expiry cancels it.
        logger.warning("order %s placed but payments are disabled: %s", order_id, disabled)
        _open_lease(services, order)
        return CheckoutResponse.refused(
            CheckoutFailure(
                "the order is placed but this shop is not taking payments at the moment; retry "
                "with the same Idempotency-Key later",
                "payments-disabled",
                order_id=order_id,
            )
        )
    except Exception:
        logger.exception("payment for order %s could not be created", order_id)
        _open_lease(services, order)
        return CheckoutResponse.refused(
            CheckoutFailure(
                "the order is placed but its payment could not be started; retry with the same "
                "Idempotency-Key",
                "payment-unavailable",
                order_id=order_id,
                retry_after=5,
            )
        )
    stored_payment: OrderPaymentDocument = {
        "provider": payment.provider,
        "paymentId": payment.payment_id,
        "clientSecret": payment.client_secret,
        "confirmUrl": payment.confirm_url,
    }
    response = {
        "orderId": order_id,
        "status": order["status"],
        "total": money(int(totals["total"]), str(totals["currency"])),
        "totals": totals,
        "lines": [public_line(line) for line in order["lines"]],
        "payment": public_payment(stored_payment),
        "reservationExpiresAt": order.get("reservationExpiresAt"),
    }
    container.patch(
        order_id,
        customer_id,
        [
            PatchOp("set", "payment", stored_payment),
            PatchOp("set", "checkoutResponse", response),
        ],
    )
    return CheckoutResponse(201, response)


def _open_lease(services: Services, order: OrderDocument) -> None:
    """Let the next retry with the order's key resume at once instead of waiting out the
    lease (best effort)."""
    try:
        rid = _record_for(order)
        if rid is not None:
            orders_container(services.documents).patch(
                rid, str(order["customerId"]), [PatchOp("set", "leaseUntil", "")]
            )
    except Exception:
        logger.warning("could not open idempotency record of %s", order["id"], exc_info=True)


def _record_for(order: OrderDocument) -> str | None:
    return (
        order.get("idempotencyRecord") if isinstance(order.get("idempotencyRecord"), str) else None
    )


def recover_abandoned_checkouts(
    services: Services, *, grace: timedelta = ABANDON_GRACE, limit: int = RECOVERY_BATCH
) -> int:
    """Release the stock of checkouts that crashed between reserving and placing the order.

    Finds idempotency records still `in_progress` whose lease ran out more than `grace`
    ago (no order: the order and the record's completion are one batch), releases exactly
    the reservations their attempt made (the `reserve:{attempt}` markers tell which, so a
    second run moves nothing) and marks them `abandoned` If-Match, so a retry that took
    the key over meanwhile keeps it. A retry with the same key after that starts afresh.
    Returns how many records were abandoned now.
    """
    container = orders_container(services.documents)
    page = fill_page(
        container,
        Query(
            filters=(
                Filter("type", "eq", IDEMPOTENCY_TYPE),
                Filter("status", "eq", "in_progress"),
                Filter("leaseUntil", "lt", timestamp(utcnow() - grace)),
            ),
            limit=limit,
        ),
    )
    abandoned = 0
    for record in page.items:
        rid, customer_id = str(record["id"]), str(record["customerId"])
        try:
            if _has_order(services, customer_id, rid):
                logger.warning("idempotency record %s is in progress but has an order", rid)
                continue
            released = _release_recorded(services, record)
            container.replace(
                {**_clean(record), "status": "abandoned", "abandonedAt": now_stamp()},
                if_match=str(record["_etag"]),
            )
        except (PreconditionFailed, NotFound):
            continue  # a retry took the key over (it releases the old attempt itself)
        except Exception:
            logger.exception("could not recover checkout %s", rid)
            continue
        logger.warning("abandoned crashed checkout %s (released %d SKU(s))", rid, released)
        abandoned += 1
    return abandoned


def _has_order(services: Services, customer_id: str, rid: str) -> bool:
    order = first(
        orders_container(services.documents),
        Query(filters=(Filter("type", "eq", ORDER_TYPE), Filter("idempotencyRecord", "eq", rid))),
        partition_key=customer_id,
    )
    return order is not None
