"""Storefront events: checking a batch, the per-owner rate limit, and the one publish.

`POST /api/events` hands its raw body here. `accept_batch` validates every event (nothing
is recorded unless all of them are valid), counts them against the owner's rate limit and
publishes ONE `storefront.events_recorded` event for the batch to the events topic, where
the `insights-history` subscription turns the views into browsing history
(`cloudcart.insights.history`). The route answers 202 only once the publish returned.

The owner is the signed-in customer (partition key = customer id) or an anonymous visitor
(`v:<visitor id>`, the random id the client keeps and sends in `X-Visitor-Id`).

Round trips of an accepted batch: one conditional patch of the rate counter (plus a create
for the first batch of an owner's window) and one publish.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast, get_args

from cloudcart.catalog.models import SKU_PATTERN
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Conflict, DomainError, NotFound, PreconditionFailed, Unavailable
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import DocumentStore, Filter, PatchOp
from cloudcart.core.ports.messages import MessagePublisher
from cloudcart.insights.events import EventsRecorded, StorefrontEvent, StorefrontEventType

EVENT_TYPE = "storefront.events_recorded"
"""Type (and message subject) of the event that carries one accepted batch."""
EVENT_VERSION = 1

EVENTS_CONTAINER = "events"
"""The insights area's container of storefront events and history (pk `/customerId`)."""

VISITOR_PREFIX = "v:"
"""Partition keys of anonymous visitors: `v:<visitor id>`."""

MAX_EVENTS = 100
"""Events in one batch."""

MAX_BODY_BYTES = 256 * 1024
"""A batch body larger than this is refused before it is parsed (a full batch of 100
events with the longest fields is well under 100 KB)."""

FUTURE_SKEW = timedelta(minutes=5)
"""How far in the future a client's `at` may be: its clock may run a little fast."""

MAX_QUERY_LENGTH = 200
MAX_AT_LENGTH = 64
MAX_RESULTS_COUNT = 1_000_000

VIEW_TYPES: frozenset[str] = frozenset({"product_viewed", "recommendation_clicked"})
"""Event types that count as a view of their product (history entries)."""

EVENT_TYPES: tuple[str, ...] = get_args(StorefrontEventType)

FIELDS: tuple[str, ...] = ("type", "productId", "sku", "query", "resultsCount", "at")
"""Every field an event may have, in the order normalised events carry them."""

APPLICABLE: Mapping[str, frozenset[str]] = {
    "product_viewed": frozenset({"productId", "sku"}),
    "recommendation_clicked": frozenset({"productId", "sku"}),
    "search": frozenset({"query", "resultsCount"}),
    "add_to_cart": frozenset({"productId", "sku"}),
    "remove_from_cart": frozenset({"productId", "sku"}),
    "checkout_started": frozenset(),
}
"""Optional fields per type besides `type` and `at`; any other field is refused, so a
misplaced field is a clear error rather than data silently dropped."""

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
"""Product ids as the catalog routes accept them (also safe in a document id)."""
VISITOR_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
"""Visitor ids have the shape of anonymous cart ids: 16..64 URL-safe characters."""

_PRODUCT_ID = re.compile(PRODUCT_ID_PATTERN)
_SKU = re.compile(SKU_PATTERN)
_VISITOR_ID = re.compile(VISITOR_ID_PATTERN)

MAX_REPORTED_ERRORS = 50


# --- errors -------------------------------------------------------------------------------


class StorefrontEventsError(DomainError):
    """A batch of storefront events refused; nothing of it was recorded (`retry_after`,
    when set, goes out as Retry-After)."""


class MalformedEventBatch(StorefrontEventsError):
    """The body is not `{"events": [...]}` JSON."""

    problem_type = "malformed-event-batch"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field

    def problem_extra(self) -> dict[str, Any]:
        """Which top-level field is wrong, when one is."""
        return {"field": self.field} if self.field else {}


class EventBatchTooLarge(StorefrontEventsError):
    """The body is larger than any valid batch."""

    problem_type = "event-batch-too-large"

    def __init__(self) -> None:
        super().__init__(f"a batch body is at most {MAX_BODY_BYTES} bytes")

    def problem_extra(self) -> dict[str, Any]:
        """The limit."""
        return {"maxBytes": MAX_BODY_BYTES}


class TooManyEvents(StorefrontEventsError):
    """More than MAX_EVENTS events in one batch."""

    problem_type = "too-many-events"

    def __init__(self, count: int) -> None:
        super().__init__(f"a batch holds at most {MAX_EVENTS} events, this one has {count}")
        self.count = count

    def problem_extra(self) -> dict[str, Any]:
        """The limit and the count sent."""
        return {"maxEvents": MAX_EVENTS, "count": self.count}


