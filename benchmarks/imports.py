"""Bulk import benchmark: NDJSON lines imported per second on the embedded store.

1. Products: N new products (one variant, stock set) through `ProductImporter`, which
   writes through `CatalogService` like the admin API (a SKU claim, the product with
   `product.created`, the stock with `inventory.changed`: three transactions per product);
   then the same file again (every line identical: reads only).
2. Orders: N historical orders of C customers, 1-3 lines each with SKUs of those products,
   through `OrderImporter`, in three shapes of file: in date order (customers interleaved,
   the usual export), grouped by customer (a chunk's orders of one customer share
   transactions), and the first file again (identical: reads only).
3. HTTP: the date-ordered orders file through `POST /api/admin/import/orders` (streamed,
   chunks handed to a worker thread), to show what the route adds.
4. The store's floor: one order and its event per transaction, written directly, which is
   what an import of customers with one order each cannot go below.

Each figure is given per wall-clock second and per CPU second of this process: on a shared
machine the second is the steadier one (SQLite runs in-process, so its work is counted).

Usage: `.venv/bin/python -m benchmarks.imports [--products 2000] [--orders 5000]`.
Writes benchmarks/results/imports.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog import import_routes as product_import_routes
from cloudcart.catalog.importer import ImportSummary, NdjsonImport, ProductImporter, import_stream
from cloudcart.catalog.models import CategoryIn
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.events import new_event
from cloudcart.core.outbox import write_with_events
from cloudcart.core.ports.documents import BatchOp
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.orders import import_routes as order_import_routes
from cloudcart.orders.importer import OrderImporter

RESULTS = Path(__file__).resolve().parent / "results" / "imports.json"
AIM_LINES_PER_SECOND = 1000
CUSTOMERS = 1000


def _products(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"prd_{i}",
            "title": f"Acme Phone {i}",
            "brand": "Acme",
            "categoryId": "phones",
            "description": "6.5 inch display, 5000 mAh battery",
            "attributes": {"os": "Android", "storage": "128 GB"},
            "variants": [{"sku": f"SKU-{i}", "price": {"amount": 999900 + i, "currency": "INR"}}],
            "status": "active",
            "stock": {f"SKU-{i}": 10 + i % 5},
        }
        for i in range(n)
    ]


def _orders(n: int, products: int, rng: random.Random) -> list[dict[str, Any]]:
    start = datetime(2021, 1, 1, tzinfo=UTC)
    orders = []
    for i in range(n):
        skus = rng.sample(range(products), rng.randint(1, 3))
        orders.append(
            {
                "orderId": f"H-{i}",
                "customerId": f"cus-{rng.randrange(CUSTOMERS)}",
                "placedAt": (start + timedelta(minutes=17 * i)).isoformat(),
                "status": rng.choice(["delivered"] * 8 + ["cancelled", "returned"]),
                "lines": [
                    {"sku": f"SKU-{s}", "quantity": rng.randint(1, 3), "unitPrice": 999900 + s}
                    for s in skus
                ],
            }
        )
    return orders


def _ndjson(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _timed(lines: int, run: Callable[[], ImportSummary]) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    summary = run()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    assert summary.rejected_count == 0, summary.rejected[:3]
    return {
        "lines": lines,
        "seconds": round(seconds, 2),
        "linesPerSecond": round(lines / seconds, 1),
        "cpuSeconds": round(cpu_seconds, 2),
        "linesPerCpuSecond": round(lines / cpu_seconds, 1),
        "imported": summary.imported,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
    }


def _store_floor(services: Services, sample: dict[str, Any], n: int) -> dict[str, Any]:
    """An imported order's document and its event per transaction, straight to the store."""
    container = services.documents.container("orders")
    stored = container.read(sample["orderId"], sample["customerId"])
    template = {k: v for k, v in stored.items() if not k.startswith("_")}
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        document = {**template, "id": f"floor-{i}", "customerId": f"floor-{i % CUSTOMERS}"}
        event = new_event("order.imported", document["id"], {"orderId": document["id"]})
        write_with_events(
            container, document["customerId"], [BatchOp("create", document=document)], [event]
        )
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    return {
        "orders": n,
        "seconds": round(seconds, 2),
        "ordersPerSecond": round(n / seconds, 1),
        "ordersPerCpuSecond": round(n / cpu_seconds, 1),
    }


def _http(settings: Settings, body: bytes, lines: int) -> dict[str, Any]:
    app = create_app(settings)
    paths = {getattr(r, "path", None) for r in app.routes}
    for router in (product_import_routes.router, order_import_routes.router):
        if not any(getattr(r, "path", None) in paths for r in router.routes):
            app.include_router(router)
    token, _ = mint_token(settings, "bench-admin", roles=("Admin",))

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    with TestClient(app) as client:
        started, cpu = time.perf_counter(), time.process_time()
        response = client.post(
            "/api/admin/import/orders",
            content=pieces(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["rejectedCount"] == 0, answer["rejected"][:3]
    return {
        "lines": lines,
        "seconds": round(seconds, 2),
        "linesPerSecond": round(lines / seconds, 1),
        "cpuSeconds": round(cpu_seconds, 2),
        "linesPerCpuSecond": round(lines / cpu_seconds, 1),
        "imported": answer["imported"],
    }


def main() -> None:
    """Run the measurements, print them and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(7)
    products = _products(args.products)
    orders = _orders(args.orders, args.products, rng)
    by_customer = sorted(orders, key=lambda o: (o["customerId"], o["placedAt"]))
    grouped = [{**o, "orderId": f"G-{o['orderId']}"} for o in by_customer]
    http_orders = [{**o, "orderId": f"W-{o['orderId']}"} for o in orders]
    product_body, order_body = _ndjson(products), _ndjson(orders)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        services = Services(settings)
        services.documents.ensure_containers()
        CatalogService(services.documents).create_category(CategoryIn(id="phones", name="Phones"))
        store = services.documents

        def products_run() -> ImportSummary:
            run = NdjsonImport(ProductImporter(store).import_records)
            return import_stream(io.BytesIO(product_body), run)

        def orders_run(body: bytes) -> Callable[[], ImportSummary]:
            def run() -> ImportSummary:
                importer = OrderImporter(store, default_currency="INR")
                return import_stream(io.BytesIO(body), NdjsonImport(importer.import_records))

            return run

        results = {
            "productsNew": _timed(args.products, products_run),
            "productsIdentical": _timed(args.products, products_run),
            "ordersNewDateOrder": _timed(args.orders, orders_run(order_body)),
            "ordersNewGroupedByCustomer": _timed(args.orders, orders_run(_ndjson(grouped))),
            "ordersIdentical": _timed(args.orders, orders_run(order_body)),
            "ordersNewHttp": _http(settings, _ndjson(http_orders), args.orders),
            "storeFloorOneOrderPerTransaction": _store_floor(
                services, orders[0], min(args.orders, 2000)
            ),
        }
        services.close()
    result = {
        "benchmark": "imports",
        "command": "python -m benchmarks.imports",
        "recordedAt": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadAverage": [round(x, 2) for x in os.getloadavg()],
        },
        "aim": {"linesPerSecond": AIM_LINES_PER_SECOND},
        "customers": CUSTOMERS,
        **results,
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
