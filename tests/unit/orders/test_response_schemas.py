"""The OpenAPI document states exactly what the cart, checkout and order operations answer.

Client SDKs are generated from /api/openapi.json. Each operation's success body is checked
against its declared schema on real answers, with every optional part present at least
once (tracking, refunds, returns, a review, an imported order, an erased customer's
address), and the schemas forbid undeclared fields, so a field added to an answer without
its declaration fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.orders.fulfilment import PartnerUpdate, apply_update
from cloudcart.orders.payments import apply_payment_event
from cloudcart.orders.state import ORDER_STATUSES
from tests.unit.orders.conftest import ADDRESS, Shop

CART_OPERATIONS = {
    ("GET", "/api/cart"),
    ("POST", "/api/cart/items"),
    ("PATCH", "/api/cart/items/{sku}"),
    ("DELETE", "/api/cart/items/{sku}"),
}
ORDER_OPERATIONS = {
    ("POST", "/api/checkout"),
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{orderId}"),
    ("POST", "/api/orders/{orderId}/cancel"),
    ("POST", "/api/orders/{orderId}/returns"),
    ("GET", "/api/admin/orders"),
    ("GET", "/api/admin/orders/{orderId}"),
    ("POST", "/api/admin/orders/{orderId}/review"),
    ("POST", "/api/admin/orders/{orderId}/cancel"),
    ("POST", "/api/admin/orders/{orderId}/refunds"),
    ("POST", "/api/admin/orders/{orderId}/status"),
}
OPERATIONS = CART_OPERATIONS | ORDER_OPERATIONS


@pytest.fixture
def shop(created_shop: Shop) -> Shop:
    return created_shop


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("document")))
    with TestClient(app) as client:
        found: dict[str, Any] = client.get("/api/openapi.json").json()
    app.state.services.close()
    return found


class Contract:
    """Checks answers against the app's own document and remembers what it checked."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        # The document the app serves, which SDKs are generated from.
        self.document: dict[str, Any] = shop.client.get("/api/openapi.json").json()
        self.checked: set[tuple[str, str]] = set()
        self.seen_keys: set[str] = set()

    def schema(self, method: str, path: str, status: int) -> dict[str, Any]:
        response = self.document["paths"][path][method.lower()]["responses"][str(status)]
        found: dict[str, Any] = response["content"]["application/json"]["schema"]
        return found

    def validator(self, schema: dict[str, Any]) -> Any:
        # Formats too: the timestamps are declared `date-time`.
        return jsonschema_rs.Draft202012Validator(
            {**schema, "components": self.document["components"]}, validate_formats=True
        )

    def check(self, method: str, path: str, r: httpx.Response, status: int = 200) -> Any:
        """The answer's body, after asserting it is what the operation declares."""
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        errors = [
            str(e) for e in self.validator(self.schema(method, path, status)).iter_errors(body)
        ]
        assert not errors, (method, path, errors[:5])
        self.checked.add((method, path))
        self._collect(body)
        return body

    def _collect(self, value: Any, prefix: str = "") -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if item is not None and item != []:
                    self.seen_keys.add(prefix + key)
                self._collect(item, prefix + key + ".")
        elif isinstance(value, list):
            for item in value:
                self._collect(item, prefix)


@pytest.fixture
def contract(shop: Shop) -> Iterator[Contract]:
    yield Contract(shop)


def _address(n: int) -> dict[str, str]:
    # One address per order: the fraud rules hold a fourth order to one address in an hour.
    return {**ADDRESS, "line1": f"{n} MG Road"}


def _place(shop: Shop, contract: Contract, sub: str, sku: str, qty: int, n: int) -> dict[str, Any]:
    r = shop.client.post(
        "/api/cart/items", json={"sku": sku, "quantity": qty}, headers=shop.headers(sub)
    )
    contract.check("POST", "/api/cart/items", r)
    r = shop.client.post(
        "/api/checkout",
        json={"shippingAddress": _address(n), "shippingMethod": "express"},
        headers={**shop.headers(sub), "Idempotency-Key": f"key-{sub}-{n}"},
    )
    placed: dict[str, Any] = contract.check("POST", "/api/checkout", r, 201)
    return placed


def _pay(shop: Shop, placed: dict[str, Any]) -> None:
    event = shop.gateway.settle(placed["payment"]["paymentId"], "succeeded")
    apply_payment_event(shop.services, event)


# --- the document ----------------------------------------------------------------------


