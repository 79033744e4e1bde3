"""The webhook route and the test gateway's dev confirm route, through the FastAPI app."""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.ports.payments import DisabledGateway, PaymentEvent
from cloudcart.core.settings import Settings
from cloudcart.integrations.payments import test_gateway as tg

SECRET = b"route-secret"


class Deliveries:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: Any) -> int:
        self.sent.append((body, dict(headers)))
        return 200


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[PaymentEvent]:
    # Stand-in for cloudcart.orders.payments (written by the orders work) in these tests.
    events: list[PaymentEvent] = []
    stub = types.ModuleType("cloudcart.orders.payments")
    stub.apply_payment_event = lambda services, event: events.append(event)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cloudcart.orders.payments", stub)
    return events


@pytest.fixture
def deliveries() -> Deliveries:
    return Deliveries()


@pytest.fixture
def app(tmp_path: Path, deliveries: Deliveries) -> Iterator[FastAPI]:
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings)
    services = Services(settings)
    gateway = tg.EmbeddedTestGateway(
        services.documents, secret=SECRET, public_base_url="http://testserver",
        duplicate_probability=0.0, max_delay_ms=0, send=deliveries,
    )  # fmt: skip
    app.state.services = Services(
        settings, adapters={"documents": services.documents, "payments": gateway}
    )
    # The app factory mounts both routers (the dev one because the provider is `test`).
    yield app
    gateway.drain()
    services.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _payment_id(app: FastAPI, amount: int = 2_500) -> str:
    gateway: tg.EmbeddedTestGateway = app.state.services.payments
    return gateway.create_payment(
        order_id="ord-7", customer_id="c", amount=amount, currency="INR", idempotency_key="ord-7"
    ).payment_id


def test_confirm_then_webhook_reaches_orders(
    app: FastAPI, client: TestClient, deliveries: Deliveries, applied: list[PaymentEvent]
) -> None:
    payment_id = _payment_id(app)
    response = client.post(f"/dev/payments/{payment_id}/confirm", json={"card": tg.CARD_DECLINED})
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert app.state.services.payments.drain(5)
    [(body, headers)] = deliveries.sent
    # Replay exactly what the gateway sent, as the app would receive it.
    response = client.post("/api/webhooks/payments/test", content=body, headers=headers)
    assert response.status_code == 200 and response.json() == {"received": True}
    [event] = applied
    assert (event.type, event.payment_id, event.failure_reason) == (
        "payment.failed", payment_id, "card_declined",
    )  # fmt: skip


def test_bad_signature_is_a_400_problem_and_orders_never_hear_of_it(
    client: TestClient, applied: list[PaymentEvent]
) -> None:
    body = b'{"id":"tevt_x","type":"payment.succeeded","data":{}}'
    headers = {"Cloudcart-Signature": tg.sign(b"wrong-secret", body, int(time.time()))}
    response = client.post("/api/webhooks/payments/test", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    unsigned = client.post("/api/webhooks/payments/test", content=body)
    assert unsigned.status_code == 400
    assert applied == []


def test_unknown_provider_is_404(client: TestClient, applied: list[PaymentEvent]) -> None:
    response = client.post("/api/webhooks/payments/paypal", content=b"{}")
    assert response.status_code == 404
    assert applied == []


@pytest.mark.parametrize("configured", ["disabled", "stripe"])
def test_webhooks_get_503_while_payments_are_disabled(
    tmp_path: Path, applied: list[PaymentEvent], configured: str
) -> None:
    # 503, not 404 or 400: the provider keeps the event and redelivers it once payments
    # are on; a 404 or 400 would make it give up.
    settings = Settings(data_dir=tmp_path, payments_provider="disabled")
    app = create_app(settings)
    app.state.services = Services(
        settings, adapters={"payments": DisabledGateway(configured, "not configured")}
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/api/webhooks/payments/stripe", content=b"{}")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/payments-disabled")
    assert "not configured" not in problem["detail"]
    assert applied == []


def test_dev_confirm_errors(app: FastAPI, client: TestClient) -> None:
    payment_id = _payment_id(app)
    bad_card = client.post(f"/dev/payments/{payment_id}/confirm", json={"card": "1234"})
    assert bad_card.status_code == 400
    assert bad_card.headers["content-type"].startswith("application/problem+json")
    missing = client.post("/dev/payments/tpay_nope/confirm", json={"card": tg.CARD_SUCCEEDS})
    assert missing.status_code == 404


def test_webhook_route_is_documented(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/api/webhooks/payments/{provider}"]["post"]
    assert {"200", "400", "404"} <= set(operation["responses"])
    assert not any(p.startswith("/dev/payments") for p in app.openapi()["paths"])
