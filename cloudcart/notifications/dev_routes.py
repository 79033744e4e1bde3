"""Dev routes of the capture adapters (mounted only while email or texts are captured, never
in the OpenAPI document): what would have been sent (`/dev/notifications/sent`, admin
token), a browsable mailbox (`/dev/mailbox`), and provider faults for tests."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from cloudcart.api.deps import ServicesDep
from cloudcart.api.problems import Problem
from cloudcart.core.errors import NotFound
from cloudcart.core.ports.channels import ProviderError
from cloudcart.core.ports.documents import Document
from cloudcart.identity.dependencies import Admin
from cloudcart.notifications import capture
from cloudcart.notifications.store import NotificationStore

router = APIRouter(include_in_schema=False)


def _status(store: NotificationStore, captured: Document) -> str | None:
    record = store.get(str(captured.get("notificationId")), str(captured.get("customerId")))
    return None if record is None else str(record.get("status"))


def _item(store: NotificationStore, captured: Document) -> dict[str, Any]:
    return {
        "id": captured["id"],
        "notificationId": captured.get("notificationId"),
        "channel": captured.get("channel"),
        "to": captured.get("to"),
        "subject": captured.get("subject"),
        "text": captured.get("text"),
        "template": captured.get("template"),
        "eventId": _event_id(store, captured),
        "status": _status(store, captured),
        "createdAt": captured.get("createdAt"),
    }


def _event_id(store: NotificationStore, captured: Document) -> str | None:
    record = store.get(str(captured.get("notificationId")), str(captured.get("customerId")))
    return None if record is None else record.get("eventId")


@router.get("/dev/notifications/sent")
def sent(
    _: Admin,
    services: ServicesDep,
    to: Annotated[str, Query(min_length=3, max_length=320)],
    channel: Annotated[Literal["email", "sms", "whatsapp"] | None, Query()] = None,
) -> dict[str, Any]:
    """Every message the capture adapters kept for `to`, newest first (a duplicate send
    shows twice)."""
    store = NotificationStore(services.documents)
    items = capture.sent(services.documents, to, channel)
    return {"items": [_item(store, c) for c in items]}


class ErrorIn(BaseModel):
    """A provider failure to play on the next send."""

    status: int = Field(ge=400, le=599)
    retry_after: float | None = Field(None, alias="retryAfter", ge=0, le=60)
    code: str | None = None
    suppress: bool = False


class FaultsIn(BaseModel):
    """Faults of the capture adapters: failures for the next sends, and a hold after
    accepting a message (before the sender hears back)."""

    fail_next: list[ErrorIn] = Field(default_factory=list, alias="failNext", max_length=100)
    hold_after_send_seconds: float = Field(0, alias="holdAfterSendSeconds", ge=0, le=120)


@router.post("/dev/notifications/faults")
def set_faults(_: Admin, body: FaultsIn) -> dict[str, Any]:
    """Replace the capture adapters' faults (429/5xx are busy, other 4xx permanent)."""
    errors: list[ProviderError] = []
    for error in body.fail_next:
        if error.status == 429 or error.status >= 500:
            errors.append(capture.busy(error.status, error.retry_after))
        else:
            errors.append(
                capture.rejected(error.code or str(error.status), suppress=error.suppress)
            )
    with capture.faults.lock:
        capture.faults.fail_next = errors
        capture.faults.hold_after_send_seconds = body.hold_after_send_seconds
    return {"failNext": len(errors), "holdAfterSendSeconds": body.hold_after_send_seconds}


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>
body{{font:15px system-ui,sans-serif;margin:0;background:#f5f5f7;color:#222}}
main{{max-width:960px;margin:0 auto;padding:1rem}} table{{width:100%;border-collapse:collapse;
background:#fff}} td,th{{padding:.45rem .6rem;border-bottom:1px solid #eee;text-align:left;
vertical-align:top}} th{{background:#fafafa}} .pill{{font-size:12px;padding:1px 6px;
border-radius:8px;background:#eef}} iframe{{width:100%;height:70vh;border:1px solid #ddd;
background:#fff}} pre{{white-space:pre-wrap;background:#fff;padding:1rem;border:1px solid #ddd}}
</style></head><body><main>{body}</main></body></html>"""


@router.get("/dev/mailbox", response_class=HTMLResponse)
def mailbox(
    services: ServicesDep,
    to: Annotated[str | None, Query(max_length=320)] = None,
) -> HTMLResponse:
    """The local shop's outbox: every captured email, SMS and WhatsApp message."""
    items = capture.sent(services.documents, to, None) if to else capture.recent(services.documents)
    rows = "".join(
        "<tr><td>{at}</td><td><span class=pill>{channel}</span></td><td>{to}</td>"
        '<td><a href="/dev/mailbox/{pk}/{id}">{subject}</a></td><td>{template}</td></tr>'.format(
            at=escape(str(c.get("createdAt", ""))[:19].replace("T", " ")),
            channel=escape(str(c.get("channel"))),
            to=escape(str(c.get("to"))),
            pk=escape(str(c.get("to")), quote=True),
            id=escape(str(c["id"]), quote=True),
            subject=escape(str(c.get("subject") or (c.get("text") or "")[:60])),
            template=escape(str(c.get("template"))),
        )
        for c in items
    )
    heading = f"Mailbox of {escape(to)}" if to else "Mailbox: everything the shop sent"
    body = (
        f"<h1>{heading}</h1><p>{len(items)} message(s), newest first. Nothing here left "
        "this machine: email and texts are captured locally.</p><table><tr><th>When</th>"
        f"<th>Channel</th><th>To</th><th>Subject / text</th><th>Template</th></tr>{rows}</table>"
    )
    return HTMLResponse(_PAGE.format(title="Cloudcart mailbox", body=body))


@router.get("/dev/mailbox/{to}/{captureId}", response_class=HTMLResponse)
def mailbox_message(
    services: ServicesDep,
    to: Annotated[str, Path(max_length=320)],
    capture_id: Annotated[str, Path(alias="captureId", max_length=64)],
) -> HTMLResponse:
    """One captured message, rendered (HTML email in a sandboxed frame)."""
    try:
        captured = services.documents.container(capture.CONTAINER).read(capture_id, to)
    except NotFound:
        raise Problem(404, "Not Found", "no such captured message") from None
    html = captured.get("html")
    content = (
        f'<iframe sandbox srcdoc="{escape(str(html), quote=True)}"></iframe>'
        if html
        else f"<pre>{escape(str(captured.get('text') or ''))}</pre>"
    )
    title = escape(str(captured.get("subject") or captured.get("channel")))
    body = (
        f'<p><a href="/dev/mailbox">&larr; mailbox</a></p><h1>{title}</h1>'
        f"<p>To {escape(str(captured.get('to')))} &middot; {escape(str(captured.get('template')))}"
        f" &middot; {escape(str(captured.get('createdAt')))}</p>{content}"
        f"<h2>Text version</h2><pre>{escape(str(captured.get('text') or ''))}</pre>"
    )
    return HTMLResponse(_PAGE.format(title="Cloudcart mailbox", body=body))
