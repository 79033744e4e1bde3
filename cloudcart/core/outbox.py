"""The transactional outbox: state and the events announcing it, written in one transaction.

A service never publishes an event directly (the write could succeed and the publish fail,
or the other way round). It writes its documents and one outbox document per event in a
single transactional batch in one partition (`write_with_events`). A change-feed function
per outbox container (`cloudcart.ops.outbox_relay`) hands new documents to `relay`, which
publishes the unrelayed events with `message_id = event.id` and then marks them relayed.
`sweep`, on a timer, relays whatever the change feed missed.

Outbox document, in the same container and partition as the state it announces::

    {"id": <event id>, "kind": "outbox", "container": <container name>,
     <partition key field>: <partition key>, "event": {<the event JSON>},
     "createdAt": "2030-01-01T12:00:00.000000Z", "position": 0, "ttl": -1}

`relayedAt` is absent until the event is relayed: the documents port can express
"field missing" (`Filter(field, "exists", False)`) but not "missing or null" in one
filter list, so absence is the single "not yet relayed" state that both the sweep query
and the relay's conditional patch test. Relaying sets `relayedAt` and a `ttl` of
`RELAYED_EVENT_TTL_SECONDS`; until then `ttl` is -1 so an unrelayed event never expires.
(In a container without a default TTL, such as catalog and inventory, Cosmos ignores a
document's own `ttl`, so there relayed events stay until deleted.)

Delivery is at least once: a crash between publish and mark, or two relays racing, publish
the same event twice. That is harmless because topics drop a repeated `message_id` within
their duplicate-detection window and every consumer is idempotent on the message id
(`cloudcart.core.idempotency`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

# `timestamp` is re-exported: every writer of outbox documents stamps them with it.
from cloudcart.core.clock import timestamp as timestamp
from cloudcart.core.clock import utcnow
from cloudcart.core.documents.registry import CONTAINERS, container_spec
from cloudcart.core.errors import NotFound, PreconditionFailed
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    ContainerSpec,
    Document,
    DocumentStore,
    Filter,
    Order,
    PatchOp,
    Query,
    set_field,
)
from cloudcart.core.ports.messages import MessagePublisher

logger = logging.getLogger(__name__)

OUTBOX_KIND = "outbox"
"""`kind` of an outbox document."""

RELAYED_EVENT_TTL_SECONDS = 7 * 86_400
"""How long a relayed outbox document is kept (7 days): long enough to inspect what was
published and to replay it by hand, short enough that containers do not fill with history.
Topics keep their own copy only within their duplicate-detection window."""

MAX_BATCH_OPERATIONS = 100
"""Cosmos DB's limit on operations in one transactional batch."""

OUTBOX_CONTAINERS: tuple[str, ...] = tuple(spec.name for spec in CONTAINERS if spec.outbox)
"""Names of the containers that carry outbox events (`ContainerSpec.outbox`)."""

OPS_EVENT_PREFIX = "ops."
"""Event types with this prefix are operational alerts (see `relay`'s `ops_topic`)."""

_PUBLISH_CHUNK = 100
"""Events per publish call in `sweep` (the port splits by size; this bounds one call)."""


