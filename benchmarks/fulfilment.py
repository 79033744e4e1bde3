"""Fulfilment benchmark: how fast a paid order reaches the fulfilment partner, and how many
partner updates the shop applies per second, against `cloudcart serve` and its simulators.

1. Latency: orders are paid one by one through the embedded test gateway (its signed
   webhook makes them `paid`); for each, the time from the `paid` entry of the order's
   timeline to the moment the simulated fulfilment centre stored the request
   (`receivedAt`). Both stamps come from the same clock, so the figure is the whole path:
   outbox, change feed, events topic, the `fulfilment` subscription, the connector and the
   partner call. Aim: p95 < 1 s.
Both start once every queue and subscription is empty (the demo seed's stock events are
indexed and sent to the WMS first).

2. Inbound: `stock.adjusted` counts for the demo catalog's SKUs are put on the
   `inventory-updates` queue straight into the embedded broker (no HTTP client in the way)
   and timed until the queue is empty and the last count is applied. Aim: >= 300/s.

Usage: `.venv/bin/python -m benchmarks.fulfilment [--orders 60] [--counts 1500]`.
Writes benchmarks/results/fulfilment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.serving import ServeProcess

RESULTS = Path(__file__).resolve().parent / "results" / "fulfilment.json"
ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}
CARD = "4242424242424242"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _token(http: httpx.Client, sub: str, admin: bool = False) -> dict[str, str]:
    form = {"sub": sub, **({"roles": "Admin"} if admin else {})}
    token = http.post("/dev/idp/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def paid_to_accepted(http: httpx.Client, orders: int) -> dict[str, Any]:
    """Pay `orders` orders one after another; latency of each to the partner."""
    admin = _token(http, "bench-admin", admin=True)
    sku = http.get("/api/search", params={"q": "oneplus"}).json()["items"][0]["sku"]
    r = http.put(f"/api/admin/inventory/{sku}", json={"onHand": 100_000}, headers=admin)
    r.raise_for_status()
    placed: list[tuple[str, dict[str, str]]] = []
    for n in range(orders):
        buyer = _token(http, f"bench-buyer-{n}")
        http.post("/api/cart/items", json={"sku": sku, "quantity": 1}, headers=buyer)
        r = http.post(
            "/api/checkout",
            json={"shippingAddress": ADDRESS, "shippingMethod": "standard"},
            headers={**buyer, "Idempotency-Key": f"bench-{n}"},
        )
        r.raise_for_status()
        body = r.json()
        http.post(f"/dev/payments/{body['payment']['paymentId']}/confirm", json={"card": CARD})
        placed.append((body["orderId"], buyer))
        time.sleep(0.1)  # a steady trickle: latency, not a queue under overload
    latencies: list[float] = []
    deadline = time.monotonic() + 120
    for order_id, buyer in placed:
        while True:
            requests = http.get(
                "/dev/partners/fulfilment/requests", params={"orderId": order_id}, headers=admin
            ).json()["items"]
            order = http.get(f"/api/orders/{order_id}", headers=buyer).json()
            paid = next((t["at"] for t in order["timeline"] if t["status"] == "paid"), None)
            if requests and paid:
                received = _parse(requests[0]["receivedAt"])
                latencies.append((received - _parse(paid)).total_seconds() * 1000)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"order {order_id} never reached the partner")
            time.sleep(0.05)
    return {
        "orders": orders,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
    }


def inbound_rate(data_dir: Path, counts: int) -> dict[str, Any]:
    """Put `counts` stock counts on the inventory queue at once; applied per second."""
    from cloudcart import inventory
    from cloudcart.composition import Services
    from cloudcart.core.messages.embedded import from_settings
    from cloudcart.core.ports.messages import OutboundMessage
    from cloudcart.core.settings import Settings

    settings = Settings(data_dir=data_dir)
    services = Services(settings)
    broker = from_settings(settings)
    try:
        skus = [level.sku for level in inventory.all_levels(services.documents)]
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        messages = []
        base = 1_000_000  # above any sequence the WMS simulator gave out during the run
        for n in range(counts):
            sku = skus[n % len(skus)]
            event_id = f"bench-count-{n}"
            body = {
                "type": "stock.adjusted",
                "schemaVersion": 1,
                "eventId": event_id,
                "occurredAt": now,
                "sku": sku,
                "onHand": 500 + n,
                "sequence": base + n,
                "reason": "benchmark count",
            }
            messages.append(
                OutboundMessage(
                    body=json.dumps(body).encode(),
                    message_id=event_id,
                    subject="stock.adjusted",
                    content_type="application/json",
                )
            )
        last = messages[-1]
        last_sku = json.loads(last.body_bytes())["sku"]
        started = time.perf_counter()
        for start in range(0, len(messages), 100):
            broker.publish(settings.inventory_updates_queue, messages[start : start + 100])
        while True:
            left = broker.counts(settings.inventory_updates_queue).active
            level = inventory.stock_level(services.documents, last_sku)
            if left == 0 and level is not None and level.on_hand == 500 + counts - 1:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        dead = broker.counts(settings.inventory_updates_queue).dead_lettered
    finally:
        broker.close()
        services.close()
    return {
        "messages": counts,
        "skus": len(skus),
        "seconds": round(elapsed, 2),
        "applied_per_second": round(counts / elapsed, 1),
        "dead_lettered": dead,
    }


def wait_idle(data_dir: Path, timeout: float = 300.0) -> float:
    """Wait until every queue and subscription is empty (the demo seed's stock events
    still flow through the indexer and the WMS connector after start-up); returns how long
    that took, so the measurements see the shop's steady state, not its warm-up."""
    from cloudcart.core.messages.embedded import from_settings
    from cloudcart.core.messages.topology import TOPOLOGY, Topic
    from cloudcart.core.settings import Settings

    broker = from_settings(Settings(data_dir=data_dir))
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            waiting = 0
            for entity in TOPOLOGY.entities():
                if isinstance(entity, Topic):
                    for sub in entity.subscriptions:
                        waiting += broker.counts(entity.name, sub.name).active
                else:
                    waiting += broker.counts(entity.name).active
            if waiting == 0:
                break
            time.sleep(0.2)
    finally:
        broker.close()
    return time.monotonic() - started


def main() -> None:
    """Run both measurements against one server, print them and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--counts", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = ServeProcess(
            data_dir=folder / "data",
            log_path=folder / "serve.log",
            env={"CLOUDCART_LOG_LEVEL": "WARNING", "TEST_GATEWAY_DUPLICATE_WEBHOOKS": "0"},
            demo=True,
        ).start()
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                warm_up = wait_idle(folder / "data")
                latency = paid_to_accepted(http, args.orders)
            wait_idle(folder / "data")
            inbound = inbound_rate(folder / "data", args.counts)
        finally:
            server.stop()
    result = {
        "benchmark": "fulfilment",
        "command": "python -m benchmarks.fulfilment",
        "recordedAt": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "aim": {"paidToAcceptedP95Ms": 1000, "inboundPerSecond": 300},
        "warmUpSeconds": round(warm_up, 1),
        "paidToAccepted": latency,
        "inbound": inbound,
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
