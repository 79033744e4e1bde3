"""The marketing consumer: one entry point for the events of the `marketing` subscription.

| event | effect |
|-------|--------|
| `cart.updated` | schedules the abandoned-cart check (`abandoned_cart`) |
| `order.placed` | records the customer's last order, which cancels earlier carts' reminders |
| `inventory.changed` | a 0 → more restock notifies its subscribers (`back_in_stock`) |
| `product.updated` | a price drop tells the product's recent viewers (`price_drop`) |
| `storefront.events_recorded` | signed-in views feed the recent-viewers index |

Every effect is idempotent on the event (see each module), so a redelivery or a replay of
any of them sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cloudcart.core.events import Event
from cloudcart.marketing import abandoned_cart, back_in_stock, price_drop

if TYPE_CHECKING:
    from cloudcart.composition import Services

SUBSCRIBED_EVENTS: tuple[str, ...] = (
    "cart.updated",
    "order.placed",
    "inventory.changed",
    "product.updated",
    "storefront.events_recorded",
)
"""The `events` topic subjects the `marketing` subscription receives."""


def handle_event(services: Services, event: Event, *, now: datetime | None = None) -> str:
    """Apply one event; returns a short account of what happened (for the log)."""
    if event.type == "cart.updated":
        return abandoned_cart.schedule_reminder(services, event)
    if event.type == "order.placed":
        return abandoned_cart.record_order(services.documents, event)
    if event.type == "inventory.changed":
        return f"notified {back_in_stock.handle_restock(services, event)}"
    if event.type == "product.updated":
        return f"told {price_drop.handle_price_change(services, event, now=now)}"
    if event.type == "storefront.events_recorded":
        return f"viewers {price_drop.record_views(services.documents, event, now=now)}"
    return "ignored"
