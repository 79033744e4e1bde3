"""The health of each partner link: last success, last failure and its reason.

One small document per partner in the `integrations` container (this package owns it),
written by the connectors and the inbound handlers and read by the admin status
(`GET /api/admin/integrations`, `cloudcart partners status`). Successes are written at
most every few seconds per process: at hundreds of messages a second a write per
message would double the link's cost for a timestamp nobody reads that precisely.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudcart.core.clock import utcnow
from cloudcart.core.errors import Conflict, NotFound
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.documents import DocumentStore, PatchOp
from cloudcart.core.ports.messages import MessageCounts
from cloudcart.core.ports.partners import PARTNERS, PartnerName

if TYPE_CHECKING:
    from cloudcart.composition import Services

logger = logging.getLogger(__name__)

CONTAINER = "integrations"
SUCCESS_WRITE_INTERVAL_SECONDS = 5.0

_last_success_write: dict[tuple[int, str], float] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class LinkEntities:
    """The Service Bus entities of one partner link."""

    subscription: str
    """The connector's subscription of the events topic (outbound)."""
    queue_setting: str | None = None
    """The Settings field naming the partner's inbound queue, if it sends messages."""


LINKS: dict[PartnerName, LinkEntities] = {
    "fulfilment": LinkEntities("fulfilment", "fulfilment_updates_queue"),
    "inventory": LinkEntities("inventory-sync", "inventory_updates_queue"),
    "accounting": LinkEntities("accounting"),
    "crm": LinkEntities("crm"),
}


def _upsert(store: DocumentStore, partner: str, fields: dict[str, Any]) -> None:
    container = store.container(CONTAINER)
    operations = [PatchOp("set", name, value) for name, value in fields.items()]
    try:
        container.patch(partner, partner, operations)
    except NotFound:
        container.upsert({"id": partner, "partner": partner, **fields})


def record_success(store: DocumentStore, partner: PartnerName, direction: str) -> None:
    """Note that a call to (or a message from) the partner just worked."""
    now = time.monotonic()
    key = (id(store), partner)  # per store: a process may serve several (tests do)
    with _lock:
        if now - _last_success_write.get(key, -1e9) < SUCCESS_WRITE_INTERVAL_SECONDS:
            return
        _last_success_write[key] = now
    try:
        _upsert(
            store,
            partner,
            {"lastSuccess": {"at": timestamp(utcnow()), "direction": direction}},
        )
    except Exception:  # the status page must never fail the work it reports on
        logger.warning("could not record the %s link's success", partner, exc_info=True)


def record_failure(store: DocumentStore, partner: PartnerName, direction: str, reason: str) -> None:
    """Note that a call to (or a message from) the partner failed, and why."""
    try:
        _upsert(
            store,
            partner,
            {
                "lastFailure": {
                    "at": timestamp(utcnow()),
                    "direction": direction,
                    "reason": reason[:500],
                }
            },
        )
    except Exception:
        logger.warning("could not record the %s link's failure", partner, exc_info=True)


def _counts(services: Services, entity: str, subscription: str | None) -> dict[str, Any]:
    broker = services.messages
    out: dict[str, Any] = {"waiting": None, "deadLetters": None}
    if not isinstance(broker, MessageCounts):
        return out
    try:
        counts = broker.counts(entity, subscription)
    except Exception as exc:
        logger.warning("cannot count messages of %s/%s: %s", entity, subscription, exc)
        return out
    return {"waiting": counts.active, "deadLetters": counts.dead_lettered}


def enabled(services: Services, partner: PartnerName) -> bool:
    """Whether the partner's API is configured (its connector calls it)."""
    settings = services.settings
    url = (
        settings.fulfilment_partner_url
        if partner == "fulfilment"
        else settings.inventory_partner_url
    )
    return bool(url)


def link_status(services: Services) -> list[dict[str, Any]]:
    """Each partner link: enabled, last success, last failure, messages waiting and dead
    letters (outbound subscription and inbound queue, and their sums)."""
    container = services.documents.container(CONTAINER)
    settings = services.settings
    items = []
    for partner in PARTNERS:
        try:
            document = container.read(partner, partner)
        except NotFound:
            document = {}
        entities = LINKS[partner]
        outbound = {
            "subscription": entities.subscription,
            **_counts(services, settings.events_topic, entities.subscription),
        }
        inbound: dict[str, Any] | None = None
        if entities.queue_setting is not None:
            queue = str(getattr(settings, entities.queue_setting))
            inbound = {"queue": queue, **_counts(services, queue, None)}
        known = [c for c in (outbound, inbound) if c is not None and c["waiting"] is not None]
        items.append(
            {
                "partner": partner,
                "enabled": enabled(services, partner),
                "lastSuccess": document.get("lastSuccess"),
                "lastFailure": document.get("lastFailure"),
                "messagesWaiting": sum(c["waiting"] for c in known) if known else None,
                "deadLetters": sum(c["deadLetters"] for c in known) if known else None,
                "outbound": outbound,
                "inbound": inbound,
            }
        )
    return items


# --- data-processing records ----------------------------------------------------------------

PROCESSING_PREFIX = "processing:"


def _processing_id(customer_id: str) -> str:
    return f"{PROCESSING_PREFIX}{customer_id}"


def record_processing(
    store: DocumentStore, partner: PartnerName, customer_id: str, *, erased: bool = False
) -> None:
    """Note that the partner received (or, with `erased`, deleted) the customer's data: the
    data-processing record the customer's export lists. Holds no data but the id."""
    container = store.container(CONTAINER)
    now = timestamp(utcnow())
    field = "erasedAt" if erased else "lastSentAt"
    try:
        container.patch(_processing_id(customer_id), partner, [PatchOp("set", field, now)])
    except NotFound:
        document: dict[str, Any] = {
            "id": _processing_id(customer_id),
            "partner": partner,
            "kind": "processing",
            "customerId": customer_id,
            "firstSentAt": None if erased else now,
            "lastSentAt": None if erased else now,
        }
        if erased:
            document["erasedAt"] = now
        try:
            container.create(document)
        except Conflict:
            container.patch(_processing_id(customer_id), partner, [PatchOp("set", field, now)])


def processing_records(store: DocumentStore, customer_id: str) -> list[dict[str, Any]]:
    """Which partner systems received the customer's data, when, and whether they deleted
    it (one point read per partner)."""
    container = store.container(CONTAINER)
    records = []
    for partner in PARTNERS:
        try:
            found = container.read(_processing_id(customer_id), partner)
        except NotFound:
            continue
        records.append(
            {
                "system": partner,
                "firstSentAt": found.get("firstSentAt"),
                "lastSentAt": found.get("lastSentAt"),
                "erasedAt": found.get("erasedAt"),
            }
        )
    return records
