"""The `cloudcart` command line: serve the shop locally, mint dev tokens, show settings."""

from __future__ import annotations

import json
import os
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from cloudcart.core.settings import Adapter, Settings, get_settings

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


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=1, max=65535)] = 7071,
    data_dir: DataDirOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo shop into an empty store.")
    ] = False,
) -> None:
    """Serve the HTTP API (the same app Azure Functions runs) with uvicorn."""
    import uvicorn

    from cloudcart.api.app import create_app

    settings = _settings(data_dir)
    app = create_app(settings)
    services = app.state.services
    if settings.documents_adapter == Adapter.embedded:
        # Bicep creates the containers in Azure; locally the store starts empty.
        services.documents.ensure_containers()
    if demo:
        if find_spec("cloudcart.local.demo_data") is None:
            typer.echo("demo data is not available in this version", err=True)
        else:
            from cloudcart.local.demo_data import load_demo_data

            loaded = load_demo_data(services)
            typer.echo("demo data loaded" if loaded else "store not empty: demo data skipped")
    # log_config=None: uvicorn's loggers propagate to the JSON handler create_app installed.
    uvicorn.run(app, host=host, port=port, log_config=None)


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


def main() -> None:
    """Entry point of the `cloudcart` console script."""
    cli()


if __name__ == "__main__":
    main()
