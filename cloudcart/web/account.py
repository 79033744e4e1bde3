"""The storefront's account pages: profile, addresses, preferences, data, notifications
and recently viewed."""

from __future__ import annotations

from cloudcart.web.pages import web_router

router = web_router()
