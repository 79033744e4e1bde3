"""The order expiry timer: cancels unpaid orders whose payment window closed and gives back
the stock of crashed checkouts (`cloudcart.orders.expiry`). function_app.py registers
`bp`; locally the trigger host runs the same timer."""

from __future__ import annotations

import logging

import azure.functions as func

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ unannotated


@bp.function_name("order_expiry")
@bp.timer_trigger(schedule="%ORDER_EXPIRY_SCHEDULE%", arg_name="timer", run_on_startup=False)
def order_expiry(timer: func.TimerRequest) -> None:
    """Cancel unpaid orders whose payment window closed and release their stock; release
    the stock of crashed checkouts."""
    # Imported here: function_app imports every blueprint, and an instance that runs other
    # functions should not load checkout and the order lifecycle to start.
    from cloudcart import composition
    from cloudcart.orders.checkout import recover_abandoned_checkouts
    from cloudcart.orders.expiry import expire_orders

    services = composition.services()
    count = expire_orders(services)
    if count:
        logger.info("expired %d unpaid order(s)", count)
    recovered = recover_abandoned_checkouts(services)
    if recovered:
        logger.warning("released the stock of %d crashed checkout(s)", recovered)
