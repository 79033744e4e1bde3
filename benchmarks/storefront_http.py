"""Storefront reads: store round trips, in-process cost against a floor, and wrk under load.

Three measurements of the storefront's hot reads, on the demo catalog loaded through the
catalog service:

- product detail, `GET /api/catalog/products/{id}` (every demo product in turn);
- list pages, `GET /api/catalog/products?category=...&limit=24` (a category with its
  descendants, a leaf category sorted by price, the newest of all);
- search, `GET /api/search?q=...` (five queries of different intents).

List pages and searches are kept in memory for up to 30 s by default
(`CLOUDCART_STOREFRONT_CACHE_SECONDS`; dropped on any catalog or index write in the
process), so every scenario that can be served from there is measured both ways: as
configured by default, and with the cache off (`..._uncached`), which is what a request
costs when its page is not in memory (the first of each page, the long tail of queries).

1. **Round trips**: each request once through the app (the Azure path, `create_app`) with
   the cache off and a counting wrapper at the documents port; the most any request of a
   scenario made, and the mean. Aim: at most 2, whatever the page size.
2. **In-process cost**: each scenario's requests through `TestClient` on the app, against a
   floor app (one FastAPI route answering constant JSON) driven the same way, interleaved in
   rounds; the median per-request time of the rounds, as a ratio to the floor's. Aims:
   product detail <= 2x, list page <= 3x, search <= 3x (cached or not).
3. **Under load**: `wrk -t2 -c32` (apt `wrk`; the client is C, not the bottleneck) against
   `cloudcart serve --demo --no-triggers` (HTTP only, so no consumer competes for the CPU),
   the constant `GET /api/health` first; requests/s and latency p50/p99 of each. Aim: each
   scenario's p99 <= 3x the constant endpoint's, as configured by default; the uncached
   figures come from a second server with the cache off. Skipped, and said so, when wrk is
   missing (`make bench-tools` installs it).

Usage: `.venv/bin/python -m benchmarks.storefront_http [--seconds 10] [--rounds 7]`.
Writes benchmarks/results/storefront_http.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.search.indexer import reindex_all
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.local.demo_data import seed
from tests.e2e.serving import ServeProcess
from tests.fakes.counting import CountingStore

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "storefront_http.json"
SEARCH_QUERIES = ("oppo a92", "oneplus 64gb", "android phone", "Oppo Phone", "charger")
LIST_PAGES = (
    "/api/catalog/products?category=electronics&limit=24",
    "/api/catalog/products?category=chargers&sort=price_asc&limit=24",
    "/api/catalog/products?limit=24",
)
AIMS = {"product_detail": 2.0, "product_list": 3.0, "search": 3.0}
P99_AIM = 3.0


CACHED = ("product_list", "search")
"""The scenarios the storefront cache can serve, measured with it off as well."""


def scenarios(product_ids: list[str]) -> dict[str, list[str]]:
    """The paths of each scenario."""
    return {
        "product_detail": [f"/api/catalog/products/{pid}" for pid in product_ids],
        "product_list": list(LIST_PAGES),
        "search": [f"/api/search?q={quote(q)}" for q in SEARCH_QUERIES],
    }


def floor_app() -> FastAPI:
    """One route answering constant JSON: what the framework costs on this machine."""
    app = FastAPI()

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextmanager
def demo_apps(root: Path) -> Iterator[tuple[FastAPI, FastAPI, CountingStore, list[str]]]:
    """The app on the demo catalog as configured by default and with the storefront cache
    off, both on one documents store that counts its calls; yields the product ids too."""
    settings = Settings(data_dir=root)
    base = Services(settings)
    base.documents.ensure_containers()
    seed(base)
    reindex_all(base)
    counting = CountingStore(base.documents)

    def app_on(settings: Settings) -> FastAPI:
        app = create_app(settings)
        app.state.services = Services(
            settings, adapters={"documents": counting, "search": base.search}
        )
        return app

    cached = app_on(settings)
    uncached = app_on(settings.model_copy(update={"storefront_cache_seconds": 0}))
    with TestClient(uncached) as client:
        listing = client.get("/api/catalog/products", params={"limit": 100}).json()
    try:
        yield cached, uncached, counting, [item["id"] for item in listing["items"]]
    finally:
        base.close()


def count_round_trips(
    client: TestClient, counting: CountingStore, paths: dict[str, list[str]]
) -> dict[str, Any]:
    """Store calls per request of each scenario (after one warm-up request of each path)."""
    report: dict[str, Any] = {}
    for name, scenario in paths.items():
        calls: list[int] = []
        for path in scenario:
            assert client.get(path).status_code == 200, path
            counting.counts.clear()
            client.get(path)
            calls.append(sum(counting.counts.values()))
        report[name] = {
            "requests": len(calls),
            "max": max(calls),
            "mean": round(statistics.fmean(calls), 2),
        }
    return report


def _per_request(client: TestClient, paths: list[str], requests: int) -> float:
    began = time.perf_counter()
    for n in range(requests):
        client.get(paths[n % len(paths)])
    return (time.perf_counter() - began) / requests


def in_process_cost(
    clients: dict[str, TestClient],
    floor: TestClient,
    paths: dict[str, list[str]],
    rounds: int,
) -> dict[str, Any]:
    """Median per-request time of each scenario (on the app of each configuration) and of
    the floor, rounds interleaved. `clients`: "" (default) and "_uncached"."""
    runs = [
        (name + suffix, client, scenario)
        for suffix, client in clients.items()
        for name, scenario in paths.items()
        if not suffix or name in CACHED
    ]
    samples: dict[str, list[float]] = {"floor": [], **{run[0]: [] for run in runs}}
    for _ in range(rounds):
        samples["floor"].append(_per_request(floor, ["/api/health"], 300))
        for label, client, scenario in runs:
            samples[label].append(_per_request(client, scenario, max(60, 2 * len(scenario))))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "floorMicroseconds": round(medians["floor"] * 1e6, 1),
        **{
            label: {
                "microseconds": round(medians[label] * 1e6, 1),
                "ratioToFloor": round(medians[label] / medians["floor"], 2),
                "aim": AIMS[label.removesuffix("_uncached")],
            }
            for label, _, _ in runs
        },
    }


_LUA = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""

_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(base_url: str, paths: list[str], seconds: float, root: Path) -> dict[str, Any]:
    script = root / "paths.lua"
    script.write_text(_LUA % ", ".join(json.dumps(p) for p in paths), encoding="utf-8")
    output = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds:g}s", "--latency", "-s", str(script), base_url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    latency = {pct: float(value) * _UNITS[unit] for pct, value, unit in _LATENCY.findall(output)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "p50Ms": latency.get("50"),
        "p99Ms": latency.get("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def _served(
    paths: dict[str, list[str]], seconds: float, root: Path, env: dict[str, str]
) -> dict[str, Any]:
    """wrk against one `cloudcart serve` started with `env`: the constant endpoint, then
    each of `paths`' scenarios."""
    root.mkdir(parents=True)
    server = ServeProcess(
        data_dir=root / "data",
        log_path=root / "serve.log",
        env={"CLOUDCART_LOG_LEVEL": "WARNING", **env},
        demo=True,
        partners=False,
        triggers=False,
    )
    base_url = server.start().base_url
    try:
        for scenario in paths.values():  # warm the server's caches
            for path in scenario:
                httpx.get(base_url + path, timeout=30).raise_for_status()
        report: dict[str, Any] = {"constant": _wrk(base_url, ["/api/health"], seconds, root)}
        for name, scenario in paths.items():
            report[name] = _wrk(base_url, scenario, seconds, root)
    finally:
        server.stop()
    floor_p99 = report["constant"]["p99Ms"]
    for name in paths:
        p99 = report[name]["p99Ms"]
        report[name]["p99RatioToConstant"] = (
            round(p99 / floor_p99, 2) if p99 is not None and floor_p99 else None
        )
        report[name]["aim"] = P99_AIM
    return report


