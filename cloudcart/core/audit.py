"""The audit trail: who did what to which thing, and when.

Admin and privacy actions (resubmitting a dead letter, erasing a customer, ...) each leave a
document in the `audit` container, partitioned by the actor so "everything this admin did"
is a single-partition query, and a structured INFO log line so the same fact reaches
Application Insights without anyone reading the database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cloudcart.core.clock import utcnow
from cloudcart.core.ids import new_id
from cloudcart.core.ports.documents import Document, DocumentStore

AUDIT_CONTAINER = "audit"
"""Name of the container that holds audit records (partition key `/actorId`)."""

AUDIT_ID_PREFIX = "aud_"

logger = logging.getLogger(__name__)


def record_audit(
    documents: DocumentStore,
    *,
    actor_id: str,
    action: str,
    target: Mapping[str, Any],
    correlation_id: str | None = None,
) -> Document:
    """Write one audit record and log it; returns the stored document.

    `actor_id` is who acted (a customer id from a token, or `cli:<os user>`); `action` is a
    dotted verb such as `dead_letter.resubmit`; `target` describes what was acted on (plain
    JSON values). Call it after the action succeeded: the trail lists what happened, not
    what was attempted.
    """
    if not actor_id:
        raise ValueError("actor_id is required")
    if not action:
        raise ValueError("action is required")
    record: Document = {
        "id": new_id(AUDIT_ID_PREFIX),
        "actorId": actor_id,
        "action": action,
        "target": dict(target),
        "at": utcnow().isoformat(),
        "correlationId": correlation_id,
    }
    stored = documents.container(AUDIT_CONTAINER).create(record)
    # `extra` fields become top-level members of the JSON log line (see api/logging.py), so
    # the audit event can be queried in Application Insights by action or actor.
    logger.info(
        "audit %s by %s",
        action,
        actor_id,
        extra={
            "auditId": record["id"],
            "actorId": actor_id,
            "auditAction": action,
            "target": record["target"],
            "correlationId": correlation_id,
        },
    )
    return stored
