"""The fraud rules: small pure functions, each returning a `Hit` (its reason) or None.

Counts passed in are what the counters held BEFORE the order being judged, so "one more
than the limit" is the test for velocities: with `customer_orders_per_hour = 3` the fourth
order of a customer within one UTC clock hour is a hit. Declines are past events: with
`customer_declines_per_hour = 2` a checkout after a third decline within the hour is a hit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudcart.risk.config import Decision, RiskConfig


@dataclass(frozen=True)
class Hit:
    """A rule that fired: its name, its weight and why (for admins only)."""

    rule: str
    weight: int
    detail: str

    def to_document(self) -> dict[str, Any]:
        """As stored on the order and shown in the admin order view."""
        return {"rule": self.rule, "weight": self.weight, "detail": self.detail}


@dataclass(frozen=True)
class Assessment:
    """A weighted score with its reasons and the decision it leads to."""

    score: int
    decision: Decision
    reasons: tuple[Hit, ...]

    def to_document(self) -> dict[str, Any]:
        """`{score, decision, reasons}` as the admin order view shows it."""
        return {
            "score": self.score,
            "decision": self.decision,
            "reasons": [hit.to_document() for hit in self.reasons],
        }


def score(hits: Iterable[Hit | None], config: RiskConfig) -> Assessment:
    """Add up the weights of the rules that fired (each rule once, the heaviest hit) and
    decide. Rules weighted 0 are off and do not appear among the reasons."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit is None or hit.weight <= 0:
            continue
        if hit.rule not in best or hit.weight > best[hit.rule].weight:
            best[hit.rule] = hit
    reasons = tuple(sorted(best.values(), key=lambda h: (-h.weight, h.rule)))
    total = sum(h.weight for h in reasons)
    return Assessment(total, config.decide(total), reasons)


def velocity(
    rule: str,
    what: str,
    *,
    hour: int,
    day: int,
    hour_limit: int,
    day_limit: int,
    config: RiskConfig,
) -> Hit | None:
    """Orders of one customer / card / IP / address: `hour` and `day` earlier orders in the
    current UTC hour and day; a hit when this order is one more than either limit."""
    if hour + 1 > hour_limit:
        return Hit(
            rule, config.weight(rule), f"{hour + 1} orders {what} this hour (limit {hour_limit})"
        )
    if day + 1 > day_limit:
        return Hit(rule, config.weight(rule), f"{day + 1} orders {what} today (limit {day_limit})")
    return None


def card_testing(
    *, what: str, hour: int, day: int, hour_limit: int, day_limit: int, config: RiskConfig
) -> Hit | None:
    """Many declined payments of one customer or IP: the pattern of testing stolen cards."""
    rule = "card_testing"
    if hour > hour_limit:
        return Hit(rule, config.weight(rule), f"{hour} declined payments {what} this hour")
    if day > day_limit:
        return Hit(rule, config.weight(rule), f"{day} declined payments {what} today")
    return None


def high_value_first_order(
    *, total: int, currency: str, is_first_order: Callable[[], bool], config: RiskConfig
) -> Hit | None:
    """A customer's first order at or above the currency's threshold. `is_first_order` is
    only called when the total is that high (it may cost a read)."""
    rule = "high_value_first_order"
    threshold = config.high_value_first_order.get(currency.upper())
    if threshold is None or total < threshold or config.weight(rule) <= 0:
        return None
    if not is_first_order():
        return None
    return Hit(rule, config.weight(rule), f"first order of {total} {currency} (from {threshold})")


def card_country_mismatch(
    *, card_country: str | None, shipping_country: str | None, config: RiskConfig
) -> Hit | None:
    """The card was issued in another country than the order ships to."""
    if not card_country or not shipping_country:
        return None
    if card_country.upper() == shipping_country.upper():
        return None
    rule = "card_country_mismatch"
    return Hit(
        rule,
        config.weight(rule),
        f"card from {card_country.upper()}, ships to {shipping_country.upper()}",
    )


def email_domain(email: str | None) -> str | None:
    """The lower-case domain of an address, or None."""
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower().rstrip(".") or None


def disposable_email(
    *, email: str | None, domains: Collection[str], config: RiskConfig
) -> Hit | None:
    """The customer's email is at a throw-away domain (or a subdomain of one)."""
    domain = email_domain(email)
    if domain is None:
        return None
    parts = domain.split(".")
    for i in range(len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in domains:
            rule = "disposable_email"
            return Hit(rule, config.weight(rule), f"email at disposable domain {candidate}")
    return None


def accounts_per_ip(
    *, customer_id: str, seen: Collection[str], limit: int, config: RiskConfig
) -> Hit | None:
    """More accounts than the limit ordering from one IP today (`seen`: the customers who
    already did)."""
    accounts = len(set(seen) | {customer_id})
    if accounts <= limit:
        return None
    rule = "accounts_per_ip"
    return Hit(rule, config.weight(rule), f"{accounts} accounts ordered from this IP today")


def sku_quantity_spike(*, lines: Mapping[str, int], limit: int, config: RiskConfig) -> Hit | None:
    """An order for more units of one SKU than a shopper normally buys at once."""
    if not lines:
        return None
    sku, units = max(lines.items(), key=lambda item: item[1])
    if units <= limit:
        return None
    rule = "sku_quantity_spike"
    return Hit(rule, config.weight(rule), f"{units} units of {sku} (limit {limit})")
