"""Posting rules: what each money event puts in the journal. Pure functions of the order
and the event, so they can be checked exhaustively (tests/unit/ledger).

- `order.paid` (capture): debit gateway receivable (amount - fee) and payment fees (fee);
  credit sales revenue (net of tax), tax payable and shipping revenue.
- `refund.issued` (refund, or cancellation for a cancelled order): debit refunds (net
  goods), tax payable and shipping revenue; credit gateway receivable.
- `payout.paid` (payout): debit bank; credit gateway receivable.

Prices are tax-inclusive in the demo (the tax is split out of the line totals); with
tax-exclusive prices the tax was added on top and is credited as it is. A refund of lines
reverses exactly those lines' net price and tax; a refund of an amount (a cancellation
after capture, a goodwill refund) reverses revenue, tax and shipping in proportion to what
the order captured. Every split is in whole minor units and adds up to the amount exactly
(largest remainder), so every entry balances to the paisa.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Line:
    """One journal line by account role: a debit or a credit in minor units."""

    role: str
    debit: int = 0
    credit: int = 0


class RuleError(ValueError):
    """The event cannot be posted (an amount out of range, a line not on the order)."""


def split(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` shared in proportion to `weights`, in whole units that add up to `amount`
    exactly (largest remainder; ties to the earlier weight)."""
    total = sum(weights)
    if total <= 0:
        raise RuleError("nothing to split against")
    shares = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in remainders[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def composition(order: Mapping[str, Any]) -> tuple[int, int, int]:
    """(goods net of tax, tax, shipping) of an order: they add up to its total."""
    totals = order["totals"]
    tax = int(totals["tax"])
    shipping = int(totals["shipping"])
    subtotal = int(totals["subtotal"])
    net = subtotal - tax if bool(totals.get("taxInclusive", True)) else subtotal
    return net, tax, shipping


def _nonzero(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line.debit or line.credit]


def capture(order: Mapping[str, Any], amount: int, fee: int = 0) -> list[Line]:
    """A captured payment: the gateway owes the shop the amount less its fee."""
    if amount <= 0 or not 0 <= fee <= amount:
        raise RuleError(f"capture of {amount} with fee {fee} is out of range")
    net, tax, shipping = split(amount, composition(order))
    return _nonzero(
        [
            Line("gateway_receivable", debit=amount - fee),
            Line("payment_fees", debit=fee),
            Line("sales_revenue", credit=net),
            Line("tax_payable", credit=tax),
            Line("shipping_revenue", credit=shipping),
        ]
    )


def _lines_part(order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(net, tax) of refunding these `{"sku", "quantity"}` lines of the order."""
    by_sku = {line["sku"]: line for line in order["lines"]}
    inclusive = bool(order["totals"].get("taxInclusive", True))
    net = tax = 0
    for item in lines:
        line = by_sku.get(item["sku"])
        if line is None:
            raise RuleError(f"SKU {item['sku']!r} is not on order {order['id']}")
        quantity, ordered = int(item["quantity"]), int(line["quantity"])
        gross = int(line["lineTotal"]) * quantity // ordered
        line_tax = int(line["tax"]) * quantity // ordered
        if inclusive:
            net, tax = net + gross - line_tax, tax + line_tax
        else:
            net, tax = net + gross, tax + line_tax
    return net, tax


def refund(
    order: Mapping[str, Any], amount: int, lines: Sequence[Mapping[str, Any]] = ()
) -> list[Line]:
    """A refund: the named lines' net price and tax, anything beyond them as shipping; or,
    with no lines, revenue, tax and shipping in proportion to the order."""
    if amount <= 0:
        raise RuleError(f"refund of {amount} is out of range")
    if lines:
        net, tax = _lines_part(order, lines)
        if net + tax > amount:
            # The amount is what the customer got back: scale the lines down to it.
            net, tax = split(amount, [net, tax])
        shipping = amount - net - tax
    else:
        net, tax, shipping = split(amount, composition(order))
    return _nonzero(
        [
            Line("refunds", debit=net),
            Line("tax_payable", debit=tax),
            Line("shipping_revenue", debit=shipping),
            Line("gateway_receivable", credit=amount),
        ]
    )


def payout(amount: int) -> list[Line]:
    """The gateway paid its balance out to the shop's bank."""
    if amount <= 0:
        raise RuleError(f"payout of {amount} is out of range")
    return [Line("bank", debit=amount), Line("gateway_receivable", credit=amount)]


def balanced(lines: Sequence[Line]) -> bool:
    """Debits equal credits, every line one-sided and non-negative."""
    one_sided = all(
        (line.debit > 0) != (line.credit > 0) and min(line.debit, line.credit) >= 0
        for line in lines
    )
    return one_sided and sum(x.debit for x in lines) == sum(x.credit for x in lines)
