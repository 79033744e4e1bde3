"""Notification routes: the customer's in-app feed (`/api/me/notifications`), support's view
(`/api/admin/notifications`, template previews) and the providers' webhooks
(`/api/webhooks/sendgrid`, `/api/webhooks/twilio/status`, `/api/webhooks/twilio/inbound`).

Every webhook verifies its signature on the raw body before reading anything: unsigned or
badly signed requests get 401 and change nothing. With its verification key or auth token
unset a webhook refuses everything (fails closed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.api.responses import (
    BASE64URL_CURSOR,
    PageCursor,
    is_base64url,
    problem_responses,
)
from cloudcart.core.clock import utcnow
from cloudcart.core.ports.documents import Document
from cloudcart.identity.dependencies import Admin, CurrentCustomer
from cloudcart.notifications import signatures, templates, webhooks
from cloudcart.notifications.store import STATUSES, NotificationStore

router = APIRouter(prefix="/api/me/notifications", tags=["notifications"])
admin_router = APIRouter(prefix="/api/admin/notifications", tags=["admin"])
webhook_router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

MAX_WEBHOOK_BYTES = 1024 * 1024
_FEED_CACHE = "private, no-cache"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class FeedItem(_Wire):
    """One in-app notification."""

    id: str
    type: str = Field(description="The template: `order-paid`, `order-shipped`, ...")
    title: str
    body: str
    link: str | None = Field(description="Where the app opens it (`/orders/ord_...`).")
    created_at: datetime
    read_at: datetime | None


class Feed(_Wire):
    """A page of the in-app feed, newest first."""

    items: list[FeedItem]
    unread: int = Field(description="Unread notifications in the whole feed.")
    cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class ReadAll(_Wire):
    """What `read-all` changed."""

    marked: int = Field(description="How many notifications were unread and are now read.")
    unread: int


class NotificationRecord(_Wire):
    """A notification as support sees it."""

    id: str
    customer_id: str
    channel: Literal["email", "sms", "whatsapp", "inApp"]
    to: str
    template: str
    message_kind: str
    locale: str | None
    event_id: str
    event_type: str | None
    status: Literal["pending", "sending", "sent", "delivered", "bounced", "failed"]
    attempts: int
    subject: str | None
    text: str | None
    provider_message_id: str | None
    error: dict[str, Any] | None
    not_before: datetime | None
    created_at: datetime
    status_at: datetime | None


class NotificationList(_Wire):
    """A page of notification records, newest first."""

    items: list[NotificationRecord]
    cursor: str | None


class Preview(_Wire):
    """A template rendered with its sample data."""

    template: str
    channel: str
    locale: str
    subject: str | None
    text: str
    html: str | None
    title: str | None
    link: str | None
    variables: dict[str, str]


class Received(_Wire):
    """A webhook's acknowledgement."""

    received: bool = True
    applied: int = 0


def _feed_item(document: Document) -> FeedItem:
    return FeedItem(
        id=document["id"],
        type=document["template"],
        title=document.get("title") or "",
        body=document.get("text") or "",
        link=document.get("link"),
        created_at=document["createdAt"],
        read_at=document.get("readAt"),
    )


def _record(document: Document) -> NotificationRecord:
    values = {
        to_camel(name): document.get(to_camel(name)) for name in NotificationRecord.model_fields
    }
    values["attempts"] = int(document.get("attempts") or 0)
    return NotificationRecord.model_validate(values)


def _bad_cursor() -> Problem:
    return Problem.of("bad-cursor", "cursor is not one this API returned")


def _cursor(continuation: str | None) -> str | None:
    # The store's continuation (JSON text in Cosmos DB) as base64url, the shape the document
    # declares for every cursor.
    if continuation is None:
        return None
    return base64.urlsafe_b64encode(continuation.encode()).decode()


