"""Data export and erasure of a customer, pluggable per area.

Each area that stores personal data registers an **export contributor** (what it holds
about a customer, as JSON) and an **erasure contributor** (delete or anonymise it). The
customers area registers its own below; **the orders area must register an erasure
contributor that anonymises the orders kept for accounting** (and an export contributor
listing them) when its module is imported::

    from cloudcart.customers.privacy import register_erasure_contributor

    def anonymise_orders(ctx: PrivacyContext) -> None: ...  # idempotent!
    register_erasure_contributor("orders", anonymise_orders)

Erasure (`erase_customer`) is a small state machine on the `erasure` document in the
customer's partition, so a crash at any point is completed by the next attempt:

1. In one batch: mark the erasure `in-progress` and write the `customer.erased` event to
   the outbox (the event carries only the customer id). From here on partners are told,
   whatever happens to this process.
   The profile is deleted in that batch too, so nothing is served from half-erased data.
2. Run every erasure contributor (sessions, then other areas': history, orders, ...);
   each must be idempotent, because a retry runs them again.
3. Delete every document of the customer's `customers` partition (profile, addresses,
   preferences, consent history, in-app notifications, old `customer.*` outbox events)
   except the erasure marker and the `customer.erased` events.
4. Mark the erasure `completed`, then write the audit record.

While a marker is `in-progress`, the next authenticated call completes the erasure before
serving anything (`CustomerService.ensure_profile` raises ErasureInProgress). After a
completed erasure, the next authenticated call re-creates an empty profile from the token
claims (the identity provider still knows the account): none of the old data comes back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from cloudcart.core.audit import record_audit
from cloudcart.core.clock import utcnow
from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.events import new_event
from cloudcart.core.outbox import OUTBOX_KIND, write_with_events
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Query,
    each,
    every,
    strip_system,
)
from cloudcart.core.settings import Settings
from cloudcart.customers.documents import ErasureDocument, as_document
from cloudcart.customers.events import CustomerErased
from cloudcart.customers.service import (
    CONTAINER,
    ERASURE_ID,
    PREFERENCES_ID,
    PROFILE_ID,
    CustomerService,
)

logger = logging.getLogger(__name__)

ERASED_EVENT = "customer.erased"
SESSIONS_CONTAINER = "sessions"


@dataclass(frozen=True)
class PrivacyContext:
    """What a contributor needs: whose data, and the app's stores and settings."""

    customer_id: str
    documents: DocumentStore
    settings: Settings
    correlation_id: str | None = None


ExportContributor = Callable[[PrivacyContext], Any]
"""Returns the JSON-ready data an area holds about `ctx.customer_id`."""

ErasureContributor = Callable[[PrivacyContext], None]
"""Deletes or anonymises an area's data about `ctx.customer_id`. Must be idempotent: a
retried erasure calls it again, possibly after it half-finished."""

_lock = threading.Lock()
_export_contributors: dict[str, ExportContributor] = {}
_erasure_contributors: dict[str, ErasureContributor] = {}


def register_export_contributor(name: str, contributor: ExportContributor) -> None:
    """Add (or replace) the export section `name`."""
    with _lock:
        _export_contributors[name] = contributor


def register_erasure_contributor(name: str, contributor: ErasureContributor) -> None:
    """Add (or replace) the erasure step `name`; steps run in registration order."""
    with _lock:
        _erasure_contributors[name] = contributor


def unregister_contributors(name: str) -> None:
    """Remove the export and erasure contributors of `name` (tests use it to clean up)."""
    with _lock:
        _export_contributors.pop(name, None)
        _erasure_contributors.pop(name, None)


def export_contributors() -> dict[str, ExportContributor]:
    """The registered export contributors by section name."""
    with _lock:
        return dict(_export_contributors)


def erasure_contributors() -> dict[str, ErasureContributor]:
    """The registered erasure contributors by name, in the order they run."""
    with _lock:
        return dict(_erasure_contributors)


# --- export -------------------------------------------------------------------------------


