"""A recording fake of `azure.servicebus.ServiceBusClient` at the SDK-object level.

Service Bus speaks AMQP with a CBS handshake that no local broker offers, so the Azure
adapter is tested against this: it hands out senders whose batches enforce a size limit with
the SDK's real `MessageSizeExceededError`, records every real `ServiceBusMessage` sent, and
serves dead-letter queues to receivers (peek, receive under lock, complete, abandon).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageSizeExceededError

# Standard tier's limit.
DEFAULT_MAX_BATCH_BYTES = 256 * 1024
# Rough AMQP framing per message in a batch (header sections, property map, descriptors).
PER_MESSAGE_OVERHEAD = 64


def encoded_size(message: ServiceBusMessage) -> int:
    """An estimate of a message's encoded size: body, system and application properties."""
    body = b"".join(message.body)
    size = PER_MESSAGE_OVERHEAD + len(body)
    system: list[object] = [
        message.message_id,
        message.subject,
        message.correlation_id,
        message.session_id,
        message.content_type,
    ]
    for value in system:
        size += len(str(value or "").encode())
    for key, value in (message.application_properties or {}).items():
        size += len(str(key).encode()) + len(str(value).encode()) + 4
    return size


class FakeBatch:
    """A `ServiceBusMessageBatch` look-alike that refuses to grow past its limit."""

    def __init__(self, max_size_in_bytes: int) -> None:
        self.max_size_in_bytes = max_size_in_bytes
        self.size_in_bytes = 0
        self.messages: list[ServiceBusMessage] = []

    def add_message(self, message: ServiceBusMessage) -> None:
        size = encoded_size(message)
        if self.size_in_bytes + size > self.max_size_in_bytes:
            raise MessageSizeExceededError(
                message=f"ServiceBusMessageBatch has reached its size limit: "
                f"{self.max_size_in_bytes}"
            )
        self.messages.append(message)
        self.size_in_bytes += size

    def __len__(self) -> int:
        return len(self.messages)


@dataclass
class SentBatch:
    """One `send_messages` call."""

    entity: str
    kind: str  # "topic" or "queue"
    messages: list[ServiceBusMessage]
    size_in_bytes: int
    max_size_in_bytes: int


class FakeSender:
    """A `ServiceBusSender` look-alike bound to one topic or queue."""

    def __init__(self, client: FakeServiceBusClient, entity: str, kind: str) -> None:
        self._client = client
        self.entity = entity
        self.kind = kind
        self.closed = False
        self.batches_created = 0

    def create_message_batch(self, max_size_in_bytes: int | None = None) -> FakeBatch:
        self._live()
        self.batches_created += 1
        limit = self._client.max_batch_size_in_bytes
        if max_size_in_bytes is not None:
            if max_size_in_bytes > limit:
                raise ValueError(f"max_size_in_bytes {max_size_in_bytes} > link limit {limit}")
            limit = max_size_in_bytes
        return FakeBatch(limit)

    def send_messages(self, message: Any) -> None:
        self._live()
        if self._client.fail_next_send is not None:
            error, self._client.fail_next_send = self._client.fail_next_send, None
            raise error
        if isinstance(message, FakeBatch):
            messages, size, limit = (
                list(message.messages),
                message.size_in_bytes,
                message.max_size_in_bytes,
            )
        elif isinstance(message, ServiceBusMessage):
            messages, size, limit = [message], encoded_size(message), 0
        else:
            messages = list(message)
            size, limit = sum(encoded_size(m) for m in messages), 0
        self._client.sent.append(SentBatch(self.entity, self.kind, messages, size, limit))

    def _live(self) -> None:
        if self.closed:
            raise RuntimeError("sender is closed")

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FakeReceivedMessage:
    """What the adapter reads of a `ServiceBusReceivedMessage` in a dead-letter queue.

    Application properties come back from AMQP with bytes keys and bytes string values, as
    the real SDK returns them.
    """

    sequence_number: int
    message_id: str
    body: bytes
    subject: str | None = None
    correlation_id: str | None = None
    content_type: str | None = "application/json"
    session_id: str | None = None
    application_properties: dict[bytes, Any] = field(default_factory=dict)
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None
    delivery_count: int = 0
    enqueued_time_utc: datetime = field(default_factory=lambda: datetime.now(UTC))


