"""What keeps the web pages safe: CSRF tokens, cookies and the response security headers.

- **CSRF.** Every form and every state-changing fetch carries the page's CSRF token (a
  hidden `csrf` field or the `X-CSRF-Token` header). It is the value of the HttpOnly
  `cloudcart_csrf` cookie (double submit): another site can make the browser send the
  cookie but cannot read it to put it in the form. SameSite=Lax on every cookie is the
  second line. Pages then call the API with the session's own CSRF token.
- **Cookies** are HttpOnly, SameSite=Lax, and Secure unless the app runs on plain http on a
  loopback address (where browsers would drop a Secure cookie). No token is ever handed to
  page scripts or localStorage: the API session lives in `cloudcart_session`.
- **Content Security Policy** allows scripts only from this origin (no inline script, no
  eval); styles likewise on the shop pages.
"""

from __future__ import annotations

import hmac
import secrets
import urllib.parse
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from cloudcart.core.settings import Settings
from cloudcart.identity.dependencies import SESSION_COOKIE as SESSION_COOKIE
from cloudcart.identity.sessions import cookie_secure

CSRF_COOKIE = "cloudcart_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CART_COOKIE = "cloudcart_cart"
VISITOR_COOKIE = "cloudcart_visitor"
_YEAR = 365 * 24 * 3600
_CART_SECONDS = 30 * 24 * 3600


class CsrfFailed(Exception):
    """A form or fetch came without the page's CSRF token."""


def _kept_or_new(request: Request, cookie: str, kept_as: str, lengths: range, size: int) -> str:
    """The value of `cookie` when its length is plausible, else a new random value, the same
    for the whole request: kept on `request.state.<kept_as>` until `finish` sets the cookie."""
    value = request.cookies.get(cookie)
    if value and len(value) in lengths:
        return value
    created: str | None = getattr(request.state, kept_as, None)
    if created is None:
        created = secrets.token_urlsafe(size)
        setattr(request.state, kept_as, created)
    return created


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: its cookie, or a new one (set by `finish`)."""
    return _kept_or_new(request, CSRF_COOKIE, "new_csrf", range(32, 65), 32)


async def check_csrf(request: Request) -> dict[str, str]:
    """Read a posted form and check its CSRF token against the cookie; return the fields.

    Raises `CsrfFailed` when the cookie is missing or the token (form field or header)
    does not match it.
    """
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    presented = fields.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER)
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not presented:
        raise CsrfFailed
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfFailed
    return fields


def visitor_id(request: Request) -> str:
    """The anonymous visitor id this browser keeps for storefront events."""
    return _kept_or_new(request, VISITOR_COOKIE, "new_visitor", range(16, 65), 18)


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int | None
) -> None:
    """Set one of the front end's cookies with the attributes they all share."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=cookie_secure(settings),
        samesite="lax",
        path="/",
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    """Remove one of the front end's cookies."""
    response.delete_cookie(
        name, httponly=True, secure=cookie_secure(settings), samesite="lax", path="/"
    )


def remember_cart(response: Response, settings: Settings, cart_id: str | None) -> None:
    """Keep (or, with None, forget) the anonymous cart id the API handed out."""
    if cart_id:
        set_cookie(response, settings, CART_COOKIE, cart_id, _CART_SECONDS)
    else:
        clear_cookie(response, settings, CART_COOKIE)


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(
    *,
    form_targets: Iterable[str | None] = (),
    script_origins: Iterable[str] = (),
    frame_origins: Iterable[str] = (),
    connect_origins: Iterable[str] = (),
    inline_styles: bool = False,
    loopback_media: bool = False,
) -> str:
    """The page's CSP: scripts and styles from this origin only (styles may be inline on
    the API docs page, whose UI library sets them), images and media from anywhere the
    catalog's media may live (https; plain-http loopback too when the shop runs locally,
    where Azurite serves them), no framing, forms only to this site and the identity
    provider's sign-out."""
    forms = " ".join(["'self'", *(o for o in map(_origin, form_targets) if o)])
    scripts = " ".join(["'self'", *script_origins])
    frames = " ".join(frame_origins) or "'none'"
    connects = " ".join(["'self'", *connect_origins])
    styles = "'self' 'unsafe-inline'" if inline_styles else "'self'"
    media = "'self' blob: https:" + (
        " http://127.0.0.1:* http://localhost:*" if loopback_media else ""
    )
    return (
        "default-src 'self'; "
        f"script-src {scripts}; "
        f"style-src {styles}; "
        f"img-src data: {media}; "
        f"media-src {media}; "
        "font-src 'self'; "
        f"connect-src {connects}; "
        f"frame-src {frames}; "
        "frame-ancestors 'none'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        f"form-action {forms}"
    )


def finish(
    request: Request,
    response: Response,
    settings: Settings,
    *,
    csp: str,
    cache: str = "no-store",
) -> Response:
    """Add the security headers and the cookies a page created (CSRF, visitor)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = cache
    new_csrf = getattr(request.state, "new_csrf", None)
    if new_csrf:
        set_cookie(response, settings, CSRF_COOKIE, new_csrf, None)
    new_visitor = getattr(request.state, "new_visitor", None)
    if new_visitor:
        set_cookie(response, settings, VISITOR_COOKIE, new_visitor, _YEAR)
    return response
