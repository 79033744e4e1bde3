"""The storefront's cart, checkout and order pages."""

from __future__ import annotations

from cloudcart.web.pages import web_router

router = web_router()
