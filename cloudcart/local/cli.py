"""The `cloudcart` command line: serve the shop locally, mint dev tokens, show settings."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cloudcart.core.settings import Adapter, Settings, get_settings

if TYPE_CHECKING:
    from cloudcart.local.trigger_host import TriggerHost

cli = typer.Typer(
    name="cloudcart",
    help="Run Cloudcart locally on its embedded adapters, and tools around it.",
    no_args_is_help=True,
    add_completion=False,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder of the embedded adapters (sets CLOUDCART_DATA_DIR).",
        file_okay=False,
    ),
]


def _settings(data_dir: Path | None) -> Settings:
    # Through the environment, not a constructor argument, so code that calls
    # get_settings() later (and child processes) sees the same folder.
    if data_dir is not None:
        os.environ["CLOUDCART_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    return get_settings()


REPO_ROOT = Path(__file__).resolve().parents[2]
"""The folder of `function_app.py` (the console script may run from anywhere)."""

TRIGGER_HOST_STOP_TIMEOUT_SECONDS = 30.0
"""How long shutdown lets running trigger invocations finish before abandoning them."""


def _function_app() -> Any:
    """The `function_app` module: the same composition root Azure Functions loads."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import function_app

    return function_app


def _run_trigger_host_with(app: Any, host: TriggerHost) -> None:
    """Start the trigger host when the app starts and stop it gracefully when it stops.

    Inside the lifespan, not around `uvicorn.run`: uvicorn turns SIGTERM/SIGINT into a
    graceful shutdown that ends with the app's lifespan, which closes the adapters, so the
    host must finish (and settle its messages) before that.
    """
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(current: Any) -> AsyncIterator[Any]:
        async with inner(current) as state:
            host.start()
            try:
                yield state
            finally:
                await asyncio.to_thread(host.stop, TRIGGER_HOST_STOP_TIMEOUT_SECONDS)

    app.router.lifespan_context = lifespan


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=1, max=65535)] = 7071,
    data_dir: DataDirOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo shop into an empty store.")
    ] = False,
    no_triggers: Annotated[
        bool,
        typer.Option(
            "--no-triggers",
            help="Serve only HTTP: do not run the Service Bus, change-feed and timer functions.",
        ),
    ] = False,
    no_partners: Annotated[
        bool,
        typer.Option(
            "--no-partners",
            help="Do not start the fulfilment and WMS simulators (their connectors stay off "
            "unless FULFILMENT_PARTNER_URL / INVENTORY_PARTNER_URL point at real partners).",
        ),
    ] = False,
) -> None:
    """Serve the shop: the HTTP API under uvicorn plus the app's triggers.

    The same FastAPI app Azure Functions runs, on port 7071 like `func start`; beside it a
    trigger host runs the app's Service Bus, change-feed and timer functions on the embedded
    adapters.
    """
    import uvicorn

    # Signed URLs, the dev issuer and the test gateway's webhooks must point at this very
    # server, so unless configured the public base URL follows --host/--port.
    os.environ.setdefault("CLOUDCART_PUBLIC_BASE_URL", f"http://{host}:{port}")
    settings = _settings(data_dir)
    simulators = None
    if not no_partners and settings.messages_adapter == Adapter.embedded:
        from cloudcart.integrations.partners.simulators import wiring

        # Before the app is built: it reads the partner URLs the simulators are given.
        simulators = wiring.start(settings)
        settings = _settings(data_dir)
    # The very objects Azure runs: its FastAPI app (on the process-wide services, shared with
    # the trigger functions) and its function list.
    function_app = _function_app()
    app = function_app.fastapi_app
    services = app.state.services
    if settings.documents_adapter == Adapter.embedded:
        # Bicep creates the containers in Azure; locally the store starts empty.
        services.documents.ensure_containers()
    if simulators is not None:
        wiring.ready()
    if demo:
        _seed_and_index(services)
    trigger_host: TriggerHost | None = None
    if not no_triggers:
        from cloudcart.local.trigger_host import TriggerHost, TriggerHostError

        try:
            # get_functions() is read once: a second call on the same app raises.
            functions = list(function_app.app.get_functions())
            trigger_host = TriggerHost(functions, settings, services)
        except TriggerHostError as exc:
            typer.echo(f"cannot run the app's triggers: {exc} (or use --no-triggers)", err=True)
            raise typer.Exit(code=2) from exc
        _run_trigger_host_with(app, trigger_host)
    from cloudcart.identity.dev_https import start_for_serve

    # MSAL only talks https, so the embedded provider is also served over https on loopback
    # (same app, same data) for the web sign-in flow; None when identity is not embedded.
    idp_https = start_for_serve(settings, app)
    # Everything built so far (the app, its routes and schemas, the demo data) lives as long
    # as the process: out of the collector's sight, full collections stop walking it, which
    # otherwise shows as latency spikes under load.
    gc.collect()
    gc.freeze()
    # A request allocates thousands of short-lived objects (parsed documents, dicts for
    # JSON): at the default 700 the youngest generation is collected several times per
    # request, and each collection promotes survivors towards costly full collections.
    gc.set_threshold(20_000, 20, 20)
    try:
        # log_config=None: uvicorn's loggers propagate to the JSON handler create_app installed.
        # uvloop and httptools (uvicorn[standard]) parse and schedule several times faster
        # than the pure-Python defaults; named, so a missing one fails at start, not slowly.
        uvicorn.run(app, host=host, port=port, log_config=None, loop="uvloop", http="httptools")
    finally:
        if trigger_host is not None:
            trigger_host.stop(TRIGGER_HOST_STOP_TIMEOUT_SECONDS)  # no-op after the lifespan
        if idp_https is not None:
            idp_https.stop()
        if simulators is not None:
            wiring.stop(settings)


