"""Fixtures: the whole app (API and pages) on a temp embedded store with the demo shop,
browser-like clients that sign in with a web session cookie, and the embedded test
gateway's payment webhooks, kept until a test delivers them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cloudcart.api.app import create_app
from cloudcart.catalog.search.indexer import reindex_all
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.identity.caller import Caller
from cloudcart.identity.dependencies import SESSION_COOKIE
from cloudcart.identity.dev_provider import mint_token
from cloudcart.identity.sessions import session_store
from cloudcart.integrations.payments.test_gateway import EmbeddedTestGateway
from cloudcart.local.demo_data import seed
from cloudcart.web.client import ApiClient
from cloudcart.web.security import CSRF_COOKIE

_CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')
WEBHOOK_SECRET = "web-pages-test-webhook-secret"


@dataclass
class Webhooks:
    """A webhook sender for the test gateway that keeps what it is given: no server
    listens for the gateway's HTTP posts here."""

    sent: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        with self.lock:
            self.sent.append((body, dict(headers)))
        return 200

    def take(self) -> list[tuple[bytes, dict[str, str]]]:
        """The webhooks sent since the last take."""
        with self.lock:
            taken, self.sent[:] = list(self.sent), []
        return taken


@dataclass
class Site:
    """The app, its services and helpers to act as a browser."""

    app: FastAPI
    services: Services
    settings: Settings
    gateway: EmbeddedTestGateway
    webhooks: Webhooks

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

    def deliver_payment_webhooks(self) -> int:
        """Post every webhook the test gateway has sent so far, signed as it sent them, to
        the app's payment webhook route, as the gateway would have over HTTP; how many."""
        assert self.gateway.drain(5)
        sent = self.webhooks.take()
        client = TestClient(self.app)
        for body, headers in sent:
            answer = client.post("/api/webhooks/payments/test", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
        return len(sent)


def csrf(browser: TestClient, page: str = "/") -> str:
    """The CSRF token a form on `page` carries (opening it also sets the cookie); fails
    when the page has no form with a token."""
    answer = browser.get(page)
    match = _CSRF_INPUT.search(answer.text)
    assert match, f"no form with a CSRF token on {page}"
    assert match.group(1) == browser.cookies.get(CSRF_COOKIE)
    return match.group(1)


def form_value(page: str, name: str, form_action: str | None = None) -> str:
    """The value of a hidden or text input on a page (in the form posting to `form_action`:
    so a form that lost its CSRF token fails here, not only in a browser)."""
    if form_action is not None:
        start = page.index(f'action="{form_action}"')
        page = page[start : page.index("</form>", start)]
    match = re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', page)
    assert match, f"no field {name}"
    return match.group(1)


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call the pages make to the API from here on, as "METHOD /path", in order."""
    calls: list[str] = []
    send = ApiClient.send

    async def recorded(self: ApiClient, method: str, path: str, **kwargs: Any) -> Any:
        calls.append(f"{method} {path}")
        return await send(self, method, path, **kwargs)

    monkeypatch.setattr(ApiClient, "send", recorded)
    return calls


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path / "data", test_gateway_webhook_secret=SecretStr(WEBHOOK_SECRET)
    )
    # The app's own test gateway, built as `from_settings` builds it but delivering its
    # webhooks at once, never twice, to a sender that keeps them.
    documents = Services(settings).documents
    webhooks = Webhooks()
    gateway = EmbeddedTestGateway(
        documents,
        secret=WEBHOOK_SECRET.encode(),
        public_base_url=settings.public_base_url,
        duplicate_probability=0.0,
        max_delay_ms=0,
        send=webhooks,
    )
    services = Services(settings, adapters={"documents": documents, "payments": gateway})
    app = create_app(settings)
    # The app factory takes settings, not services: its own Services, which has built no
    # adapter yet, is replaced before the first request.
    app.state.services = services
    services.documents.ensure_containers()
    seed(services)
    reindex_all(services)
    yield Site(app, services, settings, gateway, webhooks)
    services.close()
