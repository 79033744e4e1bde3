"""Deciding and sending notifications, each at most once and never lost.

Every notification is first written as a record (`store.NotificationStore`) whose id is
derived from (source id, template, channel, recipient), then sent:

    pending -> sending -> sent -> delivered | bounced | failed

- A redelivered event finds its records and sends only what is not sent yet.
- `sending` carries a lease. A send that crashed (the process died between the provider
  accepting the message and the record saying `sent`) is found `sending` with a lapsed
  lease and is sent again: at most one duplicate per crash, never a loss (docs/notifications.md).
  A delivery webhook that arrived in between moves the record on and prevents the resend.
- 429 and 5xx are retried with backoff that honours Retry-After; a send still refused
  returns the record to `pending` and the event is retried by the broker (and by the timer,
  `resume_due`, if the event dead-letters). Permanent errors mark the record `failed` and,
  when the destination itself is bad, suppress it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import CloudcartError, PreconditionFailed
from cloudcart.core.events import Event
from cloudcart.core.ports.channels import (
    EmailChannel,
    EmailMessage,
    EmailOutcome,
    ProviderBusy,
    ProviderError,
    ProviderRejected,
    TextChannel,
    TextMessage,
)
from cloudcart.core.ports.documents import Document
from cloudcart.customers.service import CustomerService
from cloudcart.notifications import rules, templates
from cloudcart.notifications.store import (
    DUE_AFTER,
    OPS_PARTITION,
    RANK,
    NotificationStore,
    notification_id,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from cloudcart.composition import Services
    from cloudcart.core.settings import Settings

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)
"""How long a `sending` record is trusted to be in flight; equal to the notifications
subscriptions' lock, so a crashed send is retaken when its message comes back."""

SEND_ATTEMPTS = 2
MAX_RETRY_WAIT = 5.0
"""Within one delivery: attempts per send and the longest wait between them (Retry-After
included). Longer outages are ridden out by the broker's redelivery and the timer."""

BATCH_LIMIT = 1000
"""SendGrid's personalizations per mail-send request."""

Channel = Literal["email", "sms", "whatsapp", "inApp"]
EXTERNAL: tuple[Channel, ...] = ("email", "sms", "whatsapp")

T = TypeVar("T")


class NotificationsPending(CloudcartError):
    """Some notifications of a message could not be sent yet (the provider is busy, or
    another worker holds them); the message must be retried."""


@dataclass
class Outcome:
    """What handling one source did: counts by result."""

    sent: int = 0
    skipped: int = 0
    held: int = 0
    failed: int = 0
    pending: int = 0
    records: list[str] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        """Fold another outcome into this one."""
        self.sent += other.sent
        self.skipped += other.skipped
        self.held += other.held
        self.failed += other.failed
        self.pending += other.pending
        self.records.extend(other.records)

    def __str__(self) -> str:
        return (
            f"sent={self.sent} held={self.held} failed={self.failed} "
            f"skipped={self.skipped} pending={self.pending}"
        )


# --- rate limits -----------------------------------------------------------------------


