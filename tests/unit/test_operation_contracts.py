"""The OpenAPI document says what the catalog, cart, checkout, order and storefront-event
operations accept, and the API keeps answering its own problem types for what they refuse.

Client SDKs are generated from the document, so a body or parameter the document allows must
not be refused as invalid, and one it forbids must be refused with the route's own problem.
Each agreement test checks example values against both the document and the API's checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from cloudcart.api.app import create_app
from cloudcart.api.problems import PROBLEM_MEDIA_TYPE
from cloudcart.catalog import service as catalog_service
from cloudcart.catalog.media_routes import MediaUploadIn
from cloudcart.catalog.models import CategoryIn, InventoryIn, ProductIn
from cloudcart.core.ports.search import InvalidCursor
from cloudcart.core.search import cursors as search_cursors
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.insights import storefront
from cloudcart.orders import service as orders_service
from cloudcart.orders.cart import new_cart_id
from cloudcart.orders.models import CheckoutIn, RefundIn

ADDRESS = {
    "name": "Asha",
    "line1": "12 MG Road",
    "city": "Pune",
    "postalCode": "411001",
    "country": "IN",
}


@dataclass
class Shop:
    client: TestClient
    settings: Settings
    document: dict[str, Any]

    def auth(self, sub: str = "asha", *, admin: bool = False) -> dict[str, str]:
        token, _ = mint_token(self.settings, sub, roles=("Admin",) if admin else ())
        return {"Authorization": f"Bearer {token}"}

    def operation(self, method: str, path: str) -> dict[str, Any]:
        found: dict[str, Any] = self.document["paths"][path][method.lower()]
        return found

    def parameter(self, method: str, path: str, name: str) -> dict[str, Any]:
        for parameter in self.operation(method, path).get("parameters", []):
            if parameter["name"].lower() == name.lower():
                found: dict[str, Any] = parameter
                return found
        raise AssertionError(f"{method} {path} declares no parameter {name}")

    def validator(self, schema: dict[str, Any]) -> Any:
        # The component schemas are resolved against the document itself.
        return jsonschema_rs.Draft202012Validator(
            {**schema, "components": self.document["components"]}
        )

    def body_validator(self, method: str, path: str) -> Any:
        content = self.operation(method, path)["requestBody"]["content"]
        return self.validator(content["application/json"]["schema"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("contracts")))
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    with TestClient(app) as client:
        yield Shop(client, settings, app.openapi())
    app.state.services.close()


def assert_problem(r: httpx.Response, status: int, type_: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert r.json()["type"].endswith("/" + type_), r.json()


def accepted_by(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


# --- authentication ---------------------------------------------------------------------


ANONYMOUS_TOO = [
    ("GET", "/api/cart"),
    ("POST", "/api/cart/items"),
    ("PATCH", "/api/cart/items/{sku}"),
    ("DELETE", "/api/cart/items/{sku}"),
    ("POST", "/api/events"),
]


@pytest.mark.parametrize(("method", "path"), ANONYMOUS_TOO)
def test_operations_anonymous_callers_use_declare_the_token_optional(
    shop: Shop, method: str, path: str
) -> None:
    security = shop.operation(method, path)["security"]
    assert {} in security and {"bearer": []} in security


def test_the_history_still_requires_a_token(shop: Shop) -> None:
    for method in ("GET", "DELETE"):
        assert shop.operation(method, "/api/me/history")["security"] == [{"bearer": []}]


def test_an_anonymous_cart_needs_no_token(shop: Shop) -> None:
    r = shop.client.get("/api/cart")
    assert r.status_code == 200
    assert r.json()["items"] == []


# --- headers --------------------------------------------------------------------------------


def test_checkout_declares_the_idempotency_key_required_and_keeps_its_own_400(
    shop: Shop,
) -> None:
    key = shop.parameter("POST", "/api/checkout", "Idempotency-Key")
    assert key["in"] == "header" and key["required"] is True
    assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    body = {"shippingAddress": ADDRESS}
    for headers in ({}, {"Idempotency-Key": ""}, {"Idempotency-Key": "k" * 256}):
        r = shop.client.post("/api/checkout", json=body, headers={**shop.auth(), **headers})
        assert_problem(r, 400, "idempotency-key-required")


@pytest.mark.parametrize("path", ["/api/cart", "/api/cart/items", "/api/cart/items/{sku}"])
def test_the_cart_id_header_is_a_documented_pattern(shop: Shop, path: str) -> None:
    methods = [
        m for m in ("GET", "POST", "PATCH", "DELETE") if m.lower() in shop.document["paths"][path]
    ]
    for method in methods:
        schema = shop.parameter(method, path, "X-Cart-Id")["schema"]
        assert schema["type"] == "string"
        assert "anyOf" not in schema  # a header is never null
        assert re.fullmatch(schema["pattern"], new_cart_id())


@pytest.mark.parametrize(
    "cart_id",
    [b"short", b"", b"x" * 65, b"null", "\xe9".encode("latin-1") * 20, b"a b" * 8],
)
def test_a_cart_id_outside_the_pattern_is_400_bad_cart_id(shop: Shop, cart_id: bytes) -> None:
    r = shop.client.get("/api/cart", headers={"X-Cart-Id": cart_id})
    assert_problem(r, 400, "bad-cart-id")


def test_the_visitor_id_header_is_a_documented_pattern(shop: Shop) -> None:
    for method, path in (("POST", "/api/events"), ("GET", "/api/me/history")):
        schema = shop.parameter(method, path, "X-Visitor-Id")["schema"]
        assert schema["type"] == "string"
        assert schema["pattern"] == storefront.VISITOR_ID_PATTERN
    r = shop.client.get("/api/me/history", headers={**shop.auth(), "X-Visitor-Id": "null"})
    assert_problem(r, 400, "bad-visitor-id")


def test_anonymous_events_without_a_visitor_id_stay_400(shop: Shop) -> None:
    r = shop.client.post("/api/events", json={"events": []})
    assert_problem(r, 400, "visitor-id-required")


# --- query parameters -----------------------------------------------------------------------


def test_the_order_status_filter_is_an_enum_and_stays_400_bad_status(shop: Shop) -> None:
    schema = shop.parameter("GET", "/api/admin/orders", "status")["schema"]
    assert schema["type"] == "string"
    assert "paid" in schema["enum"] and "" not in schema["enum"]
    for status in ("", "PAID", "unknown"):
        r = shop.client.get(
            "/api/admin/orders", params={"status": status}, headers=shop.auth("boss", admin=True)
        )
        assert_problem(r, 400, "bad-status")


def test_every_cursor_the_api_makes_fits_its_documented_pattern(shop: Shop) -> None:
    def pattern(path: str) -> str:
        schema = shop.parameter("GET", path, "cursor")["schema"]
        assert schema["type"] == "string" and "anyOf" not in schema
        found: str = schema["pattern"]
        return found

    fingerprint = "0123456789abcdef"
    for continuation in ("", "x", '{"o":12}' * 40):
        made = orders_service.encode_cursor(continuation)
        assert made is not None
        assert re.fullmatch(pattern("/api/orders"), made)
        assert re.fullmatch(pattern("/api/admin/orders"), made)
        catalog_cursor = catalog_service._encode_cursor(continuation, fingerprint)
        assert re.fullmatch(pattern("/api/catalog/products"), catalog_cursor)
    for offset in (0, 20, 10**9):
        made = search_cursors.encode_cursor(offset, fingerprint)
        assert re.fullmatch(pattern("/api/search"), made)
    assert re.fullmatch(pattern("/api/search"), "")  # the first page


def test_a_cursor_with_characters_outside_base64url_is_refused(shop: Shop) -> None:
    made = orders_service.encode_cursor("continuation")
    assert made is not None
    with pytest.raises(ValueError):
        orders_service.decode_cursor(made[:4] + "!" + made[4:])
    r = shop.client.get(
        "/api/orders", params={"cursor": made[:4] + "!" + made[4:]}, headers=shop.auth()
    )
    assert_problem(r, 400, "bad-cursor")
    search = search_cursors.encode_cursor(20, "0123456789abcdef")
    assert search_cursors.decode_cursor(search, "0123456789abcdef") == 20
    with pytest.raises(InvalidCursor):
        search_cursors.decode_cursor(search[:4] + "*" + search[4:], "0123456789abcdef")


def test_a_catalog_cursor_round_trips_and_a_tampered_one_is_400(shop: Shop) -> None:
    admin = shop.auth("boss", admin=True)
    r = shop.client.post(
        "/api/admin/categories", json={"id": "cursors", "name": "Cursors"}, headers=admin
    )
    assert r.status_code == 201, r.text
    for n in range(2):
        body = {
            "title": f"Cursor product {n}",
            "brand": "Acme",
            "categoryId": "cursors",
            "status": "active",
            "variants": [{"sku": f"CUR-{n}", "price": {"amount": 100, "currency": "INR"}}],
        }
        assert shop.client.post("/api/admin/products", json=body, headers=admin).status_code == 201
    params = {"category": "cursors", "limit": 1}
    first = shop.client.get("/api/catalog/products", params=params).json()
    cursor = first["nextCursor"]
    schema = shop.parameter("GET", "/api/catalog/products", "cursor")["schema"]
    assert re.fullmatch(schema["pattern"], cursor)
    second = shop.client.get("/api/catalog/products", params={**params, "cursor": cursor})
    assert second.status_code == 200
    assert second.json()["items"][0]["id"] != first["items"][0]["id"]
    for forged in (cursor[:10] + "!" + cursor[10:], "Q", "0" * 42):
        r = shop.client.get("/api/catalog/products", params={**params, "cursor": forged})
        assert_problem(r, 400, "invalid-cursor")


# --- request bodies: the document and the API agree --------------------------------------


def _agree(validator: Any, accepts: Any, cases: list[tuple[dict[str, Any], bool]]) -> None:
    for body, valid in cases:
        assert validator.is_valid(body) is valid, ("document", body)
        assert accepts(body) is valid, ("API", body)


LINE = {"sku": "A-1", "quantity": 1}


def test_refund_bodies_give_exactly_one_of_lines_and_amount(shop: Shop) -> None:
    _agree(
        shop.body_validator("POST", "/api/admin/orders/{orderId}/refunds"),
        lambda body: accepted_by(RefundIn, body),
        [
            ({"amount": 100}, True),
            ({"lines": [LINE]}, True),
            ({"lines": None, "amount": 100}, True),
            ({"lines": [LINE], "amount": None}, True),
            ({"lines": [LINE], "amount": 100}, False),
            ({}, False),
            ({"lines": None, "amount": None}, False),
            ({"reason": "damaged"}, False),
        ],
    )


def test_checkout_bodies_give_exactly_one_address(shop: Shop) -> None:
    _agree(
        shop.body_validator("POST", "/api/checkout"),
        lambda body: accepted_by(CheckoutIn, body),
        [
            ({"addressId": "adr_1"}, True),
            ({"shippingAddress": ADDRESS}, True),
            ({"shippingAddress": None, "addressId": "adr_1"}, True),
            ({"shippingAddress": ADDRESS, "addressId": "adr_1"}, False),
            ({}, False),
            ({"shippingMethod": "standard"}, False),
        ],
    )


def test_inventory_bodies_give_exactly_one_of_available_and_on_hand(shop: Shop) -> None:
    _agree(
        shop.body_validator("PUT", "/api/admin/inventory/{sku}"),
        lambda body: accepted_by(InventoryIn, body),
        [
            ({"available": 0}, True),
            ({"onHand": 5}, True),
            ({"available": None, "onHand": 5}, True),
            ({"available": 0, "onHand": 999999999}, False),
            ({}, False),
        ],
    )


def test_media_declarations_fit_their_kind(shop: Shop) -> None:
    mib = 1024 * 1024
    _agree(
        shop.body_validator("POST", "/api/admin/products/{productId}/media"),
        _media_accepted,
        [
            ({"kind": "image", "contentType": "image/png", "size": 20 * mib}, True),
            ({"kind": "video", "contentType": "video/mp4", "size": 200 * mib}, True),
            ({"kind": "image", "contentType": "image/png", "size": 20 * mib + 1}, False),
            ({"kind": "image", "contentType": "video/mp4", "size": 1}, False),
            ({"kind": "video", "contentType": "image/png", "size": 1}, False),
            ({"kind": "image", "contentType": "0", "size": 1}, False),
            ({"kind": "image", "contentType": "IMAGE/PNG", "size": 1}, False),
        ],
    )


def _media_accepted(body: dict[str, Any]) -> bool:
    from cloudcart.catalog import media

    if not accepted_by(MediaUploadIn, body):
        return False
    try:
        media.check_declaration(body["kind"], body["contentType"], body["size"])
    except (media.UnsupportedMediaType, media.MediaRejected):
        return False
    return True


def _product(attributes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "title": "Phone",
        "brand": "Acme",
        "categoryId": "phones",
        "attributes": attributes,
        "variants": [{"sku": "P-1", "price": {"amount": 100, "currency": "INR"}}],
        **fields,
    }


def test_product_attributes_and_text_are_documented_as_checked(shop: Shop) -> None:
    extras = {f"extra{n}": n for n in range(40)}
    _agree(
        shop.body_validator("POST", "/api/admin/products"),
        lambda body: accepted_by(ProductIn, body),
        [
            (_product({"ram": "8gb", "storage": "128 GB", "screenSize": '6.5"'}), True),
            (_product({"screenSize": "6.5 Inches", "ram": None}), True),
            (_product({**extras, "storage": "1 TB", "ram": "8 GB"}), True),
            (_product({**extras, "more1": 1, "more2": 2}), True),  # 42 attributes
            (_product({**extras, **{f"more{n}": n for n in range(7)}}), False),  # 47
            (_product({"screenSize": ""}), False),
            (_product({"ram": "8 GiB"}), False),
            (_product({"storage": "\u0664 GB"}), False),  # not an ASCII digit
            (_product({"Bad_name": 1}), False),
            (_product({"nested": {"a": 1}}), False),
            (_product({"extra": None}), False),
            (_product({}, title="   "), False),
            (_product({}, brand=" "), False),
        ],
    )
    _agree(
        shop.validator({"$ref": "#/components/schemas/CategoryIn"}),
        lambda body: accepted_by(CategoryIn, body),
        [({"id": "shoes", "name": "Shoes"}, True), ({"id": "shoes", "name": "  "}, False)],
    )


def test_storefront_events_are_documented_per_type(shop: Shop) -> None:
    def parsed(body: dict[str, Any]) -> bool:
        try:
            storefront.parse_batch(json.dumps(body).encode())
        except storefront.StorefrontEventsError:
            return False
        return True

    def batch(*events: dict[str, Any]) -> dict[str, Any]:
        return {"events": list(events)}

    _agree(
        shop.body_validator("POST", "/api/events"),
        parsed,
        [
            (batch(), True),
            (batch({"type": "product_viewed", "productId": "p-1"}), True),
            (batch({"type": "search", "query": "phone", "resultsCount": 12}), True),
            (batch({"type": "search", "query": "phone", "resultsCount": 12.0}), True),
            (batch({"type": "search", "query": "phone", "productId": None, "sku": None}), True),
            (batch({"type": "add_to_cart", "sku": "SKU-1"}), True),
            (batch({"type": "remove_from_cart", "productId": "p-1"}), True),
            (batch({"type": "checkout_started", "at": "2020-01-01T00:00:00Z"}), True),
            (batch({"type": "search", "query": "phone", "productId": "p-1"}), False),
            (batch({"type": "search"}), False),
            (batch({"type": "search", "query": "   "}), False),
            (batch({"type": "product_viewed"}), False),
            (batch({"type": "product_viewed", "productId": None}), False),
            (batch({"type": "add_to_cart"}), False),
            (batch({"type": "checkout_started", "sku": "SKU-1"}), False),
            (batch({"type": "checkout_started", "unknown": None}), False),
            (batch({"type": "search", "query": "x", "resultsCount": 1.5}), False),
        ],
    )


def test_an_integral_results_count_is_accepted_over_http(shop: Shop) -> None:
    event = {"type": "search", "query": "phone", "resultsCount": 12.0}
    r = shop.client.post("/api/events", json={"events": [event]}, headers=shop.auth())
    assert r.status_code == 202, r.text


def test_an_unknown_event_field_is_refused_even_when_null(shop: Shop) -> None:
    event = {"type": "checkout_started", "coupon": None}
    r = shop.client.post("/api/events", json={"events": [event]}, headers=shop.auth())
    assert_problem(r, 422, "invalid-events")
    assert r.json()["field"] == "coupon"
