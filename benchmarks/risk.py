"""Fraud-rules benchmark: what a decision adds to a checkout, and its store round trips.

Two measurements on the embedded store (in-process, so the figures are the rules' own
cost, not HTTP's):

1. the decision alone: `assess_checkout` (one query for the day's counters) plus
   `record_checkout` (one batch: marker and counters) for orders from a mix of returning
   and new customers, IPs and addresses; p50/p95/p99 in ms, and the `risk` container
   calls per decision counted by a wrapper around the store;
2. whole checkouts through the API (TestClient) with `RISK_MODE=off` and `enforce`,
   interleaved in one run so both see the same machine; the p95 difference is the cost
   the rules add to a checkout.

Usage: `.venv/bin/python -m benchmarks.risk [--decisions 2000] [--checkouts 200]`.
Writes benchmarks/results/risk.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.checkout import CHECKOUT
from tests.fakes.counting import CountingStore

RESULTS = Path(__file__).resolve().parent / "results" / "risk.json"
ADDRESS: dict[str, str] = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {
        "n": len(ordered),
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def decisions(n: int) -> dict[str, Any]:
    """Time and count `assess_checkout` + `record_checkout`."""
    from cloudcart.composition import Services
    from cloudcart.core.settings import Settings
    from cloudcart.risk import CheckoutSignals, assess_checkout, record_checkout

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        base = Services(settings)
        base.documents.ensure_containers()
        store = CountingStore(base.documents)
        services = Services(settings, adapters={"documents": store})
        assess: list[float] = []
        record: list[float] = []
        total: list[float] = []
        calls: Counter[str] = Counter()
        decided: Counter[str] = Counter()
        for i in range(n):
            signals = CheckoutSignals(
                customer_id=f"c{i % (n // 4 or 1)}",  # returning customers
                email=f"shopper{i}@example.com",
                ip=f"203.0.{(i // 200) % 250}.{i % 250}",
                shipping_address={**ADDRESS, "line1": f"{i % 97} MG Road"},
                lines={"S1": 1 + i % 3, "S2": 1},
                total=50_000 + i,
                currency="INR",
            )
            store.counts.clear()
            t0 = time.perf_counter()
            check = assess_checkout(services, signals, is_first_order=lambda: False)
            t1 = time.perf_counter()
            assert check is not None
            record_checkout(services, check, f"ord_bench_{i}")
            t2 = time.perf_counter()
            assess.append(t1 - t0)
            record.append(t2 - t1)
            total.append(t2 - t0)
            calls.update(k for k in store.counts.elements() if k.startswith("risk."))
            decided[check.assessment.decision] += 1
        base.close()
    return {
        "assess": _percentiles(assess),
        "record": _percentiles(record),
        "decision": _percentiles(total),
        "risk_calls_per_decision": {k: round(v / n, 3) for k, v in sorted(calls.items())},
        "decisions": dict(decided),
    }


def checkouts(n: int) -> dict[str, Any]:
    """Whole checkouts through the API with the rules off and on, interleaved."""
    from fastapi.testclient import TestClient

    from cloudcart.api.app import create_app
    from cloudcart.composition import Services
    from cloudcart.core.settings import Settings
    from cloudcart.identity.dev_provider import mint_token
    from cloudcart.orders import routes
    from tests.fakes.payments import FakeGateway

    shops: dict[str, tuple[TestClient, Services, CountingStore]] = {}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("off", "enforce"):
            settings = Settings(data_dir=Path(tmp) / mode, risk_mode=mode)
            base = Services(settings)
            base.documents.ensure_containers()
            store = CountingStore(base.documents)
            services = Services(settings, adapters={"documents": store, "payments": FakeGateway()})
            app = create_app(settings)
            app.state.services = services
            for router in (routes.cart_router, routes.router, routes.admin_router):
                app.include_router(router)
            base.documents.container("catalog").upsert(
                {
                    "id": "p1",
                    "pk": "p1",
                    "type": "product",
                    "title": "P1",
                    "status": "active",
                    "variants": [{"sku": "S1", "price": {"amount": 1000, "currency": "INR"}}],
                }
            )
            base.documents.container("inventory").upsert(
                {
                    "id": "S1",
                    "sku": "S1",
                    "productId": "p1",
                    "available": 10**9,
                    "reserved": 0,
                    "sold": 0,
                    "received": 10**9,
                }
            )
            client = TestClient(app)
            client.__enter__()
            shops[mode] = (client, services, store)
        samples: dict[str, list[float]] = {"off": [], "enforce": []}
        ops: dict[str, Counter[str]] = {"off": Counter(), "enforce": Counter()}
        for i in range(n):
            for mode in ("off", "enforce") if i % 2 else ("enforce", "off"):
                client, services, store = shops[mode]
                token, _ = mint_token(services.settings, f"buyer{i}")
                headers = {
                    "Authorization": f"Bearer {token}",
                    "X-Client-IP": f"198.51.100.{i % 250}",
                }
                r = client.post(
                    "/api/cart/items", json={"sku": "S1", "quantity": 1}, headers=headers
                )
                assert r.status_code == 200, r.text
                store.counts.clear()
                t0 = time.perf_counter()
                r = client.post(
                    "/api/checkout", json=CHECKOUT, headers={**headers, "Idempotency-Key": f"k{i}"}
                )
                samples[mode].append(time.perf_counter() - t0)
                assert r.status_code == 201, r.text
                ops[mode].update(store.counts)
        for client, services, _ in shops.values():
            client.__exit__(None, None, None)
            services.close()
    for mode in ("off", "enforce"):
        out[mode] = {
            **_percentiles(samples[mode]),
            "store_calls_per_checkout": round(sum(ops[mode].values()) / n, 2),
        }
    out["added_p95_ms"] = round(out["enforce"]["p95_ms"] - out["off"]["p95_ms"], 3)
    out["added_p50_ms"] = round(out["enforce"]["p50_ms"] - out["off"]["p50_ms"], 3)
    out["added_store_calls"] = round(
        out["enforce"]["store_calls_per_checkout"] - out["off"]["store_calls_per_checkout"], 2
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--checkouts", type=int, default=200)
    args = parser.parse_args()
    result = {
        "machine": "embedded SQLite store, in-process, shared 2-CPU machine",
        "decision": decisions(args.decisions),
        "checkout": checkouts(args.checkouts),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
