"""The pipeline canary's Azure Function: pings on the `diagnostics` subscription get their
effect applied exactly once (`diagnostics.handle_ping`). function_app.py registers `bp`;
locally the trigger host runs the same function on the embedded broker."""

from __future__ import annotations

import azure.functions as func

SUBSCRIPTION = "diagnostics"

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("diagnostics_ping")
@bp.service_bus_topic_trigger(
    arg_name="message",
    topic_name="%EVENTS_TOPIC%",
    subscription_name=SUBSCRIPTION,
    connection="ServiceBus",
)
def on_diagnostics_ping(message: func.ServiceBusMessage) -> None:
    """Apply a ping's effect exactly once (see `diagnostics.handle_ping`)."""
    # Imported here: function_app imports every blueprint, and an instance that runs other
    # functions should not build the canary's models to start.
    from cloudcart import composition
    from cloudcart.ops import diagnostics

    diagnostics.handle_ping(message.get_body(), composition.services().documents)
