"""The fraud rules' configuration: weights, limits and thresholds read from Settings.

`RISK_WEIGHTS` and `RISK_LIMITS` are JSON objects merged over the defaults below, so a
shop sets only what it changes; a name that is not a rule or a limit is refused (a typo
must not silently leave a rule at its default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

Decision = Literal["allow", "review", "block"]
Mode = Literal["enforce", "monitor", "off"]

DEFAULT_WEIGHTS: dict[str, int] = {
    "customer_velocity": 50,
    "card_velocity": 50,
    "ip_velocity": 50,
    "address_velocity": 50,
    "card_testing": 90,
    "high_value_first_order": 50,
    "card_country_mismatch": 30,
    "disposable_email": 30,
    "accounts_per_ip": 50,
    "sku_quantity_spike": 30,
}
"""Rule -> weight. With the default thresholds (review 50, block 90) one velocity, a
high-value first order or many accounts on one IP hold the order; card testing, or two
strong signals together, decline it; a foreign card, a disposable address or a large
quantity alone only add to the score."""

DEFAULT_LIMITS: dict[str, int] = {
    "customer_orders_per_hour": 3,
    "customer_orders_per_day": 10,
    "card_orders_per_hour": 3,
    "card_orders_per_day": 10,
    "ip_orders_per_hour": 5,
    "ip_orders_per_day": 20,
    "address_orders_per_hour": 3,
    "address_orders_per_day": 10,
    "customer_declines_per_hour": 2,
    "customer_declines_per_day": 4,
    "ip_declines_per_hour": 3,
    "ip_declines_per_day": 8,
    "accounts_per_ip_per_day": 3,
    "sku_units_per_order": 10,
}
"""Limit -> the most allowed in the window (UTC clock hour, UTC day); one more is a hit
(for declines: a checkout after one more decline than the limit)."""


class RiskConfigError(ValueError):
    """A risk setting names an unknown rule or limit, or is not a JSON object of numbers."""


@dataclass(frozen=True)
class RiskConfig:
    """Everything the rules and the scoring read, parsed once per Settings object."""

    mode: Mode
    review_score: int
    block_score: int
    weights: dict[str, int]
    limits: dict[str, int]
    high_value_first_order: dict[str, int]

    def weight(self, rule: str) -> int:
        """The rule's weight (0: the rule is off)."""
        return self.weights.get(rule, 0)

    def decide(self, score: int) -> Decision:
        """The decision a score leads to."""
        if score >= self.block_score:
            return "block"
        if score >= self.review_score:
            return "review"
        return "allow"


def _numbers(name: str, raw: str, known: dict[str, int] | None) -> dict[str, int]:
    try:
        parsed = json.loads(raw or "{}")
    except ValueError as exc:
        raise RiskConfigError(f"{name} is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise RiskConfigError(f"{name} must be a JSON object")
    out: dict[str, int] = {}
    for key, value in parsed.items():
        if known is not None and key not in known:
            raise RiskConfigError(f"{name}: unknown name {key!r} (known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RiskConfigError(f"{name}: {key!r} must be a whole number >= 0")
        out[str(key)] = value
    return out


def build_config(settings: Settings) -> RiskConfig:
    """Parse the risk settings; RiskConfigError names what is wrong."""
    if settings.risk_block_score < settings.risk_review_score:
        raise RiskConfigError("RISK_BLOCK_SCORE must not be below RISK_REVIEW_SCORE")
    return RiskConfig(
        mode=settings.risk_mode,
        review_score=settings.risk_review_score,
        block_score=settings.risk_block_score,
        weights={
            **DEFAULT_WEIGHTS,
            **_numbers("RISK_WEIGHTS", settings.risk_weights, DEFAULT_WEIGHTS),
        },
        limits={**DEFAULT_LIMITS, **_numbers("RISK_LIMITS", settings.risk_limits, DEFAULT_LIMITS)},
        high_value_first_order={
            k.upper(): v
            for k, v in _numbers(
                "RISK_HIGH_VALUE_FIRST_ORDER", settings.risk_high_value_first_order, None
            ).items()
        },
    )


_CACHE: dict[int, tuple[Settings, RiskConfig]] = {}
_CACHE_SIZE = 16


def risk_config(settings: Settings) -> RiskConfig:
    """The parsed configuration of these settings (cached per Settings object: the checkout
    reads it on every order)."""
    hit = _CACHE.get(id(settings))
    if hit is not None and hit[0] is settings:
        return hit[1]
    config = build_config(settings)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    # The entry keeps the Settings alive, so its id cannot be reused by another object.
    _CACHE[id(settings)] = (settings, config)
    return config
