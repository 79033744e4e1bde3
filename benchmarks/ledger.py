"""Ledger benchmark: journal entries posted per second on the embedded store, and what one
capture costs.

1. Throughput: `order.paid` events for N orders (tax-inclusive lines and shipping) go
   through the ledger's consumer (`posting.handle_event`: read the order, read the month's
   totals, one batch of entry + totals + `ledger.posted`) from 4 threads, as the
   subscription's concurrent handlers would. Aim: >= 500 entries/s.
2. Cost of a capture: the documents-port calls one posting makes, counted at the port,
   and what the payment webhook path pays for it (nothing: the webhook writes the order's
   `order.paid` event as before, and the journal posts from the subscription).

Usage: `.venv/bin/python -m benchmarks.ledger [--entries 2000]`.
Writes benchmarks/results/ledger.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.settings import Settings
from cloudcart.ledger import journal, posting
from tests.fakes.counting import CountingStore

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.json"
THREADS = 4


def _order(n: int) -> dict[str, Any]:
    return {
        "id": f"ord_{n}",
        "type": "order",
        "customerId": f"cus_{n % 200}",
        "status": "paid",
        "lines": [
            {"sku": "A", "quantity": 2, "lineTotal": 23600, "tax": 3600},
            {"sku": "B", "quantity": 1, "lineTotal": 11800, "tax": 1800},
        ],
        "totals": {
            "subtotal": 35400,
            "tax": 5400,
            "shipping": 9900,
            "taxInclusive": True,
            "total": 45300,
            "currency": "INR",
        },
    }


def _paid(n: int) -> Event:
    return Event(
        type="order.paid",
        subject=f"ord_{n}",
        data={
            "orderId": f"ord_{n}",
            "customerId": f"cus_{n % 200}",
            "amount": 45300,
            "currency": "INR",
            "fee": 1206,
        },
    )


def main() -> None:
    """Run both measurements, print them and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Settings(data_dir=Path(tmp)))
        services.documents.ensure_containers()
        orders = services.documents.container("orders")
        for n in range(args.entries + 1):
            orders.create(_order(n))
        events = [_paid(n) for n in range(args.entries)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            posted = list(pool.map(lambda e: posting.handle_event(services, e), events))
        elapsed = time.perf_counter() - started
        balance = journal.trial_balance(services.documents, "INR")
        assert all(posted) and balance["totalDebit"] == balance["totalCredit"]

        counting = CountingStore(services.documents)
        counted = Services(services.settings, adapters={"documents": counting})
        posting.handle_event(counted, _paid(args.entries))
        calls: Counter[str] = counting.counts
        services.close()
    result = {
        "benchmark": "ledger",
        "command": "python -m benchmarks.ledger",
        "recordedAt": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "aim": {"entriesPerSecond": 500},
        "throughput": {
            "entries": args.entries,
            "threads": THREADS,
            "seconds": round(elapsed, 2),
            "entries_per_second": round(args.entries / elapsed, 1),
        },
        "perCapture": {
            "documentCalls": dict(sorted(calls.items())),
            "total": sum(calls.values()),
            "addedToWebhookPath": 0,
        },
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
