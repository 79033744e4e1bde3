"""Checkout benchmark: checkouts/s and p50/p99 latency with 16 concurrent buyers against
`cloudcart serve`, and the document operations one checkout costs.

Throughput runs over HTTP against a real server process (the e2e wrapper of `cloudcart
serve`). The operation count runs the
same checkout in-process with a counting wrapper around the documents store, split into
the write path (creates, patches, batches, replaces, deletes) and reads.

Usage: `.venv/bin/python -m benchmarks.checkout [--buyers 16] [--checkouts 400]`.
Writes benchmarks/results/checkout.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.counting import CountingStore

RESULTS = Path(__file__).resolve().parent / "results" / "checkout.json"
CHECKOUT = {
    "shippingAddress": {
        "name": "Asha Rao",
        "line1": "12 MG Road",
        "city": "Bengaluru",
        "postalCode": "560001",
        "country": "IN",
    },
    "shippingMethod": "standard",
}


WRITES = ("create", "upsert", "replace", "delete", "patch", "batch")


def count_operations() -> dict[str, Any]:
    """Document operations of one checkout with one and with three SKU lines."""
    from fastapi.testclient import TestClient

    from cloudcart.api.app import create_app
    from cloudcart.composition import Services
    from cloudcart.core.settings import Settings
    from cloudcart.identity.dev_provider import mint_token
    from cloudcart.orders import routes

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), test_gateway_duplicate_webhooks=0.0)
        app = create_app(settings)
        base = Services(settings)
        store = CountingStore(base.documents)
        services = Services(settings, adapters={"documents": store})
        app.state.services = services
        for router in (routes.cart_router, routes.router, routes.admin_router):
            app.include_router(router)
        base.documents.ensure_containers()
        for i in range(3):
            base.documents.container("catalog").upsert(
                {
                    "id": f"p{i}",
                    "pk": f"p{i}",
                    "type": "product",
                    "title": f"P{i}",
                    "status": "active",
                    "variants": [{"sku": f"S{i}", "price": {"amount": 1000, "currency": "INR"}}],
                }
            )
            base.documents.container("inventory").upsert(
                {
                    "id": f"S{i}",
                    "sku": f"S{i}",
                    "productId": f"p{i}",
                    "available": 1000,
                    "reserved": 0,
                    "sold": 0,
                    "received": 1000,
                }
            )
        token, _ = mint_token(settings, "bench")
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as client:
            for lines in (1, 3):
                for i in range(lines):
                    client.post(
                        "/api/cart/items", json={"sku": f"S{i}", "quantity": 1}, headers=headers
                    )
                store.counts.clear()
                r = client.post(
                    "/api/checkout",
                    json=CHECKOUT,
                    headers={**headers, "Idempotency-Key": f"k{lines}"},
                )
                assert r.status_code == 201, r.text
                counts = dict(store.counts)
                writes = {k: v for k, v in counts.items() if k.split(".")[1] in WRITES}
                out[f"{lines}_line"] = {
                    "all": counts,
                    "writes": writes,
                    "orders_writes": {k: v for k, v in writes.items() if k.startswith("orders.")},
                    "inventory_writes": {
                        k: v for k, v in writes.items() if k.startswith("inventory.")
                    },
                }
        services.close()
        base.close()
    return out


def throughput(buyers: int, checkouts: int) -> dict[str, Any]:
    """Checkouts/s and latency over HTTP against a `cloudcart serve` process."""
    from tests.e2e.test_orders_e2e import Shop, _start

    with tempfile.TemporaryDirectory() as tmp:
        server = _start(Path(tmp), "bench", {"TEST_GATEWAY_DUPLICATE_WEBHOOKS": "0"})
        try:
            shop = Shop(server, Path(tmp) / "bench")
            shop.product("BENCH-1", checkouts + 10, price=1999)
            subs = [f"bench-{i}" for i in range(checkouts)]
            headers = {s: shop.headers(s) for s in subs}
            for s in subs:
                shop.http.post(
                    "/api/cart/items", json={"sku": "BENCH-1", "quantity": 1}, headers=headers[s]
                )
            client = httpx.Client(
                base_url=server.base_url, timeout=60, limits=httpx.Limits(max_connections=buyers)
            )

            def one(sub: str) -> tuple[float, int]:
                started = time.perf_counter()
                r = client.post(
                    "/api/checkout",
                    json=CHECKOUT,
                    headers={**headers[sub], "Idempotency-Key": f"bench-{sub}"},
                )
                return time.perf_counter() - started, r.status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=buyers) as pool:
                results = list(pool.map(one, subs))
            elapsed = time.perf_counter() - started
            client.close()
            shop.http.close()
        finally:
            server.stop()
    latencies = sorted(t for t, _ in results)
    ok = sum(1 for _, s in results if s == 201)
    return {
        "buyers": buyers,
        "checkouts": checkouts,
        "succeeded": ok,
        "checkouts_per_second": round(ok / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
    }


def main() -> None:
    """Run both measurements, print them and write the results file."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=16)
    parser.add_argument("--checkouts", type=int, default=400)
    args = parser.parse_args()
    result = {
        "operations_per_checkout": count_operations(),
        "http": throughput(args.buyers, args.checkouts),
    }
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
