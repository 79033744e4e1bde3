"""The FastAPI app factory: routers, the RFC 9457 error model and correlation ids.

This module is imported on every cold start, so it imports only FastAPI and Cloudcart's own
light modules at the top; routers are imported inside `create_app`, and the Azure SDKs only
inside the adapters that need them.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudcart.api.logging import configure_logging, correlation_id
from cloudcart.api.problems import PROBLEM_MEDIA_TYPE, Problem
from cloudcart.api.responses import COMMON_PROBLEM_RESPONSES, ProblemDocument, problem_responses
from cloudcart.api.route_groups import MountRoutesMiddleware, RouteGroup, RouteGroups
from cloudcart.composition import Services
from cloudcart.core import throttling
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)
from cloudcart.core.settings import Adapter, Settings

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "x-correlation-id"
_VALID_CORRELATION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
MAX_REPORTED_VALIDATION_ERRORS = 50
"""Validation problems list at most this many errors (a huge bad body gives a short answer)."""

INTERNAL_ERROR_DETAIL = "An unexpected error occurred. Quote the correlation id when reporting it."


def _package_version() -> str:
    # Azure deploys the source tree without installing it, so metadata may be missing.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cloudcart")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def get_correlation_id() -> str | None:
    """The correlation id of the request being handled, if any."""
    return correlation_id.get()


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    """The `application/problem+json` response for a problem, tagged with the correlation id."""
    doc = problem.to_dict(instance=request.url.path if request is not None else None)
    cid = correlation_id.get()
    if cid:
        doc.setdefault("correlationId", cid)
    return JSONResponse(
        doc, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _internal_error_response() -> JSONResponse:
    # Deliberately nothing from the exception: its text can hold data or internals.
    return problem_response(Problem(500, "Internal Server Error", INTERNAL_ERROR_DETAIL))


class CorrelationIdMiddleware:
    """Gives every request a correlation id, echoes it in `x-correlation-id`, and turns an
    unhandled exception into a 500 problem (logged with its stack trace and the id).

    Pure ASGI rather than `BaseHTTPMiddleware`, so the context variable set here is the one
    the route, its dependencies and the logging filter see.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, CORRELATION_HEADER.encode())
        cid = (
            incoming
            if incoming is not None and _VALID_CORRELATION_ID.fullmatch(incoming)
            else str(uuid.uuid4())
        )
        token = correlation_id.set(cid)
        # Someone waits on this request: a throttling backing service gets a short budget,
        # then the request answers 503 with Retry-After (`cloudcart.core.throttling`).
        budget = throttling.enter(throttling.INTERACTIVE)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k != CORRELATION_HEADER.encode()
                ]
                headers.append((CORRELATION_HEADER.encode(), cid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                # Headers are out; all that is left is to drop the connection.
                raise
            await _internal_error_response()(scope, receive, send_with_id)
        finally:
            throttling.leave(budget)
            correlation_id.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    # Location and message only: echoing `input` could send a megabyte body straight back.
    errors = [
        {
            "location": ".".join(str(part) for part in err.get("loc", ())),
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in raw[:MAX_REPORTED_VALIDATION_ERRORS]
    ]
    first = errors[0] if errors else None
    summary = f"The request has {len(raw)} invalid value{'s' if len(raw) != 1 else ''}" + (
        f"; first: {first['location']}: {first['message']}." if first else "."
    )
    problem = Problem.of("validation-error", summary, extra={"errors": errors})
    return problem_response(problem, request)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    phrase = _phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow"))
    problem = Problem(exc.status_code, phrase, detail, headers=headers)
    return problem_response(problem, request)


def _allowed_methods(request: Request, named: str | None) -> str:
    """Every method the request's path answers: Starlette's 405 names only the methods of
    the first route whose path matched, and a path is often served by several routes."""
    methods = {m.strip().upper() for m in (named or "").split(",") if m.strip()}
    for pattern, path_methods in _documented_paths(request.app):
        if pattern.fullmatch(request.url.path):
            methods |= path_methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _documented_paths(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    """The OpenAPI document's paths as patterns with their methods (built once per app)."""
    found: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        app.state, "documented_paths", None
    )
    if found is None:
        found = []
        for template, operations in app.openapi().get("paths", {}).items():
            parts = re.split(r"(\{[^}]+\})", template)
            regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
            found.append((re.compile(regex), {method.upper() for method in operations}))
        app.state.documented_paths = found
    return found


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _port_problem(exc: Exception) -> Problem | None:
    if isinstance(exc, BatchFailed):
        return _port_problem(exc.cause)
    if isinstance(exc, NotFound):
        return Problem(404, "Not Found", "The requested resource does not exist.")
    if isinstance(exc, Conflict):
        return Problem(409, "Conflict", "The resource already exists.")
    if isinstance(exc, PreconditionFailed):
        return Problem(
            412,
            "Precondition Failed",
            "The resource changed since it was read; read it again and retry.",
        )
    if isinstance(exc, Unavailable):
        # A throttling service said when to come back; pass that on (whole seconds).
        retry_after = (
            max(1, math.ceil(exc.retry_after))
            if isinstance(exc, Throttled)
            else UNAVAILABLE_RETRY_AFTER_SECONDS
        )
        return Problem(
            503,
            "Service Unavailable",
            "A backing service is unavailable; retry later.",
            headers={"Retry-After": str(retry_after)},
        )
    return None


async def _on_port_error(request: Request, exc: Exception) -> Response:
    problem = _port_problem(exc)
    if problem is None:
        # A BatchFailed whose cause has no mapping: as unexpected as any other bug.
        logger.error("unmapped error in %s %s", request.method, request.url.path, exc_info=exc)
        return _internal_error_response()
    if problem.status >= 500:
        logger.warning("backing service unavailable: %r", exc)
    return problem_response(problem, request)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    # Every business area's refusals (catalog, media, cart, orders) become problems here,
    # from the document each error describes, so routes just let them propagate.
    assert isinstance(exc, DomainError)
    problem = Problem(
        exc.status,
        exc.title,
        exc.problem_detail(),
        type_=exc.problem_type,
        headers=exc.problem_headers(),
        extra=exc.problem_extra(),
    )
    return problem_response(problem, request)


async def _on_unexpected_error(request: Request, exc: Exception) -> Response:
    # Reached only for errors raised outside CorrelationIdMiddleware (another middleware
    # added later); the middleware handles everything raised by routes.
    logger.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return _internal_error_response()


def _install_problem_schema(app: FastAPI, *, before: Callable[[], None]) -> None:
    """Add ProblemDocument to the OpenAPI components (the responses reference it); `before`
    runs first (it mounts every route group, so the document is whole)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        before()
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem.pop("$defs", {}))
        schemas["ProblemDocument"] = problem
        # Any operation with a body can meet a body that is not JSON at all (400, before
        # validation); declare it once here rather than on every route.
        malformed = problem_responses(400)[400]
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("400", malformed)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def _register_privacy() -> None:
    # The areas' export and erasure contributors and personalisation hooks, which the
    # customers routes run; and the record of which partner systems received the data.
    from cloudcart.insights import privacy as insights_privacy
    from cloudcart.integrations.partners import privacy as partner_privacy
    from cloudcart.marketing import privacy as marketing_privacy
    from cloudcart.notifications import privacy as notification_privacy
    from cloudcart.orders import privacy as orders_privacy

    orders_privacy.register()
    partner_privacy.register()
    notification_privacy.register()
    insights_privacy.register()
    marketing_privacy.register()


WEB_PREFIXES = (
    "/static/",
    "/api/docs",
    "/search",
    "/products/",
    "/cart",
    "/checkout",
    "/orders",
    "/notifications",
    "/recent",
    "/account",
    "/signout",
    "/admin",
)
"""Where the web pages (cloudcart.web) live, besides the home page `/`."""


def route_groups(settings: Settings) -> list[RouteGroup]:
    """The app's routers by area, in the order they are matched, each with the path
    prefixes of its routes. The dev-only groups exist only with the embedded adapters they
    serve, so they are never imported in Azure. Routers are imported by `load`, so building
    the list imports nothing."""
    # Imports inside each loader: importing this module stays cheap, and a lazy app loads
    # only the areas its requests reach.

    def health() -> list[APIRouter]:
        from cloudcart.api import health

        return [health.router]

    def identity() -> list[APIRouter]:
        from cloudcart.identity import routes, web_login

        return [routes.router, web_login.router]

    def customers() -> list[APIRouter]:
        from cloudcart.customers import routes

        _register_privacy()
        return [routes.router]

    def catalog() -> list[APIRouter]:
        from cloudcart.catalog import media_routes, routes

        return [routes.public_router, routes.admin_router, media_routes.router]

    def search() -> list[APIRouter]:
        from cloudcart.catalog.search import routes

        return [routes.router]

    def orders() -> list[APIRouter]:
        from cloudcart.orders import routes

        return [routes.cart_router, routes.router, routes.admin_router]

    def payments() -> list[APIRouter]:
        from cloudcart.integrations.payments import routes

        return [routes.router]

    def partners() -> list[APIRouter]:
        from cloudcart.integrations.partners import routes

        return [routes.router]

    def ledger() -> list[APIRouter]:
        from cloudcart.ledger import routes

        return [routes.router]

    def notifications() -> list[APIRouter]:
        from cloudcart.notifications import routes, verification_routes

        return [
            routes.router,
            routes.admin_router,
            routes.webhook_router,
            verification_routes.router,
        ]

    def insights() -> list[APIRouter]:
        from cloudcart.insights import history_routes, recommendation_routes

        return [history_routes.router, recommendation_routes.router]

    def marketing() -> list[APIRouter]:
        from cloudcart.marketing import routes

        return [routes.router]

    def imports() -> list[APIRouter]:
        from cloudcart.catalog import import_routes as catalog_imports
        from cloudcart.orders import import_routes as order_imports

        return [catalog_imports.router, order_imports.router]

    def analytics() -> list[APIRouter]:
        from cloudcart.analytics import routes

        return [routes.router]

    def web() -> list[APIRouter]:
        from cloudcart.web import account, admin, docs, pages, shopping, storefront

        return [
            docs.router,
            pages.static_router,
            storefront.router,
            shopping.router,
            account.router,
            admin.router,
        ]

    def operations() -> list[APIRouter]:
        from cloudcart.ops import dead_letters, diagnostics_routes

        return [dead_letters.router, diagnostics_routes.router]

    groups = [
        RouteGroup("health", ("/api/health", "/api/ready"), health),
        RouteGroup("identity", ("/api/me", "/api/admin/whoami", "/auth/"), identity),
        RouteGroup("customers", ("/api/me",), customers),
        RouteGroup(
            "catalog",
            (
                "/api/catalog/",
                "/api/admin/categories",
                "/api/admin/inventory/",
                "/api/admin/products",
            ),
            catalog,
        ),
        RouteGroup("search", ("/api/search",), search),
        RouteGroup(
            "orders", ("/api/cart", "/api/checkout", "/api/orders", "/api/admin/orders"), orders
        ),
        RouteGroup("payments", ("/api/webhooks/payments/",), payments),
        RouteGroup("partners", ("/api/admin/integrations",), partners),
        RouteGroup("ledger", ("/api/admin/ledger/",), ledger),
        RouteGroup(
            "notifications",
            (
                "/api/me/notifications",
                "/api/me/verify/",
                "/api/admin/notifications",
                "/api/webhooks/sendgrid",
                "/api/webhooks/twilio/",
            ),
            notifications,
        ),
        RouteGroup(
            "insights",
            ("/api/events", "/api/me/history", "/api/me/recommendations", "/api/catalog/products/"),
            insights,
        ),
        RouteGroup("marketing", ("/api/me/notify-me", "/api/catalog/products/"), marketing),
        RouteGroup("imports", ("/api/admin/import/",), imports),
        RouteGroup("analytics", ("/api/admin/analytics/",), analytics),
        RouteGroup(
            "operations", ("/api/admin/dead-letters", "/api/admin/diagnostics/"), operations
        ),
        RouteGroup("web", WEB_PREFIXES, web, paths=("/",)),
    ]
    groups.extend(_dev_groups(settings))
    return groups


def _dev_groups(settings: Settings) -> list[RouteGroup]:
    """The dev-only routers of the embedded adapters in use."""
    # Each dev router lives beside what it serves, as the test gateway's does: the blob
    # routes in `api` (core has no FastAPI), the identity provider's in `identity`, the
    # capture mailbox's in `notifications`, the partner simulators' (with the simulators)
    # in `integrations.partners`. None is in `cloudcart.local`, which only the CLI imports.
    groups: list[RouteGroup] = []

    if settings.identity_adapter == Adapter.embedded:

        def dev_identity() -> list[APIRouter]:
            from cloudcart.identity import dev_routes

            return [dev_routes.router]

        groups.append(RouteGroup("dev-identity", ("/dev/idp/",), dev_identity))
    if settings.blobs_adapter == Adapter.embedded:

        def dev_blobs() -> list[APIRouter]:
            from cloudcart.api import dev_blobs

            return [dev_blobs.router]

        groups.append(RouteGroup("dev-blobs", ("/dev/blobs/",), dev_blobs))
    if settings.messages_adapter == Adapter.embedded:

        def dev_partners() -> list[APIRouter]:
            from cloudcart.integrations.partners import dev_routes as dev_partners

            return [dev_partners.router]

        groups.append(RouteGroup("dev-partners", ("/dev/partners/",), dev_partners))
    if "capture" in (settings.notifications_email_provider, settings.notifications_text_provider):

        def dev_notifications() -> list[APIRouter]:
            from cloudcart.notifications import dev_routes as dev_notifications

            return [dev_notifications.router]

        groups.append(
            RouteGroup(
                "dev-notifications", ("/dev/mailbox", "/dev/notifications/"), dev_notifications
            )
        )
    if settings.payments_provider == "test":

        def dev_payments() -> list[APIRouter]:
            from cloudcart.integrations.payments import dev_routes

            return [dev_routes.router]

        groups.append(RouteGroup("dev-payments", ("/dev/payments/",), dev_payments))
    return groups


def create_app(settings: Settings | None = None, *, lazy_routes: bool = False) -> FastAPI:
    """Build the Cloudcart HTTP app: every router under /api, the problem+json error model,
    correlation ids and structured logging.

    With `lazy_routes`, each group of routers (`route_groups`) is added on the first request
    that needs it (`cloudcart.api.route_groups`): what the Functions host runs, so a cold
    instance answers its first request without building every route first.

    Without `settings` the app uses the process-wide services (`cloudcart.composition`), the
    ones trigger functions use too, so HTTP and triggers share adapters and connections.

    Raises `StartupRefused` (cloudcart.api.startup) for an unsafe or incomplete
    configuration: dev providers under the Functions host, or `azure` identity without
    its issuers and audiences.
    """
    from cloudcart.api.startup import check_startup

    if settings is None:
        from cloudcart import composition

        services = composition.services()
        settings = services.settings
    else:
        services = Services(settings)
    # Services build their adapters lazily, so a refused start has connected to nothing.
    check_startup(settings)
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="Cloudcart API",
        version=_package_version(),
        openapi_url="/api/openapi.json",
        # The reference page is the web group's (cloudcart.web.docs): FastAPI's own loads
        # its scripts from a CDN.
        docs_url=None,
        redoc_url=None,
        responses=COMMON_PROBLEM_RESPONSES,
        lifespan=lifespan,
    )
    app.state.services = services

    handlers: dict[type[Exception], ExceptionHandler] = {
        Problem: _on_problem,
        RequestValidationError: _on_validation_error,
        StarletteHTTPException: _on_http_exception,
        NotFound: _on_port_error,
        Conflict: _on_port_error,
        PreconditionFailed: _on_port_error,
        BatchFailed: _on_port_error,
        Unavailable: _on_port_error,
        DomainError: _on_domain_error,
        Exception: _on_unexpected_error,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)

    groups = RouteGroups(app, route_groups(settings))
    if lazy_routes:
        app.add_middleware(
            MountRoutesMiddleware,
            groups=groups,
            everything=[p for p in (app.openapi_url,) if p],
        )
    else:
        groups.mount_all()
    app.state.route_groups = groups
    # Added last, so it runs first: even mounting a group logs with the correlation id.
    app.add_middleware(CorrelationIdMiddleware)
    _install_problem_schema(app, before=groups.mount_all)
    return app
