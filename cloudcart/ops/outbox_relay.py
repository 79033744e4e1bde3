"""Relays the transactional outbox to the events topic.

One Cosmos DB change-feed function per container that carries outbox events
(`OUTBOX_CONTAINERS`), each with its own lease prefix in the shared `leases` container, and
a timer that sweeps up events the change feed did not relay. function_app.py registers
`bp`; locally the trigger host drives the same functions from the embedded store.

A relay function that raises makes the change-feed trigger retry the page, so a failed
publish loses nothing; a repeated publish is dropped by the topic's duplicate detection.
"""

import logging
from collections.abc import Callable

import azure.functions as func

from cloudcart import composition
from cloudcart.core.outbox import OUTBOX_CONTAINERS, relay, sweep

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated

LEASES_CONTAINER = "leases"


def relay_function_name(container: str) -> str:
    """The Functions name of the change-feed relay of `container`."""
    return f"outbox_relay_{container}"


def _make_relay(container: str) -> Callable[[func.DocumentList], None]:
    # A fresh function object per container: the decorators key each FunctionBuilder on
    # the function they wrap, and the worker reports errors by the Python name too.
    def relay_outbox(documents: func.DocumentList) -> None:
        services = composition.services()
        count = relay(
            documents,
            publisher=services.messages,
            documents_store=services.documents,
            topic=services.settings.events_topic,
            container=container,
            ops_topic=services.settings.ops_topic,
        )
        if count:
            logger.info("relayed %d outbox event(s) from %s", count, container)

    relay_outbox.__name__ = relay_outbox.__qualname__ = relay_function_name(container)
    return relay_outbox


for _container in OUTBOX_CONTAINERS:
    bp.function_name(relay_function_name(_container))(
        bp.cosmos_db_trigger(
            arg_name="documents",
            connection="CosmosDB",
            database_name="%COSMOS_DATABASE%",
            container_name=_container,
            lease_container_name=LEASES_CONTAINER,
            lease_container_prefix=f"outbox-{_container}-",
            create_lease_container_if_not_exists=False,
            # A new lease must not skip events written before it existed: unrelayed ones
            # would otherwise wait for the sweep, and relayed ones are skipped cheaply.
            # azure-functions 1.26 annotates this flag as `time`; the binding wants a bool.
            start_from_beginning=True,  # type: ignore[arg-type]
        )(_make_relay(_container))
    )


@bp.function_name("outbox_sweep")
@bp.timer_trigger(schedule="%OUTBOX_SWEEP_SCHEDULE%", arg_name="timer", run_on_startup=False)
def outbox_sweep(timer: func.TimerRequest) -> None:
    """Relay outbox events older than a minute that the change feed has not relayed."""
    services = composition.services()
    count = sweep(
        services.documents,
        services.messages,
        services.settings.events_topic,
        ops_topic=services.settings.ops_topic,
    )
    if count:
        # Worth a warning: the change feed should have relayed these already.
        logger.warning("outbox sweep relayed %d event(s) the change feed missed", count)
