"""`cloudcart import products|orders FILE`: the bulk imports of the admin API, in-process.

The same importers as `POST /api/admin/import/products` and `.../orders` run against the
store the settings choose (the embedded one in the data folder unless configured
otherwise), reading the file in chunks with a progress bar on stderr. The summary and the
rejected lines go to stdout (`--json`: the API's JSON answer). Exit status: 0 when every
line was imported or unchanged, 1 when some lines were rejected, 2 when the file is not
NDJSON at all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cloudcart.catalog.importer import ChunkHandler, ImportSummary
    from cloudcart.composition import Services

import_app = typer.Typer(
    help="Import products or historical orders from NDJSON files (one JSON object per line).",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path,
    typer.Argument(help="The NDJSON file.", exists=True, dir_okay=False, readable=True),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder of the embedded adapters (sets CLOUDCART_DATA_DIR).",
        file_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]


def _services(data_dir: Path | None) -> Services:
    from cloudcart.composition import Services
    from cloudcart.core.settings import Adapter, get_settings

    if data_dir is not None:
        os.environ["CLOUDCART_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    services = Services(get_settings())
    if services.settings.documents_adapter == Adapter.embedded:
        # Bicep creates the containers in Azure; a fresh data folder starts empty.
        services.documents.ensure_containers()
    return services


def _run(
    file: Path,
    data_dir: Path | None,
    as_json: bool,
    action: str,
    handler_for: Callable[[Services], ChunkHandler],
) -> None:
    from cloudcart.catalog.importer import NdjsonImport, NotNdjson, import_stream
    from cloudcart.core.audit import record_audit
    from cloudcart.local.cli_dlq import cli_actor

    services = _services(data_dir)
    try:
        run = NdjsonImport(handler_for(services))
        with (
            file.open("rb") as stream,
            typer.progressbar(
                length=file.stat().st_size, label=f"importing {file.name}", file=sys.stderr
            ) as bar,
        ):
            try:
                summary = import_stream(stream, run, on_progress=bar.update)
            except NotNdjson as exc:
                typer.echo(f"\n{file}: {exc}", err=True)
                raise typer.Exit(code=2) from exc
        result = summary.to_dict()
        record_audit(
            services.documents,
            actor_id=cli_actor(),
            action=action,
            target={
                "file": file.name,
                "imported": result["imported"],
                "updated": result["updated"],
                "rejected": result["rejectedCount"],
            },
        )
    finally:
        services.close()
    _report(summary, as_json)
    if summary.rejected_count:
        raise typer.Exit(code=1)


def _report(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"imported {summary.imported}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, rejected {summary.rejected_count}"
    )
    for item in summary.rejected:
        typer.echo(f"line {item['line']}: {item['error']}")
    hidden = summary.rejected_count - len(summary.rejected)
    if hidden > 0:
        typer.echo(f"... and {hidden} more rejected lines")


@import_app.command("products")
def import_products(
    file: FileArgument, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """Create or update products from an NDJSON file.

    One `POST /api/admin/products` body per line, with an optional `id` and `stock`
    (`{sku: units available}`).
    """
    from cloudcart.catalog.importer import ProductImporter

    def handler(services: Services) -> ChunkHandler:
        return ProductImporter(services.documents).import_records

    _run(file, data_dir, as_json, "import.products", handler)


@import_app.command("orders")
def import_orders(
    file: FileArgument, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """Store historical orders from an NDJSON file.

    One `{orderId, customerId, placedAt, lines: [{sku, quantity, unitPrice?}], status?}` per
    line; no stock, payment or notification is touched.
    """
    from cloudcart.orders.importer import OrderImporter

    def handler(services: Services) -> ChunkHandler:
        currency = services.settings.ledger_currency
        return OrderImporter(services.documents, default_currency=currency).import_records

    _run(file, data_dir, as_json, "import.orders", handler)
