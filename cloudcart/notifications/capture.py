"""Local capture adapters: they keep what would have been sent, in the embedded-only
`sentmessages` container, for /dev/notifications/sent and /dev/mailbox.

Each send is a new capture, so a duplicate send shows as two captures: what the local shop
shows is what a customer would have received. `faults` lets tests make the next sends
fail as a provider would, or hold after accepting (to crash a process mid-send).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cloudcart.core.clock import utcnow
from cloudcart.core.ids import new_id
from cloudcart.core.ports.channels import (
    EmailMessage,
    EmailOutcome,
    ProviderBusy,
    ProviderError,
    ProviderRejected,
    TextMessage,
)
from cloudcart.core.ports.documents import Document, DocumentStore, Filter, Order, Query

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

CONTAINER = "sentmessages"


@dataclass
class Faults:
    """What the capture adapters do wrong on purpose (dev routes and tests set it)."""

    fail_next: list[ProviderError] = field(default_factory=list)
    hold_after_send_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_error(self) -> ProviderError | None:
        """The next programmed failure, consumed."""
        with self.lock:
            return self.fail_next.pop(0) if self.fail_next else None


faults = Faults()
"""The process's capture faults."""


def busy(status: int, retry_after: float | None = None) -> ProviderBusy:
    """A provider-busy error as the real adapters raise it (429 or 5xx)."""
    return ProviderBusy(f"HTTP {status}", code=str(status), retry_after=retry_after)


def rejected(code: str, *, suppress: bool) -> ProviderRejected:
    """A permanent error as the real adapters raise it."""
    return ProviderRejected(f"rejected ({code})", code=code, suppress=suppress)


class _Capture:
    def __init__(self, documents: DocumentStore) -> None:
        self.container = documents.container(CONTAINER)

    def _keep(self, **fields: object) -> str:
        error = faults.next_error()
        if error is not None:
            raise error
        capture_id = new_id("cap_")
        self.container.create(
            {"id": capture_id, "createdAt": utcnow().isoformat(), **fields},
        )
        if faults.hold_after_send_seconds:
            # Accepted but not yet answered: the moment a crash makes the hard window.
            time.sleep(faults.hold_after_send_seconds)
        return capture_id


class CaptureEmail(_Capture):
    """An `EmailChannel` that keeps each email instead of sending it."""

    def send(self, message: EmailMessage) -> str:
        """Keep `message`; returns its capture id (the provider message id)."""
        return self._keep(
            channel="email",
            to=message.to.lower(),
            notificationId=message.notification_id,
            customerId=message.customer_id,
            subject=message.subject,
            text=message.text,
            html=message.html,
            template=message.template,
        )

    def send_batch(self, messages: Sequence[EmailMessage]) -> list[EmailOutcome]:
        """Keep each message (one capture each, as one recipient would see it)."""
        outcomes: list[EmailOutcome] = []
        for message in messages:
            try:
                outcomes.append(EmailOutcome(message.notification_id, self.send(message)))
            except ProviderError as error:
                outcomes.append(EmailOutcome(message.notification_id, error=error))
        return outcomes


class CaptureText(_Capture):
    """A `TextChannel` that keeps each SMS or WhatsApp message instead of sending it."""

    def send(self, message: TextMessage) -> str:
        """Keep `message`; returns its capture id."""
        return self._keep(
            channel=message.channel,
            to=message.to,
            notificationId=message.notification_id,
            customerId=message.customer_id,
            subject=None,
            text=message.body,
            html=None,
            template=message.template,
            contentSid=message.content_sid,
            variables=dict(message.content_variables),
        )


def sent(
    documents: DocumentStore, to: str, channel: str | None, limit: int = 200
) -> list[Document]:
    """What was captured for `to` (an address or E.164 number), newest first."""
    filters = [Filter("channel", "eq", channel)] if channel else []
    query = Query(filters=tuple(filters), order_by=(Order("createdAt", True),), limit=limit)
    key = to.lower() if "@" in to else to
    page = documents.container(CONTAINER).query(query, partition_key=key)
    return page.items


def recent(documents: DocumentStore, limit: int = 100) -> list[Document]:
    """The latest captures of every address, newest first (the dev mailbox)."""
    query = Query(order_by=(Order("createdAt", True),), limit=limit)
    return documents.container(CONTAINER).query(query).items


def email_from_settings(settings: Settings, documents: DocumentStore) -> CaptureEmail:
    """The capture email channel on the app's documents store."""
    return CaptureEmail(documents)


def text_from_settings(settings: Settings, documents: DocumentStore) -> CaptureText:
    """The capture SMS/WhatsApp channel on the app's documents store."""
    return CaptureText(documents)
