"""Fraud checks at checkout and on payment events, and the counters they read.

Storage (`risk` container, partition key `/day` = the UTC date `YYYY-MM-DD`): one counter
document per customer, IP, shipping address and card seen that day, holding its orders and
declines per UTC hour (`{"orders": {"09": 2}, "declines": {...}}`) and, for an IP, the
customers who ordered from it. Because every counter of a day shares one partition, a
decision costs a point read per counter it needs (customer, IP, address: three at most)
and one transactional batch (a
marker keyed on the order or payment event, created first, plus the updated counters):
a redelivered event finds its marker and counts nothing twice. Ids are pseudonymous (IPs,
addresses and card fingerprints are hashed) and everything expires after 8 days.

Days are UTC calendar days and hours UTC clock hours, so "per day" restarts at midnight UTC.

Failures here never fail a checkout that passed the rules: recording is best effort and
the caller logs what could not be counted (one order missing from a counter).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.ports.documents import BatchOp, Container, Document, strip_system
from cloudcart.risk import rules
from cloudcart.risk.client_ip import ip_bucket
from cloudcart.risk.config import RiskConfig, risk_config
from cloudcart.risk.rules import Assessment, Hit

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

CONTAINER = "risk"
MAX_IP_CUSTOMERS = 50
"""Customers remembered per IP and day (more than any sensible limit)."""
_ATTEMPTS = 5

_disposable: frozenset[str] | None = None


def disposable_domains() -> frozenset[str]:
    """The shipped list of throw-away email domains (the `disposable-email-domains`
    package, the list PyPI itself uses), loaded on first use."""
    global _disposable
    if _disposable is None:
        from disposable_email_domains import blocklist

        _disposable = frozenset(cast(Iterable[str], blocklist))
    return _disposable


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def customer_key(customer_id: str) -> str:
    """Counter id of a customer."""
    return f"customer:{customer_id}"


def ip_key(ip: str) -> str:
    """Counter id of an IP (IPv6 by /64), hashed."""
    return f"ip:{_digest(ip_bucket(ip))}"


def address_key(address: Mapping[str, Any]) -> str | None:
    """Counter id of a shipping address: street, city, postal code and country, case and
    spacing ignored, hashed; None without a street."""
    parts = [
        " ".join(str(address.get(name) or "").lower().split())
        for name in ("line1", "line2", "city", "postalCode", "country")
    ]
    if not parts[0]:
        return None
    return f"address:{_digest('|'.join(parts))}"


def card_key(fingerprint: str) -> str:
    """Counter id of a card (by the gateway's fingerprint), hashed."""
    return f"card:{_digest(fingerprint)}"


def day_of(moment: datetime) -> str:
    """The partition of a moment: its UTC date."""
    return moment.strftime("%Y-%m-%d")


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _hour_of(moment: datetime) -> str:
    return moment.strftime("%H")


def _container(services: Services) -> Container:
    return services.documents.container(CONTAINER)


# --- counters -------------------------------------------------------------------------------


def _read(container: Container, day: str, ids: Iterable[str]) -> dict[str, Document]:
    """Point reads of the day's documents that exist among `ids` (a point read by id and
    partition is the cheapest call a store has: a query, even by id, scans the day)."""
    found: dict[str, Document] = {}
    for doc_id in sorted(set(ids)):
        try:
            found[doc_id] = container.read(doc_id, day)
        except NotFound:
            continue
    return found


def _counts(doc: Document | None, what: str, hour: str) -> tuple[int, int]:
    """(this hour, this day) of `orders` or `declines` on a counter document."""
    buckets: Mapping[str, int] = (doc or {}).get(what) or {}
    return int(buckets.get(hour, 0)), sum(int(v) for v in buckets.values())


def _bumped(
    doc: Document | None, key: str, day: str, hour: str, what: str, customer_id: str | None
) -> Document:
    fresh: Document = {"id": key, "day": day, "kind": "counter", "orders": {}, "declines": {}}
    base = strip_system(doc or fresh)
    buckets = dict(base.get(what) or {})
    buckets[hour] = int(buckets.get(hour, 0)) + 1
    base[what] = buckets
    if customer_id is not None and key.startswith("ip:"):
        seen = list(base.get("customers") or [])
        if customer_id not in seen and len(seen) < MAX_IP_CUSTOMERS:
            seen.append(customer_id)
        base["customers"] = seen
    return base


def _write(
    container: Container,
    day: str,
    marker: Document,
    docs: dict[str, Document],
    bumps: Mapping[str, tuple[str, str | None]],
    reread: Callable[[], dict[str, Document]],
) -> bool:
    """Create `marker` and apply `bumps` (counter id -> (`orders`|`declines`, customer))
    in one batch; False when the marker existed (counted before). Concurrent writers of
    the same counters make the batch fail on its ETag: read again and retry."""
    hour = str(marker["hour"])
    for _ in range(_ATTEMPTS):
        ops = [BatchOp("create", document=marker)]
        for key, (what, customer_id) in bumps.items():
            current = docs.get(key)
            updated = _bumped(current, key, day, hour, what, customer_id)
            if current is None:
                ops.append(BatchOp("create", document=updated))
            else:
                ops.append(BatchOp("replace", document=updated, if_match=str(current["_etag"])))
        try:
            container.batch(day, ops)
        except BatchFailed as exc:
            if exc.index == 0 and isinstance(exc.cause, Conflict):
                return False
            if isinstance(exc.cause, PreconditionFailed | Conflict | NotFound):
                docs = reread()
                continue
            raise
        return True
    raise PreconditionFailed(f"risk counters of {day} kept changing; not counted")


# --- checkout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutSignals:
    """What the checkout knows about an order before its payment."""

    customer_id: str
    email: str | None
    ip: str | None
    shipping_address: Mapping[str, Any]
    lines: Mapping[str, int]
    """SKU -> units."""
    total: int
    currency: str


@dataclass
class CheckoutCheck:
    """The checkout's decision, with what it read so recording it needs no second read."""

    assessment: Assessment
    enforced: bool
    """False in monitor-only mode: the decision is recorded, nothing acts on it."""
    signals: CheckoutSignals
    day: str
    hour: str
    at: str
    keys: dict[str, str] = field(default_factory=dict)
    docs: dict[str, Document] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """Whether the checkout must be declined."""
        return self.enforced and self.assessment.decision == "block"

    @property
    def holds(self) -> bool:
        """Whether the order must wait for an admin's review."""
        return self.enforced and self.assessment.decision == "review"

    def to_document(self) -> dict[str, Any]:
        """What the order stores under `risk` (shown to admins only)."""
        return {
            **self.assessment.to_document(),
            "mode": "enforce" if self.enforced else "monitor",
            "evaluatedAt": self.at,
        }


def _checkout_keys(signals: CheckoutSignals) -> dict[str, str]:
    keys = {"customer": customer_key(signals.customer_id)}
    if signals.ip:
        keys["ip"] = ip_key(signals.ip)
    address = address_key(signals.shipping_address)
    if address:
        keys["address"] = address
    return keys


def checkout_hits(
    signals: CheckoutSignals,
    docs: Mapping[str, Document],
    keys: Mapping[str, str],
    hour: str,
    config: RiskConfig,
    is_first_order: Callable[[], bool],
) -> list[Hit | None]:
    """Every checkout rule on these counters (pure: no reads but `is_first_order`)."""
    limits = config.limits
    hits: list[Hit | None] = []
    for role, what in (
        ("customer", "from this customer"),
        ("ip", "from this IP"),
        ("address", "to this address"),
    ):
        if role not in keys:
            continue
        doc = docs.get(keys[role])
        hour_n, day_n = _counts(doc, "orders", hour)
        hits.append(
            rules.velocity(
                f"{role}_velocity",
                what,
                hour=hour_n,
                day=day_n,
                hour_limit=limits[f"{role}_orders_per_hour"],
                day_limit=limits[f"{role}_orders_per_day"],
                config=config,
            )
        )
        if role in ("customer", "ip"):
            d_hour, d_day = _counts(doc, "declines", hour)
            hits.append(
                rules.card_testing(
                    what=what,
                    hour=d_hour,
                    day=d_day,
                    hour_limit=limits[f"{role}_declines_per_hour"],
                    day_limit=limits[f"{role}_declines_per_day"],
                    config=config,
                )
            )
        if role == "ip":
            hits.append(
                rules.accounts_per_ip(
                    customer_id=signals.customer_id,
                    seen=(doc or {}).get("customers") or [],
                    limit=limits["accounts_per_ip_per_day"],
                    config=config,
                )
            )
    hits.append(
        rules.high_value_first_order(
            total=signals.total,
            currency=signals.currency,
            is_first_order=is_first_order,
            config=config,
        )
    )
    if config.weight("disposable_email") > 0:
        hits.append(
            rules.disposable_email(email=signals.email, domains=disposable_domains(), config=config)
        )
    hits.append(
        rules.sku_quantity_spike(
            lines=signals.lines, limit=limits["sku_units_per_order"], config=config
        )
    )
    return hits


def assess_checkout(
    services: Services,
    signals: CheckoutSignals,
    *,
    is_first_order: Callable[[], bool],
    now: datetime | None = None,
) -> CheckoutCheck | None:
    """Score an order before its payment: one query for the day's counters of its
    customer, IP and address (`is_first_order` is asked only for a high-value order).
    None when the rules are off (`RISK_MODE=off`)."""
    config = risk_config(services.settings)
    if config.mode == "off":
        return None
    moment = now or utcnow()
    day, hour = day_of(moment), _hour_of(moment)
    keys = _checkout_keys(signals)
    docs = _read(_container(services), day, keys.values())
    hits = checkout_hits(signals, docs, keys, hour, config, is_first_order)
    return CheckoutCheck(
        assessment=rules.score(hits, config),
        enforced=config.mode == "enforce",
        signals=signals,
        day=day,
        hour=hour,
        at=_stamp(moment),
        keys=keys,
        docs=docs,
    )


def record_checkout(services: Services, check: CheckoutCheck, order_id: str) -> bool:
    """Count a placed order in its customer's, IP's and address's counters, once (marker
    `order:<id>`, which also keeps the order's IP key for its payment events). Returns
    False when it was counted before."""
    container = _container(services)
    marker: Document = {
        "id": f"order:{order_id}",
        "day": check.day,
        "kind": "order",
        "hour": check.hour,
        "customerId": check.signals.customer_id,
        "keys": check.keys,
        "score": check.assessment.score,
        "decision": check.assessment.decision,
    }
    bumps = {key: ("orders", check.signals.customer_id) for key in check.keys.values()}
    return _write(
        container,
        check.day,
        marker,
        dict(check.docs),
        bumps,
        lambda: _read(container, check.day, check.keys.values()),
    )


# --- payment events -------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentSignals:
    """What a payment event adds: the card, once the gateway authorised (or declined) it."""

    order_id: str
    customer_id: str
    event_id: str
    succeeded: bool
    card_country: str | None
    card_fingerprint: str | None
    shipping_country: str | None
    placed_at: datetime
    """When the order was placed (its checkout marker's partition)."""


def _hits_from(document: Mapping[str, Any] | None) -> list[Hit]:
    reasons = (document or {}).get("reasons") or []
    return [
        Hit(str(r["rule"]), int(r["weight"]), str(r.get("detail", "")))
        for r in reasons
        if isinstance(r, Mapping) and "rule" in r and "weight" in r
    ]


def assess_payment(
    services: Services,
    signals: PaymentSignals,
    earlier: Mapping[str, Any] | None,
    *,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """Score an order again once its payment succeeded: the checkout's reasons (`earlier`,
    the order's stored `risk`) plus the card's velocity and country. Counts the card once
    per order (marker `card:<orderId>`); a redelivered event gets the first answer back.
    Returns the order's new `risk` document, or None when the rules are off or the event
    says nothing about the card."""
    config = risk_config(services.settings)
    if config.mode == "off" or not signals.succeeded:
        return None
    if not signals.card_fingerprint and not signals.card_country:
        return None
    moment = now or utcnow()
    day, hour = day_of(moment), _hour_of(moment)
    container = _container(services)
    marker_id = f"card:{signals.order_id}"
    key = card_key(signals.card_fingerprint) if signals.card_fingerprint else None
    docs = _read(container, day, [marker_id, *([key] if key else [])])
    if marker_id in docs:
        stored = docs[marker_id].get("risk")
        return dict(stored) if isinstance(stored, Mapping) else None
    hits: list[Hit | None] = list(_hits_from(earlier))
    if key is not None:
        hour_n, day_n = _counts(docs.get(key), "orders", hour)
        hits.append(
            rules.velocity(
                "card_velocity",
                "with this card",
                hour=hour_n,
                day=day_n,
                hour_limit=config.limits["card_orders_per_hour"],
                day_limit=config.limits["card_orders_per_day"],
                config=config,
            )
        )
    hits.append(
        rules.card_country_mismatch(
            card_country=signals.card_country,
            shipping_country=signals.shipping_country,
            config=config,
        )
    )
    assessment = rules.score(hits, config)
    risk = {
        **assessment.to_document(),
        "mode": "enforce" if config.mode == "enforce" else "monitor",
        "evaluatedAt": _stamp(moment),
        "cardCountry": signals.card_country,
    }
    marker: Document = {
        "id": marker_id,
        "day": day,
        "kind": "card",
        "hour": hour,
        "risk": risk,
    }
    bumps: dict[str, tuple[str, str | None]] = {key: ("orders", None)} if key else {}
    counted = _write(
        container,
        day,
        marker,
        {k: v for k, v in docs.items() if k != marker_id},
        bumps,
        lambda: _read(container, day, [key] if key else []),
    )
    if not counted:  # a concurrent delivery of the same event won: use its answer
        return assess_payment(services, signals, earlier, now=moment)
    return risk


def record_decline(
    services: Services, signals: PaymentSignals, *, now: datetime | None = None
) -> bool:
    """Count a declined payment against its customer and the IP the order came from, once
    per gateway event (marker `decline:<eventId>`). False when counted before or the rules
    are off."""
    config = risk_config(services.settings)
    if config.mode == "off" or signals.succeeded:
        return False
    moment = now or utcnow()
    day, hour = day_of(moment), _hour_of(moment)
    container = _container(services)
    placed_day = day_of(signals.placed_at)
    order_marker_id = f"order:{signals.order_id}"
    keys = [customer_key(signals.customer_id)]
    if placed_day == day:
        docs = _read(container, day, [*keys, order_marker_id])
        order_marker = docs.pop(order_marker_id, None)
    else:
        docs = {}
        try:
            order_marker = container.read(order_marker_id, placed_day)
        except NotFound:
            order_marker = None
    order_keys = (order_marker or {}).get("keys") or {}
    if isinstance(order_keys.get("ip"), str):
        keys.append(str(order_keys["ip"]))
    if placed_day != day:
        docs = _read(container, day, keys)
    marker: Document = {
        "id": f"decline:{signals.event_id}",
        "day": day,
        "kind": "decline",
        "hour": hour,
        "orderId": signals.order_id,
    }
    return _write(
        container,
        day,
        marker,
        docs,
        {k: ("declines", None) for k in keys},
        lambda: _read(container, day, keys),
    )