class _TokenBucket:
    """Requests per second one instance makes to a provider; blocks the caller until a
    token is free (sends are already off the request path)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)


_buckets: dict[tuple[str, float], _TokenBucket] = {}
_buckets_lock = threading.Lock()


def _bucket(name: str, rate: float) -> _TokenBucket:
    with _buckets_lock:
        return _buckets.setdefault((name, rate), _TokenBucket(rate))


# --- quiet hours -----------------------------------------------------------------------


def _parse_window(window: str) -> tuple[clock_time, clock_time]:
    start, end = window.split("-")
    return clock_time.fromisoformat(start), clock_time.fromisoformat(end)


def quiet_until(now: datetime, time_zone: str, window: str) -> datetime | None:
    """When the quiet hours `window` (`HH:MM-HH:MM`, local time in `time_zone`) that `now`
    falls in ends, in UTC; None when `now` is outside it. A window may span midnight."""
    start, end = _parse_window(window)
    if start == end:
        return None
    local = now.astimezone(ZoneInfo(time_zone))
    at = local.timetz().replace(tzinfo=None)
    inside = (start <= at < end) if start < end else (at >= start or at < end)
    if not inside:
        return None
    end_day = local.date() if at < end else local.date() + timedelta(days=1)
    ends = datetime.combine(end_day, end, tzinfo=local.tzinfo)
    return ends.astimezone(now.tzinfo)


def _zone(profile: Mapping[str, Any], settings: Settings) -> str:
    for candidate in (profile.get("timeZone"), settings.notifications_default_time_zone):
        if isinstance(candidate, str) and candidate:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return "UTC"


# --- planning --------------------------------------------------------------------------


def _json_map(raw: str, setting: str) -> dict[str, str]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        logger.error("%s is not JSON; ignoring it", setting)
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items()}


def _links(settings: Settings, data: Mapping[str, Any]) -> dict[str, str]:
    base = settings.public_base_url.rstrip("/")
    links = {"account": f"{base}/account", "unsubscribe": f"{base}/account/preferences"}
    order_id = data.get("orderId")
    if isinstance(order_id, str):
        links["order"] = f"{base}/orders/{order_id}"
    return links


def _context(
    settings: Settings, name: str | None, email: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "shop": {
            "name": settings.notifications_from_name,
            "url": settings.public_base_url.rstrip("/"),
        },
        "customer": {"name": name, "email": email},
        "links": _links(settings, data),
        "data": dict(data),
    }


def _status_callback(settings: Settings, record_id: str, customer_id: str) -> str:
    query = urlencode({"n": record_id, "c": customer_id})
    return f"{settings.public_base_url.rstrip('/')}/api/webhooks/twilio/status?{query}"


def _record(
    *,
    settings: Settings,
    source_id: str,
    source_type: str,
    template: str,
    kind: str,
    channel: Channel,
    to: str,
    customer_id: str,
    locale: str | None,
    context: Mapping[str, Any],
    now: datetime,
    not_before: datetime | None = None,
    content_sid: str | None = None,
) -> Document:
    rendered = templates.render(template, channel, locale, context)
    record_id = notification_id(source_id, template, channel, to)
    at = now.isoformat()
    record: Document = {
        "id": record_id,
        "kind": "notification",
        "customerId": customer_id,
        "channel": channel,
        "to": to,
        "template": template,
        "messageKind": kind,
        "locale": rendered.locale,
        "eventId": source_id,
        "eventType": source_type,
        "status": "pending",
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "title": rendered.title,
        "link": rendered.link,
        "variables": dict(rendered.variables),
        "contentSid": content_sid,
        "attempts": 0,
        "notBefore": not_before.isoformat() if not_before else None,
        "dueAt": (not_before or now + DUE_AFTER).isoformat(),
        "leaseUntil": None,
        "providerMessageId": None,
        "error": None,
        "statusEvents": [],
        "createdAt": at,
        "updatedAt": at,
        "statusAt": at,
    }
    if channel in ("sms", "whatsapp"):
        record["statusCallback"] = _status_callback(settings, record_id, customer_id)
    if channel == "inApp":
        record.update(status="delivered", deliveredAt=at, readAt=None, dueAt=None)
    return record


def _granted(consents: Mapping[str, Any], channel: str, kind: str) -> bool:
    record = consents.get(channel, {}).get(kind, {})
    return bool(record.get("granted"))


def plan_for_customer(
    services: Services,
    intent: rules.Intent,
    *,
    source_id: str,
    source_type: str,
    now: datetime,
) -> list[Document]:
    """The records a customer notification calls for, after preferences, consent, verified
    destinations and quiet hours: one per channel the customer may be reached on."""
    assert intent.customer_id is not None
    settings = services.settings
    spec = templates.TEMPLATES[intent.template]
    customers = CustomerService(services.documents)
    profile = customers.get_profile(intent.customer_id)
    if profile is None or customers.is_erased(intent.customer_id):
        return []
    consents = customers.get_preferences(intent.customer_id).get("consents", {})
    context = _context(settings, profile.get("name"), profile.get("email"), intent.data)
    locale = profile.get("locale")
    not_before = None
    if spec.kind == "marketing":
        not_before = quiet_until(now, _zone(profile, settings), settings.notifications_quiet_hours)
    whatsapp_templates = _json_map(settings.twilio_whatsapp_templates, "TWILIO_WHATSAPP_TEMPLATES")
    records: list[Document] = []
    for channel in spec.channels:
        if not _granted(consents, channel, spec.kind):
            continue
        to: str | None
        content_sid: str | None = None
        if channel == "email":
            to = profile.get("email")
        elif channel == "inApp":
            to = intent.customer_id
        else:
            # Texts go only to a number the customer proved is theirs.
            to = profile.get("phone") if profile.get("phoneVerified") else None
            if channel == "whatsapp":
                content_sid = whatsapp_templates.get(intent.template)
                # Business-initiated WhatsApp needs an approved template (free-form text
                # outside the 24-hour window fails with 63016); the capture adapter has
                # no such rule, so the local shop shows WhatsApp without configuration.
                if content_sid is None and settings.notifications_text_provider != "capture":
                    continue
        if not to:
            continue
        records.append(
            _record(
                settings=settings,
                source_id=source_id,
                source_type=source_type,
                template=intent.template,
                kind=spec.kind,
                channel=channel,
                to=to,
                customer_id=intent.customer_id,
                locale=locale,
                context=context,
                now=now,
                not_before=None if channel == "inApp" else not_before,
                content_sid=content_sid,
            )
        )
    return records


def _plan_for_ops(services: Services, intent: rules.Intent, event: Event) -> list[Document]:
    settings = services.settings
    to = settings.notifications_ops_email
    if not to:
        return []
    context = _context(settings, None, to, intent.data)
    return [
        _record(
            settings=settings,
            source_id=event.id,
            source_type=event.type,
            template=intent.template,
            kind="transactional",
            channel="email",
            to=to,
            customer_id=OPS_PARTITION,
            locale=None,
            context=context,
            now=utcnow(),
        )
    ]


# --- sending ---------------------------------------------------------------------------


class _LeaseHeld(Exception):
    def __init__(self, remaining: float) -> None:
        super().__init__(f"another worker is sending (lease {remaining:.1f} s)")
        self.remaining = remaining


class _RetryAfterWait(wait_base):
    """Backoff that honours the provider's Retry-After, capped."""

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = error.retry_after if isinstance(error, ProviderBusy) else None
        base = 0.5 * (2 ** (retry_state.attempt_number - 1))
        return min(asked if asked is not None else base, MAX_RETRY_WAIT)


