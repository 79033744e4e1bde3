"""Storefront events from the pages, sent to `POST /api/events` after the page is answered.

The browser's visitor id (or its session) names who they belong to, exactly as an app
would send them. They go out after the response so a page never waits on analytics; an
event the API refuses is logged and dropped: it never fails a page.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from cloudcart.web.client import ApiClient, ApiError
from cloudcart.web.security import visitor_id

_log = logging.getLogger(__name__)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """One storefront event (`product_viewed`, `search`, `add_to_cart`, ...)."""
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    return {"type": kind, **{k: v for k, v in fields.items() if v is not None}, "at": at}


async def _send(api: ApiClient, events: list[dict[str, Any]], visitor: str) -> None:
    try:
        await api.send(
            "POST", "/api/events", json={"events": events}, headers={"x-visitor-id": visitor}
        )
    except ApiError as exc:
        _log.warning("storefront events refused: %s %s", exc.status, exc.slug)


def record(api: ApiClient, response: Response, *events: dict[str, Any]) -> Response:
    """Send `events` once `response` has gone out."""
    if events:
        response.background = BackgroundTask(_send, api, list(events), visitor_id(api.request))
    return response
