"""Fixtures: the whole app (API and pages) on a temp embedded store with the demo shop,
and browser-like clients that sign in with a web session cookie."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.search.indexer import reindex_all
from cloudcart.core.services import Services
from cloudcart.core.settings import Settings
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import SESSION_COOKIE
from cloudcart.identity.dev_provider import mint_token
from cloudcart.identity.sessions import session_store
from cloudcart.local.demo_data import seed
from cloudcart.web.security import CSRF_COOKIE

_CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    """The app, its services and helpers to act as a browser."""

    app: FastAPI
    services: Services
    settings: Settings

    def browser(self) -> TestClient:
        """A new browser: its own cookie jar, redirects not followed."""
        return TestClient(self.app, base_url="http://127.0.0.1", follow_redirects=False)

    def sign_in(
        self, browser: TestClient, sub: str, *, email: str | None = None, admin: bool = False
    ) -> None:
        """Give `browser` a web session as if it had come back from the identity provider."""
        caller = Caller(
            customer_id=sub,
            email=email or f"{sub}@example.com",
            name=sub,
            roles=(self.settings.identity_admin_role,) if admin else (),
            scopes=(self.settings.identity_required_scope,),
            issuer="test",
            is_admin=admin,
        )
        session_id, _ = session_store(self.services.documents, self.settings).create(caller, {})
        browser.cookies.set(SESSION_COOKIE, session_id)

    def bearer(self, sub: str, *, admin: bool = False) -> dict[str, str]:
        """API headers for `sub` (to arrange or check state through the API)."""
        token, _ = mint_token(
            self.settings, sub, roles=(self.settings.identity_admin_role,) if admin else ()
        )
        return {"Authorization": f"Bearer {token}"}


def csrf(browser: TestClient, page: str = "/") -> str:
    """The CSRF token a form on `page` carries (opening it also sets the cookie); fails
    when the page has no form with a token."""
    answer = browser.get(page)
    match = _CSRF_INPUT.search(answer.text)
    assert match, f"no form with a CSRF token on {page}"
    assert match.group(1) == browser.cookies.get(CSRF_COOKIE)
    return match.group(1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    services: Services = app.state.services
    services.documents.ensure_containers()
    seed(services)
    reindex_all(services)
    yield Site(app, services, settings)
    services.close()
