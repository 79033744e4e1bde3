"""What every management page shares: the admin check before anything else, rendering with
the navigation, and amounts in major units."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cloudcart.web.client import ApiClient
from cloudcart.web.pages import Page, open_page
from cloudcart.web.security import check_csrf

NAV: tuple[tuple[str, str], ...] = (
    ("/admin", "Dashboard"),
    ("/admin/orders", "Orders"),
    ("/admin/products", "Products & stock"),
    ("/admin/dead-letters", "Dead letters"),
    ("/admin/integrations", "Integrations"),
    ("/admin/notifications", "Notifications"),
)


@dataclass
class AdminPage:
    """A management page being answered, once the API confirmed the admin role."""

    page: Page
    me: dict[str, Any]

    @property
    def api(self) -> ApiClient:
        """The API client of this request."""
        return self.page.api

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        """Render a template of templates/admin/ with the admin navigation."""
        return self.page.render(template, status=status, nav=NAV, **values)

    def redirect(self, url: str) -> Response:
        """303 to `url` after a form post."""
        return self.page.redirect(url)


def major(amount: float) -> str:
    """Minor units in major units, without the currency: 129950 -> "1,299.50"."""
    return f"{amount / 100:,.2f}"


async def open_admin(request: Request) -> AdminPage:
    """Open a management page: the admin check comes before any other API call.

    It runs beside the session read of `open_page`, which reads nothing of the shop. A 401
    (no session) or 403 (not an admin) is raised as ApiError: `WebRoute` turns them into
    the sign-in redirect and the "Not allowed" page.
    """
    page, me = await asyncio.gather(open_page(request), ApiClient(request).get("/api/admin/whoami"))
    return AdminPage(page, me)


async def open_admin_form(request: Request) -> tuple[AdminPage, dict[str, str]]:
    """Open a management form post: CSRF token first, then the admin check."""
    fields = await check_csrf(request)
    return await open_admin(request), fields
