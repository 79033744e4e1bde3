"""Does the money add up across the journal, the orders (whose captures the gateway
confirms) and the accounting system? Read-only; `cloudcart reconcile` reports it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING

from cloudcart.core.ports.partners import PartnerError
from cloudcart.ledger import journal

if TYPE_CHECKING:
    from cloudcart.composition import Services

_CAPTURE_RULES = ("capture",)
_REFUND_RULES = ("refund", "cancellation")


def ledger_problems(
    services: Services,
    orders_net: Mapping[str, int],
    captured_orders: Set[str],
) -> list[str]:
    """What is off: every order in `captured_orders` (those that captured money and have
    settled) has its capture entry, and per currency the journal's captures less refunds
    of those orders equal the orders' (`orders_net`); and the accounting system's books
    equal ours account by account (when it is configured)."""
    problems: list[str] = []
    net: dict[str, int] = defaultdict(int)
    posted: set[str] = set()
    for entry in journal.all_entries(services.documents):
        rule, lines = entry["rule"], entry["lines"]
        order_id = str(entry["sourceEvent"]["subject"])
        if rule in _CAPTURE_RULES:
            posted.add(order_id)
        if order_id not in captured_orders:
            continue  # an order still settling, or a payout
        if rule in _CAPTURE_RULES:
            net[lines[0]["currency"]] += sum(int(line["debit"]) for line in lines)
        elif rule in _REFUND_RULES:
            net[lines[0]["currency"]] -= sum(int(line["credit"]) for line in lines)
    for currency in sorted(set(net) | set(orders_net)):
        if net.get(currency, 0) != orders_net.get(currency, 0):
            problems.append(
                f"ledger: captures less refunds in {currency} are {net.get(currency, 0)} but "
                f"the orders say {orders_net.get(currency, 0)}"
            )
    for order_id in sorted(captured_orders - posted):
        problems.append(f"order {order_id}: captured but the journal has no capture entry")
    partner = services.accounting_partner
    if partner is None:
        return problems
    for currency in journal.currencies(services.documents):
        ours = {
            a["account"]: (a["debit"], a["credit"])
            for a in journal.trial_balance(services.documents, currency)["accounts"]
        }
        try:
            theirs = dict(partner.trial_balance(currency).accounts)
        except PartnerError as exc:
            problems.append(f"accounting: cannot read the partner's books in {currency}: {exc}")
            continue
        for account in sorted(set(ours) | set(theirs)):
            if ours.get(account, (0, 0)) != theirs.get(account, (0, 0)):
                problems.append(
                    f"accounting: {account} in {currency} is {ours.get(account, (0, 0))} "
                    f"(debit, credit) here but {theirs.get(account, (0, 0))} at the partner"
                )
    return problems
