"""Closing the embedded documents store while other threads read and write waits for them:
closing a SQLite connection under a running statement crashes the interpreter."""

from __future__ import annotations

import threading
from pathlib import Path

from cloudcart.core.documents.embedded import SqliteDocumentStore


def test_close_waits_for_running_reads_and_writes_and_the_store_reopens(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    store.ensure_containers()
    catalog = store.container("catalog")
    catalog.upsert({"id": "p1", "pk": "p1", "type": "product", "n": 0})
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            while not stop.is_set():
                assert catalog.read("p1", "p1")["id"] == "p1"
                catalog.upsert({"id": f"w{n}", "pk": f"w{n}", "type": "product", "n": n})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        store.close()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert {
        d["id"] for d in store.container("catalog").read_many([("w0", "w0"), ("p1", "p1")])
    } == {
        "w0",
        "p1",
    }
