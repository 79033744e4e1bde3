"""The Azure Functions entry point: composes the Cloudcart app, nothing else.

HTTP requests go to the FastAPI app (host.json sets `routePrefix` to "" and the app owns
`/api`). Anonymous at the Functions level on purpose: the app checks bearer tokens itself.

The FastAPI app is built on the first ASGI call (the lifespan startup the first HTTP request
sends), not at import: on Flex Consumption the Service Bus, change-feed and timer functions
scale on instances of their own that never serve HTTP, so they do not pay for the routers.
What every instance needs, the start-up checks and logging, still runs at import.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import azure.functions as func

from cloudcart.analytics import functions as analytics
from cloudcart.catalog import thumbnails
from cloudcart.catalog.search import indexer_functions
from cloudcart.insights import history_functions, recommendation_functions
from cloudcart.integrations.partners import functions as partners
from cloudcart.ledger import functions as ledger
from cloudcart.marketing import functions as marketing
from cloudcart.notifications import functions as notifications
from cloudcart.ops import alerts, diagnostics_functions, outbox_relay
from cloudcart.orders import expiry_functions

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Receive, Scope, Send


class LazyAsgiApp:
    """An ASGI app that builds the FastAPI app once, on its first call, with its routes
    mounted as requests need them (`create_app(lazy_routes=True)`).

    Building holds a lock (the worker may call from more than one thread) and awaits
    nothing, so concurrent first requests on one event loop cannot build it twice either.
    Lifespan messages pass through, so the app's startup and shutdown run as before.
    """

    def __init__(self) -> None:
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the FastAPI app exists yet."""
        return self._app is not None

    def get(self) -> FastAPI:
        """The FastAPI app, built on the first call."""
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    from cloudcart.api.app import create_app

                    self._app = create_app(lazy_routes=True)
                app = self._app
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (HTTP or lifespan) with the FastAPI app."""
        await self.get()(scope, receive, send)


def _prepare_process() -> None:
    # What create_app did at import for every instance, kept eager so trigger-only
    # instances still refuse an unsafe configuration and export their logs.
    from cloudcart import composition
    from cloudcart.api.logging import configure_logging
    from cloudcart.api.startup import check_startup

    settings = composition.services().settings
    check_startup(settings)
    configure_logging(settings)


_prepare_process()
http_app = LazyAsgiApp()
"""The HTTP app as the Functions host sees it: builds the FastAPI app on first use."""


def __getattr__(name: str) -> Any:
    # `function_app.fastapi_app`: the HTTP app (built now if no request has built it yet);
    # `cloudcart serve` runs this same object under uvicorn.
    if name == "fastapi_app":
        return http_app.get()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


app = func.AsgiFunctionApp(app=http_app, http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(outbox_relay.bp)
app.register_functions(diagnostics_functions.bp)
app.register_functions(thumbnails.bp)
app.register_functions(indexer_functions.bp)
app.register_functions(expiry_functions.bp)
app.register_functions(partners.bp)
app.register_functions(ledger.bp)
app.register_functions(alerts.bp)
app.register_functions(notifications.bp)
app.register_functions(history_functions.bp)
app.register_functions(recommendation_functions.bp)
app.register_functions(marketing.bp)
app.register_functions(analytics.bp)
