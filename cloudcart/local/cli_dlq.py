"""`cloudcart dlq`: list, show, resubmit and purge dead letters from a terminal.

It talks to whichever messages adapter the settings choose (the embedded broker in the data
folder by default, Service Bus when configured), and audits resubmits and purges with the
actor `cli:<os user>`, exactly as the admin API does with the admin's id.
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer

from cloudcart.composition import Services
from cloudcart.core.ports.messages import (
    DeadLetterAdmin,
    DeadLetterNotFound,
    UnknownEntity,
)
from cloudcart.core.settings import get_settings
from cloudcart.ops.dead_letters import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    DeadLetterView,
    collect_dead_letters,
    purge_and_audit,
    resubmit_and_audit,
)

dlq_app = typer.Typer(
    help="Dead letters of the embedded broker (or Service Bus when configured).",
    no_args_is_help=True,
)


def cli_actor() -> str:
    """The audit actor of a CLI action: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        # No login name in a bare container: still say it came from the CLI.
        user = "unknown"
    return f"cli:{user}"


def _services() -> Services:
    return Services(get_settings())


def _admin(services: Services) -> DeadLetterAdmin:
    messages = services.messages
    if not isinstance(messages, DeadLetterAdmin):
        typer.echo(f"{type(messages).__name__} cannot administer dead letters", err=True)
        raise typer.Exit(1)
    return messages


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def _where(view: DeadLetterView) -> str:
    return view.entity + (f"/{view.subscription}" if view.subscription else "")


@dlq_app.command("list")
def list_command(
    entity: Annotated[
        str | None, typer.Option(help="Queue or topic (default: all of them).")
    ] = None,
    subscription: Annotated[str | None, typer.Option(help="Topic subscription.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIST_LIMIT, help="Most dead letters to show.")
    ] = DEFAULT_LIST_LIMIT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the admin API's JSON instead of a table.")
    ] = False,
) -> None:
    """List dead letters, oldest first within each queue or subscription."""
    services = _services()
    try:
        letters = collect_dead_letters(_admin(services), entity, subscription, limit)
    except UnknownEntity as exc:
        raise _fail(str(exc)) from exc
    finally:
        services.close()
    views = [DeadLetterView.of(letter) for letter in letters]
    if as_json:
        items = [view.model_dump(mode="json", by_alias=True) for view in views]
        typer.echo(json.dumps({"items": items}, indent=2, ensure_ascii=False))
        return
    if not views:
        typer.echo("no dead letters")
        return
    for view in views:
        typer.echo(
            f"{view.id}  {_where(view)}  {view.subject or '-'}  "
            f"{view.reason or '-'} (deliveries: {view.delivery_count})  "
            f"message {view.message_id}"
        )


@dlq_app.command("show")
def show_command(
    dead_letter_id: Annotated[str, typer.Argument(metavar="ID", help="Dead letter id.")],
) -> None:
    """Print one dead letter as JSON (body decoded)."""
    services = _services()
    try:
        view = DeadLetterView.of(_admin(services).peek(dead_letter_id))
    except DeadLetterNotFound as exc:
        raise _fail(f"no dead letter with id {dead_letter_id!r}") from exc
    finally:
        services.close()
    typer.echo(json.dumps(view.model_dump(mode="json", by_alias=True), indent=2))


@dlq_app.command("resubmit")
def resubmit_command(
    dead_letter_id: Annotated[str, typer.Argument(metavar="ID", help="Dead letter id.")],
) -> None:
    """Put a dead letter back on its queue or subscription (audited)."""
    services = _services()
    try:
        letter = resubmit_and_audit(
            services, _admin(services), dead_letter_id, actor_id=cli_actor()
        )
    except DeadLetterNotFound as exc:
        raise _fail(f"no dead letter with id {dead_letter_id!r}") from exc
    except UnknownEntity as exc:
        raise _fail(str(exc)) from exc
    finally:
        services.close()
    where = letter.entity + (f"/{letter.subscription}" if letter.subscription else "")
    typer.echo(f"resubmitted {dead_letter_id} to {where} (message {letter.message_id})")


@dlq_app.command("purge")
def purge_command(
    dead_letter_id: Annotated[str, typer.Argument(metavar="ID", help="Dead letter id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a dead letter for good (audited); asks first unless --yes."""
    services = _services()
    try:
        admin = _admin(services)
        view = DeadLetterView.of(admin.peek(dead_letter_id))
        if not yes:
            # Shown before asking, so nobody confirms the deletion of an id they mistyped.
            typer.confirm(
                f"Delete dead letter {view.id} ({_where(view)}, {view.subject or 'no subject'}, "
                f"{view.reason or 'no reason'}) for good?",
                abort=True,
            )
        purge_and_audit(services, admin, dead_letter_id, actor_id=cli_actor())
    except DeadLetterNotFound as exc:
        raise _fail(f"no dead letter with id {dead_letter_id!r}") from exc
    finally:
        services.close()
    typer.echo(f"purged {dead_letter_id}")
