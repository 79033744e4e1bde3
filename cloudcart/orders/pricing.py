"""Order totals: catalog line prices, shipping by method, tax by country; integer minor units.

Tax rules come from the `ORDER_TAX_RULES` setting (`{"IN": {"rate": 18, "inclusive":
true}}`): an *inclusive* rate means catalog prices already contain the tax (India's GST
on consumer prices), so the tax is the part of each line that is tax,
`round(gross * rate / (100 + rate))`, and the total does not grow; an *exclusive* rate
adds `round(net * rate / 100)` on top. Tax is computed per line and summed, so partial
refunds by line give back exactly that line's tax. Shipping is not taxed (kept simple;
change `_line_tax` callers if a country taxes it). Rounding is half-up on integers only,
never floats, so totals are exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cloudcart.core.settings import Settings
from cloudcart.orders.documents import OrderTotalsDocument


class PricingError(ValueError):
    """The order cannot be priced (unknown shipping method, mixed currencies)."""


@dataclass(frozen=True)
class TaxRule:
    """Tax of one country: `rate` percent, included in prices or added on top."""

    rate: Decimal
    inclusive: bool


def tax_rules(settings: Settings) -> dict[str, TaxRule]:
    """The tax rules by upper-case country code."""
    raw: dict[str, Any] = json.loads(settings.order_tax_rules)
    return {
        country.upper(): TaxRule(Decimal(str(rule["rate"])), bool(rule.get("inclusive", False)))
        for country, rule in raw.items()
    }


def shipping_rates(settings: Settings) -> dict[str, int]:
    """Shipping methods and their price in minor units."""
    raw: dict[str, Any] = json.loads(settings.order_shipping_rates)
    return {method: int(price) for method, price in raw.items()}


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_tax(line_total: int, rule: TaxRule | None) -> int:
    """The tax of one line total under `rule` (0 without a rule)."""
    if rule is None or rule.rate == 0:
        return 0
    if rule.inclusive:
        return _round(Decimal(line_total) * rule.rate / (Decimal(100) + rule.rate))
    return _round(Decimal(line_total) * rule.rate / Decimal(100))


@dataclass(frozen=True)
class Totals:
    """What an order costs, in minor units of `currency`."""

    currency: str
    subtotal: int
    shipping: int
    tax: int
    tax_inclusive: bool
    total: int

    def to_document(self) -> OrderTotalsDocument:
        """The JSON form stored on the order and returned by the API."""
        return {
            "currency": self.currency,
            "subtotal": self.subtotal,
            "shipping": self.shipping,
            "tax": self.tax,
            "taxInclusive": self.tax_inclusive,
            "total": self.total,
        }


def price_lines(
    lines: list[dict[str, Any]], *, country: str, method: str, settings: Settings
) -> Totals:
    """Fill `lineTotal` and `tax` into each line (`unitPrice`, `quantity`, `currency`) and
    return the order totals."""
    rates = shipping_rates(settings)
    if method not in rates:
        raise PricingError(f"unknown shipping method {method!r}; one of {sorted(rates)}")
    currencies = {line["currency"] for line in lines}
    if len(currencies) != 1:
        raise PricingError("every line of an order must be priced in one currency")
    rule = tax_rules(settings).get(country.upper())
    subtotal = tax = 0
    for line in lines:
        line["lineTotal"] = int(line["unitPrice"]) * int(line["quantity"])
        line["tax"] = line_tax(line["lineTotal"], rule)
        subtotal += line["lineTotal"]
        tax += line["tax"]
    inclusive = rule is None or rule.inclusive
    shipping = rates[method]
    total = subtotal + shipping + (0 if inclusive else tax)
    return Totals(currencies.pop(), subtotal, shipping, tax, inclusive, total)


def line_refund_amount(line: Mapping[str, Any], quantity: int, *, tax_inclusive: bool) -> int:
    """What refunding `quantity` units of a priced line gives back (its share of the line's
    price, plus its share of the tax when tax was added on top)."""
    ordered = int(line["quantity"])
    amount = int(line["lineTotal"]) * quantity // ordered
    if not tax_inclusive:
        amount += int(line["tax"]) * quantity // ordered
    return amount
