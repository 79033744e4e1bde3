"""Bulk imports: products and historical orders from NDJSON, over HTTP and in-process."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.importer import (
    LineRejected,
    LineSplitter,
    NdjsonImport,
    NotNdjson,
    ProductImporter,
    import_stream,
    one_by_one,
)
from cloudcart.catalog.models import CategoryIn
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Query,
)
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.orders.importer import IMPORT_CLAIMS_PARTITION, OrderImporter

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DOCS = ROOT / "docs" / "events"
NDJSON = {"Content-Type": "application/x-ndjson"}
PLACED = "2024-03-01T10:00:00Z"


@dataclass
class Shop:
    app: FastAPI
    client: TestClient
    services: Services
    settings: Settings

    def headers(self, sub: str = "admin-1", *, admin: bool = True) -> dict[str, str]:
        token, _ = mint_token(self.settings, sub, roles=("Admin",) if admin else ())
        return {"Authorization": f"Bearer {token}"}

    def post(self, kind: str, lines: list[Any] | str, **headers: str) -> Any:
        body = lines if isinstance(lines, str) else ndjson(lines)
        return self.client.post(
            f"/api/admin/import/{kind}",
            content=body.encode(),
            headers={**self.headers(), **NDJSON, **headers},
        )

    @property
    def catalog(self) -> CatalogService:
        return CatalogService(self.services.documents)

    def events(self, container: str, type_: str | None = None) -> list[dict[str, Any]]:
        found = _all(self.services.documents.container(container), Filter("kind", "eq", "outbox"))
        events = [d["event"] for d in found]
        return [e for e in events if type_ is None or e["type"] == type_]

    def all_events(self) -> list[dict[str, Any]]:
        return [e for c in ("catalog", "inventory", "orders") for e in self.events(c)]


def _all(container: Container, *filters: Filter) -> list[Document]:
    items: list[Document] = []
    continuation: str | None = None
    while True:
        page = container.query(Query(filters=filters, limit=100), continuation=continuation)
        items.extend(page.items)
        continuation = page.continuation
        if continuation is None:
            return items


def ndjson(lines: list[Any]) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    services: Services = app.state.services
    services.documents.ensure_containers()
    catalog = CatalogService(services.documents)
    catalog.create_category(CategoryIn(id="phones", name="Phones"))
    catalog.create_category(CategoryIn(id="cases", name="Cases"))
    with TestClient(app) as client:
        yield Shop(app, client, services, settings)


def product(
    sku: str = "PHN-1", *, id_: str | None = "prd_phone", amount: int = 1999900, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Acme One",
        "brand": "Acme",
        "categoryId": "phones",
        "attributes": {"storage": "128gb"},
        "variants": [{"sku": sku, "price": {"amount": amount, "currency": "INR"}}],
        "status": "active",
        **extra,
    }
    if id_ is not None:
        body["id"] = id_
    return body


def order(
    order_id: str = "H-1", customer: str = "alice", *, lines: list[Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "customerId": customer,
        "placedAt": PLACED,
        "lines": lines
        if lines is not None
        else [{"sku": "PHN-1", "quantity": 2, "unitPrice": 1500}, {"sku": "GONE-7", "quantity": 1}],
        **extra,
    }


# --- reading NDJSON ---------------------------------------------------------------------------


def test_splitter_numbers_lines_skips_blank_ones_and_accepts_crlf() -> None:
    splitter = LineSplitter(max_line_bytes=100)
    lines = splitter.feed(b'{"a": 1}\r\n\n  \n{"b"') + splitter.feed(b": 2}") + splitter.finish()
    assert [(line.number, line.data) for line in lines] == [(1, b'{"a": 1}'), (4, b'{"b": 2}')]


def test_splitter_drops_an_over_long_line_without_holding_it() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    lines = splitter.feed(b"x" * 8) + splitter.feed(b"y" * 8)
    assert lines == [] and len(splitter._buffer) == 0  # nothing of it is kept
    lines += splitter.feed(b"z\n{}\n") + splitter.feed(b"q" * 11)
    lines += splitter.finish()
    assert [(line.number, line.data) for line in lines] == [(1, None), (2, b"{}"), (3, None)]


def test_exactly_the_limit_is_accepted() -> None:
    splitter = LineSplitter(max_line_bytes=4)
    lines = splitter.feed(b"abcd\r\nabcde\n")
    assert [line.data for line in lines] == [b"abcd", None]


def test_rejected_lines_are_capped_and_counted() -> None:
    def refuse(record: dict[str, Any]) -> Any:
        raise LineRejected(f"no {record['n']}")

    run = NdjsonImport(one_by_one(refuse), max_rejected=3, chunk_lines=2)
    body = ndjson([{"n": n} for n in range(7)]).encode()
    summary = import_stream(io.BytesIO(body), run)
    assert summary.to_dict() == {
        "imported": 0,
        "updated": 0,
        "rejected": [{"line": n + 1, "error": f"no {n}"} for n in range(3)],
        "rejectedCount": 7,
    }


def test_only_a_bad_first_line_refuses_the_whole_body() -> None:
    handled: list[dict[str, Any]] = []

    def keep(record: dict[str, Any]) -> Any:
        handled.append(record)
        return "imported"

    with pytest.raises(NotNdjson):
        import_stream(io.BytesIO(b'\n[{"a": 1}]\n{"b": 2}\n'), NdjsonImport(one_by_one(keep)))
    assert handled == []
    summary = import_stream(
        io.BytesIO(b'{"a": 1}\n[1]\n"x"\n\xff\n{"b": 2}'), NdjsonImport(one_by_one(keep))
    )
    assert summary.imported == 2
    assert [r["line"] for r in summary.rejected] == [2, 3, 4]
    assert "array" in summary.rejected[0]["error"] and "UTF-8" in summary.rejected[2]["error"]


# --- products ---------------------------------------------------------------------------------


def test_products_are_created_with_stock_and_events(shop: Shop) -> None:
    r = shop.post("products", [product(stock={"PHN-1": 7}), product("CASE-1", id_=None)])
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "updated": 0, "rejected": [], "rejectedCount": 0}
    stored = shop.catalog.get_product("prd_phone").document
    assert stored["variants"][0]["attributes"] == {}
    assert stored["attributes"] == {"storage": "128 GB"}
    assert shop.catalog.get_inventory("PHN-1").available == 7
    # Without an id, the product is named after its first SKU.
    assert shop.catalog.get_product("prd_CASE-1").document["title"] == "Acme One"
    types = sorted(e["type"] for e in shop.all_events())
    assert types.count("product.created") == 2
    assert types.count("inventory.changed") == 1
    # The admin API sees the product like one it created.
    got = shop.client.get("/api/admin/products/prd_phone", headers=shop.headers())
    assert got.status_code == 200 and got.json()["minPrice"]["amount"] == 1999900


def test_reimporting_identical_products_changes_nothing(shop: Shop) -> None:
    lines = [product(stock={"PHN-1": 7}), product("CASE-1", id_=None)]
    assert shop.post("products", lines).json()["imported"] == 2
    before = shop.all_events()
    etag = shop.catalog.get_product("prd_phone").etag
    again = shop.post("products", lines).json()
    assert again == {"imported": 0, "updated": 0, "rejected": [], "rejectedCount": 0}
    assert shop.all_events() == before
    assert shop.catalog.get_product("prd_phone").etag == etag


def test_changed_products_and_stock_are_updated(shop: Shop) -> None:
    shop.post("products", [product(stock={"PHN-1": 7}), product("CASE-1", id_=None)])
    r = shop.post(
        "products",
        [
            product(amount=1899900, stock={"PHN-1": 7}),  # price changed
            product("CASE-1", id_=None, stock={"CASE-1": 3}),  # only stock changed
        ],
    )
    assert r.json() == {"imported": 0, "updated": 2, "rejected": [], "rejectedCount": 0}
    assert shop.catalog.get_product("prd_phone").document["minPrice"]["amount"] == 1899900
    assert shop.catalog.get_inventory("CASE-1").available == 3
    assert len(shop.events("catalog", "product.updated")) == 1


def test_a_line_without_id_finds_the_product_that_owns_its_skus(shop: Shop) -> None:
    shop.post("products", [product(id_="prd_x")])
    two = product("NEW-9", id_=None)
    two["variants"].append({"sku": "PHN-1", "price": {"amount": 500, "currency": "INR"}})
    r = shop.post("products", [two])
    assert r.json()["updated"] == 1
    skus = [v["sku"] for v in shop.catalog.get_product("prd_x").document["variants"]]
    assert skus == ["NEW-9", "PHN-1"]


def test_bad_product_lines_are_rejected_and_the_rest_imported(shop: Shop) -> None:
    shop.post("products", [product("OWNED-1", id_="prd_other")])
    lines: list[Any] = [
        product(),
        "",
        {**product("B-1", id_="prd_b"), "title": ""},
        product("C-1", id_="prd_c", categoryId="nowhere"),
        product("OWNED-1", id_="prd_d"),
        product("E-1", id_="prd_e", stock={"ZZZ": 1}),
        "{not json",
        {**product("F-1", id_="prd_f"), "colour": "red"},
        product("G-1", id_="bad id!"),
        product("H-1", id_="prd_h"),
    ]
    r = shop.post("products", lines)
    assert r.status_code == 200
    body = r.json()
    assert body["imported"] == 2 and body["rejectedCount"] == 7
    errors = {item["line"]: item["error"] for item in body["rejected"]}
    assert list(errors) == [3, 4, 5, 6, 7, 8, 9]
    assert errors[3].startswith("title:")
    assert errors[4].startswith("categoryId:") and "nowhere" in errors[4]
    assert errors[5].startswith("variants:") and "prd_other" in errors[5]
    assert "ZZZ" in errors[6]
    assert "not JSON" in errors[7]
    assert errors[8].startswith("colour:")
    assert errors[9].startswith("id:")
    shop.catalog.get_product("prd_h")


def test_not_ndjson_is_a_400_problem(shop: Shop) -> None:
    before = shop.all_events()
    r = shop.post("products", json.dumps([product()], indent=2))
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/not-ndjson")
    xml = shop.post("products", [product()], **{"Content-Type": "application/xml"})
    assert xml.status_code == 400 and "application/xml" in xml.json()["detail"]
    assert shop.all_events() == before


def test_an_empty_body_imports_nothing(shop: Shop) -> None:
    r = shop.post("products", "\n\n")
    assert r.json() == {"imported": 0, "updated": 0, "rejected": [], "rejectedCount": 0}


def test_an_over_long_line_is_rejected_and_the_next_one_imported(shop: Shop) -> None:
    huge = {**product("L-1", id_="prd_l"), "description": "x" * (1024 * 1024)}
    r = shop.post("products", [product(), huge, product("M-1", id_="prd_m")])
    body = r.json()
    assert body["imported"] == 2
    assert body["rejected"] == [{"line": 2, "error": "the line is longer than 1048576 bytes"}]


def test_imports_need_an_admin(shop: Shop) -> None:
    for kind in ("products", "orders"):
        anonymous = shop.client.post(f"/api/admin/import/{kind}", content=b"{}\n", headers=NDJSON)
        assert anonymous.status_code == 401
        customer = shop.client.post(
            f"/api/admin/import/{kind}",
            content=b"{}\n",
            headers={**shop.headers("bob", admin=False), **NDJSON},
        )
        assert customer.status_code == 403


def test_imports_are_audited(shop: Shop) -> None:
    shop.post("products", [product(), {"title": 1}])
    records = _all(shop.services.documents.container("audit"))
    assert [(r["action"], r["actorId"], r["target"]) for r in records] == [
        ("import.products", "admin-1", {"imported": 1, "updated": 0, "rejected": 1})
    ]


# --- orders -----------------------------------------------------------------------------------


def test_an_imported_order_is_stored_with_one_event_and_no_side_effects(shop: Shop) -> None:
    shop.post("products", [product(stock={"PHN-1": 7})])
    stock_before = shop.catalog.get_inventory("PHN-1")
    inventory_events = shop.events("inventory")
    r = shop.post("orders", [order()])
    assert r.json() == {"imported": 1, "updated": 0, "rejected": [], "rejectedCount": 0}

    # Stock, payments and notifications are untouched: no other event than order.imported.
    assert shop.catalog.get_inventory("PHN-1") == stock_before
    assert shop.events("inventory") == inventory_events
    events = shop.events("orders")
    assert [e["type"] for e in events] == ["order.imported"]
    assert events[0]["subject"] == "H-1" and events[0]["version"] == 1
    assert events[0]["data"] == {
        "orderId": "H-1",
        "customerId": "alice",
        "placedAt": "2024-03-01T10:00:00.000000Z",
        "status": "delivered",
        "currency": "INR",
        "lines": [
            {"sku": "PHN-1", "quantity": 2, "unitPrice": 1500, "productId": "prd_phone"},
            {"sku": "GONE-7", "quantity": 1},
        ],
    }
    stored = shop.services.documents.container("orders").read("H-1", "alice")
    assert stored["imported"] is True and stored["stock"] == "none"
    assert stored["payment"] is None and stored["capturedAmount"] == 0


def test_an_imported_order_shows_in_the_customers_orders(shop: Shop) -> None:
    shop.post("products", [product()])
    shop.post("orders", [order(), order("H-2", "someone-else")])
    listed = shop.client.get("/api/orders", headers=shop.headers("alice", admin=False))
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["orderId"] == "H-1" and item["status"] == "delivered"
    assert item["createdAt"] == "2024-03-01T10:00:00.000000Z"
    assert item["total"] == {"amount": 3000, "currency": "INR"}
    assert item["payment"] is None and item["shippingAddress"] is None
    priced, unpriced = item["lines"]
    assert priced["productId"] == "prd_phone" and priced["title"] == "Acme One"
    assert priced["lineTotal"] == {"amount": 3000, "currency": "INR"}
    assert unpriced["unitPrice"] == {"amount": None, "currency": "INR"}
    assert unpriced["productId"] is None
    one = shop.client.get("/api/orders/H-1", headers=shop.headers("alice", admin=False))
    assert one.status_code == 200 and one.json()["timeline"] == [
        {"status": "delivered", "at": "2024-03-01T10:00:00.000000Z"}
    ]
    admin = shop.client.get("/api/admin/orders/H-2", headers=shop.headers())
    assert admin.json()["customerId"] == "someone-else"


def test_imported_orders_cannot_be_cancelled_returned_refunded_or_moved(shop: Shop) -> None:
    shop.post("orders", [order(status="paid"), order("H-2", status="delivered")])
    customer = shop.headers("alice", admin=False)
    admin = shop.headers()
    returns = {"lines": [{"sku": "PHN-1", "quantity": 1}], "reason": "x"}
    refused = [
        shop.client.post("/api/orders/H-1/cancel", json={"reason": "x"}, headers=customer),
        shop.client.post("/api/orders/H-2/returns", json=returns, headers=customer),
        shop.client.post(
            "/api/admin/orders/H-1/status", json={"status": "fulfilling"}, headers=admin
        ),
    ]
    for response in refused:
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/imported-order")
    # Nothing was captured here, so there is nothing to refund either.
    refund = {"amount": 100, "reason": "x"}
    assert (
        shop.client.post("/api/admin/orders/H-2/refunds", json=refund, headers=admin).status_code
        == 409
    )
    assert shop.events("orders", "order.cancelled") == []
    assert shop.events("orders", "refund.issued") == []


def test_imported_orders_sort_by_when_they_were_placed(shop: Shop) -> None:
    shop.post(
        "orders",
        [
            order("OLD", placedAt="2019-05-01T08:00:00+05:30"),
            order("NEW", placedAt="2024-06-01T00:00:00Z"),
            order("MID", placedAt="2021-01-01T00:00:00Z"),
        ],
    )
    listed = shop.client.get("/api/orders", headers=shop.headers("alice", admin=False)).json()
    assert [o["orderId"] for o in listed["items"]] == ["NEW", "MID", "OLD"]
    assert listed["items"][2]["createdAt"] == "2019-05-01T02:30:00.000000Z"


def test_reimporting_an_identical_order_writes_nothing(shop: Shop) -> None:
    shop.post("orders", [order()])
    container = shop.services.documents.container("orders")
    etag = container.read("H-1", "alice")["_etag"]
    again = shop.post("orders", [order()]).json()
    assert again == {"imported": 0, "updated": 0, "rejected": [], "rejectedCount": 0}
    assert len(shop.events("orders")) == 1
    assert container.read("H-1", "alice")["_etag"] == etag


def test_a_changed_order_is_updated_with_a_new_event(shop: Shop) -> None:
    shop.post("orders", [order()])
    r = shop.post("orders", [order(status="returned", currency="USD")])
    assert r.json()["updated"] == 1
    events = shop.events("orders", "order.imported")
    assert len(events) == 2 and events[0]["id"] != events[1]["id"]
    assert {e["data"]["status"] for e in events} == {"delivered", "returned"}
    stored = shop.services.documents.container("orders").read("H-1", "alice")
    assert stored["status"] == "returned" and stored["importRevision"] == 2
    assert stored["totals"]["currency"] == "USD"


def test_a_product_imported_later_fills_in_the_order(shop: Shop) -> None:
    shop.post("orders", [order()])
    shop.post("products", [product()])
    assert shop.post("orders", [order()]).json()["updated"] == 1
    [line, _] = shop.services.documents.container("orders").read("H-1", "alice")["lines"]
    assert line["productId"] == "prd_phone"


def test_the_same_order_twice_in_one_file_ends_as_the_last_line(shop: Shop) -> None:
    r = shop.post("orders", [order(), order("H-2"), order(status="cancelled")])
    assert r.json() == {"imported": 2, "updated": 1, "rejected": [], "rejectedCount": 0}
    assert shop.services.documents.container("orders").read("H-1", "alice")["status"] == (
        "cancelled"
    )


def test_bad_order_lines_are_rejected_naming_the_field(shop: Shop) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    lines = [
        order("OK-1"),
        order("B-1", status="pending_payment"),
        order("B-2", placedAt="2024-03-01T10:00:00"),
        order("B-3", placedAt=future),
        order("B-3b", placedAt="0001-01-01T00:00:00+05:00"),
        order("B-4", lines=[{"sku": "A", "quantity": 1, "unitPrice": 9, "currency": "USD"}]),
        order("B-5", lines=[{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]),
        order("B-6", lines=[{"sku": "A", "quantity": 0}]),
        order("B-7", lines=[{"sku": "A", "quantity": 1, "unitPrice": 19.99}]),
        order("B-8", lines=[]),
        order("bad/id"),
        order("B-10", "~imports"),
        {**order("B-11"), "shippedAt": PLACED},
        order("OK-2"),
    ]
    lines[5]["currency"] = "INR"
    body = shop.post("orders", lines).json()
    assert body["imported"] == 2 and body["rejectedCount"] == 12
    errors = [item["error"] for item in body["rejected"]]
    for error, field in zip(
        errors,
        [
            "status:",
            "placedAt:",
            "placedAt:",
            "placedAt:",
            "currency:",
            "lines:",
            "lines.0.quantity:",
            "lines.0.unitPrice:",
            "lines:",
            "orderId:",
            "customerId:",
            "shippedAt:",
        ],
        strict=True,
    ):
        assert error.startswith(field), error
    assert "timezone" in errors[1] and "future" in errors[2] and "1970" in errors[3]


def test_an_order_id_cannot_move_to_another_customer(shop: Shop) -> None:
    shop.post("orders", [order()])
    body = shop.post("orders", [order(customer="mallory")]).json()
    assert body["rejectedCount"] == 1
    assert "another customer" in body["rejected"][0]["error"]
    assert len(shop.events("orders")) == 1


def test_an_order_placed_in_the_shop_is_never_overwritten(shop: Shop) -> None:
    container = shop.services.documents.container("orders")
    native = {**order("ord_1"), "id": "ord_1", "type": "order", "status": "paid"}
    container.create(native)
    body = shop.post("orders", [order("ord_1")]).json()
    assert "placed in this shop" in body["rejected"][0]["error"]
    assert container.read("ord_1", "alice")["status"] == "paid"


def test_a_crashed_import_leaves_a_claim_that_a_rerun_reuses(shop: Shop) -> None:
    container = shop.services.documents.container("orders")
    container.create(
        {"id": "H-1", "customerId": IMPORT_CLAIMS_PARTITION, "type": "x", "owner": "alice"}
    )
    assert shop.post("orders", [order(), order("H-2")]).json()["imported"] == 2


class RacingStore:
    """A documents store whose first `orders` batch of a customer is preceded by another
    import of the same order, as a concurrent request would."""

    def __init__(self, inner: DocumentStore, rival: dict[str, Any]) -> None:
        self.inner = inner
        self.rival: dict[str, Any] | None = rival

    def container(self, name: str) -> Container:
        container = self.inner.container(name)
        return _RacingContainer(container, self) if name == "orders" else container

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _RacingContainer:
    def __init__(self, inner: Container, store: RacingStore) -> None:
        self.inner = inner
        self.store = store

    def batch(self, partition_key: str, operations: Any) -> list[Document]:
        rival = self.store.rival
        if rival is not None and partition_key == rival["customerId"]:
            self.store.rival = None
            OrderImporter(self.store.inner, default_currency="INR").import_record(rival)
        return self.inner.batch(partition_key, operations)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_concurrent_import_of_the_same_order_is_resolved_one_by_one(shop: Shop) -> None:
    store = RacingStore(shop.services.documents, order("H-1", status="shipped"))
    importer = OrderImporter(store, default_currency="INR")
    results = importer.import_records([order("H-1"), order("H-2"), order("H-3", "bob")])
    assert results == ["updated", "imported", "imported"]
    container = shop.services.documents.container("orders")
    assert container.read("H-1", "alice")["status"] == "delivered"
    assert container.read("H-1", "alice")["importRevision"] == 2
    assert len(shop.events("orders", "order.imported")) == 4


def test_orders_of_one_customer_share_batches(shop: Shop) -> None:
    calls: list[tuple[str, int]] = []

    class Counting:
        def __init__(self, inner: DocumentStore) -> None:
            self.inner = inner

        def container(self, name: str) -> Any:
            inner = self.inner.container(name)

            class Wrapped:
                def batch(self, pk: str, operations: list[BatchOp]) -> list[Document]:
                    calls.append((pk, len(operations)))
                    return inner.batch(pk, operations)

                def __getattr__(self, attr: str) -> Any:
                    return getattr(inner, attr)

            return Wrapped()

    importer = OrderImporter(Counting(shop.services.documents), default_currency="INR")  # type: ignore[arg-type]
    records = [order(f"A-{n}") for n in range(60)] + [order("B-1", "bob")]
    assert importer.import_records(records) == ["imported"] * 61
    assert calls == [
        (IMPORT_CLAIMS_PARTITION, 61),
        ("alice", 100),  # 50 orders and their events
        ("alice", 20),
        ("bob", 2),
    ]


def test_the_event_matches_its_schema(shop: Shop) -> None:
    shop.post("products", [product()])
    shop.post("orders", [order(), order("H-2", lines=[{"sku": "X", "quantity": 1}])])
    envelope = json.loads((EVENTS_DOCS / "event.schema.json").read_text())
    schema = json.loads((EVENTS_DOCS / "order.imported.schema.json").read_text())
    assert jsonschema_rs.meta.is_valid(schema)
    validator = jsonschema_rs.validator_for(
        schema, registry=jsonschema_rs.Registry([(envelope["$id"], envelope)])
    )
    events = shop.events("orders", "order.imported")
    assert len(events) == 2
    for event in events:
        assert validator.is_valid(event), list(validator.iter_errors(event))
    broken = {**events[0], "data": {**events[0]["data"], "status": "pending_payment"}}
    assert not validator.is_valid(broken)


def test_the_product_importer_is_usable_in_process(tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path / "d"))
    services.documents.ensure_containers()
    CatalogService(services.documents).create_category(CategoryIn(id="phones", name="Phones"))
    run = NdjsonImport(ProductImporter(services.documents).import_records)
    summary = import_stream(io.BytesIO(ndjson([product()]).encode()), run)
    assert summary.imported == 1
    services.close()
