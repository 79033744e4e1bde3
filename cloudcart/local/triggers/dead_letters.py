"""The alert the local trigger host raises for every dead-lettered message."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cloudcart.core.clock import utcnow
from cloudcart.core.ports.messages import DeadLetter, OutboundMessage, UnknownEntity
from cloudcart.local.triggers import logger

if TYPE_CHECKING:
    from cloudcart.core.messages.embedded import SqliteBroker
    from cloudcart.ops.events import DeadLettered

DEAD_LETTERED_EVENT = "ops.dead_lettered"
"""Subject (event type) of the alert published when a message is dead-lettered."""


class DeadLetterAlert:
    """Alerts on every message the broker dead-letters, whichever way it got there (its
    max delivery count exceeded, or `InvalidMessage` from a handler).

    The alert is an ERROR log `message dead-lettered` and an `ops.dead_lettered` event on
    the ops topic with message id `dlq-<dead letter id>`, so a replayed alert is dropped by
    duplicate detection. Dead letters of the ops topic itself are only logged: a failing
    alert consumer must not feed itself. `install()` hooks the broker's dead-letter
    callback and `uninstall()` puts the previous one back.
    """

    def __init__(self, broker: SqliteBroker, ops_topic: str) -> None:
        self._broker = broker
        self._ops_topic = ops_topic
        self._previous: Callable[[DeadLetter], None] | None = None

    def install(self) -> None:
        """Raise the alert for the broker's dead letters from now on."""
        self._previous = self._broker.on_dead_letter
        self._broker.on_dead_letter = self._on_dead_letter

    def uninstall(self) -> None:
        """Give the broker back the callback it had before `install()`."""
        self._broker.on_dead_letter = self._previous

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        data: DeadLettered = {
            "entity": letter.entity,
            "subscription": letter.subscription,
            "messageId": letter.message_id,
            "subject": letter.subject,
            "reason": letter.reason,
            "description": letter.description,
            "deliveryCount": letter.delivery_count,
        }
        logger.error("message dead-lettered", extra={**data, "deadLetterId": letter.id})
        ops_topic = self._ops_topic
        if letter.entity == ops_topic:
            # An alert about an alert could loop forever; the log above is the alert.
            return
        try:
            self._broker.topology.entity(ops_topic)
        except UnknownEntity:
            logger.warning("no %r topic declared; dead-letter event not published", ops_topic)
            return
        event_id = f"dlq-{letter.id}"
        event = {
            "id": event_id,
            "type": DEAD_LETTERED_EVENT,
            "version": 1,
            "time": utcnow().isoformat(),
            "subject": letter.message_id,
            "correlationId": letter.correlation_id,
            "data": data,
        }
        self._broker.publish(
            ops_topic,
            [
                OutboundMessage(
                    body=event,
                    message_id=event_id,
                    subject=DEAD_LETTERED_EVENT,
                    correlation_id=letter.correlation_id,
                )
            ],
        )
