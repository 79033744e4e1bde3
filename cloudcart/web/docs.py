"""The API reference at `/api/docs`, served entirely from this app.

Swagger UI's script and styles are vendored from the npm package `swagger-ui-dist` (the
version pinned in package.json; a test checks the copies match it) and served as
versioned static assets, so the page works offline and under a CSP that allows no
inline script and no CDN. FastAPI's built-in page loads them from a CDN instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from cloudcart.web.pages import asset_url, environment, settings_of
from cloudcart.web.security import content_security_policy, finish

DOCS_PATH = "/api/docs"
OAUTH2_REDIRECT_PATH = "/api/docs/oauth2-redirect"
SWAGGER_UI = "vendor/swagger-ui-dist"

router = APIRouter(include_in_schema=False)


def _answer(request: Request, html: str) -> Response:
    csp = content_security_policy(inline_styles=True)
    return finish(request, HTMLResponse(html), settings_of(request), csp=csp)


@router.get(DOCS_PATH)
def api_docs(request: Request) -> Response:
    """Swagger UI for the OpenAPI document."""
    html = (
        environment()
        .get_template("api_docs.html")
        .render(
            title=f"{request.app.title} - reference",
            openapi_url=request.app.openapi_url,
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            bundle=asset_url(f"{SWAGGER_UI}/swagger-ui-bundle.js"),
            styles=asset_url(f"{SWAGGER_UI}/swagger-ui.css"),
            init=asset_url("api-docs.js"),
        )
    )
    return _answer(request, html)


@router.get(OAUTH2_REDIRECT_PATH)
def oauth2_redirect(request: Request) -> Response:
    """Where the identity provider returns "Authorize" in the reference page."""
    html = (
        environment()
        .get_template("api_docs_oauth2.html")
        .render(script=asset_url(f"{SWAGGER_UI}/oauth2-redirect.js"))
    )
    return _answer(request, html)