def export_customer(ctx: PrivacyContext, *, actor_id: str) -> dict[str, Any]:
    """Everything the registered contributors hold about the customer, audited.

    Returns `{"customerId", "exportedAt", "sections": {name: data}}`.
    """
    sections = {name: contributor(ctx) for name, contributor in export_contributors().items()}
    record_audit(
        ctx.documents,
        actor_id=actor_id,
        action="customer.export",
        target={"customerId": ctx.customer_id, "sections": sorted(sections)},
        correlation_id=ctx.correlation_id,
    )
    return {
        "customerId": ctx.customer_id,
        "exportedAt": utcnow().isoformat(),
        "sections": sections,
    }


def _read_or_none(container: Container, id: str, partition_key: str) -> Document | None:
    try:
        return container.read(id, partition_key)
    except NotFound:
        return None


def _export_profile(ctx: PrivacyContext) -> Any:
    doc = _read_or_none(ctx.documents.container(CONTAINER), PROFILE_ID, ctx.customer_id)
    return strip_system(doc) if doc else None


def _export_addresses(ctx: PrivacyContext) -> Any:
    service = CustomerService(ctx.documents)
    return [strip_system(a) for a in service.list_addresses(ctx.customer_id)]


def _export_preferences(ctx: PrivacyContext) -> Any:
    doc = _read_or_none(ctx.documents.container(CONTAINER), PREFERENCES_ID, ctx.customer_id)
    return strip_system(doc) if doc else None


def _export_consent_history(ctx: PrivacyContext) -> Any:
    service = CustomerService(ctx.documents)
    return [strip_system(e) for e in service.consent_history(ctx.customer_id)]


_COVERED_KINDS = frozenset({"profile", "address", "preferences", "consent"})


def _export_customer_documents(ctx: PrivacyContext) -> Any:
    # Whatever else lives in the partition (in-app notifications, the address book, events
    # about the customer waiting in the outbox, ...): export is "everything we hold".
    container = ctx.documents.container(CONTAINER)
    return [
        strip_system(d)
        for d in each(container, Query(), partition_key=ctx.customer_id)
        if d.get("kind") not in _COVERED_KINDS
    ]


_SESSION_METADATA = ("createdAt", "lastSeenAt", "expiresAt")


def _session_documents(ctx: PrivacyContext) -> list[Document]:
    # Sessions are partitioned by their hashed id, so this is a cross-partition query; it
    # runs only for exports, never on a hot path.
    container = ctx.documents.container(SESSIONS_CONTAINER)
    query = Query(
        filters=(Filter("kind", "eq", "web-session"), Filter("customerId", "eq", ctx.customer_id))
    )
    return every(container, query)


def _export_sessions(ctx: PrivacyContext) -> Any:
    # Metadata only: the document id is a hash of the live cookie, and tokens and the CSRF
    # token are credentials; none of them belongs in a file the customer downloads.
    out = []
    for doc in _session_documents(ctx):
        claims = doc.get("claims", {})
        out.append(
            {
                **{k: doc.get(k) for k in _SESSION_METADATA},
                "email": claims.get("email"),
                "name": claims.get("name"),
                "issuer": claims.get("issuer"),
            }
        )
    return out


# --- erasure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureResult:
    """What an erasure did."""

    customer_id: str
    event_id: str | None
    """Id of the `customer.erased` event; None when the customer was already erased and
    nothing new had been stored since."""
    deleted_documents: int


def _erase_sessions(ctx: PrivacyContext) -> None:
    from cloudcart.identity.sessions import session_store

    session_store(ctx.documents, ctx.settings).delete_for_customer(ctx.customer_id)


def _delete_partition(
    container: Container, partition_key: str, keep: Callable[[Document], bool]
) -> int:
    # Collect first, delete after: deleting while paging would shift later pages.
    doomed = [d["id"] for d in each(container, Query(), partition_key=partition_key) if not keep(d)]
    deleted = 0
    for doc_id in doomed:
        try:
            container.delete(doc_id, partition_key)
            deleted += 1
        except NotFound:
            pass  # a concurrent retry got there first
    return deleted


def _holds_data(container: Container, customer_id: str) -> bool:
    for doc in each(container, Query(), partition_key=customer_id):
        if doc["id"] != ERASURE_ID and not _is_erased_event(doc):
            return True
    return False


def _is_erased_event(doc: Document) -> bool:
    event = doc.get("event")
    return (
        doc.get("kind") == OUTBOX_KIND
        and isinstance(event, dict)
        and event.get("type") == ERASED_EVENT
    )


