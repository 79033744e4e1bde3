"""`cloudcart partners`: the partner links from a terminal.

`status` prints what `GET /api/admin/integrations` answers; `send` puts a JSON message on a
partner's inbound queue as the partner would (the same as `POST /dev/partners/queues/...`),
through whichever messages adapter the settings choose.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated

import typer

from cloudcart.composition import Services
from cloudcart.core.messages.topology import TOPOLOGY, Queue
from cloudcart.core.ports.messages import OutboundMessage, UnknownEntity
from cloudcart.core.settings import get_settings

partners_app = typer.Typer(
    help="Partner links: status, and messages on their inbound queues.", no_args_is_help=True
)

_QUEUES = [q.name for q in TOPOLOGY.queues]


@partners_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON document.")] = False,
) -> None:
    """Each partner link: enabled, last success, last failure, messages waiting, dead letters."""
    from cloudcart.integrations.partners.links import link_status

    services = Services(get_settings())
    try:
        items = link_status(services)
    finally:
        services.close()
    if as_json:
        typer.echo(json.dumps({"items": items}, indent=2))
        return
    for item in items:
        failure = item["lastFailure"] or {}
        typer.echo(
            f"{item['partner']:<11} {'enabled' if item['enabled'] else 'disabled':<9} "
            f"waiting={_count(item['messagesWaiting'])} "
            f"dead-letters={_count(item['deadLetters'])} "
            f"last-success={(item['lastSuccess'] or {}).get('at', '-')} "
            f"last-failure={failure.get('at', '-')}"
            + (f" ({failure['reason']})" if failure.get("reason") else "")
        )


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


@partners_app.command("send")
def send(
    queue: Annotated[str, typer.Argument(help=f"The inbound queue: {', '.join(_QUEUES)}.")],
    file: Annotated[
        Path, typer.Argument(help="A JSON file with one message.", exists=True, dir_okay=False)
    ],
    message_id: Annotated[
        str | None, typer.Option("--message-id", help="The message id (default: random).")
    ] = None,
) -> None:
    """Put a JSON message on a partner's inbound queue, as the partner would."""
    if not isinstance(_declared(queue), Queue):
        raise typer.BadParameter(f"not an inbound queue; one of {', '.join(_QUEUES)}")
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from exc
    subject = body.get("type") if isinstance(body, dict) else None
    message = OutboundMessage(
        body=json.dumps(body, separators=(",", ":")).encode(),
        message_id=message_id or f"cli-{secrets.token_hex(12)}",
        subject=subject if isinstance(subject, str) else None,
        content_type="application/json",
    )
    services = Services(get_settings())
    try:
        services.messages.publish(queue, [message])
    finally:
        services.close()
    typer.echo(json.dumps({"queue": queue, "messageId": message.message_id}))


def _declared(name: str) -> object:
    try:
        return TOPOLOGY.entity(name)
    except UnknownEntity:
        return None
