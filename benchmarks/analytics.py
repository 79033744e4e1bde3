"""Analytics benchmark: events counted into the roll-ups per second on the embedded store.

A mix of storefront batches (5 events each: views, an add-to-cart, a search, a checkout
started) and stock moves goes through the analytics consumer (`handle_events`, the code the
`analytics_rollups` function runs) on a fresh store:

1. one event per call from 4 threads, as the subscription's concurrent handlers deliver
   them today (cardinality one);
2. 100 events per call, as a batch trigger would deliver them (one marker query, one read
   and one transactional batch per bucket and ~100 operations);
3. a replay of every event (each is found counted and changes nothing).

Aim: >= 1,000 events/s. Usage: `.venv/bin/python -m benchmarks.analytics [--events 3000]`.
Writes benchmarks/results/analytics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudcart.analytics.consumer import handle_events
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import timestamp
from cloudcart.core.services import Services
from cloudcart.core.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "analytics.json"
THREADS = 4


def _events(count: int, start: datetime) -> list[Event]:
    events: list[Event] = []
    for n in range(count):
        at = timestamp(start + timedelta(seconds=n * 7))
        if n % 5 == 4:
            sku = f"SKU-{n % 200}"
            events.append(
                new_event(
                    "inventory.changed",
                    sku,
                    {"sku": sku, "productId": f"p{n % 200}", "available": n % 3, "move": "set"},
                )
            )
            continue
        visitor = f"visitor-{n % 700:016d}"
        product = f"p{n % 300}"
        events.append(
            new_event(
                "storefront.events_recorded",
                f"v:{visitor}",
                {
                    "ownerId": f"v:{visitor}",
                    "customerId": None,
                    "visitorId": visitor,
                    "events": [
                        {"type": "product_viewed", "productId": product, "at": at},
                        {"type": "product_viewed", "productId": f"p{(n + 1) % 300}", "at": at},
                        {"type": "add_to_cart", "productId": product, "at": at},
                        {
                            "type": "search",
                            "query": f"phone {n % 50}",
                            "resultsCount": n % 4,
                            "at": at,
                        },
                        {"type": "checkout_started", "at": at},
                    ],
                },
            )
        )
    return events


def _fresh(root: Path, name: str) -> Services:
    services = Services(Settings(data_dir=root / name))
    services.documents.ensure_containers()
    return services


def run(count: int) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(hours=count * 7 // 3600 + 1)
    events = _events(count, start)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        services = _fresh(root, "single")
        began = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda e: handle_events(services.documents, [e]), events))
        elapsed = time.perf_counter() - began
        results["oneEventPerCall"] = {
            "events": count,
            "threads": THREADS,
            "seconds": round(elapsed, 3),
            "eventsPerSecond": round(count / elapsed, 1),
        }
        services.close()

        services = _fresh(root, "batched")
        began = time.perf_counter()
        for i in range(0, count, 100):
            handle_events(services.documents, events[i : i + 100])
        elapsed = time.perf_counter() - began
        results["hundredEventsPerCall"] = {
            "events": count,
            "seconds": round(elapsed, 3),
            "eventsPerSecond": round(count / elapsed, 1),
        }
        began = time.perf_counter()
        counted = 0
        for i in range(0, count, 100):
            counted += handle_events(services.documents, events[i : i + 100]).applied
        elapsed = time.perf_counter() - began
        results["replay"] = {
            "events": count,
            "countedAgain": counted,
            "seconds": round(elapsed, 3),
            "eventsPerSecond": round(count / elapsed, 1),
        }
        services.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    results = {
        "benchmark": "analytics",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "aimEventsPerSecond": 1000,
        **run(args.events),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
