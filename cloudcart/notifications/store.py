"""The `notifications` container: notification records, the in-app feed state and
suppressed destinations (verification codes, in the same container, are
`verification.py`'s).

A record's id is derived from (source id, template, channel, recipient), so the record of a
redelivered event is the one already written: it is created before anything is sent, and
its status says what is left to do.

Every move of a record to `sent`, `delivered`, `bounced` or `failed` (an in-app item is
`delivered` when written) writes `notification.status_changed` through the container's
outbox in the same batch, so analytics counts sends and deliveries per channel without
reading this container. Statuses only move forward, so each is announced once per record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import outbox_ops
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Order,
    Query,
    each,
    every,
    fill_page,
    strip_system,
)
from cloudcart.notifications.events import NotificationStatusChanged

CONTAINER = "notifications"
OPS_PARTITION = "~ops"
"""Partition (customerId) of notifications that go to the shop's operators."""

NotificationStatus = Literal["pending", "sending", "sent", "delivered", "bounced", "failed"]
STATUSES: tuple[NotificationStatus, ...] = (
    "pending",
    "sending",
    "sent",
    "delivered",
    "bounced",
    "failed",
)
RANK: dict[str, int] = {
    "pending": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "bounced": 3,
    "failed": 3,
}
"""Statuses only move to a higher rank; the three final ones share the top rank."""

FEED_ID = "feed"
STATUS_EVENTS_KEPT = 50
"""How many applied provider status events a record remembers for deduplication."""

DUE_AFTER = timedelta(minutes=5)
"""A record not finished this long after its last attempt is resumed by the timer."""


STATUS_CHANGED = "notification.status_changed"
ANNOUNCED_STATUSES = frozenset({"sent", "delivered", "bounced", "failed"})
"""The statuses a record announces when it reaches them."""


def status_event(record: Document, previous: str | None) -> Event:
    """`notification.status_changed` for a record that just reached its status."""
    data: NotificationStatusChanged = {
        "notificationId": record["id"],
        "customerId": record["customerId"],
        "channel": record["channel"],
        "template": record.get("template"),
        "status": record["status"],
        "previousStatus": previous,
        # A record always has `createdAt`, so it has a time.
        "at": cast(str, reached_at(record)),
    }
    return new_event(STATUS_CHANGED, str(record["id"]), data)


def reached_at(record: Mapping[str, Any]) -> str | None:
    """When a record reached its current status (an in-app item: when it was written)."""
    found = record.get("statusAt") or record.get("deliveredAt") or record.get("createdAt")
    return str(found) if found else None


def _announce(record: Document, previous: str | None) -> list[Event]:
    status = record.get("status")
    if status in ANNOUNCED_STATUSES and status != previous:
        return [status_event(record, previous)]
    return []


