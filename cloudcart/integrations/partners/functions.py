"""The partner connectors' Azure Functions: two topic-subscription triggers (outbound) and
two queue triggers (inbound). function_app.py registers `bp`; locally the trigger host
runs the same functions on the embedded broker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from cloudcart.composition import Services
    from cloudcart.core.events import Event

# The connectors (HTTP clients, message models) are imported in each function: function_app
# imports every blueprint, and an instance that runs other functions should not load them.

logger = logging.getLogger(__name__)

FULFILMENT_SUBSCRIPTION = "fulfilment"
INVENTORY_SUBSCRIPTION = "inventory-sync"
ACCOUNTING_SUBSCRIPTION = "accounting"
CRM_SUBSCRIPTION = "crm"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


def _services() -> Services:
    from cloudcart import composition

    return composition.services()


def _last_delivery(message: func.ServiceBusMessage, subscription: str) -> bool:
    from cloudcart.core.messages.topology import TOPOLOGY, Topic
    from cloudcart.core.settings import get_settings

    declared = TOPOLOGY.entity(get_settings().events_topic)
    assert isinstance(declared, Topic)
    limit = declared.subscription(subscription).max_delivery_count
    return (message.delivery_count or 0) >= limit


def _call(message: func.ServiceBusMessage, subscription: str, call: Callable[[], str]) -> str:
    """Run a connector; on the last delivery, a partner still down dead-letters the message
    with the partner's answer as the reason (instead of a bare MaxDeliveryCountExceeded)."""
    from cloudcart.core.ports.messages import InvalidMessage
    from cloudcart.core.ports.partners import PartnerUnavailable

    try:
        return call()
    except PartnerUnavailable as exc:
        if _last_delivery(message, subscription):
            raise InvalidMessage("PartnerUnavailable", str(exc)) from exc
        raise


def _event(message: func.ServiceBusMessage) -> Event:
    from pydantic import ValidationError

    from cloudcart.core.events import Event
    from cloudcart.core.ports.messages import InvalidMessage
    from cloudcart.integrations.partners import inbound

    try:
        return Event.from_message_body(message.get_body())
    except ValidationError as exc:
        raise InvalidMessage("InvalidEvent", inbound.describe(exc)) from None


@bp.function_name("fulfilment_connector")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=FULFILMENT_SUBSCRIPTION,
    connection="ServiceBus",
)
def fulfilment_connector(message: func.ServiceBusMessage) -> None:
    """Paid orders to the fulfilment partner; cancelled ones withdrawn there."""
    from cloudcart.integrations.partners import connectors

    event = _event(message)
    outcome = _call(
        message,
        FULFILMENT_SUBSCRIPTION,
        lambda: connectors.handle_fulfilment_event(_services(), event),
    )
    logger.info("fulfilment connector: %s %s", event.type, outcome)


@bp.function_name("inventory_connector")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=INVENTORY_SUBSCRIPTION,
    connection="ServiceBus",
)
def inventory_connector(message: func.ServiceBusMessage) -> None:
    """Every stock move to the WMS."""
    from cloudcart.integrations.partners import connectors

    event = _event(message)
    _call(
        message,
        INVENTORY_SUBSCRIPTION,
        lambda: connectors.handle_inventory_event(_services(), event),
    )


@bp.function_name("fulfilment_updates")
@bp.service_bus_queue_trigger(
    arg_name="message", queue_name="%FULFILMENT_UPDATES_QUEUE%", connection="ServiceBus"
)
def fulfilment_updates(message: func.ServiceBusMessage) -> None:
    """The fulfilment partner's shipment and return updates."""
    from cloudcart.integrations.partners import inbound

    kind = inbound.handle_fulfilment_message(_services(), message.get_body(), message.message_id)
    logger.info("fulfilment update applied: %s", kind)


@bp.function_name("inventory_updates")
@bp.service_bus_queue_trigger(
    arg_name="message", queue_name="%INVENTORY_UPDATES_QUEUE%", connection="ServiceBus"
)
def inventory_updates(message: func.ServiceBusMessage) -> None:
    """The WMS's stock counts."""
    from cloudcart.integrations.partners import inbound

    outcome = inbound.handle_inventory_message(_services(), message.get_body(), message.message_id)
    logger.info("stock count %s", outcome)


@bp.function_name("accounting_connector")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=ACCOUNTING_SUBSCRIPTION,
    connection="ServiceBus",
)
def accounting_connector(message: func.ServiceBusMessage) -> None:
    """Every journal entry to the accounting system."""
    from cloudcart.integrations.partners import accounting

    event = _event(message)
    _call(
        message,
        ACCOUNTING_SUBSCRIPTION,
        lambda: accounting.handle_ledger_event(_services(), event),
    )


@bp.function_name("crm_connector")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=CRM_SUBSCRIPTION,
    connection="ServiceBus",
)
def crm_connector(message: func.ServiceBusMessage) -> None:
    """Contacts, consent, order figures and erasures to the CRM."""
    from cloudcart.integrations.partners import crm

    event = _event(message)
    outcome = _call(message, CRM_SUBSCRIPTION, lambda: crm.handle_crm_event(_services(), event))
    logger.info("crm connector: %s %s", event.type, outcome)