def _object_schemas(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "properties" in value:
            yield value
        for item in value.values():
            yield from _object_schemas(item)
    elif isinstance(value, list):
        for item in value:
            yield from _object_schemas(item)


def _reachable(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The component schemas `schema` refers to, directly or not."""
    components = document["components"]["schemas"]
    found: dict[str, dict[str, Any]] = {}
    todo = [schema]
    while todo:
        text = json.dumps(todo.pop())
        for name in components:
            if f'"#/components/schemas/{name}"' in text and name not in found:
                found[name] = components[name]
                todo.append(components[name])
    return found


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
def test_each_operation_declares_a_closed_success_schema(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = document["paths"][path][method.lower()]["responses"]
    successes = [code for code in responses if code.startswith("2")]
    assert successes == (["201"] if path == "/api/checkout" else ["200"])
    content = responses[successes[0]]["content"]
    assert list(content) == ["application/json"]
    schema = content["application/json"]["schema"]
    assert set(schema) == {"$ref"}  # a named model, not a free-form object
    components = _reachable(document, schema)
    assert components
    for name, component in components.items():
        for found in _object_schemas(component):
            assert found.get("additionalProperties") is False, name


def test_statuses_are_the_state_machine(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("Order", "AdminOrder", "CheckoutResult", "HistoryEntry", "TimelineEntry"):
        assert schemas[name]["properties"]["status"]["enum"] == list(ORDER_STATUSES)


def test_an_undeclared_or_missing_field_fails_the_check(shop: Shop, contract: Contract) -> None:
    shop.stock("SKU-1", 10, price=11800)
    placed = _place(shop, contract, "asha", "SKU-1", 1, 1)
    r = shop.client.get(f"/api/orders/{placed['orderId']}", headers=shop.headers("asha"))
    order = contract.check("GET", "/api/orders/{orderId}", r)
    validator = contract.validator(contract.schema("GET", "/api/orders/{orderId}", 200))
    assert validator.is_valid(order)
    assert not validator.is_valid({**order, "placedAt": order["createdAt"]})
    line = {**order["lines"][0], "currency": "INR"}
    assert not validator.is_valid({**order, "lines": [line]})
    history = [{**order["history"][0], "reason": None}]  # left out, never null
    assert not validator.is_valid({**order, "history": history})
    missing = {k: v for k, v in order.items() if k != "fulfilments"}
    assert not validator.is_valid(missing)
    assert not validator.is_valid({**order, "status": "shipping"})


# --- real answers ----------------------------------------------------------------------


def test_cart_answers_match_the_document(shop: Shop, contract: Contract) -> None:
    shop.stock("SKU-1", 10, price=11800)
    shop.stock("SKU-GONE", 10, price=500, product="p-gone")
    cart = "/api/cart"
    body = contract.check("GET", cart, shop.client.get(cart))
    assert body == {"items": [], "subtotal": None, "updatedAt": None}
    r = shop.client.post(f"{cart}/items", json={"sku": "SKU-1", "quantity": 1})
    contract.check("POST", f"{cart}/items", r)
    header = contract.document["paths"][cart]["get"]["responses"]["200"]["headers"]["X-Cart-Id"]
    assert jsonschema_rs.Draft202012Validator(header["schema"]).is_valid(r.headers["X-Cart-Id"])
    anonymous = {"X-Cart-Id": r.headers["X-Cart-Id"]}
    r = shop.client.post(
        f"{cart}/items", json={"sku": "SKU-GONE", "quantity": 2}, headers=anonymous
    )
    contract.check("POST", f"{cart}/items", r)
    r = shop.client.patch(f"{cart}/items/SKU-1", json={"quantity": 3}, headers=anonymous)
    contract.check("PATCH", f"{cart}/items/{{sku}}", r)
    # A product that left the catalog: its line shows without title or prices.
    shop.services.documents.container("catalog").delete("p-gone", "p-gone")
    body = contract.check("GET", cart, shop.client.get(cart, headers=anonymous))
    gone = next(line for line in body["items"] if line["sku"] == "SKU-GONE")
    assert gone["unitPrice"] is None and gone["title"] is None and gone["inStock"] is False
    r = shop.client.delete(f"{cart}/items/SKU-GONE", headers=anonymous)
    contract.check("DELETE", f"{cart}/items/{{sku}}", r)
    signed_in = shop.headers("asha")
    contract.check("GET", cart, shop.client.get(cart, headers=signed_in))
    body = contract.check("GET", cart, shop.client.get(cart, headers={**signed_in, **anonymous}))
    assert [line["sku"] for line in body["items"]] == ["SKU-1"]  # merged
    r = shop.client.patch(f"{cart}/items/SKU-1", json={"quantity": 1}, headers=signed_in)
    contract.check("PATCH", f"{cart}/items/{{sku}}", r)
    r = shop.client.delete(f"{cart}/items/SKU-1", headers=signed_in)
    body = contract.check("DELETE", f"{cart}/items/{{sku}}", r)
    assert body["items"] == [] and body["subtotal"] is None and body["updatedAt"]
    assert contract.checked == CART_OPERATIONS


def test_order_answers_match_the_document_through_a_whole_life(
    shop: Shop, contract: Contract
) -> None:
    shop.stock("SKU-1", 50, price=11800)
    shop.stock("SKU-2", 50, price=5900, product="p2")
    shop.stock("BIG", 50, price=2_000_000, product="p-big")
    admin = shop.headers("boss", admin=True)
    asha = shop.headers("asha")

    # checkout and its replay
    shop.add_to_cart("asha", "SKU-2", 1)
    placed = _place(shop, contract, "asha", "SKU-1", 2, 1)
    r = shop.client.post(
        "/api/checkout",
        json={"shippingAddress": _address(1), "shippingMethod": "express"},
        headers={**asha, "Idempotency-Key": "key-asha-1"},
    )
    assert contract.check("POST", "/api/checkout", r, 201) == placed
    order_id = placed["orderId"]
    path = f"/api/orders/{order_id}"
    contract.check("GET", "/api/orders/{orderId}", shop.client.get(path, headers=asha))

    # paid, accepted by the partner, one parcel shipped with tracking, then delivered
    _pay(shop, placed)
    update = PartnerUpdate(kind="accepted", order_id=order_id, event_id="e1", request_id="fr-1")
    apply_update(shop.services, update)
    apply_update(
        shop.services,
        PartnerUpdate(
            kind="shipped",
            order_id=order_id,
            event_id="e2",
            request_id="fr-1",
            shipment_id="P1",
            carrier="BlueDart",
            tracking_number="TN-1",
            tracking_url="https://track.example/P1",
            lines=(("SKU-1", 1),),
        ),
    )
    body = contract.check("GET", "/api/orders/{orderId}", shop.client.get(path, headers=asha))
    assert body["partiallyShipped"] is True
    assert {f["status"] for f in body["fulfilments"]} == {"shipped", "accepted"}
    apply_update(
        shop.services,
        PartnerUpdate(
            kind="shipped",
            order_id=order_id,
            event_id="e3",
            shipment_id="P2",
            carrier="BlueDart",
            tracking_number="TN-2",
            lines=(("SKU-1", 1), ("SKU-2", 1)),
        ),
    )
    for n, parcel in enumerate(("P1", "P2")):
        update = PartnerUpdate(
            kind="delivered", order_id=order_id, event_id=f"d{n}", shipment_id=parcel
        )
        apply_update(shop.services, update)

    # a return, marked returned by an admin, refunded by lines
    r = shop.client.post(
        f"{path}/returns",
        json={"lines": [{"sku": "SKU-1", "quantity": 1}], "reason": "too small"},
        headers=asha,
    )
    body = contract.check("POST", "/api/orders/{orderId}/returns", r)
    assert body["returnRequest"]["reason"] == "too small"
    admin_path = f"/api/admin/orders/{order_id}"
    r = shop.client.post(f"{admin_path}/status", json={"status": "returned"}, headers=admin)
    contract.check("POST", "/api/admin/orders/{orderId}/status", r)
    r = shop.client.post(
        f"{admin_path}/refunds", json={"lines": [{"sku": "SKU-1", "quantity": 1}]}, headers=admin
    )
    body = contract.check("POST", "/api/admin/orders/{orderId}/refunds", r)
    assert body["status"] == "refunded" and body["refunds"][0]["lines"]
    body = contract.check(
        "GET", "/api/admin/orders/{orderId}", shop.client.get(admin_path, headers=admin)
    )
    assert body["risk"]["decision"] == "allow" and body["customerId"] == "asha"

    # without a partner: an admin walks a paid order along, refunds an amount
    walked = _place(shop, contract, "dev", "SKU-2", 1, 2)
    _pay(shop, walked)
    for step in ("fulfilling", "on_hold", "fulfilling", "shipped", "delivered"):
        r = shop.client.post(
            f"/api/admin/orders/{walked['orderId']}/status", json={"status": step}, headers=admin
        )
        assert contract.check("POST", "/api/admin/orders/{orderId}/status", r)["status"] == step
    r = shop.client.post(
        f"/api/admin/orders/{walked['orderId']}/refunds", json={"amount": 100}, headers=admin
    )
    contract.check("POST", "/api/admin/orders/{orderId}/refunds", r)

    # cancelled unpaid (payment voided) and paid (refunded)
    for n, (sub, paid) in enumerate((("kiran", False), ("lata", True)), start=3):
        cancelled = _place(shop, contract, sub, "SKU-1", 1, n)
        if paid:
            _pay(shop, cancelled)
        r = shop.client.post(
            f"/api/orders/{cancelled['orderId']}/cancel",
            json={"reason": "changed my mind"},
            headers=shop.headers(sub),
        )
        body = contract.check("POST", "/api/orders/{orderId}/cancel", r)
        assert body["status"] == "cancelled" and body["history"][-1]["reason"]

    # held for review (a high-value first order): one approved unpaid, one rejected paid
    held = _place(shop, contract, "ravi", "BIG", 3, 5)
    assert held["status"] == "on_hold"
    r = shop.client.get("/api/admin/orders", params={"status": "on_hold"}, headers=admin)
    page = contract.check("GET", "/api/admin/orders", r)
    assert [o["orderId"] for o in page["items"]] == [held["orderId"]]
    assert page["items"][0]["risk"]["reasons"]
    r = shop.client.post(
        f"/api/admin/orders/{held['orderId']}/review", json={"decision": "approve"}, headers=admin
    )
    body = contract.check("POST", "/api/admin/orders/{orderId}/review", r)
    assert body["status"] == "pending_payment" and body["risk"]["review"]["decision"] == "approve"
    r = shop.client.post(f"/api/admin/orders/{held['orderId']}/cancel", headers=admin)
    body = contract.check("POST", "/api/admin/orders/{orderId}/cancel", r)
    assert body["status"] == "cancelled" and body["history"][-1]["reason"] == "cancelled_by_shop"
    rejected = _place(shop, contract, "meera", "BIG", 3, 6)
    _pay(shop, rejected)
    for _ in range(2):  # the same decision again answers the same order
        r = shop.client.post(
            f"/api/admin/orders/{rejected['orderId']}/review",
            json={"decision": "reject"},
            headers=admin,
        )
        body = contract.check("POST", "/api/admin/orders/{orderId}/review", r)
        assert body["status"] == "cancelled" and body["refunds"]

    # an imported order, one of its lines without a price
    shop.import_history_order()
    body = contract.check(
        "GET", "/api/orders/{orderId}", shop.client.get("/api/orders/hist-1", headers=asha)
    )
    assert body["imported"] is True and body["lines"][1]["unitPrice"]["amount"] is None

    # lists, one page at a time, and the admin's with filters
    r = shop.client.get("/api/orders", params={"limit": 1}, headers=asha)
    first = contract.check("GET", "/api/orders", r)
    r = shop.client.get("/api/orders", params={"cursor": first["nextCursor"]}, headers=asha)
    rest = contract.check("GET", "/api/orders", r)
    assert len(first["items"]) + len(rest["items"]) == 2 and rest["nextCursor"] is None
    for params in ({}, {"status": "cancelled"}, {"limit": 2}):
        r = shop.client.get("/api/admin/orders", params=params, headers=admin)
        contract.check("GET", "/api/admin/orders", r)

    # an erased customer's orders keep only the country of their address
    assert shop.client.delete("/api/me", headers=asha).status_code in (200, 202, 204)
    body = contract.check("GET", "/api/orders", shop.client.get("/api/orders", headers=asha))
    addresses = [o["shippingAddress"] for o in body["items"] if not o["imported"]]
    assert addresses == [{"country": "IN", "anonymized": True}]
    r = shop.client.get(f"/api/admin/orders/{order_id}", headers=admin)
    contract.check("GET", "/api/admin/orders/{orderId}", r)

    # every operation answered, with every optional part present at least once
    assert contract.checked >= ORDER_OPERATIONS, ORDER_OPERATIONS - contract.checked
    for key in (
        "fulfilments.carrier",
        "fulfilments.trackingNumber",
        "fulfilments.trackingUrl",
        "refunds.lines.sku",
        "returnRequest.requestedAt",
        "history.reason",
        "payment.clientSecret",
        "risk.reasons.rule",
        "risk.review.by",
        "shippingAddress.anonymized",
        "shippingAddress.postalCode",
        "items.risk.score",
    ):
        assert key in contract.seen_keys, key
