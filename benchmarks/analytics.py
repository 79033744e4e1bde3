"""Analytics benchmark: events counted into the roll-ups per second on the embedded store.

A mix of storefront batches (5 events each: views, an add-to-cart, a search, a checkout
started) and stock moves goes through the two steps the functions run, on a fresh store:

1. record: each event's facts written to the journal by `record_events` (what
   `analytics_facts` runs per delivery), one event per call from 4 threads, as the
   subscription's concurrent handlers deliver them;
2. fold: the journal's change feed read in pages of 100 and folded into the roll-ups by
   `journal.fold` (what `analytics_fold` runs);
3. replay: the whole journal folded again (every fact is found counted, nothing changes).

The end-to-end figure counts both steps one after the other (`events / (record + fold)`);
`together` runs them side by side in one process, as `cloudcart serve` runs the functions
(4 recording threads while one reader folds the change feed), timed until every fact is
counted; `processes` runs them side by side in two processes, as Azure Functions runs them
once the app scales out (the recording handlers in one host, the change-feed reader in
another), sharing one store. Aim: >= 1,000 events/s.
The embedded broker's own cost per message is left out (benchmarks/broker.py measures it).

Usage: `.venv/bin/python -m benchmarks.analytics [--events 6000]`.
Writes benchmarks/results/analytics.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudcart.analytics import journal
from cloudcart.analytics.consumer import record_events
from cloudcart.composition import Services
from cloudcart.core.events import Event, new_event
from cloudcart.core.outbox import timestamp
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


def _fold_all(services: Services) -> tuple[int, int]:
    """Fold the whole journal from the start; (facts counted now, pages)."""
    container = services.documents.container(journal.JOURNAL)
    checkpoint: str | None = None
    counted = pages = 0
    while True:
        page = container.change_feed(checkpoint, max_items=100)
        checkpoint = page.checkpoint
        if not page.items:
            return counted, pages
        counted += journal.fold(services.documents, page.items).applied
        pages += 1


def _record_all(root: Path, name: str, events: list[Event]) -> None:
    services = Services(Settings(data_dir=root / name))
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda e: record_events(services.documents, [e]), events))
    services.close()


def _follow(services: Services, facts: int) -> int:
    """Fold the journal's change feed as it grows until `facts` are counted; pages read."""
    journal_container = services.documents.container(journal.JOURNAL)
    checkpoint: str | None = None
    counted = pages = 0
    while counted < facts:
        page = journal_container.change_feed(checkpoint, max_items=100)
        if not page.items:
            time.sleep(0.01)
            continue
        checkpoint = page.checkpoint
        counted += journal.fold(services.documents, page.items).applied
        pages += 1
    return pages


def _in_two_processes(root: Path, events: list[Event], facts: int) -> dict[str, Any]:
    services = _fresh(root, "processes")
    recorder = multiprocessing.get_context("fork").Process(
        target=_record_all, args=(root, "processes", events)
    )
    began = time.perf_counter()
    recorder.start()
    pages = _follow(services, facts)
    seconds = time.perf_counter() - began
    recorder.join()
    services.close()
    return {
        "events": len(events),
        "facts": facts,
        "pages": pages,
        "seconds": round(seconds, 3),
        "eventsPerSecond": round(len(events) / seconds, 1),
    }


def run(count: int) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(hours=count * 7 // 3600 + 1)
    events = _events(count, start)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        services = _fresh(Path(tmp), "journal")
        store = services.documents
        began = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            facts = sum(pool.map(lambda e: record_events(store, [e]), events))
        recorded = time.perf_counter() - began
        results["record"] = {
            "events": count,
            "facts": facts,
            "threads": THREADS,
            "seconds": round(recorded, 3),
            "eventsPerSecond": round(count / recorded, 1),
        }
        began = time.perf_counter()
        counted, pages = _fold_all(services)
        folded = time.perf_counter() - began
        assert counted == facts, (counted, facts)
        results["fold"] = {
            "facts": counted,
            "pages": pages,
            "seconds": round(folded, 3),
            "eventsPerSecond": round(count / folded, 1),
        }
        results["endToEnd"] = {
            "events": count,
            "seconds": round(recorded + folded, 3),
            "eventsPerSecond": round(count / (recorded + folded), 1),
        }
        services.close()

        # Both functions at once, as they run: handlers record while the fold follows the
        # journal's change feed; timed until every fact is counted.
        services = _fresh(Path(tmp), "together")
        store = services.documents
        began = time.perf_counter()
        with ThreadPoolExecutor(THREADS + 1) as pool:
            folding = pool.submit(_follow, services, facts)
            list(pool.map(lambda e: record_events(store, [e]), events))
            folding.result()
        together = time.perf_counter() - began
        results["together"] = {
            "events": count,
            "facts": facts,
            "seconds": round(together, 3),
            "eventsPerSecond": round(count / together, 1),
        }

        results["processes"] = _in_two_processes(Path(tmp), events, facts)

        began = time.perf_counter()
        again, _ = _fold_all(services)
        replayed = time.perf_counter() - began
        results["replay"] = {
            "events": count,
            "countedAgain": again,
            "seconds": round(replayed, 3),
            "eventsPerSecond": round(count / replayed, 1),
        }
        services.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=6000)
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