def notification_id(source_id: str, template: str, channel: str, recipient: str) -> str:
    """The deterministic id of the notification of `template` on `channel` to `recipient`
    caused by `source_id` (an event id, a verification attempt...)."""
    raw = "\x1f".join((source_id, template, channel, recipient.strip().lower()))
    return "ntf_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def destination_key(destination: str) -> str:
    """The partition of a destination's suppression: a hash, so addresses are not keys."""
    normalised = destination.strip().lower().removeprefix("whatsapp:")
    return "~sup:" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:40]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class NotificationStore:
    """Reads and writes of the `notifications` container."""

    def __init__(self, documents: DocumentStore) -> None:
        """Works on `documents`' `notifications` container."""
        self.container: Container = documents.container(CONTAINER)

    # --- records ------------------------------------------------------------------------

    def get(self, notification_id_: str, customer_id: str) -> Document | None:
        """A record, or None."""
        try:
            document = self.container.read(notification_id_, customer_id)
        except NotFound:
            return None
        return document if document.get("kind") == "notification" else None

    def create_or_get(self, record: Document) -> tuple[Document, bool]:
        """Create `record` unless a record with its id exists; returns (stored, created)."""
        try:
            return self.container.create(record), True
        except Conflict:
            existing = self.container.read(record["id"], record["customerId"])
            return existing, False

    def create_in_app(self, record: Document) -> tuple[Document, bool]:
        """Create an in-app feed item and count it unread in the same batch; an item that
        exists already is returned as it is (created False)."""
        customer_id = record["customerId"]
        for _ in range(8):
            feed = self._feed(customer_id)
            new_feed = {
                **strip_system(feed),
                "unread": int(feed.get("unread", 0)) + 1,
                "changedAt": record["createdAt"],
            }
            try:
                results = self.container.batch(
                    customer_id,
                    [
                        BatchOp("create", document=record),
                        _feed_op(feed, new_feed),
                        *self._outbox(customer_id, _announce(record, None)),
                    ],
                )
            except BatchFailed as exc:
                if exc.index == 0 and isinstance(exc.cause, Conflict):
                    return self.container.read(record["id"], customer_id), False
                if exc.index == 1 and isinstance(exc.cause, PreconditionFailed | Conflict):
                    continue
                raise
            return results[0], True
        raise PreconditionFailed("the in-app feed changed concurrently too often")

    def create_together(self, records: Sequence[Document]) -> list[Document] | None:
        """Create the records of one customer in one batch, in-app ones counted unread in
        the same batch. None (and nothing written) when one exists already or the feed
        moved meanwhile: the caller then goes one record at a time."""
        customer_id = records[0]["customerId"]
        ops = [BatchOp("create", document=r) for r in records]
        in_app = [r for r in records if r["channel"] == "inApp"]
        if in_app:
            feed = self._feed(customer_id)
            new_feed = {
                **strip_system(feed),
                "unread": int(feed.get("unread", 0)) + len(in_app),
                "changedAt": in_app[-1]["createdAt"],
            }
            ops.append(_feed_op(feed, new_feed))
        ops.extend(self._outbox(customer_id, [e for r in records for e in _announce(r, None)]))
        try:
            results = self.container.batch(customer_id, ops)
        except BatchFailed as exc:
            if isinstance(exc.cause, Conflict | PreconditionFailed):
                return None
            raise
        return results[: len(records)]

    def replace(self, record: Document, changes: dict[str, Any]) -> Document:
        """Write `changes` onto `record`, If-Match its ETag (PreconditionFailed if it moved),
        announcing a status it reaches (see the module docs) in the same batch."""
        updated = {**strip_system(record), **changes, "updatedAt": _iso(utcnow())}
        events = _announce(updated, record.get("status"))
        if not events:
            return self.container.replace(updated, if_match=record["_etag"])
        try:
            results = self.container.batch(
                str(record["customerId"]),
                [
                    BatchOp("replace", document=updated, if_match=record["_etag"]),
                    *self._outbox(str(record["customerId"]), events),
                ],
            )
        except BatchFailed as exc:
            if exc.index == 0 and isinstance(exc.cause, PreconditionFailed | NotFound):
                raise exc.cause from exc
            raise
        return results[0]

    def _outbox(self, customer_id: str, events: Sequence[Event]) -> list[BatchOp]:
        return outbox_ops(self.container.spec, customer_id, events) if events else []

    def due(self, now: datetime, limit: int = 200) -> list[Document]:
        """Unfinished records whose time has come: held ones whose quiet hours ended, and
        interrupted ones nobody resumed (their event dead-lettered or was lost)."""
        query = Query(
            filters=(
                Filter("kind", "eq", "notification"),
                Filter("status", "in", ["pending", "sending"]),
                Filter("dueAt", "le", _iso(now)),
            ),
            limit=limit,
        )
        return fill_page(self.container, query).items

    def search(
        self,
        *,
        customer_id: str | None,
        status: str | None,
        channel: str | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Document], str | None]:
        """Records for support, newest first, one page."""
        filters = [Filter("kind", "eq", "notification")]
        if status:
            filters.append(Filter("status", "eq", status))
        if channel:
            filters.append(Filter("channel", "eq", channel))
        query = Query(filters=tuple(filters), order_by=(Order("createdAt", True),), limit=limit)
        page = fill_page(self.container, query, partition_key=customer_id, continuation=cursor)
        return page.items, page.continuation

    # --- in-app feed --------------------------------------------------------------------

    def feed_state(self, customer_id: str) -> Document:
        """The feed's counters (`unread`) and ETag; a stored default when none exists yet."""
        return self._feed(customer_id)

    def feed_page(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """In-app items of the customer, newest first."""
        query = Query(
            filters=(Filter("kind", "eq", "notification"), Filter("channel", "eq", "inApp")),
            order_by=(Order("createdAt", True),),
            limit=limit,
        )
        page = fill_page(self.container, query, partition_key=customer_id, continuation=cursor)
        return page.items, page.continuation

    def mark_read(self, customer_id: str, item_ids: Sequence[str], at: str) -> int:
        """Mark in-app items read (unknown or already read ones are skipped) and lower the
        unread count in the same batch. Returns how many changed."""
        changed = 0
        for chunk_start in range(0, len(item_ids), 90):
            chunk = item_ids[chunk_start : chunk_start + 90]
            for _ in range(8):
                items = []
                for item_id in chunk:
                    item = self.get(item_id, customer_id)
                    if item and item.get("channel") == "inApp" and not item.get("readAt"):
                        items.append(item)
                if not items:
                    break
                feed = self._feed(customer_id)
                new_feed = {
                    **strip_system(feed),
                    "unread": max(0, int(feed.get("unread", 0)) - len(items)),
                    "changedAt": at,
                }
                ops = [
                    BatchOp(
                        "replace",
                        document={**strip_system(i), "readAt": at, "updatedAt": at},
                        if_match=i["_etag"],
                    )
                    for i in items
                ]
                try:
                    self.container.batch(customer_id, [*ops, _feed_op(feed, new_feed)])
                except BatchFailed as exc:
                    if isinstance(exc.cause, PreconditionFailed | Conflict):
                        continue
                    raise
                changed += len(items)
                break
            else:
                raise PreconditionFailed("the in-app feed changed concurrently too often")
        return changed

    def unread_ids(self, customer_id: str, limit: int = 1000) -> list[str]:
        """Ids of unread in-app items (at most `limit`)."""
        query = Query(
            filters=(
                Filter("kind", "eq", "notification"),
                Filter("channel", "eq", "inApp"),
                Filter("readAt", "eq", None),
            ),
            limit=limit,
        )
        return [d["id"] for d in fill_page(self.container, query, partition_key=customer_id).items]

    def _feed(self, customer_id: str) -> Document:
        try:
            return self.container.read(FEED_ID, customer_id)
        except NotFound:
            return {
                "id": FEED_ID,
                "kind": "feed",
                "customerId": customer_id,
                "unread": 0,
                "changedAt": None,
            }

    # --- suppressions -------------------------------------------------------------------

    def suppression(self, destination: str) -> Document | None:
        """The suppression of an address or number, or None."""
        try:
            return self.container.read("suppression", destination_key(destination))
        except NotFound:
            return None

    def suppress(self, destination: str, channel: str, reason: str, source: str) -> None:
        """Stop using `destination` (a bounce, a spam report, an invalid number, STOP)."""
        document = {
            "id": "suppression",
            "kind": "suppression",
            "customerId": destination_key(destination),
            "destination": destination,
            "channel": channel,
            "reason": reason,
            "source": source,
            "at": _iso(utcnow()),
        }
        self.container.upsert(document)

    def unsuppress(self, destination: str, *, reasons: Sequence[str]) -> bool:
        """Lift a suppression with one of `reasons` (START lifts STOP, not a bounce)."""
        current = self.suppression(destination)
        if current is None or current.get("reason") not in reasons:
            return False
        try:
            self.container.delete("suppression", current["customerId"], if_match=current["_etag"])
        except (NotFound, PreconditionFailed):
            return False
        return True

    # --- privacy ------------------------------------------------------------------------

    def announced_records(self) -> Iterator[Document]:
        """Every notification record that reached a status it announces, all customers: a
        cross-partition scan, page by page, for analytics' verify and rebuild only."""
        query = Query(
            filters=(
                Filter("kind", "eq", "notification"),
                Filter("status", "in", sorted(ANNOUNCED_STATUSES)),
            ),
            limit=200,
        )
        return each(self.container, query)

    def customer_documents(self, customer_id: str) -> list[Document]:
        """Every document in the customer's partition (export and erasure)."""
        return every(self.container, Query(limit=100), partition_key=customer_id)

    def delete(self, document: Document) -> None:
        """Delete one document (already gone is fine)."""
        with suppress(NotFound):
            self.container.delete(document["id"], document["customerId"])


def _feed_op(feed: Document, new_feed: Document) -> BatchOp:
    if "_etag" in feed:
        return BatchOp("replace", document=new_feed, if_match=feed["_etag"])
    return BatchOp("create", document=new_feed)
