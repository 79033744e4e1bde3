"""The Azure Functions entry point: composes the Cloudcart app, nothing else.

HTTP requests go to the FastAPI app (host.json sets `routePrefix` to "" and the app owns
`/api`). Anonymous at the Functions level on purpose: the app checks bearer tokens itself.
"""

from __future__ import annotations

import azure.functions as func

from cloudcart.api.app import create_app
from cloudcart.ops import outbox_relay

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(outbox_relay.bp)
