"""Dead-letter administration: list, inspect, resubmit and purge, audited.

A message that failed its last allowed delivery (or that a handler rejected as invalid)
waits in its queue's or subscription's dead-letter queue until an admin acts on it: nothing
is ever dropped silently. These routes work on whichever messages adapter the settings chose
(the embedded broker or Service Bus), through the `DeadLetterAdmin` port. The `cloudcart dlq`
command (cloudcart/local/cli_dlq.py) reuses the helpers here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cloudcart.api.deps import ServicesDep
from cloudcart.api.logging import correlation_id
from cloudcart.api.problems import Problem
from cloudcart.api.responses import problem_responses
from cloudcart.composition import Services
from cloudcart.core.audit import record_audit
from cloudcart.core.messages.topology import TOPOLOGY, Topic, Topology
from cloudcart.core.ports.messages import (
    DeadLetter,
    DeadLetterAdmin,
    DeadLetterNotFound,
    PropertyValue,
    UnknownEntity,
)
from cloudcart.identity.dependencies import Admin

MAX_LIST_LIMIT = 500
DEFAULT_LIST_LIMIT = 100

RESUBMIT_ACTION = "dead_letter.resubmit"
PURGE_ACTION = "dead_letter.purge"

router = APIRouter(prefix="/api/admin/dead-letters", tags=["operations"])


# --- models -----------------------------------------------------------------------------


class DeadLetterView(BaseModel):
    """A dead letter as the admin API and the CLI show it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str = Field(description="Opaque id; use it to fetch, resubmit or purge this letter.")
    entity: str = Field(description="Queue or topic the message was sent to.")
    subscription: str | None = Field(description="Topic subscription; null for a queue.")
    message_id: str = Field(description="The message's id (broker duplicate detection only).")
    subject: str | None = Field(description="Event type or command name (`order.placed`).")
    reason: str | None = Field(description="Why it was dead-lettered (`MaxDeliveryCountExceeded`).")
    description: str | None = Field(description="Details the broker or the handler gave.")
    delivery_count: int = Field(description="How often it was delivered before it gave up.")
    enqueued_at: datetime = Field(description="When the message was (last) enqueued.")
    dead_lettered_at: datetime | None = Field(
        description="When it was dead-lettered; null where the broker does not say (Service Bus)."
    )
    correlation_id: str | None = Field(description="Correlation id the message carried.")
    content_type: str | None = Field(description="Content type of the body.")
    properties: dict[str, PropertyValue] = Field(description="Application properties.")
    body: Any = Field(
        description="The body: parsed JSON (`bodyEncoding` json), text (utf-8), or base64 of "
        "the raw bytes (base64)."
    )
    body_encoding: Literal["json", "utf-8", "base64"] = Field(
        description="How `body` represents the message body."
    )

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        """The view of a port dead letter, its body decoded as well as it can be."""
        body, encoding = decode_body(letter.body, letter.content_type)
        return cls(
            id=letter.id,
            entity=letter.entity,
            subscription=letter.subscription,
            message_id=letter.message_id,
            subject=letter.subject,
            reason=letter.reason,
            description=letter.description,
            delivery_count=letter.delivery_count,
            enqueued_at=letter.enqueued_at,
            dead_lettered_at=letter.dead_lettered_at,
            correlation_id=letter.correlation_id,
            content_type=letter.content_type,
            properties=dict(letter.properties),
            body=body,
            body_encoding=encoding,
        )


class DeadLetterList(BaseModel):
    """Dead letters, oldest first within each queue or subscription."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    items: list[DeadLetterView] = Field(description="The dead letters found (at most `limit`).")


class ResubmitAccepted(BaseModel):
    """A dead letter was put back on its queue or subscription."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str = Field(description="Id of the dead letter that was resubmitted (now gone).")
    status: Literal["resubmitted"] = Field(description="Always `resubmitted`.")


# --- helpers shared with the CLI ----------------------------------------------------------