@dataclass(frozen=True)
class EventFieldError:
    """One reason an event of the batch is refused."""

    index: int
    field: str | None
    message: str
    type: str

    def location(self) -> str:
        """Where the bad value is, as validation problems name it (`body.events.3.sku`)."""
        base = f"body.events.{self.index}"
        return f"{base}.{self.field}" if self.field else base


class InvalidEvents(StorefrontEventsError):
    """One or more events of the batch are invalid; the first is named in the detail."""

    problem_type = "invalid-events"

    def __init__(self, errors: list[EventFieldError]) -> None:
        first = errors[0]
        where = f"event {first.index}" + (f", field {first.field}" if first.field else "")
        more = f" ({len(errors) - 1} more problem(s) in `errors`)" if len(errors) > 1 else ""
        super().__init__(f"{where}: {first.message}{more}; nothing was recorded")
        self.errors = errors

    def problem_extra(self) -> dict[str, Any]:
        """The first event's index and field, and every problem (capped)."""
        first = self.errors[0]
        return {
            "eventIndex": first.index,
            "field": first.field,
            "errors": [
                {"location": e.location(), "message": e.message, "type": e.type}
                for e in self.errors[:MAX_REPORTED_ERRORS]
            ],
        }


class VisitorIdRequired(StorefrontEventsError):
    """An anonymous request without `X-Visitor-Id`."""

    problem_type = "visitor-id-required"

    def __init__(self) -> None:
        super().__init__("send a bearer token, or the visitor's id in X-Visitor-Id")


class BadVisitorId(StorefrontEventsError):
    """`X-Visitor-Id` is not a visitor id."""

    problem_type = "bad-visitor-id"

    def __init__(self) -> None:
        super().__init__("X-Visitor-Id must be 16..64 characters of A-Z, a-z, 0-9, '-' and '_'")


class EventsRateLimited(StorefrontEventsError):
    """The owner sent more events than the limit allows in the current window."""

    problem_type = "events-rate-limited"

    def __init__(self, retry_after: int, limit: RateLimit) -> None:
        super().__init__(
            f"at most {limit.events} events per {limit.window_seconds} s; "
            f"retry in {retry_after} s (nothing of this batch was recorded)"
        )
        self.retry_after = retry_after
        self.limit = limit

    def problem_extra(self) -> dict[str, Any]:
        """The wait and the limit."""
        return {
            "retryAfter": self.retry_after,
            "limit": self.limit.events,
            "windowSeconds": self.limit.window_seconds,
        }


class EventsUnavailable(StorefrontEventsError):
    """The batch could not be handed to the messaging service."""

    problem_type = "events-unavailable"

    def __init__(self, retry_after: int = 5) -> None:
        super().__init__("the events could not be recorded right now; send the batch again")
        self.retry_after = retry_after


# --- who sent it ----------------------------------------------------------------------------


def valid_visitor_id(visitor_id: str) -> bool:
    """Whether a header value can be a visitor id (cheap shape check)."""
    return bool(_VISITOR_ID.match(visitor_id))


def visitor_key(visitor_id: str) -> str:
    """The partition key of an anonymous visitor."""
    return VISITOR_PREFIX + visitor_id


@dataclass(frozen=True)
class Owner:
    """Whose events these are: a signed-in customer (and, when the request also named the
    visitor id the device used before signing in, that visitor), or an anonymous visitor."""

    customer_id: str | None
    visitor_id: str | None

    @property
    def key(self) -> str:
        """The partition key in the `events` container: the customer's id when signed in,
        `v:<visitor id>` otherwise."""
        if self.customer_id is not None:
            return self.customer_id
        assert self.visitor_id is not None
        return visitor_key(self.visitor_id)


def owner_of(customer_id: str | None, visitor_id: str | None) -> Owner:
    """The owner of a request's events; BadVisitorId or VisitorIdRequired when neither a
    customer nor a well-formed visitor id is known."""
    if visitor_id is not None and not valid_visitor_id(visitor_id):
        raise BadVisitorId()
    if customer_id is None and visitor_id is None:
        raise VisitorIdRequired()
    return Owner(customer_id, visitor_id)


# --- validation ---------------------------------------------------------------------------


