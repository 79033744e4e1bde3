"""Operational alerts: every `ops.*` event on the ops topic (a dead letter, a stock
shortfall) is written as one ERROR log line with its payload, which Application Insights
alerts on; the notifications area mails them from its own `ops` subscription."""

from __future__ import annotations

import logging

import azure.functions as func

from cloudcart.core.events import Event

logger = logging.getLogger(__name__)

SUBSCRIPTION = "alerts"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


def alert(event: Event) -> None:
    """Raise the alert an operational event stands for."""
    logger.error(
        "operational alert: %s about %s",
        event.type,
        event.subject,
        extra={"alert": event.type, "subjectId": event.subject, "data": event.data},
    )


@bp.function_name("ops_alerts")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%OPS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def ops_alerts(message: func.ServiceBusMessage) -> None:
    """One alert per operational event."""
    alert(Event.from_delivery(message.get_body()))
