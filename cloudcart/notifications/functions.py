"""The notifications' Azure Functions: the `notifications` subscriptions of the `events` and
`ops` topics, and a timer for held and interrupted sends. function_app.py registers `bp`;
locally the trigger host runs the same functions on the embedded broker."""

from __future__ import annotations

import logging

import azure.functions as func

from cloudcart import composition
from cloudcart.core.events import Event

logger = logging.getLogger(__name__)

SUBSCRIPTION = "notifications"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


def _handle(message: func.ServiceBusMessage) -> None:
    # Imported here: the service pulls in templates (Jinja2) and the customers area, which
    # the other functions of a trigger-only instance do not need.
    from cloudcart.notifications import service

    event = Event.from_delivery(message.get_body())
    outcome = service.handle_event(composition.services(), event)
    logger.info("notifications for %s %s: %s", event.type, event.id, outcome)


@bp.function_name("notifications")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def notifications(message: func.ServiceBusMessage) -> None:
    """Customer notifications for order, shipment, return, refund and account events."""
    _handle(message)


@bp.function_name("ops_notifications")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%OPS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def ops_notifications(message: func.ServiceBusMessage) -> None:
    """Operational alerts (dead letters, stock shortfalls) mailed to the operators."""
    _handle(message)


@bp.function_name("notifications_due")
@bp.timer_trigger(schedule="%NOTIFICATIONS_SCHEDULE%", arg_name="timer", run_on_startup=False)
def notifications_due(timer: func.TimerRequest) -> None:
    """Send marketing held for quiet hours once the window ends, and resume sends whose
    event dead-lettered or whose every redelivery was interrupted."""
    from cloudcart.notifications import service

    outcome = service.resume_due(composition.services())
    if outcome.records:
        logger.info("due notifications: %s", outcome)
