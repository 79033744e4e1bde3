"""The management pages under `/admin` (admin role).

Every page first asks the API who the caller is (`GET /api/admin/whoami`): without a session
that is a 401 and `WebRoute` sends the browser to sign in; a signed-in customer without the
admin role gets the API's 403 as a "Not allowed" page. Nothing of the shop is fetched before
that check passed, so a page never shows admin data to anyone else, even for a moment.

The pages read and change the shop only through the admin API, like any other client: the
analytics reports (`dashboard`), the orders (`orders`), the catalog and stock (`catalog`),
the dead letters, the partner links and the notification log (`operations`). State changes
are CSRF-checked POST forms answered with a redirect (Post/Redirect/Get); the page after it
shows a fixed message picked by `?done=`.
"""

from __future__ import annotations

from cloudcart.web.admin import catalog, dashboard, operations, orders
from cloudcart.web.pages import web_router

router = web_router()
router.include_router(dashboard.router)
router.include_router(orders.router)
router.include_router(catalog.router)
router.include_router(operations.router)