def _get_field(document: Mapping[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def outbox_document(
    container_spec: ContainerSpec,
    partition_key: str,
    event: Event,
    *,
    now: datetime | None = None,
    position: int = 0,
) -> Document:
    """The outbox document that carries `event` in `partition_key` of that container.

    `position` is the event's place among the events of its batch; events of one batch
    share `createdAt`, and the sweep uses it to keep their order.
    """
    document: Document = {
        "id": event.id,
        "kind": OUTBOX_KIND,
        "container": container_spec.name,
        "event": event.to_document(),
        "createdAt": timestamp(now or utcnow()),
        "position": position,
        # Explicitly "never": an unrelayed event must outlive any container default TTL.
        "ttl": -1,
    }
    set_field(document, container_spec.partition_key_field, partition_key)
    return document


def outbox_ops(
    container_spec: ContainerSpec, partition_key: str, events: Sequence[Event]
) -> list[BatchOp]:
    """Batch `create` operations that put `events` in the outbox of that partition.

    Raises ValueError if the container does not carry outbox events (nothing would relay
    them).
    """
    if not container_spec.outbox:
        raise ValueError(
            f"container {container_spec.name!r} does not carry outbox events "
            "(set outbox=True in the registry)"
        )
    now = utcnow()
    return [
        BatchOp(
            "create",
            document=outbox_document(container_spec, partition_key, e, now=now, position=i),
        )
        for i, e in enumerate(events)
    ]


def write_with_events(
    container: Container,
    partition_key: str,
    operations: Sequence[BatchOp],
    events: Sequence[Event],
) -> list[Document]:
    """Run `operations` and write `events` to the outbox in one transactional batch.

    All or nothing: raises BatchFailed (with the failing operation's index) like
    `Container.batch`, and then neither the state nor any event was written. Returns one
    result per operation, the caller's operations first, then the outbox documents.
    Raises ValueError before touching the store if the batch would exceed
    `MAX_BATCH_OPERATIONS`.
    """
    total = len(operations) + len(events)
    if total > MAX_BATCH_OPERATIONS:
        raise ValueError(
            f"{len(operations)} operations + {len(events)} events = {total}: a transactional "
            f"batch holds at most {MAX_BATCH_OPERATIONS} operations"
        )
    return container.batch(
        partition_key, [*operations, *outbox_ops(container.spec, partition_key, events)]
    )


def is_unrelayed_outbox(document: Mapping[str, Any]) -> bool:
    """Whether a (change-feed) document is an outbox event that was not relayed yet."""
    return document.get("kind") == OUTBOX_KIND and document.get("relayedAt") is None


def relay(
    documents: Iterable[Mapping[str, Any]],
    *,
    publisher: MessagePublisher,
    documents_store: DocumentStore,
    topic: str,
    container: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    ops_topic: str | None = None,
) -> int:
    """Publish the unrelayed outbox events among `documents`, then mark them relayed.

    Events go to `topic`, except operational ones (`ops.*`, such as
    `ops.stock_shortfall`) which go to `ops_topic` when it is given, beside the alerts
    the messaging layer raises there itself.

    `documents` is a change-feed page (any mapping works, e.g. `azure.functions.Document`);
    other documents and already relayed events are ignored. All events go out in one
    publish call, in the given order. Then each is patched with `relayedAt` and a `ttl`,
    on condition it is still unrelayed (PreconditionFailed means another relay got there
    first, and NotFound that it is gone: both fine). `container` names the container the
    documents came from; without it each document's own `container` field is used.

    If publishing raises, the error propagates and nothing is marked, so the change-feed
    trigger retries the page (or `sweep` picks the events up). Returns how many events
    were published.
    """
    pending: list[tuple[Mapping[str, Any], Event]] = []
    seen: set[str] = set()
    for document in documents:
        if not is_unrelayed_outbox(document):
            continue
        try:
            event = Event.model_validate(document.get("event"))
        except ValidationError:
            # One malformed document must not block the page (the trigger would retry it
            # forever); it stays unrelayed and visible, and every sweep logs it again.
            logger.error("outbox document %s holds an invalid event; skipped", document.get("id"))
            continue
        if event.id in seen:
            continue
        seen.add(event.id)
        pending.append((document, event))
    if not pending:
        return 0

    by_topic: dict[str, list[Event]] = {}
    for _, event in pending:
        target = ops_topic if ops_topic and event.type.startswith(OPS_EVENT_PREFIX) else topic
        by_topic.setdefault(target, []).append(event)
    for target, events in by_topic.items():
        publisher.publish(target, [event.to_message() for event in events])

    relayed_at = timestamp(clock())
    for document, event in pending:
        name = container or document.get("container")
        if not isinstance(name, str):
            # Without a container the mark cannot be written; the event was published, and
            # a replay would be dropped as a duplicate, so log rather than fail the page.
            logger.warning("outbox event %s has no container; not marked relayed", event.id)
            continue
        _mark_relayed(documents_store.container(name), document, relayed_at)
    return len(pending)


def _still_unrelayed(document: Mapping[str, Any]) -> Filter:
    # Outbox documents written here never hold `relayedAt: null`, but one written by hand
    # might; test for the state it was read in, so the patch cannot fail forever.
    if "relayedAt" in document:
        return Filter("relayedAt", "eq", None)
    return Filter("relayedAt", "exists", False)


def _mark_relayed(container: Container, document: Mapping[str, Any], relayed_at: str) -> None:
    partition_key = _get_field(document, container.spec.partition_key_field)
    if not isinstance(partition_key, str):
        logger.warning("outbox document %s has no partition key", document.get("id"))
        return
    # PreconditionFailed: a concurrent relay or sweep marked it already; NotFound: deleted.
    # Either way there is nothing left to do.
    with suppress(PreconditionFailed, NotFound):
        container.patch(
            str(document["id"]),
            partition_key,
            [
                PatchOp("set", "relayedAt", relayed_at),
                PatchOp("set", "ttl", RELAYED_EVENT_TTL_SECONDS),
            ],
            condition=[_still_unrelayed(document)],
        )


def pending_events(container: Container, *, older_than: datetime, limit: int) -> list[Document]:
    """Up to `limit` unrelayed outbox documents created before `older_than`, oldest first,
    across every partition of `container`."""
    query = Query(
        filters=(
            Filter("kind", "eq", OUTBOX_KIND),
            Filter("relayedAt", "exists", False),
            Filter("createdAt", "lt", timestamp(older_than)),
        ),
        order_by=(Order("createdAt"),),
        limit=min(limit, 100),
    )
    found: list[Document] = []
    continuation: str | None = None
    # Collect first, relay after: relaying changes what the query matches, which would make
    # the following pages skip documents.
    while len(found) < limit:
        page = container.query(query, continuation=continuation)
        found.extend(page.items)
        continuation = page.continuation
        if continuation is None:
            break
    # Ties on createdAt are events of one batch; `position` restores their order (sorting
    # here rather than in the query keeps Cosmos on its default single-field index).
    found.sort(key=lambda d: (str(d.get("createdAt", "")), int(d.get("position", 0))))
    return found[:limit]


def sweep(
    documents_store: DocumentStore,
    publisher: MessagePublisher,
    topic: str,
    *,
    older_than_seconds: float = 60,
    limit: int = 500,
    containers: Sequence[str] = OUTBOX_CONTAINERS,
    clock: Callable[[], datetime] = utcnow,
    ops_topic: str | None = None,
) -> int:
    """Relay outbox events the change feed has not relayed after `older_than_seconds`.

    Defence in depth: the change-feed function normally relays within seconds, but a
    failed publish or a lost lease leaves events behind; a timer calls this. Relays at
    most `limit` events per call, oldest first per container. Raises if publishing fails
    (what was relayed before stays relayed). Returns how many events were published.
    """
    cutoff = clock() - timedelta(seconds=older_than_seconds)
    relayed = 0
    for name in containers:
        if relayed >= limit:
            break
        container_spec(name)  # KeyError for a container the registry does not know
        container = documents_store.container(name)
        documents = pending_events(container, older_than=cutoff, limit=limit - relayed)
        for start in range(0, len(documents), _PUBLISH_CHUNK):
            relayed += relay(
                documents[start : start + _PUBLISH_CHUNK],
                publisher=publisher,
                documents_store=documents_store,
                topic=topic,
                container=name,
                clock=clock,
                ops_topic=ops_topic,
            )
    if relayed:
        logger.info("outbox sweep relayed %d event(s)", relayed)
    return relayed
