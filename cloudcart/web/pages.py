"""Rendering web pages: the Jinja2 environment, versioned static assets and `Page`.

A route handler opens a `Page` (which asks the API who is signed in), makes its API calls
through `page.api`, and answers `page.render(template, **context)`. `WebRoute` turns what
can go wrong into pages: a refused CSRF token is a 403 page, an API 401 (or a page's
`require_sign_in`) sends the browser to sign in, an API 404 is the not-found page, anything
else the API refused shows its problem's detail.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import urllib.parse
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from cloudcart.core.settings import Settings
from cloudcart.identity.sessions import cookie_secure
from cloudcart.identity.web_login import end_session_url
from cloudcart.web.client import ApiClient, ApiError
from cloudcart.web.security import (
    CSRF_FIELD,
    CsrfFailed,
    check_csrf,
    content_security_policy,
    csrf_token,
    finish,
    visitor_id,
)

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_PREFIX = "/static/"
_IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def asset_digest(name: str) -> str:
    """A short content hash of a static file: part of its URL, so a URL never changes
    content and can be cached for a year."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    """The versioned URL of a file under static/."""
    return f"{STATIC_PREFIX}{asset_digest(name)}/{name}"


def _money(amount: Any, currency: Any = "") -> str:
    """Minor units to a display string: 129900, "INR" -> "INR 1,299.00"."""
    try:
        value = int(amount) / 100
    except (TypeError, ValueError):
        return ""
    text = f"{value:,.2f}"
    return f"{currency} {text}" if currency else text


def _when(value: Any) -> str:
    """An RFC 3339 time as "30 Nov 2026, 14:05 UTC"."""
    if not value:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.astimezone(datetime.UTC).strftime("%d %b %Y, %H:%M UTC")


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params.extend((k, str(v)) for k, v in changes.items() if v is not None and v != "")
    return "?" + urllib.parse.urlencode(params) if params else "?"


@functools.cache
def environment() -> jinja2.Environment:
    """The templates, with autoescaping on for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset_url
    env.filters["money"] = _money
    env.filters["when"] = _when
    return env


def notices(messages: Mapping[str, str], done: str | None) -> list[str]:
    """The fixed message an outcome code (`?done=`) names; an unknown code shows nothing,
    so no text of the query string ever reaches the page."""
    message = messages.get(done or "")
    return [message] if message else []


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.services.settings
    return settings


@dataclass
class Page:
    """One browser request being answered with a page."""

    request: Request
    api: ApiClient
    session: dict[str, Any] | None

    @property
    def settings(self) -> Settings:
        """The app's settings."""
        return settings_of(self.request)

    @property
    def signed_in(self) -> bool:
        """Whether a customer is signed in."""
        return self.session is not None

    def require_sign_in(self, return_to: str | None = None) -> None:
        """Send a visitor who is not signed in to sign in (raises `SignInRequired`), coming
        back to `return_to`: this page, unless it is a form's target."""
        if self.session is None:
            raise SignInRequired(self, return_to)

    def login_url(self, return_to: str | None = None) -> str:
        """Where to send the browser to sign in, coming back to `return_to` (this page)."""
        target = return_to or self.request.url.path
        if return_to is None and self.request.url.query:
            target += "?" + self.request.url.query
        return "/auth/login?" + urllib.parse.urlencode({"returnTo": target})

    def context(self, **values: Any) -> dict[str, Any]:
        """What every template sees, plus `values`."""
        return {
            "request": self.request,
            "session": self.session,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(self.request),
            "login_url": self.login_url(),
            "query": functools.partial(_query, self.request),
            "path": self.request.url.path,
            **values,
        }

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        """Render a template into a page with the security headers."""
        html = environment().get_template(template).render(self.context(**values))
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str) -> Response:
        """A 303 after a form post (the browser then GETs `url`)."""
        return self.finish(RedirectResponse(url, status_code=303))

    def finish(self, response: Response) -> Response:
        """Add the security headers and new cookies to any response of this page."""
        return finish(self.request, response, self.settings, csp=page_csp(self.settings))


