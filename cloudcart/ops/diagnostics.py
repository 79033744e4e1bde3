"""The pipeline canary: a ping that travels the whole event path and records its effect once.

`POST /api/admin/diagnostics/pings` writes a ping document and its `diagnostics.pinged`
event in one transactional outbox batch (`insights` container, partition `diagnostics`).
The change feed relays the event to the `events` topic, the `diagnostics` subscription
delivers it to `on_diagnostics_ping` (`cloudcart.ops.diagnostics_functions`), and that
handler applies the effect exactly once.
`GET /api/admin/diagnostics/pings/{pingId}` shows how far it got. An operator uses it to
check a deployment end to end; the e2e tests use its knobs (`failAttempts`, `holdMs`) to
prove retries, dead letters, resubmits and crash recovery. The routes live in
`cloudcart.ops.diagnostics_routes`, so a trigger-only instance never imports FastAPI.

The handler shows the idempotent-consumer rule every handler follows: the effect is keyed
on the EVENT id in the body (never the broker's message id, which a resubmit changes),
through a processed marker in the same transactional batch as the effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, NotFound
from cloudcart.core.events import Event, new_event
from cloudcart.core.fields import json_integer
from cloudcart.core.idempotency import is_duplicate, processed_marker
from cloudcart.core.ids import new_id
from cloudcart.core.outbox import timestamp, write_with_events
from cloudcart.core.ports.documents import BatchOp, Document, DocumentStore, PatchOp
from cloudcart.core.ports.messages import InvalidMessage
from cloudcart.ops.events import Pinged

logger = logging.getLogger(__name__)

PING_EVENT = "diagnostics.pinged"
"""Event type of a ping (schema: docs/events/diagnostics.pinged.schema.json)."""

CONTAINER = "insights"
PARTITION_KEY = "diagnostics"
"""Every ping lives in this partition of `insights`, so the ping, its outbox event and the
handler's processed marker can share one transactional batch."""

CONSUMER = "diagnostics"
"""The handler's consumer name in its processed markers (= its subscription)."""

PING_KIND = "diagnostics.ping"
MAX_FAIL_ATTEMPTS = 20
MAX_HOLD_MS = 60_000


class SimulatedFailure(RuntimeError):
    """The handler fails on purpose (the ping asked for `failAttempts` failures)."""


# --- models -----------------------------------------------------------------------------


