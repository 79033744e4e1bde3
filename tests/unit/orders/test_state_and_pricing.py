"""The pure parts: the transition table and money arithmetic."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cloudcart.core.settings import Settings
from cloudcart.orders.pricing import PricingError, line_refund_amount, price_lines
from cloudcart.orders.state import TRANSITIONS, InvalidTransition, next_status


def test_happy_path_and_idempotent_repeats() -> None:
    path = [
        "pending_payment",
        "paid",
        "fulfilling",
        "shipped",
        "delivered",
        "return_requested",
        "returned",
        "refunded",
    ]
    for current, target in itertools.pairwise(path):
        assert next_status(current, target) == target
        assert next_status(target, target) is None  # applying it again is a no-op


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("paid", "payment_failed"),
        ("cancelled", "paid"),
        ("shipped", "cancelled"),
        ("pending_payment", "shipped"),
        ("refunded", "paid"),
        ("delivered", "nonsense"),
    ],
)
def test_impossible_transitions_name_both_states(current: str, target: str) -> None:
    with pytest.raises(InvalidTransition) as caught:
        next_status(current, target)
    assert (caught.value.current, caught.value.target) == (current, target)


def test_terminal_states_have_no_exit() -> None:
    for terminal in ("cancelled", "payment_failed", "refunded"):
        assert TRANSITIONS[terminal] == frozenset()


def _lines() -> list[dict[str, Any]]:
    return [
        {"sku": "A", "unitPrice": 11800, "quantity": 2, "currency": "INR"},
        {"sku": "B", "unitPrice": 999, "quantity": 1, "currency": "INR"},
    ]


def test_inclusive_gst_keeps_the_total_and_extracts_the_tax() -> None:
    lines = _lines()
    totals = price_lines(lines, country="in", method="express", settings=Settings())
    assert totals.subtotal == 23600 + 999
    assert lines[0]["tax"] == 3600  # 23600 * 18 / 118
    assert lines[1]["tax"] == 152  # 999 * 18 / 118 = 152.39 -> 152
    assert totals.tax == 3752
    assert totals.total == 24599 + 9900


def test_exclusive_tax_is_added_and_other_countries_pay_none() -> None:
    settings = Settings(order_tax_rules='{"US": {"rate": 7.25, "inclusive": false}}')
    lines = _lines()
    totals = price_lines(lines, country="US", method="standard", settings=settings)
    assert totals.tax == round(23600 * 0.0725) + round(999 * 0.0725)
    assert totals.total == 24599 + totals.tax
    untaxed = price_lines(_lines(), country="IN", method="standard", settings=settings)
    assert untaxed.tax == 0 and untaxed.total == 24599
    refund = line_refund_amount(lines[0], 1, tax_inclusive=False)
    assert refund == 11800 + int(lines[0]["tax"]) // 2


def test_unknown_method_and_mixed_currencies_are_refused() -> None:
    with pytest.raises(PricingError):
        price_lines(_lines(), country="IN", method="teleport", settings=Settings())
    mixed = _lines()
    mixed[1]["currency"] = "USD"
    with pytest.raises(PricingError):
        price_lines(mixed, country="IN", method="standard", settings=Settings())