def _with_retries(call: Callable[[], T]) -> T:
    retrying = Retrying(
        stop=stop_after_attempt(SEND_ATTEMPTS),
        retry=retry_if_exception_type(ProviderBusy),
        wait=_RetryAfterWait(),
        reraise=True,
    )
    return retrying(call)


class Sender:
    """Sends stored records through the channels, keeping each record's status true."""

    def __init__(self, services: Services) -> None:
        """Uses `services`' documents and notification channels."""
        self.services = services
        self.settings = services.settings
        self.store = NotificationStore(services.documents)

    @property
    def email(self) -> EmailChannel:
        """The email channel."""
        return self.services.email_channel

    @property
    def text(self) -> TextChannel:
        """The SMS/WhatsApp channel."""
        return self.services.text_channel

    # claim and finish ------------------------------------------------------------------

    def claim(self, record: Document, now: datetime) -> Document | None:
        """Move `record` to `sending` under a fresh lease; None when there is nothing to
        send now (already sent or final, or held for quiet hours). Raises _LeaseHeld while
        another attempt's lease runs."""
        for _ in range(5):
            status = str(record.get("status"))
            if RANK.get(status, 3) >= RANK["sent"]:
                return None
            not_before = record.get("notBefore")
            if status == "pending" and not_before and datetime.fromisoformat(not_before) > now:
                return None
            lease = record.get("leaseUntil")
            if status == "sending" and lease:
                remaining = (datetime.fromisoformat(lease) - now).total_seconds()
                if remaining > 0:
                    raise _LeaseHeld(remaining)
            suppressed = self.store.suppression(record["to"])
            if suppressed is not None and record["channel"] != "inApp":
                self.finish(
                    record,
                    {
                        "status": "failed",
                        "error": {"code": "suppressed", "message": str(suppressed["reason"])},
                    },
                )
                return None
            try:
                return self.store.replace(
                    record,
                    {
                        "status": "sending",
                        "attempts": int(record.get("attempts", 0)) + 1,
                        "leaseUntil": (now + LEASE).isoformat(),
                        "dueAt": (now + DUE_AFTER).isoformat(),
                        "statusAt": now.isoformat(),
                    },
                )
            except PreconditionFailed:
                fresh = self.store.get(record["id"], record["customerId"])
                if fresh is None:
                    return None
                record = fresh
        raise NotificationsPending(f"notification {record['id']} keeps changing")

    def as_created(self, record: Document, now: datetime) -> Document:
        """A new record as it should be written: already claimed for a send (saving the
        claim's write), `failed` for a suppressed destination, or `pending` while held."""
        not_before = record.get("notBefore")
        if not_before and datetime.fromisoformat(not_before) > now:
            return record
        suppressed = self.store.suppression(record["to"])
        if suppressed is not None:
            return {
                **record,
                "status": "failed",
                "error": {"code": "suppressed", "message": str(suppressed["reason"])},
                "dueAt": None,
            }
        return {
            **record,
            "status": "sending",
            "attempts": 1,
            "leaseUntil": (now + LEASE).isoformat(),
            "dueAt": (now + DUE_AFTER).isoformat(),
        }

    def finish(self, record: Document, changes: dict[str, Any]) -> None:
        """Write the outcome of a send. A delivery webhook may have moved the record on
        meanwhile: a status never moves back, the provider's id is still filled in."""
        for _ in range(5):
            target = dict(changes)
            new = target.get("status")
            if new is not None and RANK[str(new)] <= RANK.get(str(record.get("status")), 0):
                target = (
                    {"providerMessageId": target["providerMessageId"]}
                    if target.get("providerMessageId") and not record.get("providerMessageId")
                    else {}
                )
            elif new is not None:
                target["statusAt"] = utcnow().isoformat()
                target["leaseUntil"] = None
                if new == "sent":
                    target["sentAt"] = target["statusAt"]
            if not target:
                return
            try:
                self.store.replace(record, target)
                return
            except PreconditionFailed:
                fresh = self.store.get(record["id"], record["customerId"])
                if fresh is None:
                    return
                record = fresh

    def _fail(self, record: Document, error: ProviderError) -> None:
        self.finish(
            record, {"status": "failed", "error": {"code": error.code, "message": str(error)}}
        )
        if isinstance(error, ProviderRejected) and error.suppress:
            self.store.suppress(
                record["to"], record["channel"], reason=f"rejected:{error.code}", source="send"
            )

    def _release(self, record: Document, error: ProviderError) -> None:
        # Not accepted: back to pending (the one move down, made only by the lease holder),
        # so the next delivery or the timer sends it.
        for _ in range(5):
            if record.get("status") != "sending":
                return
            try:
                self.store.replace(
                    record,
                    {
                        "status": "pending",
                        "leaseUntil": None,
                        "error": {"code": error.code, "message": str(error)},
                    },
                )
                return
            except PreconditionFailed:
                fresh = self.store.get(record["id"], record["customerId"])
                if fresh is None:
                    return
                record = fresh

    # sending -----------------------------------------------------------------------------

    def send(
        self,
        records: Sequence[Document],
        *,
        wait_for_lease: bool = True,
        now: datetime | None = None,
        claimed: Sequence[Document] = (),
    ) -> Outcome:
        """Send every record of `records` that still needs it at `now` (default: the
        clock), and the `claimed` ones (written as `sending` under our lease). Raises
        nothing for provider trouble: records left to send count as `pending`."""
        outcome = Outcome()
        now = now or utcnow()
        claimed = list(claimed)
        outcome.records.extend(r["id"] for r in claimed)
        for record in records:
            outcome.records.append(record["id"])
            try:
                taken = self.claim(record, now)
            except _LeaseHeld as held:
                if not wait_for_lease or held.remaining > LEASE.total_seconds():
                    outcome.pending += 1
                    continue
                time.sleep(held.remaining)
                fresh = self.store.get(record["id"], record["customerId"]) or record
                try:
                    taken = self.claim(fresh, utcnow())
                except _LeaseHeld:
                    outcome.pending += 1
                    continue
            if taken is None:
                current = self.store.get(record["id"], record["customerId"]) or record
                if current.get("status") == "pending":
                    outcome.held += 1
                elif current.get("status") == "failed":
                    outcome.failed += 1
                else:
                    outcome.skipped += 1
                continue
            claimed.append(taken)
        emails = [r for r in claimed if r["channel"] == "email"]
        texts = [r for r in claimed if r["channel"] in ("sms", "whatsapp")]
        if len(emails) > 1:
            outcome.add(self._send_email_batch(emails))
        elif emails:
            outcome.add(self._send_one(emails[0], partial(self._email_one, emails[0])))
        for record in texts:
            outcome.add(self._send_one(record, partial(self._text_one, record)))
        return outcome

    def _send_one(self, record: Document, call: Callable[[], str]) -> Outcome:
        outcome = Outcome()
        try:
            provider_id = _with_retries(call)
        except ProviderRejected as error:
            self._fail(record, error)
            outcome.failed += 1
            return outcome
        except ProviderBusy as error:
            logger.warning("notification %s not sent yet: %s", record["id"], error)
            self._release(record, error)
            outcome.pending += 1
            return outcome
        self.finish(record, {"status": "sent", "providerMessageId": provider_id, "error": None})
        outcome.sent += 1
        return outcome

    def _email_message(self, record: Document) -> EmailMessage:
        dynamic = _json_map(self.settings.sendgrid_templates, "SENDGRID_TEMPLATES")
        template_id = dynamic.get(str(record["template"]))
        return EmailMessage(
            notification_id=record["id"],
            customer_id=record["customerId"],
            to=record["to"],
            subject=record.get("subject") or "",
            text=record.get("text") or "",
            html=record.get("html") or "",
            template=record["template"],
            dynamic_template_id=template_id,
            dynamic_template_data={"subject": record.get("subject"), "text": record.get("text")}
            if template_id
            else {},
            categories=(str(record["template"]),),
        )

    def _email_one(self, record: Document) -> str:
        _bucket("email", self.settings.notifications_email_per_second).take()
        return self.email.send(self._email_message(record))

    def _text_one(self, record: Document) -> str:
        _bucket("text", self.settings.notifications_text_per_second).take()
        return self.text.send(
            TextMessage(
                notification_id=record["id"],
                customer_id=record["customerId"],
                channel=record["channel"],
                to=record["to"],
                body=record.get("text") or "",
                template=record["template"],
                status_callback=record.get("statusCallback"),
                content_sid=record.get("contentSid"),
                content_variables=record.get("variables") or {},
            )
        )

    def _send_email_batch(self, records: Sequence[Document]) -> Outcome:
        outcome = Outcome()
        by_id = {r["id"]: r for r in records}
        remaining = list(records)
        for attempt in range(SEND_ATTEMPTS):
            messages = [self._email_message(r) for r in remaining]
            results: list[EmailOutcome] = []
            for start in range(0, len(messages), BATCH_LIMIT):
                _bucket("email", self.settings.notifications_email_per_second).take()
                results.extend(self.email.send_batch(messages[start : start + BATCH_LIMIT]))
            busy: list[Document] = []
            wait = 0.0
            for result in results:
                record = by_id[result.notification_id]
                if result.error is None:
                    self.finish(
                        record,
                        {
                            "status": "sent",
                            "providerMessageId": result.provider_message_id,
                            "error": None,
                        },
                    )
                    outcome.sent += 1
                elif isinstance(result.error, ProviderRejected):
                    self._fail(record, result.error)
                    outcome.failed += 1
                else:
                    busy.append(record)
                    if isinstance(result.error, ProviderBusy):
                        wait = max(wait, result.error.retry_after or 0.5 * 2**attempt)
            if not busy:
                return outcome
            if attempt + 1 < SEND_ATTEMPTS:
                time.sleep(min(wait, MAX_RETRY_WAIT))
                remaining = busy
                continue
            error = next(
                r.error
                for r in results
                if r.error is not None and r.notification_id in {b["id"] for b in busy}
            )
            for record in busy:
                self._release(record, error)
                outcome.pending += 1
        return outcome