def under_load(paths: dict[str, list[str]], seconds: float) -> dict[str, Any]:
    """wrk against `cloudcart serve` as configured by default, then against one with the
    storefront cache off for the scenarios it serves (their p99 against that server's own
    constant endpoint)."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (make bench-tools)"}
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-") as tmp:
        report = _served(paths, seconds, Path(tmp) / "default", {})
        uncached = _served(
            {name: paths[name] for name in CACHED},
            seconds,
            Path(tmp) / "uncached",
            {"CLOUDCART_STOREFRONT_CACHE_SECONDS": "0"},
        )
    report["uncached"] = uncached
    return report


def run(seconds: float, rounds: int) -> dict[str, Any]:
    """Every measurement, as the report."""
    with (
        tempfile.TemporaryDirectory(prefix="cloudcart-bench-") as tmp,
        demo_apps(Path(tmp)) as (cached, uncached, counting, product_ids),
    ):
        paths = scenarios(product_ids)
        with (
            TestClient(cached) as client,
            TestClient(uncached) as uncached_client,
            TestClient(floor_app()) as floor,
        ):
            trips = count_round_trips(uncached_client, counting, paths)
            cost = in_process_cost({"": client, "_uncached": uncached_client}, floor, paths, rounds)
    return {
        "benchmark": "storefront_http",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "products": len(product_ids),
        "roundTrips": trips,
        "inProcess": cost,
        "wrk": under_load(paths, seconds),
    }


def main() -> None:
    """Run the benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk time per scenario")
    parser.add_argument("--rounds", type=int, default=7, help="in-process rounds")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # a log line per request would be most of what is timed
    report = run(args.seconds, args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