def decode_body(
    body: bytes, content_type: str | None
) -> tuple[Any, Literal["json", "utf-8", "base64"]]:
    """A body as JSON-friendly data and how it is represented.

    JSON is parsed when the content type says JSON (or says nothing); other text stays text,
    so a `text/plain` body of `42` is not turned into a number; anything that is not UTF-8
    is base64.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("", "application/json") or media.endswith("+json"):
        try:
            return json.loads(text), "json"
        except ValueError:
            pass
    return text, "utf-8"


def admin_topology(admin: DeadLetterAdmin) -> Topology:
    """The topology an adapter was built with (both adapters keep it as `topology`)."""
    topology = getattr(admin, "topology", None)
    return topology if isinstance(topology, Topology) else TOPOLOGY


def dead_letter_sources(
    topology: Topology, entity: str | None = None, subscription: str | None = None
) -> list[tuple[str, str | None]]:
    """The (entity, subscription) pairs that hold dead letters, narrowed by the filters.

    Without `entity`: every queue and every topic subscription (only those named
    `subscription`, when given). A topic without `subscription`: all its subscriptions.
    Raises UnknownEntity naming what does not exist.
    """
    if entity is None:
        sources: list[tuple[str, str | None]] = []
        for declared in topology.entities():
            if isinstance(declared, Topic):
                sources.extend(
                    (declared.name, sub.name)
                    for sub in declared.subscriptions
                    if subscription is None or sub.name == subscription
                )
            elif subscription is None:
                sources.append((declared.name, None))
        if subscription is not None and not sources:
            raise UnknownEntity(f"no topic has a subscription named {subscription!r}")
        return sources
    declared = topology.entity(entity)
    if isinstance(declared, Topic):
        if subscription is not None:
            return [(entity, declared.subscription(subscription).name)]
        return [(entity, sub.name) for sub in declared.subscriptions]
    if subscription is not None:
        raise UnknownEntity(f"{entity!r} is a queue; it has no subscription {subscription!r}")
    return [(entity, None)]


def collect_dead_letters(
    admin: DeadLetterAdmin,
    entity: str | None = None,
    subscription: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
) -> list[DeadLetter]:
    """Up to `limit` dead letters across the matching queues and subscriptions, in topology
    order. Raises UnknownEntity."""
    found: list[DeadLetter] = []
    for source_entity, source_subscription in dead_letter_sources(
        admin_topology(admin), entity, subscription
    ):
        if len(found) >= limit:
            break
        found.extend(
            admin.list_dead_letters(source_entity, source_subscription, limit - len(found))
        )
    return found[:limit]


def audit_target(letter: DeadLetter) -> dict[str, Any]:
    """What an audit record says about a dead letter (enough to find the message again)."""
    return {
        "kind": "dead_letter",
        "deadLetterId": letter.id,
        "entity": letter.entity,
        "subscription": letter.subscription,
        "messageId": letter.message_id,
        "subject": letter.subject,
        "reason": letter.reason,
    }


def resubmit_and_audit(
    services: Services,
    admin: DeadLetterAdmin,
    dead_letter_id: str,
    *,
    actor_id: str,
    correlation_id: str | None = None,
) -> DeadLetter:
    """Resubmit a dead letter and record who did it; returns the letter as it was.

    Raises DeadLetterNotFound (nothing is audited then).
    """
    return _act_and_audit(
        services,
        admin.resubmit,
        admin.peek(dead_letter_id),
        RESUBMIT_ACTION,
        actor_id,
        correlation_id,
    )


def purge_and_audit(
    services: Services,
    admin: DeadLetterAdmin,
    dead_letter_id: str,
    *,
    actor_id: str,
    correlation_id: str | None = None,
) -> DeadLetter:
    """Delete a dead letter for good and record who did it; returns the letter as it was.

    Raises DeadLetterNotFound.
    """
    return _act_and_audit(
        services, admin.purge, admin.peek(dead_letter_id), PURGE_ACTION, actor_id, correlation_id
    )


def _act_and_audit(
    services: Services,
    act: Callable[[str], None],
    letter: DeadLetter,
    action: str,
    actor_id: str,
    correlation_id: str | None,
) -> DeadLetter:
    # `letter` was peeked first so the audit record can say which message it was:
    # afterwards it is gone.
    act(letter.id)
    record_audit(
        services.documents,
        actor_id=actor_id,
        action=action,
        target=audit_target(letter),
        correlation_id=correlation_id,
    )
    return letter


# --- dependencies -------------------------------------------------------------------------


def get_dead_letter_admin(services: ServicesDep) -> DeadLetterAdmin:
    """The messages adapter as a `DeadLetterAdmin` (both adapters implement it)."""
    messages = services.messages
    if not isinstance(messages, DeadLetterAdmin):
        # A configuration error, not the client's: let the app answer 500 and log it.
        raise TypeError(f"{type(messages).__name__} does not implement DeadLetterAdmin")
    return messages


DeadLetterAdminDep = Annotated[DeadLetterAdmin, Depends(get_dead_letter_admin)]
DeadLetterId = Annotated[
    str,
    Path(min_length=1, max_length=300, description="Id of the dead letter, as listed."),
]


def _not_found(dead_letter_id: str) -> Problem:
    return Problem.of(
        "dead-letter-not-found",
        f"no dead letter with id {dead_letter_id!r} (already resubmitted or purged?)",
    )


def _unknown_entity(exc: UnknownEntity) -> Problem:
    return Problem.of("unknown-entity", str(exc))


@contextmanager
def _as_problems(dead_letter_id: str) -> Iterator[None]:
    try:
        yield
    except DeadLetterNotFound as exc:
        raise _not_found(dead_letter_id) from exc
    except UnknownEntity as exc:
        # The letter's queue or subscription was removed from the topology since.
        raise _unknown_entity(exc) from exc


# --- routes -------------------------------------------------------------------------------


@router.get(
    "",
    response_model=DeadLetterList,
    summary="List dead letters",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def list_dead_letters(
    _: Admin,
    admin: DeadLetterAdminDep,
    entity: Annotated[
        str | None,
        Query(
            max_length=50,
            description="Queue or topic; omit to list every queue and topic subscription.",
        ),
    ] = None,
    subscription: Annotated[
        str | None,
        Query(max_length=50, description="Topic subscription (with or without `entity`)."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIST_LIMIT, description="Most dead letters to return.")
    ] = DEFAULT_LIST_LIMIT,
) -> DeadLetterList:
    """Dead letters of one queue or topic subscription, or of all of them, oldest first
    within each. An unknown queue, topic or subscription is a 404 naming it."""
    try:
        letters = collect_dead_letters(admin, entity, subscription, limit)
    except UnknownEntity as exc:
        raise _unknown_entity(exc) from exc
    return DeadLetterList(items=[DeadLetterView.of(letter) for letter in letters])


@router.get(
    "/{dead_letter_id}",
    response_model=DeadLetterView,
    summary="Show one dead letter",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def read_dead_letter(
    _: Admin, admin: DeadLetterAdminDep, dead_letter_id: DeadLetterId
) -> DeadLetterView:
    """One dead letter with its reason, delivery count, properties and body."""
    with _as_problems(dead_letter_id):
        return DeadLetterView.of(admin.peek(dead_letter_id))


@router.post(
    "/{dead_letter_id}/resubmit",
    response_model=ResubmitAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Resubmit a dead letter",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def resubmit_dead_letter(
    caller: Admin, services: ServicesDep, admin: DeadLetterAdminDep, dead_letter_id: DeadLetterId
) -> ResubmitAccepted:
    """Put a fresh copy (delivery count 0) back on its queue or on the one subscription it
    came from, remove the dead letter, and audit the action.

    The copy has a new message id (`<original>~r<n>`, the original in the
    `cloudcart_original_message_id` property) so duplicate detection lets it through at any
    time; consumers stay idempotent because they key on the event id in the body.
    """
    with _as_problems(dead_letter_id):
        resubmit_and_audit(
            services,
            admin,
            dead_letter_id,
            actor_id=caller.customer_id,
            correlation_id=correlation_id.get(),
        )
    return ResubmitAccepted(id=dead_letter_id, status="resubmitted")


@router.delete(
    "/{dead_letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Purge a dead letter",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def purge_dead_letter(
    caller: Admin, services: ServicesDep, admin: DeadLetterAdminDep, dead_letter_id: DeadLetterId
) -> Response:
    """Delete a dead letter for good, and audit the action."""
    with _as_problems(dead_letter_id):
        purge_and_audit(
            services,
            admin,
            dead_letter_id,
            actor_id=caller.customer_id,
            correlation_id=correlation_id.get(),
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
