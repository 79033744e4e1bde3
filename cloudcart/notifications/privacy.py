"""The notifications area's part in a customer's data export and erasure.

`register()` (called by `cloudcart.api.app.create_app`) adds the export section
`notifications` (what was sent to the customer, on which channel, and its status; the
in-app feed; pending verifications without their codes) and an erasure step that deletes
every document in the customer's partition of the `notifications` container: records,
feed, verification codes and send limits.

Suppressed destinations are kept: they are a do-not-contact list (a bounced address, a
number that sent STOP), keyed by a hash of the destination, not by the customer, and
deleting them would let the shop message someone who asked it not to.
"""

from __future__ import annotations

from typing import Any

from cloudcart.customers.privacy import (
    PrivacyContext,
    register_erasure_contributor,
    register_export_contributor,
)
from cloudcart.notifications.store import NotificationStore

SECTION = "notifications"
_EXPORTED = (
    "id",
    "channel",
    "to",
    "template",
    "status",
    "subject",
    "text",
    "title",
    "link",
    "createdAt",
    "statusAt",
    "readAt",
)


def export(ctx: PrivacyContext) -> dict[str, Any]:
    """What the notifications area holds about the customer."""
    documents = NotificationStore(ctx.documents).customer_documents(ctx.customer_id)
    records = [
        {k: d.get(k) for k in _EXPORTED if k in d}
        for d in documents
        if d.get("kind") == "notification"
    ]
    verifications = [
        {"channel": d.get("channel"), "expiresAt": d.get("expiresAt")}
        for d in documents
        if d.get("kind") == "verification"
    ]
    return {"sent": records, "verifications": verifications}


def erase(ctx: PrivacyContext) -> None:
    """Delete every notifications document of the customer (idempotent)."""
    store = NotificationStore(ctx.documents)
    for document in store.customer_documents(ctx.customer_id):
        store.delete(document)


def register() -> None:
    """Add the `notifications` export section and erasure step."""
    register_export_contributor(SECTION, export)
    register_erasure_contributor(SECTION, erase)
