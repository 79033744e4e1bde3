"""The Azure Functions entry point: composes the Cloudcart app, nothing else.

HTTP requests go to the FastAPI app (host.json sets `routePrefix` to "" and the app owns
`/api`). Anonymous at the Functions level on purpose: the app checks bearer tokens itself.
"""

from __future__ import annotations

import azure.functions as func

from cloudcart.api.app import create_app
from cloudcart.catalog import thumbnails
from cloudcart.catalog.search import indexer
from cloudcart.integrations.partners import functions as partners
from cloudcart.ledger import functions as ledger
from cloudcart.ops import alerts, diagnostics, outbox_relay
from cloudcart.orders import expiry

fastapi_app = create_app()
"""The HTTP app; `cloudcart serve` runs this same object under uvicorn."""

app = func.AsgiFunctionApp(app=fastapi_app, http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(outbox_relay.bp)
app.register_functions(diagnostics.bp)
app.register_functions(thumbnails.bp)
app.register_functions(indexer.bp)
app.register_functions(expiry.bp)
app.register_functions(partners.bp)
app.register_functions(ledger.bp)
app.register_functions(alerts.bp)
