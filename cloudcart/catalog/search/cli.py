"""`cloudcart search init`: make the Azure AI Search alias serve the spec's index.

A deploy step (the azd postprovision hook) or an operator runs it; the app itself never
rewrites the index schema on a cold start. When the spec's index shape is new it builds the
versioned index beside the live one, fills it from the catalog and switches the alias to it;
otherwise it changes nothing. With the embedded adapter it does nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cloudcart.composition import Services
from cloudcart.core.settings import get_settings

search_app = typer.Typer(help="Product search index (Azure AI Search).", no_args_is_help=True)


@search_app.callback()
def search() -> None:
    """Product search index (Azure AI Search)."""


@search_app.command("init")
def init(
    reindex: Annotated[
        bool,
        typer.Option(help="Refill the index from the catalog even when it is already live."),
    ] = False,
) -> None:
    """Build (when new), fill and serve the index of `core/search/spec.py`."""
    from cloudcart.catalog.search.indexer import init_index

    services = Services(get_settings())
    try:
        typer.echo(init_index(services, reindex=reindex))
    finally:
        services.close()
