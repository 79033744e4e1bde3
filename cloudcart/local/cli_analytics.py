"""`cloudcart analytics verify|rebuild`: recount the roll-ups from the source data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cloudcart.composition import Services

analytics_app = typer.Typer(help="Analytics roll-ups: verify and rebuild.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option(help="Data folder of the embedded adapters.")]


def _services(data_dir: Path | None) -> Services:
    import os

    from cloudcart.composition import Services
    from cloudcart.core.settings import get_settings

    if data_dir is not None:
        os.environ["CLOUDCART_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    services = Services(get_settings())
    services.documents.ensure_containers()
    return services


@analytics_app.command("verify")
def verify_command(data_dir: DataDir = None) -> None:
    """Recount from orders, notifications, stock and the storefront facts journal; a JSON
    report of every difference; exit 1 when there is one."""
    from cloudcart.analytics.rebuild import verify

    services = _services(data_dir)
    try:
        report = verify(services.documents, low_stock=services.settings.analytics_low_stock)
    finally:
        services.close()
    typer.echo(json.dumps(report.to_dict(), indent=2))
    if not report.ok:
        raise typer.Exit(code=1)


@analytics_app.command("rebuild")
def rebuild_command(data_dir: DataDir = None) -> None:
    """Replace the roll-ups with a recount from the source data."""
    from cloudcart.analytics.rebuild import rebuild

    services = _services(data_dir)
    try:
        result = rebuild(services.documents)
    finally:
        services.close()
    typer.echo(json.dumps(result, indent=2))
