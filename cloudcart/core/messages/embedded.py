"""The embedded broker: Service Bus semantics in one SQLite file.

Topics fan out to their matching subscriptions, queues keep one copy; receivers take
messages under a peek-lock and complete, abandon, dead-letter or renew them; a message
delivered `max_delivery_count` times goes to the dead-letter table; duplicate detection drops
a repeated `message_id` within the entity's window; scheduled messages stay invisible until
due. The local trigger host drives Azure Functions Service Bus triggers from this broker.

Every state change is one `BEGIN IMMEDIATE` transaction on a WAL database, so several
threads and processes (the app, the trigger host, a CLI) can share the file safely, and
everything survives a restart.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Unavailable
from cloudcart.core.ids import new_id
from cloudcart.core.messages.topology import TOPOLOGY, Queue, Topic, Topology
from cloudcart.core.ports.messages import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    RESUBMITTED_FROM_PROPERTY,
    DeadLetter,
    DeadLetterNotFound,
    EntityCounts,
    LockLost,
    OutboundMessage,
    PropertyValue,
    ReceivedMessage,
    UnknownEntity,
    resubmitted_message_id,
)

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

logger = logging.getLogger(__name__)

# A queue's messages are stored with this subscription value, so one table and one index
# serve queues and subscriptions alike.
_QUEUE = ""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    entity         TEXT NOT NULL,
    subscription   TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    subject        TEXT,
    correlation_id TEXT,
    session_id     TEXT,
    content_type   TEXT,
    properties     TEXT NOT NULL,
    body           BLOB NOT NULL,
    enqueued_at    REAL NOT NULL,
    visible_at     REAL NOT NULL,   -- scheduled time, or when the current lock expires
    expires_at     REAL NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token     TEXT UNIQUE,
    locked_until   REAL,
    lock_seconds   REAL
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (entity, subscription, visible_at, seq);
CREATE TABLE IF NOT EXISTS seen_ids (
    entity     TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (entity, message_id)
);
CREATE INDEX IF NOT EXISTS seen_ids_expiry ON seen_ids (entity, expires_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    pos              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    entity           TEXT NOT NULL,
    subscription     TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    subject          TEXT,
    correlation_id   TEXT,
    session_id       TEXT,
    content_type     TEXT,
    properties       TEXT NOT NULL,
    body             BLOB NOT NULL,
    reason           TEXT,
    description      TEXT,
    delivery_count   INTEGER NOT NULL,
    enqueued_at      REAL NOT NULL,
    dead_lettered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_entity ON dead_letters (entity, subscription, pos);
"""

