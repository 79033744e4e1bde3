"""A shop for the marketing triggers: the app on a temp embedded store and broker, fake
email, text and payment providers, a seeded product, and helpers that relay outbox events
and run the marketing functions as the trigger host would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cloudcart import composition
from cloudcart.api.app import create_app
from cloudcart.catalog.models import CategoryIn, ProductIn
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.messages import embedded as embedded_messages
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.outbox import sweep
from cloudcart.core.ports.documents import Document, Query, every
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.local.trigger_host import to_service_bus_message
from cloudcart.marketing import functions
from cloudcart.marketing.store import CONTAINER
from tests.fakes.notifications import FakeEmail, FakeText
from tests.fakes.payments import FakeGateway
from tests.fakes.recording_publisher import RecordingPublisher

ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}
PROBLEM = "application/problem+json"


@dataclass
class Shop:
    client: TestClient
    services: Services
    settings: Settings
    broker: SqliteBroker
    publisher: RecordingPublisher
    email: FakeEmail
    text: FakeText

    # --- people ---------------------------------------------------------------------------

    def auth(self, sub: str, *, admin: bool = False) -> dict[str, str]:
        token, _ = mint_token(
            self.settings, sub, email=f"{sub}@example.com", roles=("Admin",) if admin else ()
        )
        return {"Authorization": f"Bearer {token}"}

    def customer(self, sub: str, *, marketing: bool = False) -> None:
        """A signed-in customer with a profile; with `marketing`, email marketing consent."""
        r = self.client.get("/api/me/profile", headers=self.auth(sub))
        assert r.status_code == 200, r.text
        if marketing:
            r = self.client.put(
                "/api/me/preferences",
                headers=self.auth(sub),
                json={"channels": {"email": {"marketing": True}, "inApp": {"marketing": True}}},
            )
            assert r.status_code == 200, r.text

    # --- catalog and carts --------------------------------------------------------------

    def product(self, product_id: str, skus: dict[str, int], *, stock: int = 5) -> None:
        """An active product selling `skus` (SKU -> price in paise), each with `stock`."""
        catalog = CatalogService(self.services.documents)
        body = ProductIn.model_validate(
            {
                "title": f"Kurta {product_id}",
                "brand": "Saffron",
                "categoryId": "kurtas",
                "status": "active",
                "variants": [
                    {"sku": sku, "price": {"amount": price, "currency": "INR"}}
                    for sku, price in skus.items()
                ],
            }
        )
        catalog.create_product(body, product_id=product_id)
        for sku in skus:
            catalog.set_inventory(sku, available=stock)

    def reprice(self, product_id: str, skus: dict[str, int]) -> None:
        catalog = CatalogService(self.services.documents)
        current = catalog.get_product(product_id).document
        body = ProductIn.model_validate(
            {
                "title": current["title"],
                "brand": current["brand"],
                "categoryId": current["categoryId"],
                "status": current["status"],
                "variants": [
                    {"sku": sku, "price": {"amount": price, "currency": "INR"}}
                    for sku, price in skus.items()
                ],
            }
        )
        catalog.update_product(product_id, body)

    def stock(self, sku: str, available: int) -> None:
        CatalogService(self.services.documents).set_inventory(sku, available=available)

    def add_to_cart(self, sub: str, sku: str, quantity: int = 1) -> None:
        r = self.client.post(
            "/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=self.auth(sub)
        )
        assert r.status_code == 200, r.text

    def checkout(self, sub: str) -> None:
        r = self.client.post(
            "/api/checkout",
            json={"shippingAddress": ADDRESS, "shippingMethod": "standard"},
            headers={**self.auth(sub), "Idempotency-Key": f"k-{sub}"},
        )
        assert r.status_code == 201, r.text

    def view(self, sub: str, product_id: str) -> None:
        r = self.client.post(
            "/api/events",
            json={"events": [{"type": "product_viewed", "productId": product_id}]},
            headers=self.auth(sub),
        )
        assert r.status_code == 202, r.text

    # --- the pipeline ---------------------------------------------------------------------

    def deliver(self) -> list[Event]:
        """Relay every outbox event, then run `marketing_events` on every message waiting on
        the `marketing` subscription; returns the events delivered."""
        sweep(self.services.documents, self.publisher, "events", older_than_seconds=0)
        delivered: list[Event] = []
        while True:
            received = self.broker.receive("events", functions.SUBSCRIPTION, max_messages=20)
            if not received:
                return delivered
            for message in received:
                delivered.append(Event.from_message_body(message.body))
                functions.marketing_events(to_service_bus_message(message))
                self.broker.complete(message.lock_token)

    def replay(self, events: list[Event]) -> list[Event]:
        """Publish events again under new message ids (a replay, or a copy published after
        the duplicate-detection window) and deliver them."""
        for event in events:
            copy = replace(event.to_message(), message_id=f"{event.id}~replay")
            self.broker.publish("events", [copy])
        return self.deliver()

    def run_reminders(self) -> list[str]:
        """Run `marketing_reminders` on every reminder that is due now."""
        ids: list[str] = []
        while True:
            received = self.broker.receive(self.settings.marketing_reminders_queue, max_messages=20)
            if not received:
                return ids
            for message in received:
                functions.marketing_reminders(to_service_bus_message(message))
                self.broker.complete(message.lock_token)
                ids.append(message.message_id)

    def reminders(self) -> list[bytes]:
        """Bodies of every reminder scheduled so far."""
        return [m.body_bytes() for m in self.publisher.to(self.settings.marketing_reminders_queue)]

    def sent(self, sub: str, template: str) -> int:
        return sum(1 for m in self.email.to(f"{sub}@example.com") if m.template == template)

    def records(self) -> list[Document]:
        return every(self.services.documents.container(CONTAINER), Query(limit=500))


def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[Shop]:
    # No quiet hours unless a test asks for them: marketing held overnight would make a
    # test's outcome depend on the time of day it runs at.
    settings.setdefault("notifications_quiet_hours", "00:00-00:00")
    config = Settings(data_dir=tmp_path / "data", **settings)
    app = create_app(config)
    broker = embedded_messages.from_settings(config)
    publisher = RecordingPublisher(broker)
    email, text = FakeEmail(), FakeText()
    services = Services(
        config,
        adapters={
            "messages": publisher,
            "payments": FakeGateway(),
            "email_channel": email,
            "text_channel": text,
        },
    )
    app.state.services = services
    monkeypatch.setattr(composition, "services", lambda: services)
    services.documents.ensure_containers()
    CatalogService(services.documents).create_category(
        CategoryIn.model_validate({"id": "kurtas", "name": "Kurtas"})
    )
    try:
        with TestClient(app) as client:
            yield Shop(client, services, config, broker, publisher, email, text)
    finally:
        services.close()


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    yield from build(tmp_path, monkeypatch, abandoned_cart_minutes=0)


def assert_problem(r: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + type_), body
    return body
