"""The analytics Azure Functions: storefront, order, shipment, refund, return and stock
events on the `analytics` subscription are written to the facts journal
(`analytics_facts`), and the journal's change feed is folded into the roll-ups
(`analytics_fold`); see `cloudcart.analytics.journal` for why there are two steps.
function_app.py registers `bp`; locally the trigger host runs the same functions."""

from __future__ import annotations

import logging

import azure.functions as func

logger = logging.getLogger(__name__)

SUBSCRIPTION = "analytics"
JOURNAL = "analyticsfacts"
LEASES_CONTAINER = "leases"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("analytics_facts")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def analytics_facts(message: func.ServiceBusMessage) -> None:
    """Write the facts one event announces to the journal."""
    # Imported here: the consumer pulls in the orders and catalog areas, which the other
    # functions of a trigger-only instance do not need.
    from cloudcart import composition
    from cloudcart.analytics.consumer import record_events
    from cloudcart.core.events import Event

    event = Event.from_delivery(message.get_body())
    written = record_events(composition.services().documents, [event])
    logger.info("analytics: %d fact(s) from %s %s", written, event.type, event.id)


@bp.function_name("analytics_fold")
@bp.cosmos_db_trigger(
    arg_name="documents",
    connection="CosmosDB",
    database_name="%COSMOS_DATABASE%",
    container_name=JOURNAL,
    lease_container_name=LEASES_CONTAINER,
    lease_container_prefix="analytics-",
    create_lease_container_if_not_exists=False,
    # A new lease must count what the journal already holds; markers skip what was counted.
    # azure-functions 1.26 annotates this flag as `time`; the binding wants a bool.
    start_from_beginning=True,  # type: ignore[arg-type]
)
def analytics_fold(documents: func.DocumentList) -> None:
    """Fold a page of the facts journal into the roll-ups (each fact once)."""
    from cloudcart import composition
    from cloudcart.analytics import journal

    outcome = journal.fold(composition.services().documents, documents)
    if outcome.applied:
        logger.info(
            "analytics: %d fact(s) counted, %d already counted", outcome.applied, outcome.duplicates
        )