# --- entry points ----------------------------------------------------------------------


def _create_and_send(services: Services, records: Iterable[Document], now: datetime) -> Outcome:
    """Write the records (an existing one is kept as it is) and send what is unsent. An
    in-app item is delivered by being written."""
    store = NotificationStore(services.documents)
    sender = Sender(services)
    outcome = Outcome()
    prepared = [r if r["channel"] == "inApp" else sender.as_created(r, now) for r in records]
    written: list[tuple[Document, bool]] = []
    together = None
    if len({r["customerId"] for r in prepared}) == 1 and len(prepared) > 1:
        # The usual first delivery: every record of the customer in one write.
        together = store.create_together(prepared)
    if together is not None:
        written = [(document, True) for document in together]
    else:
        for record in prepared:
            if record["channel"] == "inApp":
                written.append(store.create_in_app(record))
            else:
                written.append(store.create_or_get(record))
    existing: list[Document] = []
    claimed: list[Document] = []
    for document, created in written:
        status = document["status"]
        if not created and document["channel"] != "inApp":
            existing.append(document)  # a redelivery: its status says what is left
            continue
        if created and status == "sending":
            claimed.append(document)
            continue
        outcome.records.append(document["id"])
        if not created:
            outcome.skipped += 1
        elif status == "delivered":  # an in-app item: delivered by being written
            outcome.sent += 1
        elif status == "failed":
            outcome.failed += 1
        else:
            outcome.held += 1
    outcome.add(sender.send(existing, now=now, claimed=claimed))
    return outcome


