"""In-memory email and text channels: they record what was sent and play programmed
provider failures, like the capture adapters but without a store."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloudcart.core.ports.channels import (
    EmailMessage,
    EmailOutcome,
    ProviderError,
    TextMessage,
)


@dataclass
class FakeEmail:
    """Records every accepted email; `failures` are raised, in order, by the next sends."""

    sent: list[EmailMessage] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    failures: list[ProviderError] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, message: EmailMessage) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return f"sg-{next(self._ids)}"

    def send_batch(self, messages: Sequence[EmailMessage]) -> list[EmailOutcome]:
        self.batches.append(len(messages))
        if self.failures:
            error = self.failures.pop(0)
            return [EmailOutcome(m.notification_id, error=error) for m in messages]
        self.sent.extend(messages)
        return [EmailOutcome(m.notification_id, f"sg-{next(self._ids)}") for m in messages]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if m.to == address]


@dataclass
class FakeText:
    """Records every accepted SMS/WhatsApp message; `failures` as for FakeEmail."""

    sent: list[TextMessage] = field(default_factory=list)
    failures: list[ProviderError] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, message: TextMessage) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return f"SM{next(self._ids):032d}"
