"""Idempotent consumers: a message delivered twice has its effect once.

Messages arrive at least once (redelivery after a crash, a replayed outbox event, a
resubmitted dead letter), so every handler keys its effect on the EVENT id in the body.
Idempotency keys are event ids; message ids are for broker dedupe only (a resubmitted copy
has a new message id, the same event id). Pass the event id as `message_id` below.

Two tools, by the kind of effect:

- The effect is a document write. Put `processed_marker(...)` FIRST in the same
  transactional batch as the effect, in the effect's own container and partition. The
  marker is a conditional create: if the message was processed before, the batch fails on
  the marker with Conflict, `is_duplicate(error)` says so, and the handler completes the
  message without doing anything. Effect and record commit together, so there is no
  window in which one exists without the other.

      try:
          orders.batch(pk, [processed_marker("billing", msg.message_id,
                                             partition_key_field="customerId",
                                             partition_key=pk), *effect_ops])
      except BatchFailed as error:
          if not is_duplicate(error):
              raise

- The effect cannot join a transaction (an e-mail, a partner HTTP call). Use
  `SideEffectGuard` on the `processed` container: mark in-progress before, done after,
  and pass `idempotency_key(message_id)` to the partner so that a retry after a crash
  between the call and `done()` is deduplicated on their side.

      guard = SideEffectGuard(services.documents, "notify-email")
      with guard.once(msg.message_id) as key:
          if key is not None:
              sendgrid.send(..., idempotency_key=key)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cloudcart.core.clock import timestamp, utcnow
from cloudcart.core.errors import (
    BatchFailed,
    CloudcartError,
    Conflict,
    NotFound,
    PreconditionFailed,
)
from cloudcart.core.ports.documents import BatchOp, Container, Document, DocumentStore, set_field

PROCESSED_KIND = "processed"
"""`kind` of a processed-message marker."""

SIDE_EFFECT_KIND = "side-effect"
"""`kind` of a `SideEffectGuard` record in the `processed` container."""

PROCESSED_TTL_SECONDS = 14 * 86_400
"""How long a marker is kept (14 days): far beyond any redelivery (topics keep a message
at most 14 days), short enough not to grow containers forever."""

DEFAULT_LEASE = timedelta(minutes=5)
"""How long an in-progress side effect is trusted before another attempt may retake it:
longer than any single call should take, so a live attempt is not duplicated."""

PROCESSED_CONTAINER = "processed"

_UNSAFE_ID_CHARS = "/\\?#"
_MAX_ID_LENGTH = 255


def _safe_id(raw: str) -> str:
    # Cosmos ids must avoid '/', '\\', '?', '#' and stay within 255 characters. Message ids
    # are usually plain, so keep them readable and hash only the rare unsafe one.
    if len(raw) <= _MAX_ID_LENGTH and not any(c in raw for c in _UNSAFE_ID_CHARS):
        return raw
    return "sha256:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


def processed_marker_id(consumer: str, message_id: str) -> str:
    """The id of the marker `processed_marker` creates."""
    return _safe_id(f"processed:{consumer}:{message_id}")


def processed_marker(
    consumer: str,
    message_id: str,
    *,
    partition_key_field: str,
    partition_key: str,
    ttl_seconds: int | None = PROCESSED_TTL_SECONDS,
) -> BatchOp:
    """A batch `create` recording that `consumer` processed `message_id`.

    Put it first in the batch that applies the effect (see the module docs); a Conflict on
    it means the message was processed before. `partition_key_field` is the container's
    partition key field (`container.spec.partition_key_field`). `ttl_seconds` expires the
    marker (None keeps it for as long as the container keeps documents).
    """
    document: Document = {
        "id": processed_marker_id(consumer, message_id),
        "kind": PROCESSED_KIND,
        "consumer": consumer,
        "messageId": message_id,
        "processedAt": timestamp(utcnow()),
    }
    if ttl_seconds is not None:
        document["ttl"] = ttl_seconds
    set_field(document, partition_key_field, partition_key)
    return BatchOp("create", document=document)


def is_duplicate(error: BatchFailed, marker_index: int = 0) -> bool:
    """Whether a failed batch failed because its processed marker already existed.

    True means the message was processed before: complete it and do nothing. False means
    the effect itself failed: let the error propagate so the message is retried.
    """
    return error.index == marker_index and isinstance(error.cause, Conflict)


SideEffectState = Literal["new", "in_progress", "done"]


@dataclass(frozen=True)
class SideEffect:
    """What `SideEffectGuard.begin` found.

    `new`: this attempt owns the side effect (fresh, or retaken after the lease expired):
    perform it with `key`, then call `done` (or `failed`). `in_progress`: another attempt
    holds a live lease: do not perform it; let the message be retried later. `done`: it
    was performed; `result` is what `done` recorded.
    """

    state: SideEffectState
    key: str
    result: dict[str, Any] | None = None
    attempt: int = 1


class SideEffectInProgress(CloudcartError):
    """Another attempt is performing this side effect; retry the message later."""


class SideEffectGuard:
    """In-progress/done marks for side effects that cannot join a transaction.

    Records live in the `processed` container, partition = `consumer`. `clock` and
    `lease` are injectable so tests can expire a lease without waiting.
    """

    def __init__(
        self,
        documents_store: DocumentStore,
        consumer: str,
        *,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = utcnow,
        ttl_seconds: int = PROCESSED_TTL_SECONDS,
    ) -> None:
        if not consumer:
            raise ValueError("consumer must be a non-empty name")
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        self.consumer = consumer
        self.lease = lease
        self._clock = clock
        self._ttl_seconds = ttl_seconds
        self._container: Container = documents_store.container(PROCESSED_CONTAINER)

    def idempotency_key(self, message_id: str) -> str:
        """A stable key for this consumer and message, to pass to a partner API."""
        return f"{self.consumer}:{message_id}"

    def _record_id(self, message_id: str) -> str:
        return _safe_id(f"{SIDE_EFFECT_KIND}:{message_id}")

    def _in_progress_record(self, message_id: str, attempt: int) -> Document:
        now = self._clock()
        return {
            "id": self._record_id(message_id),
            "kind": SIDE_EFFECT_KIND,
            "consumer": self.consumer,
            "messageId": message_id,
            "state": "in_progress",
            "attempt": attempt,
            "startedAt": timestamp(now),
            "leaseUntil": timestamp(now + self.lease),
            "ttl": self._ttl_seconds,
        }

    def begin(self, message_id: str) -> SideEffect:
        """Claim the side effect for `message_id`, or report that it is taken or done."""
        key = self.idempotency_key(message_id)
        # Two rounds at most: a record can vanish (released by `failed`, or expired)
        # between our failed create and our read.
        for _ in range(3):
            try:
                self._container.create(self._in_progress_record(message_id, 1))
                return SideEffect("new", key)
            except Conflict:
                pass
            try:
                current = self._container.read(self._record_id(message_id), self.consumer)
            except NotFound:
                continue
            if current.get("state") == "done":
                return SideEffect("done", key, current.get("result"), int(current["attempt"]))
            attempt = int(current.get("attempt", 1))
            if str(current.get("leaseUntil", "")) > timestamp(self._clock()):
                return SideEffect("in_progress", key, attempt=attempt)
            # The holder's lease ran out (it crashed or hung): take over, but only if the
            # record is still the one we read, so two retakers cannot both win.
            try:
                self._container.replace(
                    self._in_progress_record(message_id, attempt + 1),
                    if_match=str(current["_etag"]),
                )
                return SideEffect("new", key, attempt=attempt + 1)
            except PreconditionFailed:
                return SideEffect("in_progress", key, attempt=attempt + 1)
            except NotFound:
                continue
        return SideEffect("in_progress", key)

    def done(self, message_id: str, result: dict[str, Any] | None = None) -> None:
        """Record that the side effect was performed (with an optional `result`)."""
        now = self._clock()
        try:
            current = self._container.read(self._record_id(message_id), self.consumer)
            attempt = int(current.get("attempt", 1))
        except NotFound:
            attempt = 1
        self._container.upsert(
            {
                "id": self._record_id(message_id),
                "kind": SIDE_EFFECT_KIND,
                "consumer": self.consumer,
                "messageId": message_id,
                "state": "done",
                "attempt": attempt,
                "doneAt": timestamp(now),
                "result": result,
                "ttl": self._ttl_seconds,
            }
        )

    def failed(self, message_id: str) -> None:
        """Release the in-progress mark so the next delivery can try again at once.

        A `done` record is never released.
        """
        try:
            current = self._container.read(self._record_id(message_id), self.consumer)
        except NotFound:
            return
        if current.get("state") != "in_progress":
            return
        # NotFound/PreconditionFailed: someone else changed it meanwhile (retook or
        # finished it), so it is theirs to settle.
        with suppress(NotFound, PreconditionFailed):
            self._container.delete(
                self._record_id(message_id), self.consumer, if_match=str(current["_etag"])
            )

    @contextmanager
    def once(self, message_id: str) -> Iterator[str | None]:
        """Run a block at most once per message.

        Yields the idempotency key when the block must perform the side effect, or None
        when it was already done (skip it). Marks done when the block exits normally and
        releases the mark (then re-raises) when it raises. Raises SideEffectInProgress if
        another attempt holds a live lease, so the message is retried later.
        """
        claim = self.begin(message_id)
        if claim.state == "done":
            yield None
            return
        if claim.state == "in_progress":
            raise SideEffectInProgress(
                f"{self.consumer}: side effect for message {message_id} is in progress"
            )
        try:
            yield claim.key
        except BaseException:
            self.failed(message_id)
            raise
        self.done(message_id)
