"""Embedded adapter only: conditional reservations never oversell, across threads and
processes sharing one SQLite file."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.errors import NotFound, PreconditionFailed
from cloudcart.core.ports.documents import BatchOp, Filter, PatchOp

SKU = "sku-1"


def _reserve_until_sold_out(store: SqliteDocumentStore, qty: int) -> int:
    """Reserve `qty` until the condition fails; return how many reservations succeeded."""
    inventory = store.container("inventory")
    won = 0
    while True:
        try:
            after = inventory.patch(
                SKU,
                SKU,
                [PatchOp("incr", "available", -qty), PatchOp("incr", "reserved", qty)],
                condition=[Filter("available", "ge", qty)],
            )
        except PreconditionFailed:
            return won
        assert after["available"] >= 0
        won += 1


def _threads(store: SqliteDocumentStore, count: int, qty: int, start: Any = None) -> list[int]:
    """Run `count` reserving threads released together (after `start`, if given)."""
    results = [0] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        store.check()  # open this thread's connection before the race starts
        if barrier.wait() == 0 and start is not None:
            start.wait()
        barrier.wait()
        results[i] = _reserve_until_sold_out(store, qty)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _process_worker(
    path: str, threads: int, qty: int, start: Any, out: multiprocessing.Queue[int]
) -> None:
    store = SqliteDocumentStore(Path(path))
    out.put(sum(_threads(store, threads, qty, start)))
    store.close()


def _new_store(tmp_path: Path, available: int) -> SqliteDocumentStore:
    store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    store.ensure_containers()
    store.container("inventory").create(
        {"id": SKU, "sku": SKU, "available": available, "reserved": 0}
    )
    return store


def test_threads_never_oversell(tmp_path: Path) -> None:
    # Lock-step rounds: in every round all threads try one reservation at the same moment,
    # so they compete by construction (a free-running loop may let one thread win it all).
    threads, rounds, units = 8, 20, 100
    store = _new_store(tmp_path, available=units)
    inventory = store.container("inventory")
    barrier = threading.Barrier(threads)
    won = [0] * threads
    lost = [0] * threads

    def run(i: int) -> None:
        store.check()  # open this thread's connection before the race starts
        for _ in range(rounds):
            barrier.wait()
            try:
                inventory.patch(
                    SKU,
                    SKU,
                    [PatchOp("incr", "available", -1), PatchOp("incr", "reserved", 1)],
                    condition=[Filter("available", "ge", 1)],
                )
                won[i] += 1
            except PreconditionFailed:
                lost[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stock = inventory.read(SKU, SKU)
    assert sum(won) == units
    assert sum(lost) == threads * rounds - units
    assert stock["available"] == 0
    assert stock["reserved"] == units


def test_processes_and_threads_never_oversell(tmp_path: Path) -> None:
    # 6001 units in lots of 3: exactly 2000 reservations fit, 1 unit must remain. Enough
    # work that the race lasts long after every process has passed the start barrier.
    store = _new_store(tmp_path, available=6001)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    # Every process waits here, so the children (slow to spawn) race the parent for real.
    start = ctx.Barrier(3)
    workers = [
        ctx.Process(target=_process_worker, args=(str(store.path), 3, 3, start, out))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    here = sum(_threads(store, count=2, qty=3, start=start))
    totals = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    stock = store.container("inventory").read(SKU, SKU)
    assert here + sum(totals) == 2000
    assert sum(totals) > 0  # the other processes really took part
    assert stock["available"] == 1
    assert stock["reserved"] == 6000
    store.close()


def test_a_store_shared_across_fork_reopens_its_connections(tmp_path: Path) -> None:
    store = _new_store(tmp_path, available=10)
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[int] = ctx.Queue()

    def child() -> None:
        out.put(_reserve_until_sold_out(store, 1))

    proc = ctx.Process(target=child)
    proc.start()
    here = _reserve_until_sold_out(store, 1)
    there = out.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert here + there == 10
    assert store.container("inventory").read(SKU, SKU)["available"] == 0
    store.close()


def test_a_bulk_block_commits_at_its_end_and_rolls_back_whole(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "bulk.db")
    store.ensure_containers()
    other = SqliteDocumentStore(tmp_path / "bulk.db")
    orders, elsewhere = store.container("orders"), other.container("orders")
    with store.bulk():
        orders.create({"id": "o1", "customerId": "c1"})
        orders.batch("c2", [BatchOp("create", document={"id": "o2", "customerId": "c2"})])
        # Another connection sees nothing until the block commits.
        with pytest.raises(NotFound):
            elsewhere.read("o1", "c1")
    assert elsewhere.read("o2", "c2")["id"] == "o2"
    feed_before = orders.change_feed(None).checkpoint
    with pytest.raises(RuntimeError), store.bulk():
        orders.create({"id": "o3", "customerId": "c3"})
        raise RuntimeError("crash in the middle of the block")
    with pytest.raises(NotFound):
        elsewhere.read("o3", "c3")
    # Change-feed sequence numbers taken inside stay increasing across blocks.
    orders.create({"id": "o4", "customerId": "c4"})
    assert [d["id"] for d in orders.change_feed(feed_before).items] == ["o4"]
    store.close()
    other.close()
