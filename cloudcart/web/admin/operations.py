"""Keeping the shop running: dead letters (list, read, resubmit, purge), the health of the
partner links, and the notification log."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from typing import Annotated, Any

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web.admin.common import AdminPage, open_admin, open_admin_form
from cloudcart.web.client import ApiError
from cloudcart.web.forms import segment
from cloudcart.web.pages import notices, web_router

router = web_router()

DEAD_LETTERS_STEP = 50
DEAD_LETTERS_MAX = 500
DEAD_LETTER_DONE = {
    "resubmitted": "The message was put back on its queue.",
    "purged": "The dead letter was deleted.",
    "gone": "That dead letter was already resubmitted or purged.",
}
NOTIFICATIONS_PAGE = 50
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "delivered", "bounced", "failed")
NOTIFICATION_CHANNELS = {"email": "Email", "sms": "SMS", "whatsapp": "WhatsApp", "inApp": "In app"}


# --- dead letters --------------------------------------------------------------------------


def pretty_body(letter: Mapping[str, Any]) -> str:
    """A dead letter's body for reading: indented JSON, or the text as it came."""
    body = letter.get("body")
    if letter.get("bodyEncoding") == "json":
        return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True)
    return str(body)


@router.get("/admin/dead-letters")
async def dead_letters(
    request: Request,
    entity: Annotated[str, Query(max_length=50)] = "",
    subscription: Annotated[str, Query(max_length=50)] = "",
    limit: Annotated[str, Query(max_length=5)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Dead letters of every queue and subscription (or one), oldest first within each.

    The API lists up to 500 without a cursor: "Show more" asks for a longer list.
    """
    admin = await open_admin(request)
    try:
        count = min(max(int(limit), 1), DEAD_LETTERS_MAX)
    except ValueError:
        count = DEAD_LETTERS_STEP
    error = None
    try:
        result = await admin.api.get(
            "/api/admin/dead-letters",
            entity=entity.strip(),
            subscription=subscription.strip(),
            limit=count,
        )
    except ApiError as exc:
        # An unknown queue or subscription: said on the page, with the filters to change.
        if exc.status != 404:
            raise
        result, error = {"items": []}, exc.message
    items = result["items"]
    more = len(items) >= count and count < DEAD_LETTERS_MAX
    return admin.render(
        "admin/dead_letters.html",
        status=404 if error else 200,
        items=items,
        entity=entity,
        subscription=subscription,
        error=error,
        next_limit=min(count + DEAD_LETTERS_STEP, DEAD_LETTERS_MAX) if more else None,
        notices=notices(DEAD_LETTER_DONE, done),
    )


@router.get("/admin/dead-letters/{letter_id}")
async def dead_letter(request: Request, letter_id: str) -> Response:
    """One dead letter: why it failed, its properties and its body."""
    admin = await open_admin(request)
    letter = await admin.api.get(f"/api/admin/dead-letters/{segment(letter_id)}")
    return admin.render("admin/dead_letter.html", letter=letter, body=pretty_body(letter))


async def _settle(admin: AdminPage, call: Awaitable[Any], done: str) -> Response:
    """Resubmit or purge a dead letter, then list them again with what was done; one that
    is gone already (404: another admin was quicker) is said so rather than an error."""
    try:
        await call
    except ApiError as exc:
        if exc.status != 404:
            raise
        done = "gone"
    return admin.redirect(f"/admin/dead-letters?done={done}")


@router.post("/admin/dead-letters/{letter_id}/resubmit")
async def resubmit_dead_letter(request: Request, letter_id: str) -> Response:
    """Put the message back on its queue or subscription."""
    admin, _ = await open_admin_form(request)
    path = f"/api/admin/dead-letters/{segment(letter_id)}/resubmit"
    return await _settle(admin, admin.api.post(path), "resubmitted")


@router.post("/admin/dead-letters/{letter_id}/purge")
async def purge_dead_letter(request: Request, letter_id: str) -> Response:
    """Delete the dead letter for good."""
    admin, _ = await open_admin_form(request)
    path = f"/api/admin/dead-letters/{segment(letter_id)}"
    return await _settle(admin, admin.api.send("DELETE", path), "purged")


# --- integrations and notifications --------------------------------------------------------


def link_health(link: Mapping[str, Any]) -> tuple[str, str]:
    """A partner link's badge: (words, badge class)."""
    if not link.get("enabled"):
        return "Not configured", ""
    success = (link.get("lastSuccess") or {}).get("at") or ""
    failure = (link.get("lastFailure") or {}).get("at") or ""
    if failure and failure > success:
        return "Failing", "bad"
    if link.get("deadLetters"):
        return "Dead letters waiting", "warn"
    if not success:
        return "No traffic yet", ""
    return "Healthy", "ok"


@router.get("/admin/integrations")
async def integrations(request: Request) -> Response:
    """How each partner link is doing: last success and failure, backlog, dead letters."""
    admin = await open_admin(request)
    result = await admin.api.get("/api/admin/integrations")
    return admin.render("admin/integrations.html", links=result["items"], health=link_health)


@router.get("/admin/notifications")
async def notifications(
    request: Request,
    customer: Annotated[str, Query(max_length=256)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """The notification log, newest first, by customer, status and channel."""
    admin = await open_admin(request)
    error = None
    if status and status not in NOTIFICATION_STATUSES:
        error = "Choose one of the statuses offered."
    elif channel and channel not in NOTIFICATION_CHANNELS:
        error = "Choose one of the channels offered."
    result: dict[str, Any] = {"items": [], "cursor": None}
    if error is None:
        result = await admin.api.get(
            "/api/admin/notifications",
            customerId=customer.strip(),
            status=status,
            channel=channel,
            cursor=cursor,
            limit=NOTIFICATIONS_PAGE,
        )
    return admin.render(
        "admin/notifications.html",
        status=400 if error else 200,
        error=error,
        result=result,
        selected={"customer": customer, "status": status, "channel": channel},
        statuses=NOTIFICATION_STATUSES,
        channels=NOTIFICATION_CHANNELS,
        paged=bool(cursor),
    )
