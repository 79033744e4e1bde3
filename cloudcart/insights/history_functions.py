"""The history's Azure Function: `storefront.events_recorded` batches on the
`insights-history` subscription become browsing history. function_app.py registers `bp`;
locally the trigger host runs the same function on the embedded broker."""

from __future__ import annotations

import logging

import azure.functions as func

from cloudcart import composition
from cloudcart.core.events import Event

logger = logging.getLogger(__name__)

SUBSCRIPTION = "insights-history"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("insights_history")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def insights_history(message: func.ServiceBusMessage) -> None:
    """Record the views of one batch of storefront events (idempotent on the event)."""
    # Imported here: the history pulls in the catalog and customers areas, which the other
    # functions of a trigger-only instance do not need.
    from cloudcart.insights import history

    event = Event.from_delivery(message.get_body())
    outcome = history.handle_event(composition.services().documents, event)
    logger.info("history of %s from %s: %s", event.subject, event.id, outcome)
