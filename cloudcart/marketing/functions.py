"""The marketing area's Azure Functions: the `marketing` subscription of the events topic,
and the scheduled abandoned-cart reminders of the `marketing-reminders` queue.
function_app.py registers `bp`; locally the trigger host runs the same functions on the
embedded broker."""

from __future__ import annotations

import logging

import azure.functions as func

from cloudcart import composition
from cloudcart.core.events import Event

logger = logging.getLogger(__name__)

SUBSCRIPTION = "marketing"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("marketing_events")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def marketing_events(message: func.ServiceBusMessage) -> None:
    """Schedule, cancel or fire marketing triggers from one event (idempotent)."""
    # Imported here: the triggers pull in the orders, catalog, insights and notifications
    # areas, which the other functions of a trigger-only instance do not need.
    from cloudcart.marketing import triggers

    event = Event.from_delivery(message.get_body())
    outcome = triggers.handle_event(composition.services(), event)
    logger.info("marketing from %s %s: %s", event.type, event.id, outcome)


@bp.function_name("marketing_reminders")
@bp.service_bus_queue_trigger(
    arg_name="message", queue_name="%MARKETING_REMINDERS_QUEUE%", connection="ServiceBus"
)
def marketing_reminders(message: func.ServiceBusMessage) -> None:
    """Send an abandoned-cart reminder that came due, if the cart still calls for it."""
    from cloudcart.marketing import abandoned_cart

    outcome = abandoned_cart.handle_due(composition.services(), message.get_body())
    logger.info("abandoned-cart reminder %s: %s", message.message_id, outcome)
