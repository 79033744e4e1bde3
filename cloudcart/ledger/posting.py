"""From money events to journal entries: the ledger's consumer and its payout hook.

`order.paid` posts the capture and `refund.issued` a refund (or, for a cancelled order, a
cancellation) on the `ledger` subscription; a gateway payout is posted straight from its
verified webhook (`post_payout`). The order is read through the orders package's public
functions for the split into revenue, tax and shipping.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudcart.core.events import Event
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.ledger import accounts, journal, rules
from cloudcart.orders.service import OrderNotFound, get_order

if TYPE_CHECKING:
    from cloudcart.composition import Services

EVENTS = ("order.paid", "refund.issued")


def chart(services: Services) -> dict[str, str]:
    """The configured chart of accounts."""
    return accounts.chart(services.settings.ledger_accounts)


def _order(services: Services, event: Event) -> dict[str, Any]:
    order_id, customer_id = event.data.get("orderId"), event.data.get("customerId")
    if not isinstance(order_id, str) or not isinstance(customer_id, str):
        raise InvalidMessage("InvalidEvent", f"{event.type} without orderId and customerId")
    try:
        return dict(get_order(services.documents, customer_id, order_id))
    except OrderNotFound:
        raise InvalidMessage("OrderNotFound", f"no order {order_id!r}") from None


def handle_event(services: Services, event: Event) -> dict[str, Any] | None:
    """Post the entry an event calls for (once); None for an event the ledger ignores."""
    if event.type not in EVENTS:
        return None
    source = journal.SourceEvent(event.id, event.type, event.subject, event.time)
    order = _order(services, event)
    currency = str(event.data.get("currency") or order["totals"]["currency"])
    amount = int(event.data["amount"])
    try:
        if event.type == "order.paid":
            rule = "capture"
            lines = rules.capture(order, amount, int(event.data.get("fee") or 0))
        else:
            rule = "cancellation" if event.data.get("kind") == "cancellation" else "refund"
            lines = rules.refund(order, amount, event.data.get("lines") or [])
    except rules.RuleError as exc:
        raise InvalidMessage("UnpostableEvent", str(exc)) from None
    entry, _ = journal.post(
        services.documents, source, rule, currency, lines, chart(services), order_id=order["id"]
    )
    return entry


def post_payout(
    services: Services, *, event_id: str, payout_id: str, amount: int, currency: str, at: datetime
) -> dict[str, Any]:
    """Post a gateway payout to the bank (once per gateway event)."""
    source = journal.SourceEvent(event_id, "payout.paid", payout_id, at)
    entry, _ = journal.post(
        services.documents, source, "payout", currency, rules.payout(amount), chart(services)
    )
    return entry
