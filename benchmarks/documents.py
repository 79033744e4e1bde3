"""Embedded documents adapter throughput: point reads/s and batch writes/s.

Run with `python -m benchmarks.documents`. Uses a temporary folder, runs each phase for a
bounded time (well under 30 s in total), prints the figures and writes them to
benchmarks/results/documents.json. Compare figures from one run with each other, not with
other machines: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.ports.documents import BatchOp

RESULTS = Path(__file__).parent / "results" / "documents.json"
PHASE_SECONDS = 3.0
BATCH_SIZE = 10
SEED_DOCUMENTS = 2_000


def _batch_writes(store: SqliteDocumentStore, seconds: float) -> tuple[float, int]:
    """Transactional batches of BATCH_SIZE upserts into one partition each, per second."""
    orders = store.container("orders")
    batches = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        customer = f"c{batches % 200}"
        orders.batch(
            customer,
            [
                BatchOp(
                    "upsert",
                    document={"id": f"o{batches}-{i}", "customerId": customer, "total": i},
                )
                for i in range(BATCH_SIZE)
            ],
        )
        batches += 1
    elapsed = time.perf_counter() - start
    return batches / elapsed, batches


def _point_reads(store: SqliteDocumentStore, seconds: float) -> tuple[float, int]:
    """Point reads of seeded documents, per second."""
    catalog = store.container("catalog")
    reads = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        n = (reads * 7919) % SEED_DOCUMENTS
        catalog.read(f"p{n}", f"cat{n % 20}")
        reads += 1
    elapsed = time.perf_counter() - start
    return reads / elapsed, reads


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-") as folder:
        store = SqliteDocumentStore(Path(folder) / "documents.sqlite3")
        store.ensure_containers()
        catalog = store.container("catalog")
        for n in range(SEED_DOCUMENTS):
            catalog.create({"id": f"p{n}", "categoryId": f"cat{n % 20}", "name": f"Product {n}"})
        reads_per_s, reads = _point_reads(store, PHASE_SECONDS)
        batches_per_s, batches = _batch_writes(store, PHASE_SECONDS)
        store.close()

    result: dict[str, object] = {
        "benchmark": "documents.embedded",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "point_reads_per_s": round(reads_per_s, 1),
        "point_reads": reads,
        "batch_writes_per_s": round(batches_per_s, 1),
        "batch_documents_per_s": round(batches_per_s * BATCH_SIZE, 1),
        "batches": batches,
        "batch_size": BATCH_SIZE,
        "phase_seconds": PHASE_SECONDS,
    }
    print(f"point reads/s:   {reads_per_s:10.1f}  ({reads} reads)")
    print(
        f"batch writes/s:  {batches_per_s:10.1f}  "
        f"({batches} batches of {BATCH_SIZE}, {batches_per_s * BATCH_SIZE:.0f} documents/s)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS}")
    return result


if __name__ == "__main__":
    main()
