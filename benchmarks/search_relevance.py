"""Search relevance benchmark: nDCG@10 and MRR of our ranking vs. plain BM25.

Loads the demo catalog into a temporary data folder (through the catalog service, as
`cloudcart serve --demo` does), rebuilds the embedded search index, then runs every query
of benchmarks/relevance_queries.json twice on the same tantivy engine: once through the
full search (analysis, typo correction, intent-aware ranking) and once as plain BM25 over
the raw title and description. Prints the figures and writes
benchmarks/results/search_relevance.json.

Run: .venv/bin/python -m benchmarks.search_relevance
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from cloudcart.catalog.search.indexer import reindex_all
from cloudcart.composition import Services
from cloudcart.core.ports.search import SearchQuery
from cloudcart.core.search.embedded import TantivySearchIndex
from cloudcart.core.settings import Settings
from cloudcart.local import demo_data

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "relevance_queries.json"
RESULTS = HERE / "results" / "search_relevance.json"
K = 10


def _matches(rule: dict[str, Any], doc: dict[str, Any]) -> bool:
    m = rule["match"]
    if "title" in m and not re.search(m["title"], doc["title"], re.IGNORECASE):
        return False
    if "category" in m and doc.get("categoryId") != m["category"]:
        return False
    if "brand" in m and doc.get("brand") != m["brand"]:
        return False
    if "os" in m and doc.get("os") != m["os"]:
        return False
    return not ("storage" in m and m["storage"] not in (doc.get("storage") or []))


def grades(judgments: list[dict[str, Any]], docs: list[dict[str, Any]]) -> dict[str, int]:
    """Product id -> grade: the highest rule a product matches."""
    out: dict[str, int] = {}
    for doc in docs:
        g = max((j["grade"] for j in judgments if _matches(j, doc)), default=0)
        if g:
            out[doc["id"]] = g
    return out


def ndcg(ranked: list[str], judged: dict[str, int], k: int = K) -> float:
    dcg = sum((2 ** judged.get(pid, 0) - 1) / math.log2(i + 2) for i, pid in enumerate(ranked[:k]))
    ideal = sorted(judged.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranked: list[str], judged: dict[str, int]) -> float:
    # The first result a customer would call right: the best grade the query has.
    best = max(judged.values(), default=0)
    for i, pid in enumerate(ranked):
        if judged.get(pid, 0) >= best and best:
            return 1.0 / (i + 1)
    return 0.0


def main() -> dict[str, Any]:
    spec = json.loads(QUERIES.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Settings(data_dir=Path(tmp)))
        demo_data.seed(services)
        count = reindex_all(services)
        index = services.search
        assert isinstance(index, TantivySearchIndex)
        docs = index._all_documents(index._index.searcher())
        rows = []
        started = time.perf_counter()
        for entry in spec["queries"]:
            judged = grades(entry["judgments"], docs)
            ours = [
                i["productId"]
                for i in index.search(SearchQuery(text=entry["query"], limit=K)).items
            ]
            base = index.search_baseline(entry["query"], K)
            rows.append(
                {
                    "query": entry["query"],
                    "kind": entry["kind"],
                    "relevant": len(judged),
                    "ndcg@10": round(ndcg(ours, judged), 4),
                    "mrr": round(mrr(ours, judged), 4),
                    "baseline_ndcg@10": round(ndcg(base, judged), 4),
                    "baseline_mrr": round(mrr(base, judged), 4),
                }
            )
        elapsed = time.perf_counter() - started
        services.close()

    def mean(key: str, subset: list[dict[str, Any]] | None = None) -> float:
        chosen = rows if subset is None else subset
        return round(sum(float(r[key]) for r in chosen) / len(chosen), 4)

    kinds = sorted({r["kind"] for r in rows})
    result: dict[str, Any] = {
        "products": count,
        "queries": len(rows),
        "ours": {"ndcg@10": mean("ndcg@10"), "mrr": mean("mrr")},
        "baseline_bm25_title_description": {
            "ndcg@10": mean("baseline_ndcg@10"),
            "mrr": mean("baseline_mrr"),
        },
        "by_kind": {
            kind: {
                "ndcg@10": mean("ndcg@10", [r for r in rows if r["kind"] == kind]),
                "baseline_ndcg@10": mean(
                    "baseline_ndcg@10", [r for r in rows if r["kind"] == kind]
                ),
            }
            for kind in kinds
        },
        "seconds_for_both_runs": round(elapsed, 3),
        "per_query": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{count} products, {len(rows)} queries")
    print(f"ours:     nDCG@10 {result['ours']['ndcg@10']:.3f}  MRR {result['ours']['mrr']:.3f}")
    b = result["baseline_bm25_title_description"]
    print(f"baseline: nDCG@10 {b['ndcg@10']:.3f}  MRR {b['mrr']:.3f}")
    for kind, figures in result["by_kind"].items():
        print(
            f"  {kind:9s} ours {figures['ndcg@10']:.3f}  baseline {figures['baseline_ndcg@10']:.3f}"
        )
    return result


if __name__ == "__main__":
    main()
