"""Checkout over the HTTP app: idempotency, oversell, compensation, totals."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.ports.payments import DisabledGateway, PaymentsDisabled
from cloudcart.core.settings import Settings
from cloudcart.orders import routes
from tests.fakes import stripe_server
from tests.fakes.payments import FakeGateway
from tests.unit.orders.conftest import ADDRESS, Shop


def _orders(shop: Shop) -> list[dict[str, Any]]:
    page = shop.services.documents.container("orders").query(
        Query(filters=[Filter("type", "eq", "order")], limit=100)
    )
    return page.items


def test_same_key_same_response_other_body_422_missing_key_400(shop: Shop) -> None:
    shop.stock("SKU-1", 5, price=11800)
    shop.add_to_cart("alice", "SKU-1", 2)
    status, first = shop.checkout("alice", "k1")
    assert status == 201, first
    assert first["status"] == "pending_payment"
    assert first["total"] == {"amount": 23600, "currency": "INR"}
    assert first["payment"]["paymentId"] == "pay_1"
    again = shop.checkout("alice", "k1")
    assert again == (201, first)
    other = shop.checkout("alice", "k1", {"shippingAddress": ADDRESS, "shippingMethod": "express"})
    assert other[0] == 422 and "different request body" in str(other[1]["detail"])
    r = shop.client.post(
        "/api/checkout", json={"shippingAddress": ADDRESS}, headers=shop.headers("alice")
    )
    assert r.status_code == 400
    assert len(_orders(shop)) == 1 and len(shop.gateway.payments) == 1
    assert shop.inventory("SKU-1") == {"available": 3, "reserved": 2, "sold": 0, "received": 5}
    # the cart was emptied by the checkout
    assert shop.client.get("/api/cart", headers=shop.headers("alice")).json()["items"] == []


def test_concurrent_retries_of_one_key_make_one_order(shop: Shop) -> None:
    shop.stock("SKU-1", 50)
    shop.add_to_cart("bob", "SKU-1", 1)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: shop.checkout("bob", "same"), range(24)))
    statuses = {s for s, _ in results}
    assert statuses == {201}, results
    assert len({b["orderId"] for _, b in results}) == 1
    assert len(_orders(shop)) == 1
    assert len(shop.gateway.payments) == 1
    assert shop.inventory("SKU-1")["reserved"] == 1


def test_racing_customers_never_oversell(shop: Shop) -> None:
    shop.stock("HOT", 5)
    buyers = [f"buyer{i}" for i in range(15)]
    for buyer in buyers:
        shop.services.documents.container("carts").upsert(
            {
                "id": "cart",
                "customerId": buyer,
                "items": [{"sku": "HOT", "productId": "p1", "quantity": 1}],
            }
        )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda b: shop.checkout(b, f"key-{b}"), buyers))
    won = [b for s, b in results if s == 201]
    lost = [b for s, b in results if s != 201]
    assert len(won) == 5
    assert all(b["status"] == 409 and "out-of-stock" in str(b["type"]) for b in lost)
    assert shop.inventory("HOT") == {"available": 0, "reserved": 5, "sold": 0, "received": 5}


def test_a_failing_line_releases_the_lines_reserved_before_it(shop: Shop) -> None:
    shop.stock("A", 5)
    shop.stock("B", 5)
    shop.add_to_cart("carol", "A", 2)
    shop.add_to_cart("carol", "B", 3)
    shop.stock("B", 1)  # someone bought B meanwhile
    status, body = shop.checkout("carol", "k")
    assert status == 409 and "'B'" in str(body["detail"])
    assert shop.inventory("A")["available"] == 5 and shop.inventory("A")["reserved"] == 0
    # the failure is the recorded answer for this key
    assert shop.checkout("carol", "k") == (status, body)
    assert _orders(shop) == []


def test_gateway_failure_keeps_the_order_and_the_same_key_resumes(shop: Shop) -> None:
    shop.stock("A", 5)
    shop.add_to_cart("dan", "A", 1)
    shop.gateway.fail_next_create = True
    status, body = shop.checkout("dan", "k")
    assert status == 503 and body["orderId"]
    status2, body2 = shop.checkout("dan", "k")
    assert status2 == 201 and body2["orderId"] == body["orderId"]
    assert len(_orders(shop)) == 1 and len(shop.gateway.payments) == 1


def test_empty_cart_and_unknown_address(shop: Shop) -> None:
    assert shop.checkout("erin", "k")[0] == 422
    shop.stock("A", 5)
    shop.add_to_cart("erin", "A", 1)
    status, body = shop.checkout("erin", "k2", {"addressId": "nope", "shippingMethod": "standard"})
    assert status == 422 and body["detail"] == "unknown address"
    assert shop.inventory("A")["reserved"] == 0


def _records(shop: Shop) -> list[dict[str, Any]]:
    page = shop.services.documents.container("orders").query(
        Query(filters=[Filter("type", "eq", "idempotency")], limit=100)
    )
    return page.items


def test_payments_disabled_refuses_checkout_before_anything_is_written(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.stock("A", 5)
    shop.add_to_cart("fay", "A", 2)
    disabled = DisabledGateway("disabled", "CLOUDCART_PAYMENTS_PROVIDER is disabled")
    monkeypatch.setitem(shop.services._built, "payments", disabled)
    status, body = shop.checkout("fay", "k")
    assert status == 503
    assert body["type"] == "https://cloudcart.dev/problems/payments-disabled"
    assert "orderId" not in body
    assert _orders(shop) == [] and _records(shop) == []
    assert shop.inventory("A")["reserved"] == 0
    # Once payments are on, the same key and cart place the order.
    monkeypatch.setitem(shop.services._built, "payments", shop.gateway)
    status, body = shop.checkout("fay", "k")
    assert status == 201, body


def test_payments_disabled_after_placing_keeps_the_order_resumable(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.stock("A", 5)
    shop.add_to_cart("gus", "A", 1)

    def refuse(**_: Any) -> None:
        raise PaymentsDisabled("switched off meanwhile")

    monkeypatch.setattr(shop.gateway, "create_payment", refuse)
    status, body = shop.checkout("gus", "k")
    assert status == 503 and body["orderId"]
    assert body["type"] == "https://cloudcart.dev/problems/payments-disabled"
    monkeypatch.undo()
    status2, body2 = shop.checkout("gus", "k")
    assert status2 == 201 and body2["orderId"] == body["orderId"]
    assert len(_orders(shop)) == 1 and len(shop.gateway.payments) == 1


def test_stripe_key_still_a_key_vault_reference_is_503_not_a_stripe_call(
    tmp_path: Path,
) -> None:
    # What Azure does before the secret is in the vault: the app setting keeps the literal
    # reference. It must never reach Stripe as an API key.
    reference = (
        "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/stripe-secret-key/)"
    )
    with stripe_server.running_stripe_fake() as fake:
        settings = Settings(
            data_dir=tmp_path / "data",
            payments_provider="stripe",
            stripe_secret_key=reference,  # type: ignore[arg-type]
            stripe_webhook_secret="whsec_x",  # type: ignore[arg-type]
            stripe_api_base=fake.base_url,
        )
        app = create_app(settings)
        services = Services(settings)
        app.state.services = services
        for router in (routes.cart_router, routes.router, routes.admin_router):
            app.include_router(router)
        services.documents.ensure_containers()
        with TestClient(app) as client:
            shop = Shop(app, client, services, FakeGateway(), settings)
            shop.stock("A", 5)
            shop.add_to_cart("hal", "A", 1)
            status, body = shop.checkout("hal", "k")
        services.close()
    assert status == 503
    assert body["type"] == "https://cloudcart.dev/problems/payments-disabled"
    assert "KeyVault" not in str(body)
    assert fake.requests == []
