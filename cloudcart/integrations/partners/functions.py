"""The partner connectors' Azure Functions: two topic-subscription triggers (outbound) and
two queue triggers (inbound). function_app.py registers `bp`; locally the trigger host
runs the same functions on the embedded broker."""

from __future__ import annotations

import logging

import azure.functions as func
from pydantic import ValidationError

from cloudcart.core import runtime
from cloudcart.core.events import Event
from cloudcart.core.messages.port import InvalidMessage
from cloudcart.integrations.partners import connectors, inbound

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


def _event(message: func.ServiceBusMessage) -> Event:
    try:
        return Event.from_message_body(message.get_body())
    except ValidationError as exc:
        raise InvalidMessage("InvalidEvent", inbound.describe(exc)) from None


@bp.function_name("fulfilment_connector")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name="fulfilment",
    connection="ServiceBus",
)
def fulfilment_connector(message: func.ServiceBusMessage) -> None:
    """Paid orders to the fulfilment partner; cancelled ones withdrawn there."""
    event = _event(message)
    outcome = connectors.handle_fulfilment_event(runtime.services(), event)
    logger.info("fulfilment connector: %s %s", event.type, outcome)


@bp.function_name("inventory_connector")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name="inventory-sync",
    connection="ServiceBus",
)
def inventory_connector(message: func.ServiceBusMessage) -> None:
    """Every stock move to the WMS."""
    connectors.handle_inventory_event(runtime.services(), _event(message))


@bp.function_name("fulfilment_updates")
@bp.service_bus_queue_trigger(
    arg_name="message", queue_name="%FULFILMENT_UPDATES_QUEUE%", connection="ServiceBus"
)
def fulfilment_updates(message: func.ServiceBusMessage) -> None:
    """The fulfilment partner's shipment and return updates."""
    kind = inbound.handle_fulfilment_message(
        runtime.services(), message.get_body(), message.message_id
    )
    logger.info("fulfilment update applied: %s", kind)


@bp.function_name("inventory_updates")
@bp.service_bus_queue_trigger(
    arg_name="message", queue_name="%INVENTORY_UPDATES_QUEUE%", connection="ServiceBus"
)
def inventory_updates(message: func.ServiceBusMessage) -> None:
    """The WMS's stock counts."""
    outcome = inbound.handle_inventory_message(
        runtime.services(), message.get_body(), message.message_id
    )
    logger.info("stock count %s", outcome)