def _seed_and_index(services: Any) -> None:
    """Load the demo shop into an empty store, then make the search index match the catalog.

    Reindexing every start is cheap (a few hundred products) and repairs an index that fell
    behind while the server was down.
    """
    from cloudcart.catalog.search.indexer import reindex_all
    from cloudcart.local.demo_data import seed as seed_demo

    loaded = seed_demo(services)
    typer.echo("demo data loaded" if loaded else "store not empty: demo data skipped")
    if services.settings.search_adapter == Adapter.embedded:
        typer.echo(f"search index rebuilt: {reindex_all(services)} products")


@cli.command()
def seed(data_dir: DataDirOption = None) -> None:
    """Load the demo catalog (categories, products, stock) into an empty store and index it."""
    from cloudcart import composition

    _settings(data_dir)
    services = composition.services()
    if services.settings.documents_adapter == Adapter.embedded:
        services.documents.ensure_containers()
    _seed_and_index(services)


@cli.command()
def token(
    sub: Annotated[str, typer.Argument(help="Subject (user id) of the token.")],
    email: Annotated[str | None, typer.Option(help="Email claim.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Grant the admin role.")] = False,
    scope: Annotated[
        str | None, typer.Option(help="Scopes (space-separated); default: the required scope.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print an access token signed by the embedded identity provider."""
    settings = _settings(data_dir)
    if settings.identity_adapter != Adapter.embedded:
        raise typer.BadParameter(
            "tokens can only be minted when CLOUDCART_IDENTITY_ADAPTER is embedded"
        )
    from cloudcart.identity.dev_provider import mint_token

    roles = (settings.identity_admin_role,) if admin else ()
    try:
        access_token, _ = mint_token(settings, sub, email=email, roles=roles, scope=scope)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="SUB") from exc
    typer.echo(access_token)


@cli.command("settings")
def show_settings(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Print the effective settings by environment variable name, secrets masked."""
    values = Settings().redacted()
    if as_json:
        typer.echo(json.dumps(values, indent=2))
        return
    width = max(len(name) for name in values)
    for name, value in values.items():
        typer.echo(f"{name.ljust(width)} = {value}")


# Sub-apps join after the commands above (E402): `cloudcart dlq ...`, `cloudcart search ...`.
from cloudcart.catalog.search.cli import search_app  # noqa: E402
from cloudcart.local.cli_analytics import analytics_app  # noqa: E402
from cloudcart.local.cli_dlq import dlq_app  # noqa: E402
from cloudcart.local.cli_import import import_app  # noqa: E402
from cloudcart.local.cli_orders import reconcile_command  # noqa: E402
from cloudcart.local.cli_partners import partners_app  # noqa: E402

cli.add_typer(dlq_app, name="dlq")
cli.add_typer(import_app, name="import")
cli.add_typer(search_app, name="search")
cli.add_typer(partners_app, name="partners")
cli.add_typer(analytics_app, name="analytics")
cli.command(name="reconcile")(reconcile_command)


def main() -> None:
    """Entry point of the `cloudcart` console script."""
    cli()


if __name__ == "__main__":
    main()