def parse_batch(raw: bytes, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The normalised events of a raw `{"events": [...]}` body, or the error naming what is
    wrong (MalformedEventBatch, EventBatchTooLarge, TooManyEvents, InvalidEvents).

    A normalised event has `type`, the fields given (strings trimmed) and `at` as a fixed-
    width UTC timestamp (`now` when the client sent none).
    """
    if len(raw) > MAX_BODY_BYTES:
        raise EventBatchTooLarge()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 as well; RecursionError a maliciously deep nesting.
        raise MalformedEventBatch('the body is not JSON; send {"events": [...]}') from None
    if not isinstance(body, dict):
        raise MalformedEventBatch('the body must be a JSON object: {"events": [...]}')
    for key in body:
        if key != "events":
            raise MalformedEventBatch(f"unknown field {key!r}; the body is {{events}}", key)
    events = body.get("events")
    if not isinstance(events, list):
        raise MalformedEventBatch("`events` must be a list of events", "events")
    if len(events) > MAX_EVENTS:
        raise TooManyEvents(len(events))
    moment = now or utcnow()
    errors: list[EventFieldError] = []
    normalised: list[dict[str, Any]] = []
    for index, item in enumerate(events):
        event, problems = _check_event(index, item, moment)
        errors.extend(problems)
        if event is not None:
            normalised.append(event)
    if errors:
        raise InvalidEvents(errors)
    return normalised


def _check_event(
    index: int, item: Any, now: datetime
) -> tuple[dict[str, Any] | None, list[EventFieldError]]:
    def problem(field: str | None, message: str, kind: str) -> EventFieldError:
        return EventFieldError(index, field, message, kind)

    if not isinstance(item, dict):
        return None, [problem(None, "an event must be a JSON object", "object_type")]
    type_ = item.get("type")
    if type_ is None:
        return None, [problem("type", "type is required", "missing")]
    if not isinstance(type_, str) or type_ not in APPLICABLE:
        allowed = ", ".join(EVENT_TYPES)
        return None, [problem("type", f"unknown event type {type_!r}; one of {allowed}", "enum")]
    errors: list[EventFieldError] = []
    applicable = APPLICABLE[type_]
    # Null means "not given", so clients may send one shape for every type; an unknown
    # field is refused whatever its value, as the documented schema says.
    given = {k: v for k, v in item.items() if v is not None}
    for key in item:
        if key not in FIELDS:
            errors.append(problem(key, f"unknown field {key!r}", "extra_forbidden"))
        elif key in given and key not in ("type", "at") and key not in applicable:
            errors.append(problem(key, f"{key} does not apply to {type_}", "not_applicable"))
    out: dict[str, Any] = {"type": type_}
    for key, check in (
        ("productId", _product_id),
        ("sku", _sku),
        ("query", _query),
        ("resultsCount", _results_count),
    ):
        if key in given and key in applicable:
            value, message = check(given[key])
            if message is not None:
                errors.append(problem(key, message, "value_error"))
            else:
                out[key] = value
    if type_ in VIEW_TYPES and "productId" not in given:
        errors.append(problem("productId", f"productId is required for {type_}", "missing"))
    if type_ == "search" and "query" not in given:
        errors.append(problem("query", "query is required for search", "missing"))
    if type_ in ("add_to_cart", "remove_from_cart") and not ({"sku", "productId"} & set(given)):
        errors.append(problem("sku", f"{type_} needs sku or productId", "missing"))
    at, message = _at(given.get("at"), now)
    if message is not None:
        errors.append(problem("at", message, "value_error"))
    out["at"] = at
    return (None, errors) if errors else (out, [])


def _product_id(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str) or not _PRODUCT_ID.match(value):
        return None, "productId must be 1..128 characters of A-Z, a-z, 0-9, '_', '.', '-'"
    return value, None


def _sku(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str) or not _SKU.match(value):
        return None, "sku must be 1..64 characters of A-Z, a-z, 0-9, '.', '_', '-'"
    return value, None


def _query(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, "query must be a string"
    text = " ".join(value.split())
    if not text or len(text) > MAX_QUERY_LENGTH:
        return None, f"query must be 1..{MAX_QUERY_LENGTH} characters (not blank)"
    return text, None


def _results_count(value: Any) -> tuple[int | None, str | None]:
    # bool is an int subclass, and `true` is no count; 12.0 is a whole number in JSON.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None, "resultsCount must be a whole number"
    if not 0 <= value <= MAX_RESULTS_COUNT:
        return None, f"resultsCount must be 0..{MAX_RESULTS_COUNT}"
    return value, None


def _at(value: Any, now: datetime) -> tuple[str, str | None]:
    if value is None:
        return timestamp(now), None
    if not isinstance(value, str) or len(value) > MAX_AT_LENGTH:
        return "", "at must be an ISO 8601 date-time with a time zone"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "", "at must be an ISO 8601 date-time with a time zone"
    if moment.utcoffset() is None:
        return "", "at must carry a time zone (Z or an offset such as +05:30)"
    if moment > now + FUTURE_SKEW:
        minutes = int(FUTURE_SKEW.total_seconds() // 60)
        return "", f"at is more than {minutes} minutes in the future"
    return timestamp(moment), None


# --- rate limit -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most `events` events per owner in each fixed window of `window_seconds`."""

    events: int = 600
    window_seconds: int = 60


RATE_LIMIT = RateLimit()
"""The limit per customer and per visitor: ten events a second on average, far above what
a person browsing sends, low enough that a runaway script cannot flood the consumers."""

RATE_COUNTER_KIND = "rate-limit"


def rate_counter_id(window_start: int) -> str:
    """Id of an owner's counter for the window starting at `window_start` (epoch s)."""
    return f"rate:{window_start}"


def take(
    documents: DocumentStore,
    owner_key: str,
    count: int,
    *,
    limit: RateLimit = RATE_LIMIT,
    now: datetime | None = None,
) -> None:
    """Count `count` events against the owner's current window, or raise
    EventsRateLimited (with the seconds until the window ends) and count nothing.

    One counter document per owner and window, in the owner's partition, expiring soon
    after its window. The increment is a conditional patch (`count <= limit - n`): one
    round trip that cannot lose a concurrent increment and needs no read, where a read and
    an If-Match replace would cost two and retry under concurrency. The first batch of a
    window finds no counter and creates it (two round trips).
    """
    moment = now or utcnow()
    epoch = math.floor(moment.timestamp())
    start = epoch - epoch % limit.window_seconds
    retry_after = max(1, start + limit.window_seconds - epoch)
    if count > limit.events:
        raise EventsRateLimited(retry_after, limit)
    container = documents.container(EVENTS_CONTAINER)
    counter_id = rate_counter_id(start)
    for _ in range(3):
        try:
            container.patch(
                counter_id,
                owner_key,
                [PatchOp("incr", "count", count)],
                condition=[Filter("count", "le", limit.events - count)],
            )
            return
        except PreconditionFailed:
            raise EventsRateLimited(retry_after, limit) from None
        except NotFound:
            pass
        try:
            container.create(
                {
                    "id": counter_id,
                    "kind": RATE_COUNTER_KIND,
                    "customerId": owner_key,
                    "windowStart": start,
                    "count": count,
                    # Long enough to outlive its window, short enough not to pile up.
                    "ttl": 2 * limit.window_seconds,
                }
            )
            return
        except Conflict:
            continue  # a concurrent batch created it first: count on theirs
    raise Unavailable("the rate counter kept changing; retry")


# --- publish ------------------------------------------------------------------------------


def recorded_event(
    owner: Owner, events: list[dict[str, Any]], *, correlation_id: str | None = None
) -> Event:
    """The `storefront.events_recorded` event that carries an accepted batch."""
    data: EventsRecorded = {
        "ownerId": owner.key,
        "customerId": owner.customer_id,
        "visitorId": owner.visitor_id,
        # `parse_batch` checked and normalised them, each kind with its members.
        "events": cast("list[StorefrontEvent]", events),
    }
    return new_event(
        EVENT_TYPE, owner.key, data, correlation_id=correlation_id, version=EVENT_VERSION
    )


def publish(publisher: MessagePublisher, topic: str, event: Event) -> None:
    """Send the event as one message (message id = event id); EventsUnavailable when the
    broker cannot take it."""
    try:
        publisher.publish(topic, [event.to_message()])
    except Unavailable as exc:
        raise EventsUnavailable() from exc


def accept_batch(
    documents: DocumentStore,
    publisher: MessagePublisher,
    topic: str,
    owner: Owner,
    raw: bytes,
    *,
    correlation_id: str | None = None,
    limit: RateLimit = RATE_LIMIT,
    now: datetime | None = None,
) -> int:
    """Validate, count and publish one batch; returns how many events were accepted.

    All or nothing: a refused batch (any StorefrontEventsError) recorded nothing. An empty
    batch is accepted as 0 events without counting or publishing anything. A batch that a
    signed-in owner sends with a visitor id also asks the consumer to merge that visitor's
    history into the customer's.
    """
    moment = now or utcnow()
    events = parse_batch(raw, now=moment)
    if not events:
        return 0
    take(documents, owner.key, len(events), limit=limit, now=moment)
    publish(publisher, topic, recorded_event(owner, events, correlation_id=correlation_id))
    return len(events)
