"""A recording fake of `azure.servicebus.ServiceBusClient` at the SDK-object level.

Service Bus speaks AMQP with a CBS handshake that no local broker offers, so the Azure
adapter is tested against this: it hands out senders whose batches enforce a size limit with
the SDK's real `MessageSizeExceededError`, records every real `ServiceBusMessage` sent, and
serves dead-letter queues to receivers (peek, receive under lock, complete, abandon).

Locks behave like the service's: a received message is locked for its entity's lock
duration (from the topology; 60 s, the service default, without one), time moves only when
the client's clock moves (`receive_latency`, `send_latency`, or a receive that finds
nothing and waits `max_wait_time`), a message whose lock lapsed is delivered again, and
settling with a lapsed or superseded lock raises the SDK's `MessageLockLostError`, as
`ServiceBusReceiver` does.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError, MessageSizeExceededError

from cloudcart.core.messages.topology import Topic, Topology
from tests.fakes.clock import ManualClock

# Standard tier's limit.
DEFAULT_MAX_BATCH_BYTES = 256 * 1024
# Rough AMQP framing per message in a batch (header sections, property map, descriptors).
PER_MESSAGE_OVERHEAD = 64
# The service's default lock duration, for entities the topology does not declare.
DEFAULT_LOCK_DURATION = timedelta(seconds=60)
# A receiver asked for more batches than this is looping; fail instead of hanging the test.
MAX_RECEIVES_PER_RECEIVER = 1_000


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
        self._client.clock.now += self._client.send_latency
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
    lock_token: str | None = None
    locked_until_utc: datetime | None = None


@dataclass
class _Lock:
    token: str
    until: datetime
    receiver: FakeReceiver


class FakeReceiver:
    """A dead-letter-queue receiver: peek, receive under lock, complete, abandon.

    Locks live on the client (per queue), like the service's, so two receivers of one
    dead-letter queue see each other's locks.
    """

    def __init__(
        self,
        client: FakeServiceBusClient,
        queue: list[FakeReceivedMessage],
        locks: dict[int, _Lock],
        lock_duration: timedelta,
    ) -> None:
        self._client = client
        self._queue = queue
        self._locks = locks
        self.lock_duration = lock_duration
        self.receives = 0
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
        self.receives += 1
        assert self.receives <= MAX_RECEIVES_PER_RECEIVER, "the receiver keeps receiving"
        clock = self._client.clock
        clock.now += self._client.receive_latency
        out: list[FakeReceivedMessage] = []
        for stored in sorted(self._queue, key=lambda m: m.sequence_number):
            if len(out) >= (max_message_count or 1):
                break
            lock = self._locks.get(stored.sequence_number)
            if lock is not None and lock.until > clock.now:
                continue
            # Unlocked, or its lock lapsed (which the service treats as an abandon).
            token = str(uuid.uuid4())
            until = clock.now + self.lock_duration
            self._locks[stored.sequence_number] = _Lock(token, until, self)
            stored.delivery_count += 1
            out.append(dataclasses.replace(stored, lock_token=token, locked_until_utc=until))
        if not out and max_wait_time:
            # Nothing to deliver: the service holds the call open for the whole wait.
            clock.now += timedelta(seconds=max_wait_time)
        return out

    def _unlock(self, message: FakeReceivedMessage) -> None:
        """Release the message's lock, or raise MessageLockLostError as the SDK does."""
        lock = self._locks.get(message.sequence_number)
        if lock is None or lock.token != message.lock_token:
            raise MessageLockLostError(message="The lock on the message lock has expired.")
        if lock.until <= self._client.clock.now:
            raise MessageLockLostError(message="The lock on the message lock has expired.")
        del self._locks[message.sequence_number]

    def complete_message(self, message: FakeReceivedMessage) -> None:
        self._unlock(message)
        self._queue[:] = [m for m in self._queue if m.sequence_number != message.sequence_number]

    def abandon_message(self, message: FakeReceivedMessage) -> None:
        self._unlock(message)

    def close(self) -> None:
        # Detaching the link releases the locks it holds.
        for sequence_number, lock in list(self._locks.items()):
            if lock.receiver is self:
                del self._locks[sequence_number]
        self.closed = True

    def __enter__(self) -> FakeReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeServiceBusClient:
    """Records what the adapter sends; holds dead-letter queues keyed by (entity, sub).

    `topology` gives each dead-letter queue its entity's lock duration. `clock` is the
    service's time; `receive_latency` and `send_latency` are how far it moves per call.
    """

    def __init__(
        self,
        max_batch_size_in_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        *,
        topology: Topology | None = None,
        clock: ManualClock | None = None,
    ) -> None:
        self.max_batch_size_in_bytes = max_batch_size_in_bytes
        self.topology = topology
        self.clock = clock or ManualClock()
        self.receive_latency = timedelta(0)
        self.send_latency = timedelta(0)
        self._locks: dict[tuple[str, str | None], dict[int, _Lock]] = {}
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

    def locked(self, entity: str, subscription: str | None) -> list[int]:
        """Sequence numbers of an entity's dead letters that are locked right now."""
        locks = self._locks.get((entity, subscription), {})
        return sorted(s for s, lock in locks.items() if lock.until > self.clock.now)

    def lock_duration(self, entity: str, subscription: str | None) -> timedelta:
        """The lock duration of an entity's dead-letter queue (its entity's)."""
        if self.topology is None:
            return DEFAULT_LOCK_DURATION
        declared = self.topology.entity(entity)
        if isinstance(declared, Topic):
            assert subscription is not None, "a topic's dead letters live in a subscription"
            return declared.subscription(subscription).lock_duration
        return declared.lock_duration

    def _receiver(self, key: tuple[str, str | None], sub_queue: Any) -> FakeReceiver:
        assert sub_queue == ServiceBusSubQueue.DEAD_LETTER, "the fake serves dead letters only"
        receiver = FakeReceiver(
            self,
            self.dead_letter_queues.setdefault(key, []),
            self._locks.setdefault(key, {}),
            self.lock_duration(*key),
        )
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