class PingRequest(BaseModel):
    """How the ping's handler should behave."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    fail_attempts: Annotated[
        int, Field(ge=0, le=MAX_FAIL_ATTEMPTS), BeforeValidator(json_integer)
    ] = Field(
        0,
        description="The handler raises on this many deliveries before it succeeds; at the "
        "subscription's max delivery count (3) or more the ping is dead-lettered.",
    )
    hold_ms: Annotated[int, Field(ge=0, le=MAX_HOLD_MS), BeforeValidator(json_integer)] = Field(
        0,
        description="Milliseconds the handler waits before applying its effect.",
    )


class PingView(BaseModel):
    """A ping and what its handler did so far."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    ping_id: str = Field(description="Id of the ping (also the event's subject).")
    event_id: str = Field(description="Id of its `diagnostics.pinged` event.")
    status: Literal["pending", "processed"] = Field(
        description="`processed` once the handler applied its effect."
    )
    attempts: int = Field(description="Deliveries the handler has seen (duplicates included).")
    effects: int = Field(description="Times the effect was applied: 1 when all is well.")
    fail_attempts: int = Field(description="Deliveries the handler fails on purpose.")
    hold_ms: int = Field(description="Milliseconds the handler waits before its effect.")
    created_at: datetime = Field(description="When the ping was written.")
    processed_at: datetime | None = Field(description="When the effect was applied.")

    @classmethod
    def of(cls, document: Document) -> PingView:
        """The view of a stored ping document."""
        return cls(
            ping_id=document["id"],
            event_id=document["eventId"],
            status=document["status"],
            attempts=int(document.get("attempts", 0)),
            effects=int(document.get("effects", 0)),
            fail_attempts=int(document["failAttempts"]),
            hold_ms=int(document["holdMs"]),
            created_at=document["createdAt"],
            processed_at=document.get("processedAt"),
        )


# --- service ------------------------------------------------------------------------------


def create_ping(
    documents: DocumentStore,
    *,
    fail_attempts: int = 0,
    hold_ms: int = 0,
    correlation: str | None = None,
) -> tuple[Document, Event]:
    """Write a ping and its `diagnostics.pinged` event in one outbox batch."""
    ping_id = new_id("ping_")
    data: Pinged = {"pingId": ping_id, "failAttempts": fail_attempts, "holdMs": hold_ms}
    event = new_event(PING_EVENT, ping_id, data, correlation_id=correlation)
    document: Document = {
        "id": ping_id,
        "key": PARTITION_KEY,
        "kind": PING_KIND,
        "eventId": event.id,
        "status": "pending",
        "attempts": 0,
        "effects": 0,
        "failAttempts": fail_attempts,
        "holdMs": hold_ms,
        "createdAt": timestamp(event.time),
        "processedAt": None,
    }
    container = documents.container(CONTAINER)
    [stored, *_] = write_with_events(
        container, PARTITION_KEY, [BatchOp("create", document=document)], [event]
    )
    return stored, event


def read_ping(documents: DocumentStore, ping_id: str) -> Document:
    """A ping document. Raises NotFound."""
    document = documents.container(CONTAINER).read(ping_id, PARTITION_KEY)
    if document.get("kind") != PING_KIND:
        raise NotFound(ping_id)
    return document


def handle_ping(
    body: bytes | str,
    documents: DocumentStore,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Process one `diagnostics.pinged` event body; True if this call applied the effect.

    Counts the attempt first (a plain increment, outside the effect's transaction on
    purpose: it observes deliveries, duplicates included), fails on purpose while
    `attempts <= failAttempts`, waits `holdMs`, then applies the effect in one batch with
    the processed marker keyed on the event id, so a redelivery, a duplicate publish or a
    resubmitted copy (new message id, same event) has no second effect.
    Raises InvalidMessage for a body that is not a ping of a known ping document.
    """
    try:
        event = Event.from_message_body(body)
    except ValidationError as exc:
        raise InvalidMessage(
            "InvalidEvent", f"not an event envelope: {exc.error_count()} errors"
        ) from None
    if event.type != PING_EVENT:
        raise InvalidMessage("UnexpectedEventType", f"{event.type} is not {PING_EVENT}")
    ping_id = event.data.get("pingId")
    if not isinstance(ping_id, str) or not ping_id:
        raise InvalidMessage("InvalidEvent", "data.pingId is missing")
    fail_attempts = int(event.data.get("failAttempts", 0))
    hold_ms = int(event.data.get("holdMs", 0))

    container = documents.container(CONTAINER)
    try:
        counted = container.patch(ping_id, PARTITION_KEY, [PatchOp("incr", "attempts", 1)])
    except NotFound:
        raise InvalidMessage("PingNotFound", f"no ping {ping_id!r}") from None
    attempts = int(counted.get("attempts", 0))
    if attempts <= fail_attempts:
        raise SimulatedFailure(f"ping {ping_id}: failing attempt {attempts} of {fail_attempts}")
    if hold_ms:
        sleep(hold_ms / 1000)
    try:
        container.batch(
            PARTITION_KEY,
            [
                processed_marker(
                    CONSUMER,
                    event.id,
                    partition_key_field=container.spec.partition_key_field,
                    partition_key=PARTITION_KEY,
                ),
                BatchOp(
                    "patch",
                    id=ping_id,
                    patch=(
                        PatchOp("incr", "effects", 1),
                        PatchOp("set", "status", "processed"),
                        PatchOp("set", "processedAt", timestamp(utcnow())),
                    ),
                ),
            ],
        )
    except BatchFailed as error:
        if not is_duplicate(error):
            raise
        logger.info("ping %s: event %s was processed before", ping_id, event.id)
        return False
    logger.info("ping %s processed on attempt %d", ping_id, attempts)
    return True


# --- trigger ------------------------------------------------------------------------------
