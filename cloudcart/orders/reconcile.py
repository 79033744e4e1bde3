"""Reconciliation: does stock add up, and does money add up?

Stock, per SKU: `onHand + sold == received` (`received` counts every unit ever put on
hand), no counter negative, no shortfall, and `reserved`/`sold` equal what the orders
say they hold (an order's `stock` state: reserved, sold, released, restocked).
Money, per order: `refundedAmount` is the sum of its refund records, a paid order
captured exactly its total, captured - refunded >= 0, and the gateway agrees that the
payment succeeded exactly when the order says it captured money.
The journal: captures less refunds equal the orders', per currency; every order that
captured money (and settled over 5 minutes ago) has its capture entry; the accounting
system's books equal ours account by account.
Partners: every order paid more than 5 minutes ago has a fulfilment request the partner
accepted (held and cancelled orders are not `paid`), and each SKU's on-hand figure equals
the WMS's last known one, unless our stock moved after the WMS last spoke and less than 5
minutes ago (its answer to that move may still be on its way).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudcart import inventory
from cloudcart.core.clock import utcnow
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import Document, Filter, Query, each
from cloudcart.ledger.reconcile import ledger_problems
from cloudcart.orders.lifecycle import gateway
from cloudcart.orders.service import ORDER_TYPE, orders_container
from cloudcart.orders.state import PAID_STATES

if TYPE_CHECKING:
    from cloudcart.composition import Services


@dataclass
class Report:
    """What reconciliation found; `ok` when nothing is off."""

    skus_checked: int = 0
    orders_checked: int = 0
    captured: int = 0
    refunded: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON form (CLI output)."""
        return {
            "ok": self.ok,
            "skusChecked": self.skus_checked,
            "ordersChecked": self.orders_checked,
            "captured": self.captured,
            "refunded": self.refunded,
            "problems": self.problems,
        }


FULFILMENT_GRACE = timedelta(minutes=5)
"""How long a paid order may wait for the fulfilment partner's acceptance."""


def reconcile(
    services: Services, *, check_gateway: bool = True, now: datetime | None = None
) -> Report:
    """Check every SKU's counters and every order's money and fulfilment; never writes."""
    cutoff = timestamp((now or utcnow()) - FULFILMENT_GRACE)
    report = Report()
    expected_reserved: dict[str, int] = defaultdict(int)
    expected_sold: dict[str, int] = defaultdict(int)
    orders_net: dict[str, int] = defaultdict(int)
    captured_due: set[str] = set()
    for order in each(
        orders_container(services.documents),
        Query(filters=[Filter("type", "eq", ORDER_TYPE)], limit=100),
    ):
        if order.get("imported"):
            # History from another system: no money, stock or partner here to agree with.
            continue
        report.orders_checked += 1
        _check_order(services, order, report, check_gateway=check_gateway)
        _check_fulfilment(order, report, cutoff)
        captured = int(order.get("capturedAmount", 0))
        # Orders that settled a while ago: the journal has had time to post them.
        if captured and str(order.get("updatedAt", "")) < cutoff:
            captured_due.add(str(order["id"]))
            orders_net[order["totals"]["currency"]] += captured - int(
                order.get("refundedAmount", 0)
            )
        state = order.get("stock", "reserved")
        restock = {r["sku"]: int(r["quantity"]) for r in order.get("restockLines", [])}
        for line in order["lines"]:
            sku, qty = line["sku"], int(line["quantity"])
            if state == "reserved":
                expected_reserved[sku] += qty
            elif state == "sold":
                expected_sold[sku] += qty
            elif state == "restocked":
                expected_sold[sku] += qty - restock.get(sku, 0)

    for level in inventory.all_levels(services.documents):
        _check_stock(level, report, expected_reserved, expected_sold, cutoff)
    report.problems += ledger_problems(services, orders_net, captured_due)
    return report


