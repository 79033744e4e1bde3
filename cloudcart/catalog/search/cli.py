"""`cloudcart search init`: create or update the Azure AI Search index from the spec.

A deploy step (or an operator) runs it once per spec change; the app itself never rewrites
the index schema on a cold start. With the embedded adapter it does nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cloudcart.core.services import Services
from cloudcart.core.settings import get_settings

search_app = typer.Typer(help="Product search index (Azure AI Search).", no_args_is_help=True)


@search_app.callback()
def search() -> None:
    """Product search index (Azure AI Search)."""


@search_app.command("init")
def init(
    allow_index_downtime: Annotated[
        bool,
        typer.Option(help="Allow analyzer changes that take the index offline for seconds."),
    ] = False,
) -> None:
    """Create or update the synonym map and the index from `catalog/search/spec.py`."""
    from cloudcart.catalog.search.azure import init_index

    services = Services(get_settings())
    try:
        typer.echo(init_index(services, allow_index_downtime=allow_index_downtime))
    finally:
        services.close()