def _continuation(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    if not is_base64url(cursor):
        raise _bad_cursor()
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:  # bad padding or not UTF-8
        raise _bad_cursor() from None


# --- the customer's feed ----------------------------------------------------------------


@router.get(
    "",
    response_model=Feed,
    summary="The signed-in customer's in-app notifications",
    responses={
        304: {"description": "Not Modified: nothing changed since the If-None-Match ETag."},
        **problem_responses(400, 401),
    },
)
def get_feed(
    caller: CurrentCustomer,
    services: ServicesDep,
    cursor: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="`cursor` of the previous page.",
            json_schema_extra=BASE64URL_CURSOR,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
) -> Response:
    """Newest first, with the unread count. The `ETag` changes whenever an item arrives or
    is read, so apps poll with `If-None-Match` and get 304 (one point read) when nothing
    changed."""
    store = NotificationStore(services.documents)
    state = store.feed_state(caller.customer_id)
    version = f"{state.get('_etag', 'none')}|{cursor}|{limit}"
    etag = '"' + hashlib.sha256(version.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": _FEED_CACHE}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    try:
        items, next_cursor = store.feed_page(caller.customer_id, limit, _continuation(cursor))
    except ValueError:
        raise _bad_cursor() from None
    feed = Feed(
        items=[_feed_item(i) for i in items],
        unread=int(state.get("unread", 0)),
        cursor=_cursor(next_cursor),
    )
    return Response(
        feed.model_dump_json(by_alias=True), media_type="application/json", headers=headers
    )


@router.post(
    "/read-all",
    response_model=ReadAll,
    summary="Mark every in-app notification read",
    responses=problem_responses(401),
)
def read_all(caller: CurrentCustomer, services: ServicesDep) -> ReadAll:
    """Marks all unread items read; the unread count becomes 0."""
    store = NotificationStore(services.documents)
    ids = store.unread_ids(caller.customer_id)
    marked = store.mark_read(caller.customer_id, ids, utcnow().isoformat()) if ids else 0
    unread = int(store.feed_state(caller.customer_id).get("unread", 0))
    return ReadAll(marked=marked, unread=unread)


@router.post(
    "/{notificationId}/read",
    response_model=FeedItem,
    summary="Mark one in-app notification read",
    responses=problem_responses(401, 404),
)
def read_one(
    notification_id: Annotated[str, Path(alias="notificationId", max_length=64)],
    caller: CurrentCustomer,
    services: ServicesDep,
) -> FeedItem:
    """Idempotent: an item read before keeps its first `readAt`."""
    store = NotificationStore(services.documents)
    item = store.get(notification_id, caller.customer_id)
    if item is None or item.get("channel") != "inApp":
        raise Problem.of("notification-not-found", "no such notification")
    if not item.get("readAt"):
        store.mark_read(caller.customer_id, [notification_id], utcnow().isoformat())
        item = store.get(notification_id, caller.customer_id) or item
    return _feed_item(item)


# --- support ------------------------------------------------------------------------------


@admin_router.get(
    "",
    response_model=NotificationList,
    summary="Notification records (support)",
    responses=problem_responses(400, 401, 403),
)
def list_notifications(
    _: Admin,
    services: ServicesDep,
    customer_id: Annotated[str | None, Query(alias="customerId", max_length=256)] = None,
    status: Annotated[
        Literal["pending", "sending", "sent", "delivered", "bounced", "failed"] | None, Query()
    ] = None,
    channel: Annotated[Literal["email", "sms", "whatsapp", "inApp"] | None, Query()] = None,
    cursor: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> NotificationList:
    """Newest first; filter by customer (one partition: cheap), status and channel."""
    assert status is None or status in STATUSES
    store = NotificationStore(services.documents)
    try:
        items, next_cursor = store.search(
            customer_id=customer_id,
            status=status,
            channel=channel,
            limit=limit,
            cursor=_continuation(cursor),
        )
    except ValueError:
        raise _bad_cursor() from None
    return NotificationList(items=[_record(i) for i in items], cursor=_cursor(next_cursor))


@admin_router.get(
    "/templates/{name}/preview",
    response_model=Preview,
    summary="Render a notification template with sample data",
    responses=problem_responses(401, 403, 404),
)
def preview_template(
    name: Annotated[str, Path(max_length=64)],
    _: Admin,
    channel: Annotated[Literal["email", "sms", "whatsapp", "inApp"], Query()] = "email",
    locale: Annotated[str | None, Query(max_length=35)] = None,
) -> Preview:
    """What a customer would receive, rendered from the template's sample data."""
    spec = templates.TEMPLATES.get(name)
    if spec is None:
        raise Problem.of("template-not-found", f"no template {name!r}")
    try:
        rendered = templates.render(name, channel, locale, spec.sample)
    except templates.UnknownTemplate:
        raise Problem.of(
            "template-not-found",
            f"template {name!r} has no {channel} version (it has {', '.join(spec.channels)})",
        ) from None
    return Preview(
        template=name,
        channel=channel,
        locale=rendered.locale,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        title=rendered.title,
        link=rendered.link,
        variables=dict(rendered.variables),
    )


# --- webhooks -------------------------------------------------------------------------------


def _unauthorized(detail: str) -> Problem:
    return Problem.of("invalid-webhook-signature", detail)


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Problem(413, "Webhook too large", f"At most {MAX_WEBHOOK_BYTES} bytes.")
    return body


@webhook_router.post(
    "/sendgrid",
    response_model=Received,
    summary="SendGrid Event Webhook (delivery events)",
    description="Called by SendGrid, never by clients. Signed with ECDSA: "
    "`X-Twilio-Email-Event-Webhook-Signature` over `X-Twilio-Email-Event-Webhook-Timestamp` "
    "plus the raw body; unsigned, tampered or stale requests get 401.",
    responses=problem_responses(400, 401, 413),
)
async def sendgrid_events(
    request: Request,
    services: ServicesDep,
    signature: Annotated[
        str | None, Header(alias="X-Twilio-Email-Event-Webhook-Signature", max_length=512)
    ] = None,
    timestamp: Annotated[
        str | None, Header(alias="X-Twilio-Email-Event-Webhook-Timestamp", max_length=32)
    ] = None,
) -> Received:
    """Verify, then apply each delivery event to its notification."""
    body = await _body(request)
    settings = services.settings
    key = settings.sendgrid_webhook_public_key
    if not key or not signatures.verify_sendgrid(
        key,
        signature,
        timestamp,
        body,
        now=utcnow(),
        tolerance_seconds=settings.notifications_webhook_tolerance_seconds,
    ):
        raise _unauthorized("the event webhook signature is missing, stale or wrong")
    try:
        events = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Problem.of("invalid-webhook-body", "the body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Problem.of("invalid-webhook-body", "expected a JSON array of events")
    applied = await run_in_threadpool(webhooks.handle_sendgrid_events, services, events)
    return Received(applied=applied)


async def _twilio_form(
    request: Request, services: ServicesDep, signature: str | None
) -> dict[str, str]:
    body = await _body(request)
    token = services.settings.twilio_auth_token
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise _unauthorized("the body is not a signed form") from None
    url = signatures.public_url(
        services.settings.public_base_url, request.url.path, request.url.query
    )
    if token is None or not signatures.verify_twilio(
        token.get_secret_value(), url, form, signature
    ):
        raise _unauthorized("X-Twilio-Signature is missing or wrong")
    return form


@webhook_router.post(
    "/twilio/status",
    response_model=Received,
    summary="Twilio message status callback",
    description="Called by Twilio with the `StatusCallback` our sends name. Verified with "
    "`X-Twilio-Signature` against the public URL (CLOUDCART_PUBLIC_BASE_URL); 401 otherwise.",
    responses=problem_responses(401, 413),
)
async def twilio_status(
    request: Request,
    services: ServicesDep,
    signature: Annotated[str | None, Header(alias="X-Twilio-Signature", max_length=512)] = None,
    notification: Annotated[str | None, Query(alias="n", max_length=64)] = None,
    customer: Annotated[str | None, Query(alias="c", max_length=256)] = None,
) -> Received:
    """Verify, then move the notification's status forward."""
    form = await _twilio_form(request, services, signature)
    if not notification or not customer:
        return Received(applied=0)
    record = await run_in_threadpool(
        webhooks.handle_twilio_status, services, notification, customer, form
    )
    return Received(applied=0 if record is None else 1)


@webhook_router.post(
    "/twilio/inbound",
    summary="Twilio inbound SMS/WhatsApp (STOP, START, HELP)",
    description="Called by Twilio for messages customers send us. Verified with "
    "`X-Twilio-Signature`; answers TwiML.",
    responses={200: {"content": {"text/xml": {}}}, **problem_responses(401, 413)},
)
async def twilio_inbound(
    request: Request,
    services: ServicesDep,
    signature: Annotated[str | None, Header(alias="X-Twilio-Signature", max_length=512)] = None,
) -> Response:
    """STOP and START change SMS/WhatsApp consent; HELP replies with how to get help."""
    form = await _twilio_form(request, services, signature)
    reply = await run_in_threadpool(webhooks.handle_inbound, services, form)
    if reply is None:
        twiml = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    else:
        from xml.sax.saxutils import escape

        twiml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
            f"{escape(reply)}</Message></Response>"
        )
    return Response(twiml, media_type="text/xml")