def handle_event(services: Services, event: Event, *, now: datetime | None = None) -> Outcome:
    """Turn one domain or operational event into its notifications and send them.

    Raises NotificationsPending when some could not be sent yet (the message is retried;
    what was sent is not sent again)."""
    outcome = Outcome()
    now = now or utcnow()
    for intent in rules.intents_for(event):
        if intent.customer_id is None:
            planned = _plan_for_ops(services, intent, event)
        else:
            planned = plan_for_customer(
                services, intent, source_id=event.id, source_type=event.type, now=now
            )
        outcome.add(_create_and_send(services, planned, now))
    if outcome.pending:
        raise NotificationsPending(f"{event.type} {event.id}: {outcome}")
    return outcome


def send_bulk(
    services: Services,
    *,
    source_id: str,
    template: str,
    customer_ids: Sequence[str],
    data: Mapping[str, Any] | Callable[[str], Mapping[str, Any]],
    source_type: str = "bulk",
    now: datetime | None = None,
) -> Outcome:
    """Send `template` to many customers (back in stock, abandoned carts, campaigns), each
    on the channels their preferences and consent allow, marketing held for quiet hours.

    Emails of identical content go out together (up to 1,000 recipients per request), all
    sends within the per-second limits of the settings. `data` is shared, or a function of
    the customer id. Idempotent on `source_id` like `handle_event`."""
    now = now or utcnow()
    records: list[Document] = []
    for customer_id in dict.fromkeys(customer_ids):
        payload = data(customer_id) if callable(data) else data
        intent = rules.Intent(template, customer_id, dict(payload))
        records.extend(
            plan_for_customer(
                services, intent, source_id=source_id, source_type=source_type, now=now
            )
        )
    return _create_and_send(services, records, now)