_MESSAGE_COLUMNS = (
    "entity, subscription, message_id, subject, correlation_id, session_id, content_type, "
    "properties, body, enqueued_at, visible_at, expires_at, delivery_count"
)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqliteBroker:
    """A durable local message broker with Service Bus semantics.

    Implements `MessagePublisher` and `DeadLetterAdmin`, plus the consumer API
    (`receive`, `complete`, `abandon`, `dead_letter`, `renew_lock`) the trigger host uses.
    `clock` is injectable so tests can move time (locks, schedules, windows) instantly.
    """

    def __init__(
        self, path: Path, topology: Topology, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.path = Path(path)
        self.topology = topology
        self._clock = clock
        self._lock = threading.Lock()
        self.on_dead_letter: Callable[[DeadLetter], None] | None = None
        """Called (outside the broker's lock, after the commit) with every message this
        broker object dead-letters, whatever the path: abandon on the last delivery, a lock
        that expired on it, or an explicit `dead_letter`. The trigger host raises its alert
        here. Exceptions it raises are logged, never passed to the settling caller."""
        self._fresh_dead_letters: list[DeadLetter] = []
        # Receivers in this process sleep on this between polls instead of asking SQLite
        # many times a second; what another process publishes is seen at the next poll.
        self._arrival = threading.Condition()
        self._arrivals = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the threads of this process (guarded by _lock);
        # transactions are explicit, hence isolation_level=None.
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a publish that returned must survive a power cut, not just a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        with self._write() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    # --- waiting for messages ----------------------------------------------------------

    @property
    def arrivals(self) -> int:
        """How many times this broker object has made messages available (publish, abandon,
        resubmit); pass it to `wait_for_arrival` before receiving."""
        return self._arrivals

    def wait_for_arrival(self, seen: int, timeout: float) -> int:
        """Block until messages arrive through this broker object after `arrivals` was
        `seen`, `wake` is called, or `timeout` seconds pass; returns `arrivals`."""
        with self._arrival:
            self._arrival.wait_for(lambda: self._arrivals != seen, timeout)
            return self._arrivals

    def wake(self) -> None:
        """Wake every `wait_for_arrival` (messages arrived, or the receivers should stop)."""
        with self._arrival:
            self._arrivals += 1
            self._arrival.notify_all()

    # --- plumbing ----------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock().timestamp()

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two receivers (threads or
        # processes) can never both select the same available message.
        with self._lock:
            if self._db is None:
                raise Unavailable("the message broker is closed")
            db = self._db
            # A publish (and every change to what exists) is fsynced before it returns. Lock
            # bookkeeping (receive, complete, abandon, renew) need not be: a power cut that
            # loses one only delivers a message again, which every consumer tolerates, and
            # skipping its fsync is what lets the broker settle hundreds of messages a
            # second on one disk.
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                self._fresh_dead_letters.clear()
                raise
            db.execute("COMMIT")
            fresh, self._fresh_dead_letters = self._fresh_dead_letters, []
        # Outside the lock: the callback may publish (an alert) through this broker.
        callback = self.on_dead_letter
        if callback is not None:
            for letter in fresh:
                try:
                    callback(letter)
                except Exception:
                    logger.exception("on_dead_letter callback failed for %s", letter.id)

    def _queue_or_subscription(
        self, entity: str, subscription: str | None
    ) -> tuple[int, timedelta, str]:
        """(max delivery count, lock duration, stored subscription value) of a source."""
        declared = self.topology.entity(entity)
        if isinstance(declared, Topic):
            if subscription is None:
                raise UnknownEntity(f"{entity!r} is a topic: receive from one of its subscriptions")
            sub = declared.subscription(subscription)
            return sub.max_delivery_count, sub.lock_duration, sub.name
        if subscription is not None:
            raise UnknownEntity(f"{entity!r} is a queue; it has no subscriptions")
        return declared.max_delivery_count, declared.lock_duration, _QUEUE

    @staticmethod
    def _window(declared: Topic | Queue) -> float | None:
        window = declared.duplicate_detection_window
        return None if window is None else window.total_seconds()

    # --- MessagePublisher --------------------------------------------------------------

    def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
        """Store messages on a queue, or a copy per matching subscription of a topic.

        All messages of one call are committed together. Repeated message ids within the
        duplicate-detection window (also within the call) are dropped silently.
        """
        declared = self.topology.entity(entity)
        window = self._window(declared)
        ttl = declared.default_message_ttl.total_seconds()
        with self._write() as db:
            now = self._now()
            if window is not None:
                db.execute(
                    "DELETE FROM seen_ids WHERE entity = ? AND expires_at <= ?", (entity, now)
                )
            for message in messages:
                if window is not None:
                    seen = db.execute(
                        "SELECT 1 FROM seen_ids WHERE entity = ? AND message_id = ?",
                        (entity, message.message_id),
                    ).fetchone()
                    if seen:
                        continue
                    db.execute(
                        "INSERT INTO seen_ids (entity, message_id, expires_at) VALUES (?, ?, ?)",
                        (entity, message.message_id, now + window),
                    )
                properties = dict(message.application_properties)
                if isinstance(declared, Topic):
                    targets = [
                        s.name
                        for s in declared.subscriptions
                        if s.accepts(message.subject, properties)
                    ]
                else:
                    targets = [_QUEUE]
                when = message.scheduled_enqueue_time
                visible_at = max(now, when.timestamp()) if when is not None else now
                row = (
                    message.message_id,
                    message.subject,
                    message.correlation_id,
                    message.session_id,
                    message.content_type,
                    json.dumps(properties),
                    message.body_bytes(),
                    visible_at,
                    visible_at,
                    visible_at + ttl,
                    0,
                )
                db.executemany(
                    f"INSERT INTO messages ({_MESSAGE_COLUMNS}) "  # noqa: S608 (constant)
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(entity, target, *row) for target in targets],
                )
        self.wake()

    def check(self) -> None:
        """Raise Unavailable if the database cannot be used."""
        with self._lock:
            if self._db is None:
                raise Unavailable("the message broker is closed")
            try:
                self._db.execute("SELECT 1 FROM messages LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise Unavailable(f"message broker database: {exc}") from exc

    def close(self) -> None:
        """Close the database connection; the broker cannot be used afterwards."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- consumer API ------------------------------------------------------------------

    def receive(
        self,
        entity: str,
        subscription: str | None = None,
        *,
        max_messages: int = 1,
        lock_duration: timedelta | None = None,
    ) -> list[ReceivedMessage]:
        """Lock and return up to `max_messages` available messages, in the order they
        became available (publish order; an abandoned or expired-lock message goes behind
        those already waiting, so one poison message cannot block the rest).

        Returns [] at once when nothing is available; consumers poll. Each receive counts
        as a delivery. A message whose lock expired after its last allowed delivery is
        dead-lettered (`MaxDeliveryCountExceeded`) instead of being returned.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        max_deliveries, default_lock, stored_sub = self._queue_or_subscription(entity, subscription)
        lock = default_lock if lock_duration is None else lock_duration
        if lock <= timedelta(0):
            raise ValueError("lock_duration must be positive")
        received: list[ReceivedMessage] = []
        with self._write(durable=False) as db:
            now = self._now()
            while len(received) < max_messages:
                rows = db.execute(
                    "SELECT * FROM messages WHERE entity = ? AND subscription = ? "
                    "AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?",
                    (entity, stored_sub, now, max_messages - len(received)),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    columns = dict(row)
                    # Past its time to live: dropped (Service Bus default) when it comes up,
                    # which keeps a receive cheap however long the backlog is.
                    if columns["expires_at"] <= now:
                        db.execute("DELETE FROM messages WHERE seq = ?", (columns["seq"],))
                        continue
                    if columns["delivery_count"] >= max_deliveries:
                        self._move_to_dead_letters(
                            db,
                            columns,
                            MAX_DELIVERY_COUNT_EXCEEDED,
                            f"lock expired on delivery {columns['delivery_count']} of "
                            f"{max_deliveries}",
                            now,
                        )
                        continue
                    token = str(uuid.uuid4())
                    locked_until = now + lock.total_seconds()
                    db.execute(
                        "UPDATE messages SET delivery_count = delivery_count + 1, "
                        "lock_token = ?, locked_until = ?, visible_at = ?, lock_seconds = ? "
                        "WHERE seq = ?",
                        (token, locked_until, locked_until, lock.total_seconds(), columns["seq"]),
                    )
                    received.append(
                        ReceivedMessage(
                            entity=entity,
                            subscription=subscription,
                            message_id=columns["message_id"],
                            body=bytes(columns["body"]),
                            subject=columns["subject"],
                            correlation_id=columns["correlation_id"],
                            application_properties=json.loads(columns["properties"]),
                            session_id=columns["session_id"],
                            content_type=columns["content_type"],
                            sequence_number=columns["seq"],
                            enqueued_time=_ts(columns["enqueued_at"]),
                            expires_at=_ts(columns["expires_at"]),
                            delivery_count=columns["delivery_count"] + 1,
                            lock_token=token,
                            locked_until=_ts(locked_until),
                        )
                    )
        return received

    def _locked(self, db: sqlite3.Connection, lock_token: str, now: float) -> dict[str, Any]:
        row = db.execute("SELECT * FROM messages WHERE lock_token = ?", (lock_token,)).fetchone()
        if row is None:
            raise LockLost("unknown lock token, or the message was already settled")
        columns = dict(row)
        if columns["locked_until"] <= now:
            raise LockLost("the lock expired; the message may be with another receiver")
        return columns

    def complete(self, lock_token: str) -> None:
        """Remove a locked message for good (processing succeeded). Raises LockLost."""
        with self._write(durable=False) as db:
            columns = self._locked(db, lock_token, self._now())
            db.execute("DELETE FROM messages WHERE seq = ?", (columns["seq"],))

    def abandon(self, lock_token: str) -> None:
        """Release the lock so the message is delivered again, or dead-letter it
        (`MaxDeliveryCountExceeded`) when it has had its last delivery. Raises LockLost."""
        with self._write(durable=False) as db:
            now = self._now()
            columns = self._locked(db, lock_token, now)
            max_deliveries, _, _ = self._queue_or_subscription(
                columns["entity"], columns["subscription"] or None
            )
            if columns["delivery_count"] >= max_deliveries:
                self._move_to_dead_letters(
                    db,
                    columns,
                    MAX_DELIVERY_COUNT_EXCEEDED,
                    f"abandoned on delivery {columns['delivery_count']} of {max_deliveries}",
                    now,
                )
                return
            db.execute(
                "UPDATE messages SET lock_token = NULL, locked_until = NULL, visible_at = ? "
                "WHERE seq = ?",
                (now, columns["seq"]),
            )
        self.wake()

    def dead_letter(self, lock_token: str, reason: str, description: str = "") -> None:
        """Move a locked message to the dead letters now, without retries. Raises LockLost."""
        with self._write() as db:
            now = self._now()
            columns = self._locked(db, lock_token, now)
            self._move_to_dead_letters(db, columns, reason, description, now)

    def renew_lock(self, lock_token: str) -> datetime:
        """Extend a lock by its duration from now; returns the new `locked_until`.
        Raises LockLost."""
        with self._write(durable=False) as db:
            now = self._now()
            columns = self._locked(db, lock_token, now)
            locked_until = now + columns["lock_seconds"]
            db.execute(
                "UPDATE messages SET locked_until = ?, visible_at = ? WHERE seq = ?",
                (locked_until, locked_until, columns["seq"]),
            )
        return _ts(locked_until)

    def _move_to_dead_letters(
        self,
        db: sqlite3.Connection,
        columns: dict[str, Any],
        reason: str,
        description: str,
        now: float,
    ) -> None:
        dead_letter_id = new_id("dl")
        db.execute(
            "INSERT INTO dead_letters (id, entity, subscription, message_id, subject, "
            "correlation_id, session_id, content_type, properties, body, reason, description, "
            "delivery_count, enqueued_at, dead_lettered_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                dead_letter_id,
                columns["entity"],
                columns["subscription"],
                columns["message_id"],
                columns["subject"],
                columns["correlation_id"],
                columns["session_id"],
                columns["content_type"],
                columns["properties"],
                columns["body"],
                reason,
                description,
                columns["delivery_count"],
                columns["enqueued_at"],
                now,
            ),
        )
        db.execute("DELETE FROM messages WHERE seq = ?", (columns["seq"],))
        if self.on_dead_letter is not None:
            self._fresh_dead_letters.append(
                self._dead_letter(
                    {
                        **columns,
                        "id": dead_letter_id,
                        "reason": reason,
                        "description": description,
                        "dead_lettered_at": now,
                    }
                )
            )

    # --- DeadLetterAdmin ---------------------------------------------------------------

    @staticmethod
    def _dead_letter(c: sqlite3.Row | Mapping[str, Any]) -> DeadLetter:
        properties: dict[str, PropertyValue] = json.loads(c["properties"])
        return DeadLetter(
            id=c["id"],
            entity=c["entity"],
            subscription=c["subscription"] or None,
            message_id=c["message_id"],
            subject=c["subject"],
            body=bytes(c["body"]),
            reason=c["reason"],
            description=c["description"],
            delivery_count=c["delivery_count"],
            enqueued_at=_ts(c["enqueued_at"]),
            dead_lettered_at=_ts(c["dead_lettered_at"]),
            properties=properties,
            correlation_id=c["correlation_id"],
            content_type=c["content_type"],
            session_id=c["session_id"],
        )

    # --- MessageCounts -----------------------------------------------------------------

    def counts(self, entity: str, subscription: str | None = None) -> EntityCounts:
        """Messages waiting or locked, and dead letters, of a queue or subscription."""
        _, _, stored = self._queue_or_subscription(entity, subscription)
        with self._lock:
            if self._db is None:
                raise Unavailable("the message broker is closed")
            now = self._now()
            active = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE entity = ? AND subscription = ? "
                "AND (lock_token IS NOT NULL OR visible_at <= ?) AND expires_at > ?",
                (entity, stored, now, now),
            ).fetchone()[0]
            dead = self._db.execute(
                "SELECT COUNT(*) FROM dead_letters WHERE entity = ? AND subscription = ?",
                (entity, stored),
            ).fetchone()[0]
        return EntityCounts(active=int(active), dead_lettered=int(dead))

    def list_dead_letters(
        self, entity: str, subscription: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """The oldest `limit` dead letters of a queue or a topic's subscription."""
        _, _, stored_sub = self._queue_or_subscription(entity, subscription)
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM dead_letters WHERE entity = ? AND subscription = ? "
                "ORDER BY pos LIMIT ?",
                (entity, stored_sub, limit),
            ).fetchall()
            return [self._dead_letter(row) for row in rows]

    def peek(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter. Raises DeadLetterNotFound."""
        with self._write() as db:
            row = db.execute(
                "SELECT * FROM dead_letters WHERE id = ?", (dead_letter_id,)
            ).fetchone()
            if row is None:
                raise DeadLetterNotFound(dead_letter_id)
            return self._dead_letter(row)

    def resubmit(self, dead_letter_id: str) -> None:
        """Put a fresh copy back on its queue or subscription and drop the dead letter.

        The copy gets a new message id (`resubmitted_message_id`: `<original>~r<n>`) and
        the `cloudcart_original_message_id` property, as on Service Bus, where a copy with
        the old id would be dropped by duplicate detection. The new id is recorded in the
        entity's window like any publish.
        """
        with self._write() as db:
            now = self._now()
            row = db.execute(
                "SELECT * FROM dead_letters WHERE id = ?", (dead_letter_id,)
            ).fetchone()
            if row is None:
                raise DeadLetterNotFound(dead_letter_id)
            letter = self._dead_letter(row)
            declared = self.topology.entity(letter.entity)
            self._queue_or_subscription(letter.entity, letter.subscription)
            original = letter.properties.get(RESUBMITTED_FROM_PROPERTY)
            message_id = resubmitted_message_id(
                letter.message_id, None if original is None else str(original)
            )
            properties = {
                **letter.properties,
                RESUBMITTED_FROM_PROPERTY: str(original or letter.message_id),
            }
            window = self._window(declared)
            if window is not None:
                db.execute(
                    "INSERT OR REPLACE INTO seen_ids (entity, message_id, expires_at) "
                    "VALUES (?, ?, ?)",
                    (letter.entity, message_id, now + window),
                )
            db.execute(
                f"INSERT INTO messages ({_MESSAGE_COLUMNS}) "  # noqa: S608 (constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    letter.entity,
                    letter.subscription or _QUEUE,
                    message_id,
                    letter.subject,
                    letter.correlation_id,
                    letter.session_id,
                    letter.content_type,
                    json.dumps(properties),
                    letter.body,
                    now,
                    now,
                    now + declared.default_message_ttl.total_seconds(),
                    0,
                ),
            )
            db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
        self.wake()

    def purge(self, dead_letter_id: str) -> None:
        """Delete a dead letter. Raises DeadLetterNotFound."""
        with self._write() as db:
            deleted = db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
            if deleted.rowcount == 0:
                raise DeadLetterNotFound(dead_letter_id)


def from_settings(settings: Settings) -> SqliteBroker:
    """The broker in the data folder (`messages.sqlite3`) with the app's topology."""
    return SqliteBroker(settings.data_dir / "messages.sqlite3", TOPOLOGY)
