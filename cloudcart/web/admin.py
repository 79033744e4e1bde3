"""The management pages under `/admin` (admin role)."""

from __future__ import annotations

from cloudcart.web.pages import web_router

router = web_router()
