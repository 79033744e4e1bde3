"""The web pages' HTTP client for the public API.

Pages call the API the way any client does: over HTTP, with the browser's session cookie,
cart id and visitor id passed on. By default the request goes through the app in-process
(httpx's ASGI transport: the same middleware, routing, validation and problem documents as
over the network, without a socket); `CLOUDCART_WEB_API_URL` sends it to another host
instead, for a front end deployed apart from the API.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request

from cloudcart.web.security import SESSION_COOKIE, VISITOR_COOKIE

_TIMEOUT = httpx.Timeout(30.0)
_FORWARDED_HEADERS = ("x-correlation-id", "user-agent", "accept-language")


class ApiError(Exception):
    """The API answered with an error status; `problem` is its problem document."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        super().__init__(f"{status} {self.title}")

    @property
    def title(self) -> str:
        """The problem's title (or the status when the body had none)."""
        return str(self.problem.get("title") or self.status)

    @property
    def message(self) -> str:
        """What to show the shopper: the problem's detail, else its title."""
        return str(self.problem.get("detail") or self.title)

    @property
    def slug(self) -> str:
        """The last segment of the problem type (`out-of-stock`), or "" for about:blank."""
        kind = str(self.problem.get("type") or "")
        return "" if kind in ("", "about:blank") else kind.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class ApiResponse:
    """An answer of the API: status, headers and the decoded JSON body (None if empty)."""

    status: int
    headers: httpx.Headers
    body: Any


@dataclass
class ApiClient:
    """Calls the public API on behalf of one browser request.

    `csrf_token` is the signed-in session's token (from `GET /auth/session`); it is sent on
    unsafe calls, as the API requires of cookie-authenticated requests.
    """

    request: Request
    csrf_token: str | None = None

    @property
    def signed_in_cookie(self) -> str | None:
        """The browser's session cookie, if it sent one."""
        return self.request.cookies.get(SESSION_COOKIE)

    def _headers(self, method: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"accept": "application/json"}
        for name in _FORWARDED_HEADERS:
            value = self.request.headers.get(name)
            if value:
                headers[name] = value
        session = self.signed_in_cookie
        if session:
            headers["cookie"] = f"{SESSION_COOKIE}={session}"
            if method not in ("GET", "HEAD") and self.csrf_token:
                headers["x-csrf-token"] = self.csrf_token
        visitor = self.request.cookies.get(VISITOR_COOKIE)
        if visitor:
            headers["x-visitor-id"] = visitor
        headers.update(extra or {})
        return headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """Call the API; raise `ApiError` for a 4xx/5xx answer."""
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        response = await _http(self.request).request(
            method,
            path,
            params=query,
            json=json,
            headers=self._headers(method, headers),
        )
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, body if isinstance(body, dict) else {})
        return ApiResponse(response.status_code, response.headers, body)

    async def get(self, path: str, **params: Any) -> Any:
        """GET and return the JSON body."""
        return (await self.send("GET", path, params=params)).body

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST and return the JSON body."""
        return (await self.send("POST", path, json=json, **kwargs)).body

    async def optional(self, path: str, default: Any = None, **params: Any) -> Any:
        """GET, answering `default` instead of raising when the API refuses or fails: for
        the parts of a page that may be missing (a shelf, a count) without failing it."""
        try:
            return await self.get(path, **params)
        except ApiError:
            return default

    async def gather(self, *calls: Any) -> list[Any]:
        """Run several calls concurrently (a page's independent reads)."""
        return list(await asyncio.gather(*calls))

    async def each(self, path: str, keys: Iterable[str]) -> dict[str, Any]:
        """GET `path` once for each distinct key (put in its `{}` as one path segment),
        concurrently, like `optional`: the answers by key, without the ones the API refused
        and the keys that cannot be a path segment."""
        unique = [key for key in dict.fromkeys(keys) if key not in _DOT_SEGMENTS]
        found = await self.gather(*(self.optional(path.format(segment(key))) for key in unique))
        return {key: answer for key, answer in zip(unique, found, strict=True) if answer}


_DOT_SEGMENTS = ("", ".", "..")


def segment(value: str) -> str:
    """`value` quoted as one segment of an API path. ValueError for an empty value or a dot
    segment: URL normalisation would make it another path (`/api/orders/..` is `/api`)."""
    if value in _DOT_SEGMENTS:
        raise ValueError(f"not a path segment: {value!r}")
    return urllib.parse.quote(value, safe="")


def _http(request: Request) -> httpx.AsyncClient:
    """One pooled client per app: in-process unless `CLOUDCART_WEB_API_URL` is set."""
    state = request.app.state
    client: httpx.AsyncClient | None = getattr(state, "web_api_client", None)
    if client is None:
        base_url = state.services.settings.web_api_url
        if base_url:
            client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=_TIMEOUT)
        else:
            transport = httpx.ASGITransport(app=request.app)
            client = httpx.AsyncClient(
                transport=transport, base_url="http://cloudcart.internal", timeout=_TIMEOUT
            )
        state.web_api_client = client
    return client