def _check_stock(
    level: inventory.StockLevel,
    report: Report,
    expected_reserved: dict[str, int],
    expected_sold: dict[str, int],
    cutoff: str,
) -> None:
    sku = level.sku
    report.skus_checked += 1
    if min(level.reserved, level.sold) < 0 or (level.on_hand < 0 and not level.shortfall):
        report.problems.append(
            f"{sku}: negative counter (onHand={level.on_hand}, reserved={level.reserved}, "
            f"sold={level.sold})"
        )
    if level.received is not None and level.on_hand + level.sold != level.received:
        report.problems.append(
            f"{sku}: on hand {level.on_hand} + sold {level.sold} != received {level.received}"
        )
    if level.reserved != expected_reserved.get(sku, 0):
        report.problems.append(
            f"{sku}: reserved {level.reserved} but orders hold {expected_reserved.get(sku, 0)}"
        )
    if level.sold != expected_sold.get(sku, 0):
        report.problems.append(
            f"{sku}: sold {level.sold} but orders say {expected_sold.get(sku, 0)}"
        )
    if (
        level.partner_on_hand is not None
        and level.partner_on_hand != level.on_hand
        and not _wms_answer_due(level, cutoff)
    ):
        report.problems.append(
            f"{sku}: on hand {level.on_hand} but the WMS last said {level.partner_on_hand}"
        )
    if level.shortfall:
        report.problems.append(
            f"{sku}: shortfall of {level.shortfall} (reserved {level.reserved}, "
            f"on hand {level.on_hand})"
        )


def _wms_answer_due(level: inventory.StockLevel, cutoff: str) -> bool:
    """True while the WMS may still be answering one of our moves: our figure changed after
    its last word, within the grace."""
    changed = level.updated_at or ""
    return changed >= cutoff and changed > _as_timestamp(level.partner_at)


def _as_timestamp(value: str | None) -> str:
    """A partner's time in our fixed-width form, so string order is time order."""
    if not value:
        return ""
    try:
        return timestamp(datetime.fromisoformat(value))
    except ValueError:
        return ""


def _check_fulfilment(order: Document, report: Report, cutoff: str) -> None:
    if order["status"] != "paid":
        return  # fulfilling or later, held, cancelled, or not paid yet
    paid_at = next((h["at"] for h in order.get("history", []) if h["status"] == "paid"), None)
    if paid_at is None or str(paid_at) >= cutoff:
        return
    request = order.get("fulfilment") or {}
    if request.get("status") != "accepted":
        report.problems.append(
            f"order {order['id']}: paid at {paid_at} but no fulfilment request was accepted "
            f"(request: {request.get('status', 'none')})"
        )


def _check_order(
    services: Services, order: Document, report: Report, *, check_gateway: bool
) -> None:
    order_id = order["id"]
    captured = int(order.get("capturedAmount", 0))
    refunded = int(order.get("refundedAmount", 0))
    report.captured += captured
    report.refunded += refunded
    recorded = sum(int(r.get("amount", 0)) for r in order.get("refunds", []))
    if recorded != refunded:
        report.problems.append(
            f"order {order_id}: refunded {refunded} but refund records add up to {recorded}"
        )
    if refunded > captured:
        report.problems.append(f"order {order_id}: refunded {refunded} > captured {captured}")
    if order["status"] in PAID_STATES and captured != int(order["totals"]["total"]):
        report.problems.append(
            f"order {order_id}: {order['status']} but captured {captured} "
            f"of {order['totals']['total']}"
        )
    if order["status"] in ("cancelled", "payment_failed") and captured != refunded:
        report.problems.append(
            f"order {order_id}: {order['status']} keeps "
            f"{captured - refunded} of the customer's money"
        )
    payment = order.get("payment") or {}
    if check_gateway and payment.get("paymentId"):
        try:
            current = gateway(services).get_payment(str(payment["paymentId"]))
        except Exception as exc:
            report.problems.append(f"order {order_id}: gateway lookup failed: {exc!r}")
            return
        if (current.status == "succeeded") != (captured > 0):
            report.problems.append(
                f"order {order_id}: gateway says {current.status}, order captured {captured}"
            )
