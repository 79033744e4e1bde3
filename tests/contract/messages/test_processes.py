"""Two processes consuming one subscription of one broker file never share a message."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.ports.messages import LockLost, OutboundMessage

from .conftest import TEST_TOPOLOGY

MESSAGES = 150


def consume(path: str, start: Any, results: Any) -> None:
    """Receive and complete until the subscription is empty; report what was completed."""
    broker = SqliteBroker(Path(path), TEST_TOPOLOGY)
    completed: list[str] = []
    lost: list[str] = []
    start.wait(timeout=30)
    try:
        while batch := broker.receive("events", "audit", max_messages=3):
            for msg in batch:
                time.sleep(0.001)  # some "work", so the two consumers interleave
                try:
                    broker.complete(msg.lock_token)
                    completed.append(msg.message_id)
                except LockLost:
                    lost.append(msg.message_id)
    finally:
        broker.close()
    results.put((completed, lost))


def test_two_processes_process_every_message_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "messages.sqlite3"
    publisher = SqliteBroker(path, TEST_TOPOLOGY)
    publisher.publish(
        "events",
        [OutboundMessage(body={"n": i}, message_id=f"p{i}", subject="x") for i in range(MESSAGES)],
    )
    publisher.close()

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    workers = [ctx.Process(target=consume, args=(str(path), start, results)) for _ in range(2)]
    for w in workers:
        w.start()
    start.set()
    reports = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0

    all_completed = [mid for completed, _ in reports for mid in completed]
    assert [lost for _, lost in reports] == [[], []]  # no lock was ever taken over
    assert len(all_completed) == len(set(all_completed)) == MESSAGES
    assert set(all_completed) == {f"p{i}" for i in range(MESSAGES)}
    assert all(completed for completed, _ in reports), "both processes should have consumed"

    reopened = SqliteBroker(path, TEST_TOPOLOGY)
    try:
        assert reopened.receive("events", "audit") == []
    finally:
        reopened.close()
