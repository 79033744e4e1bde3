"""The recommendations' Azure Function: paid and imported orders, catalog and stock events on
the `insights-recommendations` subscription keep the precomputed recommendation documents.
function_app.py registers `bp`; locally the trigger host runs the same function on the
embedded broker."""

from __future__ import annotations

import logging

import azure.functions as func

from cloudcart import composition
from cloudcart.core.events import Event

logger = logging.getLogger(__name__)

SUBSCRIPTION = "insights-recommendations"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("insights_recommendations")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def insights_recommendations(message: func.ServiceBusMessage) -> None:
    """Learn from one order, product or stock event (each order counts once)."""
    # Imported here: the consumer pulls in the orders and catalog areas, which the other
    # functions of a trigger-only instance do not need.
    from cloudcart.insights import recommendations

    event = Event.from_delivery(message.get_body())
    outcome = recommendations.handle_event(composition.services(), event)
    logger.info("recommendations from %s %s: %s", event.type, event.id, outcome)
