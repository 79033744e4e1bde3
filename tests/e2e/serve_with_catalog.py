"""`cloudcart serve` with the catalog routers mounted even where the app does not mount
them yet (the lead mounts them in cloudcart/api/app.py). Once the app mounts them this is
exactly `python -m cloudcart.local.cli`.

Usage: `python -m tests.e2e.serve_with_catalog serve --port N --data-dir D [--demo]`.
"""

from __future__ import annotations

from typing import Any

import cloudcart.api.app as app_module
from cloudcart.local.cli import main

_create_app = app_module.create_app


def _create_app_with_catalog(*args: Any, **kwargs: Any) -> Any:
    from cloudcart.catalog.routes import admin_router, public_router

    app = _create_app(*args, **kwargs)
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/api/catalog/products" not in paths:
        app.include_router(admin_router)
        app.include_router(public_router)
        app.openapi_schema = None
    return app


app_module.create_app = _create_app_with_catalog

if __name__ == "__main__":
    main()
