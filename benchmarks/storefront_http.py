"""Storefront HTTP throughput: requests/s and p99 latency at 32 concurrent connections.

Starts `cloudcart serve --demo` as a subprocess on a free loopback port (a temporary data
folder, the demo catalog loaded through the catalog service), then drives, one after the
other for the same bounded duration each:

- `GET /api/health`: constant JSON, the framework's floor on this machine in this run;
- `GET /api/catalog/products/{id}`: product detail (point read + stock per variant);
- `GET /api/catalog/products?category=phones&limit=24`: a product list page;
- `GET /api/search?q=...`: search, if the route is mounted (otherwise reported as such).

The figures that matter are ratios to the constant endpoint measured in the same run (the
machine is shared and noisy). Results go to benchmarks/results/storefront_http.json.

Usage: `.venv/bin/python benchmarks/storefront_http.py [--seconds 5] [--concurrency 32]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.serving import ServeProcess

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "storefront_http.json"
SEARCH_QUERIES = ("oppo a92", "oneplus 64gb", "android phone", "iphone case", "charger")


async def _drive(
    base_url: str, paths: list[str], seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        # Warm-up: open the connections and the server's caches before measuring.
        await asyncio.gather(*(client.get(paths[i % len(paths)]) for i in range(concurrency)))
        stop = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            index = offset
            while time.perf_counter() < stop:
                path = paths[index % len(paths)]
                index += 1
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(p50 * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
    }


def run(seconds: float, concurrency: int) -> dict[str, Any]:
    """Start the server, measure every endpoint, return the report."""
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-") as tmp:
        server = ServeProcess(
            data_dir=Path(tmp) / "data",
            log_path=Path(tmp) / "serve.log",
            env={"CLOUDCART_LOG_LEVEL": "WARNING"},
            demo=True,
        )
        base_url = server.start().base_url
        try:
            listing = httpx.get(
                f"{base_url}/api/catalog/products", params={"limit": 100}, timeout=30
            ).json()
            ids = [item["id"] for item in listing["items"]]
            if not ids:
                raise RuntimeError("the demo catalog is empty")
            has_search = "/api/search" in httpx.get(f"{base_url}/api/openapi.json").json()["paths"]
            scenarios: dict[str, list[str]] = {
                "constant_health": ["/api/health"],
                "product_detail": [f"/api/catalog/products/{pid}" for pid in ids],
                "product_list": [
                    "/api/catalog/products?category=phones&limit=24",
                    "/api/catalog/products?category=electronics&sort=price_asc&limit=24",
                    "/api/catalog/products?sort=newest&limit=24",
                ],
            }
            if has_search:
                scenarios["search"] = [f"/api/search?q={q}" for q in SEARCH_QUERIES]
            results: dict[str, Any] = {}
            for name, paths in scenarios.items():
                results[name] = asyncio.run(_drive(base_url, paths, seconds, concurrency))
                print(f"{name:16s} {results[name]}", flush=True)
            if not has_search:
                results["search"] = {"skipped": "GET /api/search is not mounted in this build"}
                print("search           not measured: GET /api/search is not mounted", flush=True)
        finally:
            server.stop()
    floor = results["constant_health"]["rps"]
    ratios = {
        name: round(r["rps"] / floor, 3)
        for name, r in results.items()
        if name != "constant_health" and "rps" in r
    }
    return {
        "benchmark": "storefront_http",
        "concurrency": concurrency,
        "seconds_per_scenario": seconds,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": results,
        "rps_ratio_to_constant": ratios,
        "aims": {"product_detail": 0.5, "search": 0.25},
    }


def main() -> None:
    """Run the benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    report = run(args.seconds, args.concurrency)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["rps_ratio_to_constant"]))
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