def _start(ctx: PrivacyContext, container: Container) -> tuple[ErasureDocument, bool]:
    """The in-progress marker, starting a new erasure (with its event) when none is
    running. Returns (marker, whether the customer was already erased)."""
    for _ in range(5):
        marker = cast(
            "ErasureDocument | None", _read_or_none(container, ERASURE_ID, ctx.customer_id)
        )
        if marker is not None and marker.get("status") == "in-progress":
            return marker, False  # resume an interrupted erasure
        if marker is not None and not _holds_data(container, ctx.customer_id):
            # Completed before, and nothing stored since: a retry of a finished erasure.
            # Other areas' contributors still run (they are idempotent), but partners were
            # told already, so no second event.
            return marker, True
        data: CustomerErased = {"customerId": ctx.customer_id}
        event = new_event(ERASED_EVENT, ctx.customer_id, data, correlation_id=ctx.correlation_id)
        started: ErasureDocument = {
            "id": ERASURE_ID,
            "kind": "erasure",
            "customerId": ctx.customer_id,
            "status": "in-progress",
            "eventId": event.id,
            "startedAt": utcnow().isoformat(),
        }
        ops = [
            BatchOp("create", document=as_document(started))
            if marker is None
            else BatchOp("replace", document=as_document(started), if_match=marker["_etag"])
        ]
        # The profile goes in the same batch: from this moment no request is served from
        # the half-erased data, because a missing profile makes `ensure_profile` look at
        # the marker (and finish the erasure) instead of answering.
        profile = _read_or_none(container, PROFILE_ID, ctx.customer_id)
        if profile is not None:
            ops.append(BatchOp("delete", id=PROFILE_ID, if_match=profile["_etag"]))
        try:
            written = write_with_events(container, ctx.customer_id, ops, [event])[0]
            return cast(ErasureDocument, written), False
        except BatchFailed as exc:
            if isinstance(exc.cause, Conflict | PreconditionFailed):
                continue  # a concurrent erasure started first: resume it
            raise
    raise PreconditionFailed("erasure marker kept changing")


def erase_customer(ctx: PrivacyContext, *, actor_id: str) -> ErasureResult:
    """Erase everything about the customer (see the module docs); idempotent, audited."""
    container = ctx.documents.container(CONTAINER)
    marker, already_erased = _start(ctx, container)
    for name, contributor in erasure_contributors().items():
        logger.info("erasure of %s: %s", ctx.customer_id, name)
        contributor(ctx)
    deleted = _delete_partition(
        container,
        ctx.customer_id,
        lambda d: d["id"] == ERASURE_ID or _is_erased_event(d),
    )
    if not already_erased:
        completed = {
            **strip_system(marker),
            "status": "completed",
            "completedAt": utcnow().isoformat(),
        }
        # PreconditionFailed: a concurrent attempt completed it (or restarted it, and that
        # attempt will finish it).
        with suppress(PreconditionFailed):
            container.replace(completed, if_match=marker["_etag"])
    event_id = None if already_erased else str(marker.get("eventId"))
    record_audit(
        ctx.documents,
        actor_id=actor_id,
        action="customer.erase",
        target={"customerId": ctx.customer_id, "eventId": event_id},
        correlation_id=ctx.correlation_id,
    )
    return ErasureResult(ctx.customer_id, event_id, deleted)


# The customers area's own contributors. Sessions are erased before the customers
# partition, so an interrupted erasure never leaves a live session behind a deleted profile;
# the `events` partition (history) is the insights area's contributor.
register_export_contributor("profile", _export_profile)
register_export_contributor("addresses", _export_addresses)
register_export_contributor("preferences", _export_preferences)
register_export_contributor("consentHistory", _export_consent_history)
register_export_contributor("sessions", _export_sessions)
register_export_contributor("customerDocuments", _export_customer_documents)
register_erasure_contributor("sessions", _erase_sessions)

__all__ = [
    "ErasureContributor",
    "ErasureResult",
    "ExportContributor",
    "PrivacyContext",
    "erase_customer",
    "erasure_contributors",
    "export_contributors",
    "export_customer",
    "register_erasure_contributor",
    "register_export_contributor",
    "unregister_contributors",
]
