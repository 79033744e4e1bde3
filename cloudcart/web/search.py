"""The product search both the storefront's search page and the management's product list
run: `GET /api/search`, with a refused query shown on the page rather than failing it."""

from __future__ import annotations

from typing import Any

from cloudcart.web.client import ApiClient, ApiError


async def search_catalog(
    api: ApiClient, q: str, **params: Any
) -> tuple[dict[str, Any], str | None]:
    """The search's answer for `q` (trimmed) and `params`, and None; or, for a search the
    API refuses as a bad request (a stale cursor, a sort it does not know), an empty result
    and the API's message to show instead."""
    try:
        result: dict[str, Any] = await api.get("/api/search", q=q.strip(), **params)
    except ApiError as exc:
        if exc.status != 400:
            raise
        return {"items": [], "total": 0, "facets": {}}, exc.message
    return result, None
