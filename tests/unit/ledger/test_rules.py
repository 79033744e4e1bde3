"""Posting rules over any sequence of captures, partial refunds, cancellations and payouts:
every entry balances, the books sum to zero, and revenue + tax + shipping - refunds equals
what was captured less what was refunded, to the minor unit, per currency."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcart.ledger import rules
from cloudcart.ledger.rules import Line


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    inclusive = draw(st.booleans())
    rate = draw(st.sampled_from([0, 5, 12, 18, 28]))
    lines: list[dict[str, int | str]] = []
    for n in range(draw(st.integers(1, 4))):
        quantity = draw(st.integers(1, 5))
        unit = draw(st.integers(1, 500_000))
        total = unit * quantity
        tax = (
            (total * rate + (100 + rate) // 2) // (100 + rate) if inclusive else total * rate // 100
        )
        lines.append({"sku": f"S{n}", "quantity": quantity, "lineTotal": total, "tax": tax})
    subtotal = sum(int(ln["lineTotal"]) for ln in lines)
    tax = sum(int(ln["tax"]) for ln in lines)
    shipping = draw(st.sampled_from([0, 4900, 9900]))
    total = subtotal + shipping + (0 if inclusive else tax)
    return {
        "id": "ord_1",
        "lines": lines,
        "totals": {
            "subtotal": subtotal,
            "tax": tax,
            "shipping": shipping,
            "taxInclusive": inclusive,
            "total": total,
            "currency": draw(st.sampled_from(["INR", "EUR"])),
        },
    }


def _line_refund(
    order: dict[str, Any], refunded_units: dict[str, int], data: st.DataObject
) -> tuple[int, list[dict[str, Any]]]:
    inclusive = order["totals"]["taxInclusive"]
    chosen: list[dict[str, Any]] = []
    amount = 0
    for line in order["lines"]:
        left = line["quantity"] - refunded_units[line["sku"]]
        if left and data.draw(st.booleans()):
            q = data.draw(st.integers(1, left))
            chosen.append({"sku": line["sku"], "quantity": q})
            refunded_units[line["sku"]] += q
            amount += line["lineTotal"] * q // line["quantity"]
            if not inclusive:
                amount += line["tax"] * q // line["quantity"]
    return amount, chosen


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_sequence_balances_and_adds_up(data: st.DataObject) -> None:
    books: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    captured: dict[str, int] = defaultdict(int)
    refunded: dict[str, int] = defaultdict(int)
    for _ in range(data.draw(st.integers(1, 4))):
        order = data.draw(orders())
        currency = order["totals"]["currency"]
        total = order["totals"]["total"]
        fee = data.draw(st.integers(0, total // 20))
        entries = [rules.capture(order, total, fee)]
        captured[currency] += total
        left = total
        units: dict[str, int] = defaultdict(int)
        for _ in range(data.draw(st.integers(0, 3))):
            if left <= 0:
                break
            kind = data.draw(st.sampled_from(["lines", "amount", "cancel"]))
            if kind == "lines":
                amount, chosen = _line_refund(order, units, data)
                if not chosen or amount <= 0 or amount > left:
                    continue
                entries.append(rules.refund(order, amount, chosen))
            elif kind == "amount":
                amount = data.draw(st.integers(1, left))
                entries.append(rules.refund(order, amount))
            else:
                amount = left
                entries.append(rules.refund(order, amount))
            left -= amount
            refunded[currency] += amount
        if data.draw(st.booleans()) and total - fee - (total - left) > 0:
            entries.append(rules.payout(total - fee - (total - left)))
        for entry in entries:
            assert rules.balanced(entry), entry
            for line in entry:
                books[currency][line.role] += line.debit - line.credit
    for currency, balances in books.items():
        assert sum(balances.values()) == 0
        revenue = -balances["sales_revenue"]
        tax = -balances["tax_payable"]
        shipping = -balances["shipping_revenue"]
        refunds = balances["refunds"]
        assert revenue + tax + shipping - refunds == captured[currency] - refunded[currency]


def _order(inclusive: bool = True) -> dict[str, Any]:
    return {
        "id": "ord_1",
        "lines": [
            {"sku": "A", "quantity": 2, "lineTotal": 23600, "tax": 3600},
            {"sku": "B", "quantity": 1, "lineTotal": 11800, "tax": 1800},
        ],
        "totals": {
            "subtotal": 35400,
            "tax": 5400,
            "shipping": 9900,
            "taxInclusive": inclusive,
            "total": 45300,
            "currency": "INR",
        },
    }


def test_capture_splits_tax_out_of_inclusive_prices() -> None:
    assert rules.capture(_order(), 45300, fee=906) == [
        Line("gateway_receivable", debit=44394),
        Line("payment_fees", debit=906),
        Line("sales_revenue", credit=30000),
        Line("tax_payable", credit=5400),
        Line("shipping_revenue", credit=9900),
    ]


def test_a_line_refund_reverses_exactly_that_lines_price_and_tax() -> None:
    assert rules.refund(_order(), 11800, [{"sku": "A", "quantity": 1}]) == [
        Line("refunds", debit=10000),
        Line("tax_payable", debit=1800),
        Line("gateway_receivable", credit=11800),
    ]


def test_an_amount_refund_is_spread_in_proportion_and_exact() -> None:
    lines = rules.refund(_order(), 1000)
    assert rules.balanced(lines)
    assert {line.role: line.debit for line in lines if line.debit} == {
        "refunds": 662,
        "tax_payable": 119,
        "shipping_revenue": 219,
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rules.capture(_order(), 0), "out of range"),
        (lambda: rules.capture(_order(), 100, fee=101), "out of range"),
        (lambda: rules.refund(_order(), -5), "out of range"),
        (lambda: rules.refund(_order(), 10, [{"sku": "Z", "quantity": 1}]), "not on order"),
        (lambda: rules.payout(0), "out of range"),
    ],
)
def test_impossible_postings_are_refused(call: Any, message: str) -> None:
    with pytest.raises(rules.RuleError, match=message):
        call()


def test_split_is_exact_and_fair() -> None:
    assert rules.split(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(rules.split(7, [3, 0, 5])) == 7
    with pytest.raises(rules.RuleError):
        rules.split(5, [0, 0])
