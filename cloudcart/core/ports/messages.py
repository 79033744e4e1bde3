"""The messages port: publish events and commands, and administer dead letters.

The shape follows Azure Service Bus (topics with filtered subscriptions, queues, peek-lock,
delivery count, dead-letter queues, duplicate detection by `message_id`) because that is
production; the embedded SQLite broker behaves the same way locally. Which topics, queues
and subscriptions exist is declared once in `cloudcart.core.messages.topology`.

Business code publishes through `MessagePublisher`; an admin API reads and resubmits dead
letters through `DeadLetterAdmin`. Receiving is done by Azure Functions triggers in
production and by the local trigger host (from the embedded broker) on a laptop.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cloudcart.core.errors import CloudcartError, NotFound

PropertyValue = str | int | float | bool
"""What an application property may hold (the portable subset of AMQP simple types)."""

MessageBody = bytes | str | dict[str, Any]
"""A message body: raw bytes, text (UTF-8) or a JSON object (encoded compactly)."""

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
"""Dead-letter reason when a message was delivered too often (Service Bus uses the same)."""


class MessageError(CloudcartError):
    """A messages-port operation failed."""


class UnknownEntity(MessageError):
    """The topic, queue or subscription is not declared in the topology."""


class LockLost(MessageError):
    """The lock token is unknown, expired or the message was already settled.

    The message may already be with another receiver; the handler must not settle it.
    """


class MessageTooLarge(MessageError):
    """One message alone is larger than the broker accepts."""


class DeadLetterNotFound(MessageError, NotFound):
    """No dead letter with that id (already resubmitted or purged)."""


class InvalidMessage(MessageError):
    """A handler rejects a message that can never succeed (malformed body, unknown version).

    Raised from a Service Bus handler, it dead-letters the message at once with `reason`
    and `description` instead of retrying it up to the max delivery count (the local
    trigger host does this; see docs/architecture.md for Azure).
    """

    def __init__(self, reason: str, description: str = "") -> None:
        super().__init__(f"{reason}: {description}" if description else reason)
        self.reason = reason
        self.description = description


RESUBMITTED_FROM_PROPERTY = "cloudcart_original_message_id"
"""Application property of a resubmitted copy: the message id the original was sent with."""

_RESUBMIT_SUFFIX = re.compile(r"^(?P<base>.*)~r(?P<n>[1-9][0-9]*)$")
_MAX_MESSAGE_ID = 128


def resubmitted_message_id(message_id: str, original_message_id: str | None = None) -> str:
    """The message id of the next resubmitted copy of a dead letter.

    `message_id` is the dead letter's own id and `original_message_id` its
    `cloudcart_original_message_id` property (None for a first resubmit). The copy gets
    `<original>~r<n>`, n counting the resubmits of that message, so duplicate detection
    does not drop it (the original id is inside the window for minutes) while a retried
    resubmit of the same dead letter gets the same id again and *is* dropped. Ids longer
    than 128 characters (the Service Bus limit) use a hash of the original instead.
    Consumers never key on this id: they key on the event id inside the body.
    """
    original = original_message_id or message_id
    count = 0
    match = _RESUBMIT_SUFFIX.match(message_id)
    if (
        original_message_id is not None
        and match is not None
        and match.group("base") in (original, _short(original))
    ):
        count = int(match.group("n"))
    candidate = f"{original}~r{count + 1}"
    if len(candidate) <= _MAX_MESSAGE_ID:
        return candidate
    return f"{_short(original)}~r{count + 1}"


def _short(message_id: str) -> str:
    return "sha256-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()


def encode_body(body: MessageBody) -> bytes:
    """The wire bytes of a body: UTF-8 text, or compact JSON for a dict."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class OutboundMessage:
    """A message to publish.

    `message_id` is required because duplicate detection and every consumer's idempotency
    key on it: for an event it is the event id. `subject` is the event type
    (`order.placed`), the field subscription filters look at.
    `scheduled_enqueue_time` (timezone-aware) keeps the message invisible until then.
    """

    body: MessageBody
    message_id: str
    subject: str | None = None
    correlation_id: str | None = None
    application_properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    session_id: str | None = None
    scheduled_enqueue_time: datetime | None = None
    content_type: str | None = "application/json"

    def __post_init__(self) -> None:
        if not self.message_id:
            raise ValueError("message_id is required")
        if len(self.message_id) > 128:
            raise ValueError("message_id is limited to 128 characters (Service Bus)")
        for name, value in self.application_properties.items():
            if not isinstance(name, str) or not isinstance(value, str | int | float | bool):
                raise ValueError(f"application property {name!r}: str, int, float or bool only")
        when = self.scheduled_enqueue_time
        if when is not None and when.utcoffset() is None:
            raise ValueError("scheduled_enqueue_time must be timezone-aware")

    def body_bytes(self) -> bytes:
        """The encoded body."""
        return encode_body(self.body)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message received under a peek-lock. Settle it with its `lock_token` before
    `locked_until`, or renew the lock; otherwise it is delivered again."""

    entity: str
    subscription: str | None
    message_id: str
    body: bytes
    subject: str | None
    correlation_id: str | None
    application_properties: dict[str, PropertyValue]
    session_id: str | None
    content_type: str | None
    sequence_number: int
    enqueued_time: datetime
    expires_at: datetime | None
    delivery_count: int
    lock_token: str
    locked_until: datetime

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class DeadLetter:
    """A message that was moved to an entity's dead-letter queue.

    `id` is opaque; pass it to `DeadLetterAdmin.peek`, `resubmit` or `purge`.
    """

    id: str
    entity: str
    subscription: str | None
    message_id: str
    subject: str | None
    body: bytes
    reason: str | None
    description: str | None
    delivery_count: int
    enqueued_at: datetime
    dead_lettered_at: datetime | None
    properties: dict[str, PropertyValue]
    correlation_id: str | None = None
    content_type: str | None = None
    session_id: str | None = None


@runtime_checkable
class MessagePublisher(Protocol):
    """Sends messages to a topic or queue declared in the topology."""

    def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
        """Send messages to a topic (fanned out to matching subscriptions) or a queue.

        A message whose `message_id` the entity saw within its duplicate-detection window
        is dropped silently. Raises UnknownEntity, MessageTooLarge or Unavailable; a retry
        after a failure is safe on entities with duplicate detection.
        """
        ...

    def check(self) -> None:
        """Raise if the broker cannot be reached (readiness probe)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class DeadLetterAdmin(Protocol):
    """Lists, inspects, resubmits and purges dead letters (for the admin API)."""

    def list_dead_letters(
        self, entity: str, subscription: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """The oldest `limit` dead letters of a queue, or of a topic's subscription."""
        ...

    def peek(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter. Raises DeadLetterNotFound."""
        ...

    def resubmit(self, dead_letter_id: str) -> None:
        """Put a fresh copy (delivery count 0) back on the queue or on the same subscription
        only, and remove the dead letter.

        The copy gets a new message id (`resubmitted_message_id`) and the property
        `cloudcart_original_message_id`, so duplicate detection lets it through at any
        time; consumers stay idempotent because they key on the event id in the body.
        Raises DeadLetterNotFound.
        """
        ...

    def purge(self, dead_letter_id: str) -> None:
        """Delete a dead letter for good. Raises DeadLetterNotFound."""
        ...


@dataclass(frozen=True)
class EntityCounts:
    """How many messages a queue or subscription holds."""

    active: int
    """Waiting or being processed (scheduled messages excluded)."""
    dead_lettered: int


@runtime_checkable
class MessageCounts(Protocol):
    """Message counts of a queue or a topic's subscription (admin status pages)."""

    def counts(self, entity: str, subscription: str | None = None) -> EntityCounts:
        """The counts of a queue, or of one subscription of a topic. Raises UnknownEntity."""
        ...