def send_verification_code(
    services: Services,
    *,
    customer_id: str,
    channel: Literal["email", "sms"],
    destination: str,
    code: str,
    minutes: int,
    locale: str | None,
    attempt_id: str,
    name: str | None = None,
) -> None:
    """Send a verification code to `destination` now, through the notification record path
    (so a retried request with the same `attempt_id` sends once).

    Transactional: ignores channel preferences and quiet hours, but never sends to a
    suppressed destination. Raises `channels.ProviderBusy` when the provider is busy or down
    (answer 503) and `channels.ProviderRejected` when it refuses the destination (422).
    """
    settings = services.settings
    template = "verify-email" if channel == "email" else "verify-phone"
    context = _context(settings, name, None, {"code": code, "minutes": minutes})
    record = _record(
        settings=settings,
        source_id=attempt_id,
        source_type="verification",
        template=template,
        kind="transactional",
        channel=channel,
        to=destination,
        customer_id=customer_id,
        locale=locale,
        context=context,
        now=utcnow(),
    )
    store = NotificationStore(services.documents)
    stored, _ = store.create_or_get(record)
    outcome = Sender(services).send([stored], wait_for_lease=False)
    if outcome.sent or outcome.skipped:
        return
    current = store.get(stored["id"], customer_id) or stored
    error = current.get("error") or {}
    if outcome.failed:
        raise ProviderRejected(
            str(error.get("message") or "the destination was refused"),
            code=error.get("code"),
            suppress=False,
        )
    raise ProviderBusy(str(error.get("message") or "the provider is busy"), retry_after=30)


def resume_due(services: Services, *, limit: int = 200, now: datetime | None = None) -> Outcome:
    """Send what is due and unfinished: marketing held for quiet hours whose window ended,
    and sends interrupted long ago (their event dead-lettered, or a crash outlived every
    redelivery). The notifications timer calls this."""
    store = NotificationStore(services.documents)
    now = now or utcnow()
    due = store.due(now, limit=limit)
    return Sender(services).send(due, wait_for_lease=False, now=now)
