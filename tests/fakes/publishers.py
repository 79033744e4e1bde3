"""Message publishers for tests: one that fails on demand, in front of a real broker."""

from __future__ import annotations

from collections.abc import Sequence

from cloudcart.core.errors import Unavailable
from cloudcart.core.ports.messages import MessagePublisher, OutboundMessage


class FlakyPublisher:
    """Forwards to `inner`, except that the next `failures` publish calls raise Unavailable.

    Records every call (entity and message ids), failed ones included.
    """

    def __init__(self, inner: MessagePublisher, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: list[tuple[str, list[str]]] = []

    def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
        self.calls.append((entity, [m.message_id for m in messages]))
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("the broker is down (test)")
        self.inner.publish(entity, messages)

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        self.inner.close()
