"""The chart of accounts: the roles the posting rules use, mapped to account names.

A shop renames accounts to its own chart with the `LEDGER_ACCOUNTS` setting (a JSON object
of role -> name, e.g. `{"sales_revenue": "4000 Sales"}`); roles left out keep the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal, get_args

AccountRole = Literal[
    "gateway_receivable",
    "bank",
    "sales_revenue",
    "shipping_revenue",
    "tax_payable",
    "refunds",
    "payment_fees",
]
ROLES: tuple[str, ...] = get_args(AccountRole)

DEFAULT_ACCOUNTS: dict[str, str] = {
    "gateway_receivable": "1100 Gateway receivable",
    "bank": "1000 Bank",
    "sales_revenue": "4000 Sales revenue",
    "shipping_revenue": "4100 Shipping revenue",
    "tax_payable": "2100 Tax payable",
    "refunds": "4900 Refunds",
    "payment_fees": "6100 Payment fees",
}


class ChartError(ValueError):
    """`LEDGER_ACCOUNTS` is not a valid chart."""


def chart(configured: str | Mapping[str, str] | None = None) -> dict[str, str]:
    """Role -> account name: the defaults, overridden by `configured` (JSON text or a
    mapping). Raises ChartError for an unknown role, an empty name or two roles sharing one
    account (their balances would mix)."""
    overrides: object = json.loads(configured) if isinstance(configured, str) else configured
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ChartError("LEDGER_ACCOUNTS must be a JSON object of role -> account name")
    unknown = sorted(set(overrides) - set(ROLES))
    if unknown:
        raise ChartError(f"unknown account roles {unknown}; known: {list(ROLES)}")
    accounts = {**DEFAULT_ACCOUNTS, **{str(k): str(v).strip() for k, v in overrides.items()}}
    if any(not name for name in accounts.values()):
        raise ChartError("account names must not be empty")
    if len(set(accounts.values())) != len(accounts):
        raise ChartError("two roles share one account name")
    return accounts
