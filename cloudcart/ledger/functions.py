"""The ledger's Azure Function: money events on the `ledger` subscription become entries."""

from __future__ import annotations

import logging

import azure.functions as func

logger = logging.getLogger(__name__)

SUBSCRIPTION = "ledger"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("ledger_posting")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def ledger_posting(message: func.ServiceBusMessage) -> None:
    """Post the entry of one money event (once)."""
    # Imported here: function_app imports every blueprint, and an instance that runs other
    # functions should not load the ledger to start.
    from pydantic import ValidationError

    from cloudcart import composition
    from cloudcart.core.events import Event
    from cloudcart.core.ports.messages import InvalidMessage
    from cloudcart.ledger import posting

    try:
        event = Event.from_message_body(message.get_body())
    except ValidationError as exc:
        raise InvalidMessage("InvalidEvent", f"not an event: {exc.error_count()} errors") from None
    entry = posting.handle_event(composition.services(), event)
    if entry is not None:
        logger.info("ledger entry %s for %s %s", entry["id"], event.type, event.subject)
