"""The search indexer's Azure Function: catalog and stock events on the `search-indexer`
subscription keep the search index in step (`indexer.handle_event`). function_app.py
registers `bp`; locally the trigger host runs the same function on the embedded broker."""

from __future__ import annotations

import azure.functions as func

SUBSCRIPTION = "search-indexer"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("search_indexer")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def index_catalog_event(message: func.ServiceBusMessage) -> None:
    """Re-index the product an event is about (raises, so the message is retried, when the
    catalog or the index cannot be reached)."""
    # Imported here: function_app imports every blueprint, and an instance that runs other
    # functions should not load the catalog and search areas to start.
    from cloudcart import composition
    from cloudcart.catalog.search import indexer
    from cloudcart.core.events import Event

    indexer.handle_event(composition.services(), Event.from_message_body(message.get_body()))
