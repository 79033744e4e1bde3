"""Notifications sent, delivered, bounced and failed per channel: every status a record
reaches is announced through the notifications outbox and counted once, in the hour it
was reached; verify recounts the same figures from the records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudcart.analytics import reports
from cloudcart.analytics.consumer import handle_events
from cloudcart.analytics.rebuild import verify
from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import Document
from cloudcart.core.settings import Settings
from cloudcart.notifications.store import NotificationStore

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    found = Services(Settings(data_dir=tmp_path / "data"))
    found.documents.ensure_containers()
    yield found
    found.close()


def record(notification_id: str, channel: str, at: datetime) -> Document:
    stamp = at.isoformat()
    document: Document = {
        "id": notification_id,
        "kind": "notification",
        "customerId": "c1",
        "channel": channel,
        "template": "order-paid",
        "status": "pending",
        "createdAt": stamp,
        "updatedAt": stamp,
        "statusAt": stamp,
    }
    if channel == "inApp":
        document.update(status="delivered", deliveredAt=stamp)
    return document


def move(store: NotificationStore, notification_id: str, status: str, at: datetime) -> None:
    current = store.get(notification_id, "c1")
    assert current is not None
    changes: dict[str, Any] = {"status": status, "statusAt": at.isoformat()}
    if status == "sent":
        changes["sentAt"] = at.isoformat()
    if status == "delivered":
        changes["deliveredAt"] = at.isoformat()
    store.replace(current, changes)


def announced(services: Services) -> list[Event]:
    container = services.documents.container("notifications")
    events: list[Event] = []
    checkpoint: str | None = None
    while True:
        page = container.change_feed(checkpoint, max_items=100)
        checkpoint = page.checkpoint
        if not page.items:
            return events
        events.extend(
            Event.model_validate(d["event"]) for d in page.items if d.get("kind") == "outbox"
        )


def counted(services: Services) -> dict[str, Any]:
    window = reports.make_range(NOW - timedelta(days=1), NOW + timedelta(hours=3), "day", now=NOW)
    figures: dict[str, Any] = reports.summary(services.documents, window, now=NOW, time_zone="UTC")[
        "notifications"
    ]
    return figures


def test_each_status_a_record_reaches_counts_once_per_channel(services: Services) -> None:
    store = NotificationStore(services.documents)
    created = store.create_together(
        [
            record("n-email", "email", NOW),
            record("n-inapp", "inApp", NOW),
            record("n-sms", "sms", NOW),
            record("n-wa", "whatsapp", NOW),
            record("n-email-2", "email", NOW),
        ]
    )
    assert created is not None
    for notification_id in ("n-email", "n-sms", "n-wa", "n-email-2"):
        move(store, notification_id, "sending", NOW)
    move(store, "n-email", "sent", NOW + timedelta(minutes=1))
    move(store, "n-email", "delivered", NOW + timedelta(minutes=3))
    # A delivery report that arrived before the send was recorded: counted sent too.
    move(store, "n-sms", "delivered", NOW + timedelta(minutes=2))
    move(store, "n-wa", "failed", NOW + timedelta(minutes=1))
    move(store, "n-email-2", "sent", NOW + timedelta(minutes=1))
    move(store, "n-email-2", "bounced", NOW + timedelta(minutes=5))

    events = announced(services)
    assert sorted(e.data["status"] for e in events) == [
        "bounced",
        "delivered",
        "delivered",
        "delivered",
        "failed",
        "sent",
        "sent",
    ]
    handle_events(services.documents, events)
    expected = {
        "email": {"sent": 2, "delivered": 1, "bounced": 1, "failed": 0},
        "inApp": {"sent": 1, "delivered": 1, "bounced": 0, "failed": 0},
        "sms": {"sent": 1, "delivered": 1, "bounced": 0, "failed": 0},
        "whatsapp": {"sent": 0, "delivered": 0, "bounced": 0, "failed": 1},
    }
    assert counted(services) == expected
    # Redelivered and replayed: nothing more.
    handle_events(services.documents, events)
    for event in events:
        handle_events(services.documents, [event])
    assert counted(services) == expected
    # The records tell the same story.
    report = verify(services.documents, low_stock=5)
    assert report.ok, report.to_dict()
