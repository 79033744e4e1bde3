"""The analytics Azure Function: storefront, order, shipment, refund, return and stock
events on the `analytics` subscription keep the roll-ups. function_app.py registers `bp`;
locally the trigger host runs the same function on the embedded broker."""

from __future__ import annotations

import logging

import azure.functions as func

from cloudcart.core import runtime
from cloudcart.core.events import Event

logger = logging.getLogger(__name__)

SUBSCRIPTION = "analytics"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("analytics_rollups")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def analytics_rollups(message: func.ServiceBusMessage) -> None:
    """Count one event in the hourly and daily roll-ups (each fact once)."""
    # Imported here: the consumer pulls in the orders and catalog areas, which the other
    # functions of a trigger-only instance do not need.
    from cloudcart.analytics.consumer import handle_events

    event = Event.from_delivery(message.get_body())
    outcome = handle_events(runtime.services().documents, [event])
    logger.info(
        "analytics from %s %s: %d counted, %d already counted",
        event.type,
        event.id,
        outcome.applied,
        outcome.duplicates,
    )
