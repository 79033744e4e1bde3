"""The Azure adapter of the messages port: Azure Service Bus via `azure-servicebus`.

The SDK is imported lazily (inside functions) so a cold start that never publishes does not
pay for it. One `ServiceBusClient` per app; one sender per entity, built on first use and
kept, because opening an AMQP link costs a round trip or two. The SDK does not promise that
a sender is thread-safe, so each sender is used under its own lock.

Dead letters are read from the entity's `$DeadLetterQueue`; their id is
`<entity>|<subscription>|<sequence number>`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Unavailable
from cloudcart.core.messages.topology import RESUBMIT_PROPERTY, TOPOLOGY, Topic, Topology
from cloudcart.core.ports.messages import (
    RESUBMITTED_FROM_PROPERTY,
    DeadLetter,
    DeadLetterNotFound,
    EntityCounts,
    MessageTooLarge,
    OutboundMessage,
    PropertyValue,
    UnknownEntity,
    resubmitted_message_id,
)

if TYPE_CHECKING:
    from azure.servicebus import (
        ServiceBusClient,
        ServiceBusMessage,
        ServiceBusReceivedMessage,
        ServiceBusReceiver,
        ServiceBusSender,
    )

    from cloudcart.core.settings import Settings

# How long one search through a dead-letter queue waits for the next batch of messages
# before concluding the one it looks for is gone.
_DEAD_LETTER_WAIT_SECONDS = 5.0
_DEAD_LETTER_BATCH = 50


def to_servicebus_message(message: OutboundMessage) -> ServiceBusMessage:
    """The SDK message for a port message (every field mapped, times in UTC)."""
    from azure.servicebus import ServiceBusMessage

    when = message.scheduled_enqueue_time
    properties: dict[str | bytes, Any] = {k: v for k, v in message.application_properties.items()}
    return ServiceBusMessage(
        message.body_bytes(),
        message_id=message.message_id,
        subject=message.subject,
        correlation_id=message.correlation_id,
        application_properties=properties or None,
        session_id=message.session_id,
        scheduled_enqueue_time_utc=when.astimezone(UTC) if when is not None else None,
        content_type=message.content_type,
    )


def _text(value: Any) -> Any:
    # Received AMQP properties come back with bytes keys and string values as bytes.
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _properties(message: ServiceBusReceivedMessage) -> dict[str, PropertyValue]:
    raw = message.application_properties or {}
    return {str(_text(k)): _text(v) for k, v in raw.items()}


def _body(message: ServiceBusReceivedMessage) -> bytes:
    body = message.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return b"".join(bytes(part) for part in body)


def _dead_letter_id(entity: str, subscription: str | None, sequence_number: int) -> str:
    return f"{entity}|{subscription or ''}|{sequence_number}"


def _parse_dead_letter_id(dead_letter_id: str) -> tuple[str, str | None, int]:
    parts = dead_letter_id.split("|")
    if len(parts) != 3 or not parts[0] or not parts[2].isdigit():
        raise DeadLetterNotFound(dead_letter_id)
    return parts[0], parts[1] or None, int(parts[2])


class ServiceBusPublisher:
    """`MessagePublisher` and `DeadLetterAdmin` on Azure Service Bus.

    `client` is a `ServiceBusClient` (tests pass a fake with the same methods).
    `max_batch_size_in_bytes` caps each batch below the link's limit when set.
    """

    def __init__(
        self,
        client: ServiceBusClient,
        topology: Topology = TOPOLOGY,
        *,
        max_batch_size_in_bytes: int | None = None,
        credential: Any = None,
        clock: Callable[[], datetime] = utcnow,
        admin_client: Any = None,
        namespace: str | None = None,
    ) -> None:
        """`admin_client` is a `ServiceBusAdministrationClient` for `counts` (built on
        first use from `namespace` and `credential` when not given)."""
        self._client = client
        self._admin = admin_client
        self._namespace = namespace
        self.topology = topology
        self._max_batch = max_batch_size_in_bytes
        self._credential = credential
        self._clock = clock
        self._senders: dict[str, tuple[ServiceBusSender, threading.Lock]] = {}
        self._senders_lock = threading.Lock()

    # --- MessagePublisher --------------------------------------------------------------

    def _sender(self, entity: str) -> tuple[ServiceBusSender, threading.Lock]:
        is_topic = self.topology.is_topic(entity)
        with self._senders_lock:
            if entity not in self._senders:
                sender = (
                    self._client.get_topic_sender(topic_name=entity)
                    if is_topic
                    else self._client.get_queue_sender(queue_name=entity)
                )
                self._senders[entity] = (sender, threading.Lock())
            return self._senders[entity]

    @contextmanager
    def _translated(self, entity: str) -> Iterator[None]:
        from azure.servicebus.exceptions import (
            MessageSizeExceededError,
            MessagingEntityNotFoundError,
            ServiceBusError,
        )

        try:
            yield
        except MessageSizeExceededError as exc:
            raise MessageTooLarge(str(exc)) from exc
        except MessagingEntityNotFoundError as exc:
            raise UnknownEntity(f"Service Bus has no entity {entity!r}") from exc
        except ServiceBusError as exc:
            raise Unavailable(f"Service Bus ({entity}): {exc}") from exc

    def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
        """Send messages in as few size-limited batches as possible, in order.

        A failure part-way may leave earlier batches sent; a retry is then safe because
        duplicate detection drops the ids already delivered.
        """
        from azure.servicebus.exceptions import MessageSizeExceededError

        if not messages:
            return
        sender, lock = self._sender(entity)
        with lock, self._translated(entity):
            batch = sender.create_message_batch(max_size_in_bytes=self._max_batch)
            for message in messages:
                sb_message = to_servicebus_message(message)
                try:
                    batch.add_message(sb_message)
                    continue
                except MessageSizeExceededError:
                    if len(batch) == 0:
                        raise MessageTooLarge(
                            f"message {message.message_id!r} alone exceeds the batch size limit"
                        ) from None
                sender.send_messages(batch)
                batch = sender.create_message_batch(max_size_in_bytes=self._max_batch)
                try:
                    batch.add_message(sb_message)
                except MessageSizeExceededError:
                    raise MessageTooLarge(
                        f"message {message.message_id!r} alone exceeds the batch size limit"
                    ) from None
            if len(batch):
                sender.send_messages(batch)

    def _open_link(self, entity: str) -> None:
        sender, lock = self._sender(entity)
        # Creating a batch needs the link's maximum message size, so it opens the link.
        with lock, self._translated(entity):
            sender.create_message_batch(max_size_in_bytes=self._max_batch)

    def check(self) -> None:
        """Open (or reuse) a sender link to every declared entity; raises Unavailable."""
        for declared in self.topology.entities():
            self._open_link(declared.name)

    def close(self) -> None:
        """Close the senders, the client and the credential."""
        with self._senders_lock:
            senders, self._senders = list(self._senders.values()), {}
        for sender, lock in senders:
            with lock:
                sender.close()
        self._client.close()
        close_credential = getattr(self._credential, "close", None)
        if callable(close_credential):
            close_credential()

    # --- DeadLetterAdmin ---------------------------------------------------------------

    def _dead_letter_receiver(self, entity: str, subscription: str | None) -> ServiceBusReceiver:
        from azure.servicebus import ServiceBusReceiveMode, ServiceBusSubQueue

        declared = self.topology.entity(entity)
        if isinstance(declared, Topic):
            if subscription is None:
                raise UnknownEntity(f"{entity!r} is a topic: name one of its subscriptions")
            declared.subscription(subscription)
            return self._client.get_subscription_receiver(
                topic_name=entity,
                subscription_name=subscription,
                sub_queue=ServiceBusSubQueue.DEAD_LETTER,
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
            )
        if subscription is not None:
            raise UnknownEntity(f"{entity!r} is a queue; it has no subscriptions")
        return self._client.get_queue_receiver(
            queue_name=entity,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER,
            receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
        )

    @staticmethod
    def _to_dead_letter(
        entity: str, subscription: str | None, message: ServiceBusReceivedMessage
    ) -> DeadLetter:
        sequence_number = message.sequence_number or 0
        enqueued = message.enqueued_time_utc or datetime.fromtimestamp(0, UTC)
        return DeadLetter(
            id=_dead_letter_id(entity, subscription, sequence_number),
            entity=entity,
            subscription=subscription,
            message_id=str(message.message_id),
            subject=message.subject,
            body=_body(message),
            reason=message.dead_letter_reason,
            description=message.dead_letter_error_description,
            delivery_count=message.delivery_count or 0,
            enqueued_at=enqueued if enqueued.tzinfo else enqueued.replace(tzinfo=UTC),
            # Service Bus does not expose when a message was dead-lettered.
            dead_lettered_at=None,
            properties=_properties(message),
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            session_id=message.session_id,
        )

    # --- MessageCounts -----------------------------------------------------------------

    def _admin_client(self) -> Any:
        if self._admin is None:
            if not self._namespace or self._credential is None:
                raise Unavailable("message counts need the namespace and the app's identity")
            from azure.servicebus.management import ServiceBusAdministrationClient

            # Runtime properties need the `Azure Service Bus Data Owner` role (Manage).
            self._admin = ServiceBusAdministrationClient(
                fully_qualified_namespace=self._namespace, credential=self._credential
            )
        return self._admin

    def counts(self, entity: str, subscription: str | None = None) -> EntityCounts:
        """Active and dead-lettered message counts from the namespace's runtime properties."""
        is_topic = self.topology.is_topic(entity)
        if is_topic != (subscription is not None):
            raise UnknownEntity(f"{entity!r}: name a subscription of a topic, and none of a queue")
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        admin = self._admin_client()
        try:
            if subscription is not None:
                props = admin.get_subscription_runtime_properties(entity, subscription)
            else:
                props = admin.get_queue_runtime_properties(entity)
        except ResourceNotFoundError as exc:
            raise UnknownEntity(f"Service Bus has no entity {entity!r}") from exc
        except AzureError as exc:
            raise Unavailable(f"Service Bus counts of {entity!r} failed: {exc}") from exc
        return EntityCounts(
            active=int(props.active_message_count or 0),
            dead_lettered=int(props.dead_letter_message_count or 0),
        )

    def list_dead_letters(
        self, entity: str, subscription: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """The oldest `limit` dead letters, peeked (nothing is locked or changed)."""
        found: list[DeadLetter] = []
        next_sequence = 0
        with self._translated(entity), self._dead_letter_receiver(entity, subscription) as rx:
            while len(found) < limit:
                page = rx.peek_messages(
                    max_message_count=limit - len(found), sequence_number=next_sequence
                )
                if not page:
                    break
                for message in page:
                    found.append(self._to_dead_letter(entity, subscription, message))
                    next_sequence = max(next_sequence, (message.sequence_number or 0) + 1)
        return found[:limit]

    def peek(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id. Raises DeadLetterNotFound."""
        entity, subscription, sequence_number = _parse_dead_letter_id(dead_letter_id)
        with self._translated(entity), self._dead_letter_receiver(entity, subscription) as rx:
            page = rx.peek_messages(max_message_count=1, sequence_number=sequence_number)
        if not page or page[0].sequence_number != sequence_number:
            raise DeadLetterNotFound(dead_letter_id)
        return self._to_dead_letter(entity, subscription, page[0])

    def resubmit(self, dead_letter_id: str) -> None:
        """Send a copy back (to the queue, or through the topic to the one subscription, by
        the `cloudcart_resubmit_to` property its rule accepts), then remove the dead letter.

        The copy gets a new message id (`resubmitted_message_id`) so the topic's duplicate
        detection does not drop it, and `cloudcart_original_message_id`. The id is
        deterministic: if removing the dead letter fails after the send, a retried
        resubmit sends the same id and duplicate detection drops the second copy.
        """
        letter = self.peek(dead_letter_id)
        properties = dict(letter.properties)
        properties.pop(RESUBMIT_PROPERTY, None)
        if letter.subscription is not None:
            properties[RESUBMIT_PROPERTY] = letter.subscription
        original = letter.properties.get(RESUBMITTED_FROM_PROPERTY)
        properties[RESUBMITTED_FROM_PROPERTY] = str(original or letter.message_id)
        copy = OutboundMessage(
            body=letter.body,
            message_id=resubmitted_message_id(
                letter.message_id, None if original is None else str(original)
            ),
            subject=letter.subject,
            correlation_id=letter.correlation_id,
            application_properties=properties,
            session_id=letter.session_id,
            content_type=letter.content_type,
        )
        # Attach the sender link before the dead letter is locked, so that all the lock has
        # to outlast is the send itself.
        self._open_link(letter.entity)
        self._take_dead_letter(dead_letter_id, lambda: self.publish(letter.entity, [copy]))

    def purge(self, dead_letter_id: str) -> None:
        """Remove a dead letter for good. Raises DeadLetterNotFound."""
        self._take_dead_letter(dead_letter_id, None)

    def _take_dead_letter(
        self, dead_letter_id: str, before_complete: Callable[[], None] | None
    ) -> None:
        # Only deferred messages can be received by sequence number, so receive in peek-lock
        # until the letter turns up. The letters ahead of it stay locked meanwhile (given
        # back, the service would hand them out again at once) and are given back as soon
        # as it is found, before `before_complete` sends anything.
        from azure.servicebus.exceptions import MessageLockLostError

        entity, subscription, sequence_number = _parse_dead_letter_id(dead_letter_id)
        held: list[ServiceBusReceivedMessage] = []
        seen: set[int] = set()
        with self._translated(entity), self._dead_letter_receiver(entity, subscription) as rx:
            try:
                while True:
                    batch = rx.receive_messages(
                        max_message_count=_DEAD_LETTER_BATCH,
                        max_wait_time=_DEAD_LETTER_WAIT_SECONDS,
                    )
                    if not batch:
                        raise DeadLetterNotFound(dead_letter_id)
                    target = next((m for m in batch if m.sequence_number == sequence_number), None)
                    held.extend(m for m in batch if m is not target)
                    if target is not None:
                        break
                    fresh = {m.sequence_number or 0 for m in batch} - seen
                    if not fresh:
                        # Only letters already held came back: their locks lapsed before
                        # the search got past them, and it would go round forever.
                        raise Unavailable(
                            f"dead letter {dead_letter_id}: the letters ahead of it came back "
                            "because their locks lapsed before it was reached; try again"
                        )
                    seen |= fresh
            finally:
                _give_back(rx, held)
            if before_complete is not None:
                try:
                    before_complete()
                except BaseException:
                    _give_back(rx, [target])
                    raise
            try:
                rx.complete_message(target)
            except MessageLockLostError as exc:
                after = (
                    " after its copy was sent; trying again is safe (duplicate detection "
                    "drops the second copy)"
                    if before_complete is not None
                    else "; try again"
                )
                raise Unavailable(
                    f"dead letter {dead_letter_id}: its lock lapsed before it was removed{after}"
                ) from exc


def _give_back(receiver: ServiceBusReceiver, messages: list[ServiceBusReceivedMessage]) -> None:
    """Abandon `messages` and forget them, best effort.

    A lock that lapsed has given its letter back already (the `diagnostics` subscription
    locks for 5 s), and any other failure only means the letter comes back when its lock
    lapses, so neither may fail the operation the letters were held for.
    """
    from azure.servicebus.exceptions import ServiceBusError

    for message in messages:
        with suppress(ServiceBusError):
            receiver.abandon_message(message)
    messages.clear()


def from_settings(settings: Settings) -> ServiceBusPublisher:
    """The adapter for the configured namespace (managed identity), or for the emulator
    when its connection string is set."""
    from azure.servicebus import ServiceBusClient

    if settings.servicebus_connection_string is not None:
        client = ServiceBusClient.from_connection_string(
            settings.servicebus_connection_string.get_secret_value()
        )
        return ServiceBusPublisher(client, TOPOLOGY)
    if not settings.servicebus_namespace:
        raise ValueError(
            "CLOUDCART_MESSAGES_ADAPTER=azure needs ServiceBus__fullyQualifiedNamespace "
            "(or SERVICEBUS_CONNECTION_STRING for the emulator)"
        )
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    client = ServiceBusClient(
        fully_qualified_namespace=settings.servicebus_namespace, credential=credential
    )
    return ServiceBusPublisher(
        client, TOPOLOGY, credential=credential, namespace=settings.servicebus_namespace
    )