class SignInRequired(Exception):
    """The page is for signed-in customers only; `WebRoute` answers with the sign-in
    redirect of `page`, coming back to `return_to`."""

    def __init__(self, page: Page, return_to: str | None) -> None:
        super().__init__(return_to)
        self.page = page
        self.return_to = return_to


def page_csp(settings: Settings) -> str:
    """The shop's CSP: forms may also go to the identity provider's sign-out, and with
    Stripe configured its script, frames and API are allowed for the payment element."""
    stripe = settings.payments_provider == "stripe"
    return content_security_policy(
        loopback_media=not cookie_secure(settings),
        form_targets=[end_session_url(settings)],
        script_origins=["https://js.stripe.com"] if stripe else [],
        frame_origins=["https://js.stripe.com", "https://hooks.stripe.com"] if stripe else [],
        # Stripe.js talks to its API from the page (confirming the payment).
        connect_origins=["https://api.stripe.com"] if stripe else [],
    )


async def open_page(request: Request) -> Page:
    """Start answering a page: who is signed in (one API call, only with a session
    cookie), and the visitor id the storefront events use."""
    api = ApiClient(request)
    visitor_id(request)
    session: dict[str, Any] | None = None
    if api.signed_in_cookie:
        try:
            session = await api.get("/auth/session")
        except ApiError as exc:
            if exc.status != 401:
                raise
        if session is not None:
            api.csrf_token = str(session.get("csrfToken") or "")
    return Page(request, api, session)


async def open_form(request: Request) -> tuple[Page, dict[str, str]]:
    """Like `open_page` for a form post: checks its CSRF token first."""
    fields = await check_csrf(request)
    return await open_page(request), fields


def _problem_page(request: Request, status: int, title: str, message: str) -> Response:
    # No API call: the page is answered as if nobody were signed in, and its sign-in link
    # does not come back to an address that failed.
    page = Page(request, ApiClient(request), None)
    return page.render(
        "error.html", status=status, title=title, message=message, login_url="/auth/login"
    )


class WebRoute(APIRoute):
    """A page route: turns CSRF failures and API refusals into pages, never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler FastAPI built."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return exc.page.redirect(exc.page.login_url(exc.return_to))
            except CsrfFailed:
                return _problem_page(
                    request,
                    403,
                    "This form has expired",
                    "Go back, reload the page and try again.",
                )
            except ApiError as exc:
                if exc.status == 401:
                    back = request.url.path if request.method == "GET" else "/"
                    url = "/auth/login?" + urllib.parse.urlencode({"returnTo": back})
                    return RedirectResponse(url, status_code=303)
                if exc.status == 404:
                    return _problem_page(
                        request, 404, "Not found", "There is nothing at this address."
                    )
                if exc.status == 403:
                    return _problem_page(request, 403, "Not allowed", exc.message)
                return _problem_page(request, exc.status, exc.title, exc.message)
            except HTTPException as exc:
                if exc.status_code == 404:
                    return _problem_page(
                        request, 404, "Not found", "There is nothing at this address."
                    )
                raise

        return page_handler


def web_router(**kwargs: Any) -> APIRouter:
    """A router of pages: not in the OpenAPI document, errors answered as pages."""
    return APIRouter(route_class=WebRoute, include_in_schema=False, **kwargs)


static_router = APIRouter(include_in_schema=False)


@static_router.get("/static/{digest}/{name:path}")
def static_file(digest: str, name: str) -> Response:
    """A static asset. Its URL carries its content hash, so it is cached for a year; a
    URL with a stale hash is a 404 (the page that named it is older than the file)."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_file() or STATIC_DIR.resolve() not in path.parents:
        raise HTTPException(404)
    if asset_digest(name) != digest:
        raise HTTPException(404)
    return FileResponse(
        path,
        headers={"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )
