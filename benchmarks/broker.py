"""End-to-end event throughput and latency through the embedded broker, in process.

Run with `python -m benchmarks.broker`. A producer writes events with `write_with_events`
(the transactional outbox); the real outbox relay functions (change feed → topic) and a
benchmark handler on its own subscription run in a `TriggerHost`, exactly as under
`cloudcart serve`. Latency is "handler done - event time" (the event is stamped just before
its outbox write), throughput is events handled per second from the first write to the
last handler done. Two runs: at a target rate, and unthrottled. Bounded (< 60 s); results
go to benchmarks/results/broker.json. Figures from a shared 2-core machine are noisy:
compare runs with each other.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func

from cloudcart import composition
from cloudcart.composition import Services
from cloudcart.core.clock import utcnow
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.events import Event, new_event
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import SubjectIn, Subscription, Topic, Topology
from cloudcart.core.outbox import write_with_events
from cloudcart.core.settings import Settings
from cloudcart.local.trigger_host import HostConfig, TriggerHost

RESULTS = Path(__file__).parent / "results" / "broker.json"
EVENT_TYPE = "bench.measured"
TARGET_RATE = 500.0  # events/s
RATE_SECONDS = 6.0
UNTHROTTLED_EVENTS = 3_000
DRAIN_TIMEOUT = 20.0
PARTITIONS = 64

TOPOLOGY = Topology(
    topics=(
        Topic(
            "events",
            subscriptions=(Subscription("bench", SubjectIn((EVENT_TYPE,))),),
        ),
        Topic("ops"),
    )
)


class Recorder:
    """What the benchmark handler saw: one latency per handled event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.done_at: list[float] = []  # time.perf_counter()
        self.seen: set[str] = set()

    def record(self, event: Event) -> None:
        now = utcnow()
        with self.lock:
            if event.id in self.seen:
                return
            self.seen.add(event.id)
            self.latencies.append((now - event.time).total_seconds())
            self.done_at.append(time.perf_counter())

    def count(self) -> int:
        with self.lock:
            return len(self.latencies)


def bench_app(recorder: Recorder) -> func.FunctionApp:
    """The real outbox relay functions plus a handler on the `bench` subscription."""
    from cloudcart.ops import outbox_relay

    app = func.FunctionApp()
    app.register_functions(outbox_relay.bp)

    @app.function_name("bench_handler")
    @app.service_bus_topic_trigger(
        arg_name="message", topic_name="events", subscription_name="bench", connection="SB"
    )
    def bench_handler(message: func.ServiceBusMessage) -> None:
        recorder.record(Event.from_message_body(message.get_body()))

    return app


@dataclass
class RunResult:
    name: str
    events: int
    target_rate: float | None
    produced_per_second: float
    throughput_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def run(
    name: str,
    store: SqliteDocumentStore,
    recorder: Recorder,
    *,
    count: int,
    rate: float | None,
) -> RunResult:
    """Write `count` events (at `rate` per second, or as fast as possible) and wait until
    the handler has seen them all."""
    container = store.container("insights")
    already = recorder.count()
    start = time.perf_counter()
    for i in range(count):
        if rate is not None:
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        event = new_event(EVENT_TYPE, f"bench-{i}", {"n": i})
        write_with_events(container, f"bench-{i % PARTITIONS}", [], [event])
    produced = time.perf_counter() - start
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while recorder.count() < already + count:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{name}: only {recorder.count() - already} of {count} events were handled "
                f"within {DRAIN_TIMEOUT} s of the last write"
            )
        time.sleep(0.01)
    with recorder.lock:
        latencies = sorted(recorder.latencies[already:])
        last_done = max(recorder.done_at[already:])
    elapsed = last_done - start
    return RunResult(
        name=name,
        events=count,
        target_rate=rate,
        produced_per_second=count / produced,
        throughput_per_second=count / elapsed,
        p50_ms=1000 * statistics.median(latencies),
        p95_ms=1000 * _percentile(latencies, 0.95),
        p99_ms=1000 * _percentile(latencies, 0.99),
        max_ms=1000 * latencies[-1],
    )


def main() -> int:
    """Run both phases, print them and write the results file."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-broker-") as folder:
        root = Path(folder)
        settings = Settings(data_dir=root)
        store = SqliteDocumentStore(root / "documents.sqlite3")
        store.ensure_containers()
        broker = SqliteBroker(root / "messages.sqlite3", TOPOLOGY)
        services = Services(settings, adapters={"messages": broker, "documents": store})
        # The relay functions reach their adapters through the process-wide Services, as
        # on Azure; point it at this benchmark's.
        composition._services = services
        recorder = Recorder()
        host = TriggerHost(
            bench_app(recorder).get_functions(),
            settings,
            services,
            host_config=HostConfig.from_host_json(),
        )
        results: list[RunResult] = []
        with host:
            # Warm-up: leases stored, SQLite caches filled.
            run("warm-up", store, recorder, count=50, rate=None)
            results.append(
                run(
                    f"rate {TARGET_RATE:.0f}/s",
                    store,
                    recorder,
                    count=int(TARGET_RATE * RATE_SECONDS),
                    rate=TARGET_RATE,
                )
            )
            results.append(run("unthrottled", store, recorder, count=UNTHROTTLED_EVENTS, rate=None))
        composition._services = None
        services.close()

    for result in results:
        r = result
        print(
            f"{r.name:>12}: {r.events} events, produced {r.produced_per_second:7.1f}/s, "
            f"handled {r.throughput_per_second:7.1f}/s, latency p50 {r.p50_ms:6.1f} ms, "
            f"p95 {r.p95_ms:6.1f} ms, p99 {r.p99_ms:6.1f} ms, max {r.max_ms:6.1f} ms"
        )
    document = {
        "benchmark": "broker",
        "command": "python -m benchmarks.broker",
        "recordedAt": datetime.now(UTC).isoformat(),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "aim": {"throughputPerSecond": 500, "p95Ms": 200},
        "runs": [r.as_dict() for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
