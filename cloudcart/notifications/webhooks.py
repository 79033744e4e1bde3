"""Provider callbacks, after their signature was verified: delivery statuses (SendGrid Event
Webhook, Twilio status callbacks) and inbound STOP/START/HELP keywords.

Providers deliver callbacks more than once and out of order (SendGrid about three times per
event, with a new `sg_event_id` on each retry), so:
- a status only ever moves a record forward (`store.RANK`): `delivered` then a late `sent`
  leaves it delivered;
- each applied callback is remembered by (provider message id, event, timestamp), never by
  `sg_event_id`, and a repeat changes nothing;
- the side effects (suppressing an address, turning marketing consent off) are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import PreconditionFailed
from cloudcart.core.ports.documents import Document
from cloudcart.notifications.store import RANK, STATUS_EVENTS_KEPT, NotificationStore

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

# SendGrid event -> our status (None: no status change).
SENDGRID_STATUS: dict[str, str | None] = {
    "processed": "sent",
    "deferred": None,
    "delivered": "delivered",
    "bounce": "bounced",
    "dropped": "failed",
    "open": "delivered",
    "click": "delivered",
    "spamreport": None,
    "unsubscribe": None,
    "group_unsubscribe": None,
    "group_resubscribe": None,
}

# Twilio MessageStatus -> our status.
TWILIO_STATUS: dict[str, str | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}

TWILIO_SUPPRESS_CODES = frozenset({"21211", "21610", "21614", "30003", "30005", "30006"})
"""Error codes that mean the number itself cannot take our messages (invalid, landline,
unreachable, unknown, opted out with STOP)."""

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})
HELP_WORDS = frozenset({"HELP", "INFO"})


@dataclass(frozen=True)
class StatusUpdate:
    """One provider callback about one notification."""

    notification_id: str
    customer_id: str
    status: str | None
    key: str
    provider_message_id: str | None = None
    error: Mapping[str, Any] | None = None


def apply_status(store: NotificationStore, update: StatusUpdate) -> Document | None:
    """Apply one status callback to its record; a repeat or an older status changes
    nothing. Returns the record (None when it is unknown)."""
    for _ in range(5):
        record = store.get(update.notification_id, update.customer_id)
        if record is None:
            return None
        seen = list(record.get("statusEvents") or [])
        if update.key in seen:
            return record
        changes: dict[str, Any] = {"statusEvents": [*seen, update.key][-STATUS_EVENTS_KEPT:]}
        current = str(record.get("status"))
        if update.status is not None and RANK[update.status] > RANK.get(current, 0):
            at = utcnow().isoformat()
            changes.update(status=update.status, statusAt=at, leaseUntil=None)
            if update.status == "delivered":
                changes["deliveredAt"] = at
            if update.error:
                changes["error"] = dict(update.error)
        else:
            return record  # no status, or not a step forward: nothing to write
        if update.provider_message_id and not record.get("providerMessageId"):
            changes["providerMessageId"] = update.provider_message_id
        try:
            return store.replace(record, changes)
        except PreconditionFailed:
            continue
    raise PreconditionFailed(f"notification {update.notification_id} keeps changing")


def handle_sendgrid_events(services: Services, events: Sequence[Mapping[str, Any]]) -> int:
    """Apply a verified SendGrid Event Webhook batch; returns how many events were about
    our notifications. Events without our `notificationId` custom arg are ignored."""
    store = NotificationStore(services.documents)
    applied = 0
    for event in events:
        kind = str(event.get("event", ""))
        email = event.get("email")
        notification = event.get("notificationId")
        customer = event.get("customerId")
        if kind == "bounce" and event.get("type") == "blocked":
            # A block is the receiving server refusing for now, not a dead address.
            status: str | None = "failed"
        else:
            status = SENDGRID_STATUS.get(kind)
        blocked = kind == "bounce" and event.get("type") == "blocked"
        if kind in ("bounce", "dropped", "spamreport") and isinstance(email, str) and not blocked:
            store.suppress(email, "email", reason=kind, source="sendgrid")
        if kind in ("unsubscribe", "group_unsubscribe") and isinstance(customer, str):
            _consent_off(services, customer, "email", kinds=("marketing",))
        if not isinstance(notification, str) or not isinstance(customer, str):
            continue
        message_id = str(event.get("sg_message_id") or notification).split(".")[0]
        error = None
        if status in ("bounced", "failed"):
            error = {"code": kind, "message": str(event.get("reason") or event.get("response"))}
        apply_status(
            store,
            StatusUpdate(
                notification_id=notification,
                customer_id=customer,
                status=status,
                key=f"sg|{message_id}|{kind}|{event.get('timestamp')}",
                provider_message_id=message_id,
                error=error,
            ),
        )
        applied += 1
    return applied


def handle_twilio_status(
    services: Services, notification_id: str, customer_id: str, form: Mapping[str, str]
) -> Document | None:
    """Apply a verified Twilio status callback."""
    store = NotificationStore(services.documents)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    message_status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    code = form.get("ErrorCode") or None
    status = TWILIO_STATUS.get(message_status)
    record = apply_status(
        store,
        StatusUpdate(
            notification_id=notification_id,
            customer_id=customer_id,
            status=status,
            key=f"tw|{sid}|{message_status}|{code or ''}",
            provider_message_id=sid or None,
            error={"code": code, "message": f"Twilio {message_status}"} if code else None,
        ),
    )
    if record is not None and code in TWILIO_SUPPRESS_CODES:
        store.suppress(str(record["to"]), str(record["channel"]), reason=code, source="twilio")
    return record


def keyword(body: str) -> str | None:
    """`stop`, `start`, `help` or None for an inbound message's text."""
    word = body.strip().upper().rstrip(".!")
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def handle_inbound(services: Services, form: Mapping[str, str]) -> str | None:
    """Apply STOP/START/HELP from a verified inbound SMS or WhatsApp message; returns the
    reply text (HELP) or None. STOP turns every kind of message off on that channel for
    every customer with the number and suppresses it; START lifts the STOP and turns
    transactional messages back on (marketing needs a new explicit opt-in)."""
    sender = form.get("From", "")
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    number = sender.removeprefix("whatsapp:")
    action = keyword(form.get("Body", ""))
    if action is None or not number:
        return None
    if action == "help":
        shop = services.settings.notifications_from_name
        return (
            f"{shop}: order and account updates. Reply STOP to stop messages, START to "
            f"resume. Help: {services.settings.public_base_url.rstrip('/')}/help"
        )
    store = NotificationStore(services.documents)
    from cloudcart.customers.service import CustomerService

    customers = CustomerService(services.documents).customers_with_phone(number)
    if action == "stop":
        store.suppress(number, channel, reason="stop", source="keyword")
        for customer_id in customers:
            _consent_off(services, customer_id, channel, kinds=("transactional", "marketing"))
    else:
        store.unsuppress(number, reasons=("stop",))
        for customer_id in customers:
            _consent_set(services, customer_id, channel, {"transactional": True})
    logger.info("inbound %s on %s for %d customers", action, channel, len(customers))
    return None


def _consent_off(services: Services, customer_id: str, channel: str, kinds: Sequence[str]) -> None:
    _consent_set(services, customer_id, channel, {kind: False for kind in kinds})


def _consent_set(
    services: Services, customer_id: str, channel: str, values: Mapping[str, bool]
) -> None:
    from cloudcart.customers.models import PreferencesUpdate
    from cloudcart.customers.service import CustomerService

    customers = CustomerService(services.documents)
    if customers.get_profile(customer_id) is None:
        return
    update = PreferencesUpdate.model_validate({"channels": {channel: dict(values)}})
    customers.update_preferences(customer_id, update, source="provider")
