"""`cloudcart reconcile`: check that stock and money add up (read-only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def reconcile_command(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder of the embedded adapters.")
    ] = None,
    no_gateway: Annotated[
        bool, typer.Option("--no-gateway", help="Do not ask the payment gateway.")
    ] = False,
) -> None:
    """Check stock and payments against the orders: a JSON report; exit 1 when off."""
    import os

    from cloudcart.composition import Services
    from cloudcart.core.settings import Adapter, get_settings
    from cloudcart.orders.reconcile import reconcile

    if data_dir is not None:
        os.environ["CLOUDCART_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    if get_settings().messages_adapter == Adapter.embedded:
        # A running `cloudcart serve` on this folder has partner simulators to compare with.
        from cloudcart.integrations.partners.simulators.wiring import use_running_simulators

        if use_running_simulators(get_settings()):
            get_settings.cache_clear()
    services = Services(get_settings())
    try:
        report = reconcile(services, check_gateway=not no_gateway)
    finally:
        services.close()
    typer.echo(json.dumps(report.to_dict(), indent=2))
    if not report.ok:
        raise typer.Exit(code=1)
