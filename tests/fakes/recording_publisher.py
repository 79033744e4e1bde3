"""A message publisher for tests that keeps every message it forwards (scheduled ones
included, which a broker hides until they are due)."""

from __future__ import annotations

from collections.abc import Sequence

from cloudcart.core.ports.messages import MessagePublisher, OutboundMessage


class RecordingPublisher:
    """Forwards to `inner` and records `(entity, message)` for each message published."""

    def __init__(self, inner: MessagePublisher) -> None:
        self.inner = inner
        self.published: list[tuple[str, OutboundMessage]] = []

    def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
        self.inner.publish(entity, messages)
        self.published.extend((entity, m) for m in messages)

    def to(self, entity: str) -> list[OutboundMessage]:
        """The messages published to `entity`, oldest first."""
        return [m for e, m in self.published if e == entity]

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        self.inner.close()