class FakeReceiver:
    """A dead-letter-queue receiver: peek, receive under lock, complete, abandon."""

    def __init__(self, queue: list[FakeReceivedMessage]) -> None:
        self._queue = queue
        self._locked: set[int] = set()
        self.closed = False

    def peek_messages(
        self, max_message_count: int = 1, *, sequence_number: int = 0, **_: Any
    ) -> list[FakeReceivedMessage]:
        found = sorted(
            (m for m in self._queue if m.sequence_number >= sequence_number),
            key=lambda m: m.sequence_number,
        )
        return found[:max_message_count]

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[FakeReceivedMessage]:
        out: list[FakeReceivedMessage] = []
        for message in sorted(self._queue, key=lambda m: m.sequence_number):
            if len(out) >= (max_message_count or 1):
                break
            if message.sequence_number not in self._locked:
                self._locked.add(message.sequence_number)
                message.delivery_count += 1
                out.append(message)
        return out

    def complete_message(self, message: FakeReceivedMessage) -> None:
        assert message.sequence_number in self._locked, "completing a message not locked"
        self._locked.discard(message.sequence_number)
        self._queue.remove(message)

    def abandon_message(self, message: FakeReceivedMessage) -> None:
        assert message.sequence_number in self._locked, "abandoning a message not locked"
        self._locked.discard(message.sequence_number)

    def close(self) -> None:
        self._locked.clear()
        self.closed = True

    def __enter__(self) -> FakeReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeServiceBusClient:
    """Records what the adapter sends; holds dead-letter queues keyed by (entity, sub)."""

    def __init__(self, max_batch_size_in_bytes: int = DEFAULT_MAX_BATCH_BYTES) -> None:
        self.max_batch_size_in_bytes = max_batch_size_in_bytes
        self.sent: list[SentBatch] = []
        self.senders: list[FakeSender] = []
        self.receivers: list[FakeReceiver] = []
        self.dead_letter_queues: dict[tuple[str, str | None], list[FakeReceivedMessage]] = {}
        self.fail_next_send: Exception | None = None
        self.closed = False
        self._next_sequence = 1

    # --- senders -------------------------------------------------------------------------

    def get_topic_sender(self, topic_name: str, **_: Any) -> FakeSender:
        sender = FakeSender(self, topic_name, "topic")
        self.senders.append(sender)
        return sender

    def get_queue_sender(self, queue_name: str, **_: Any) -> FakeSender:
        sender = FakeSender(self, queue_name, "queue")
        self.senders.append(sender)
        return sender

    def sent_messages(self, entity: str | None = None) -> list[ServiceBusMessage]:
        """Every message sent (to `entity`), in order."""
        return [m for b in self.sent if entity in (None, b.entity) for m in b.messages]

    # --- dead-letter queues --------------------------------------------------------------

    def add_dead_letter(
        self, entity: str, subscription: str | None, **fields: Any
    ) -> FakeReceivedMessage:
        """Put a message in an entity's dead-letter queue, with the next sequence number."""
        message = FakeReceivedMessage(sequence_number=self._next_sequence, **fields)
        self._next_sequence += 1
        self.dead_letter_queues.setdefault((entity, subscription), []).append(message)
        return message

    def _receiver(self, key: tuple[str, str | None], sub_queue: Any) -> FakeReceiver:
        assert sub_queue == ServiceBusSubQueue.DEAD_LETTER, "the fake serves dead letters only"
        receiver = FakeReceiver(self.dead_letter_queues.setdefault(key, []))
        self.receivers.append(receiver)
        return receiver

    def get_subscription_receiver(
        self, topic_name: str, subscription_name: str, *, sub_queue: Any = None, **_: Any
    ) -> FakeReceiver:
        return self._receiver((topic_name, subscription_name), sub_queue)

    def get_queue_receiver(
        self, queue_name: str, *, sub_queue: Any = None, **_: Any
    ) -> FakeReceiver:
        return self._receiver((queue_name, None), sub_queue)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeServiceBusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
