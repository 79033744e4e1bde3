"""Cold-start benchmark: how long `import function_app` takes in a fresh interpreter.

Compared, in the same run, with the framework floor: a one-file Functions app wrapping a
one-route FastAPI app with `func.AsgiFunctionApp`. The app is timed twice: with default
settings (embedded adapters, as `cloudcart serve` and the target ratio use) and with every
port on its Azure adapter (what a Functions instance in Azure imports: no dev routers). Runs
are interleaved (floor, app, azure app, floor, ...) so drift on a shared, noisy machine hits
all alike; the figure that matters is the ratio of the medians. Each child times only the
import, with perf_counter, and prints it back, so interpreter start-up is not counted.

    python -m benchmarks.cold_start [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "cold_start.json"
TARGET_RATIO = 1.3

FLOOR_MODULE = """
import azure.functions as func
from fastapi import FastAPI

api = FastAPI()


@api.get("/api/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


app = func.AsgiFunctionApp(app=api, http_auth_level=func.AuthLevel.ANONYMOUS)
"""

CHILD = (
    "import sys, time\n"
    "sys.path.insert(0, {path!r})\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "print(time.perf_counter() - t)\n"
)


def _settings_env_names() -> set[str]:
    from cloudcart.core.settings import Settings

    return set(Settings.env_names().values())


def _time_import(module: str, path: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(path=str(path), module=module)],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The app logs JSON lines to stdout too; the timing is the last line.
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each (at least 10)")
    args = parser.parse_args()
    runs = max(10, args.runs)

    with tempfile.TemporaryDirectory(prefix="cloudcart-cold-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "floor_app.py").write_text(FLOOR_MODULE, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in _settings_env_names()}
        env["CLOUDCART_DATA_DIR"] = str(tmp_path / "data")
        # Both sides run from compiled bytecode, as installed packages do: without this a
        # PYTHONDONTWRITEBYTECODE environment makes our sources compile on every run while
        # the framework's site-packages are precompiled. The cache lives in the temp folder,
        # never in the checkout. (Shipping compiled bytecode in the deployment package is
        # what makes this true on Azure too: see docs/architecture.md.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
        # Adapters are built lazily on first use, so no Azure endpoint is needed to import.
        azure_env = {
            **env,
            "CLOUDCART_DOCUMENTS_ADAPTER": "azure",
            "CLOUDCART_BLOBS_ADAPTER": "azure",
            "CLOUDCART_MESSAGES_ADAPTER": "azure",
            "CLOUDCART_IDENTITY_ADAPTER": "azure",
            # Without a trusted issuer the app refuses to start (cloudcart/api/startup.py).
            "IDENTITY_METADATA_URLS": "https://login.example.com/t/v2.0/.well-known/x",
            "IDENTITY_AUDIENCE": "3f6c1a52-0c5e-4d8a-9a7e-5b2f0d4c1e11",
        }

        # One untimed run each, so both pay bytecode compilation before measuring.
        _time_import("floor_app", tmp_path, env)
        _time_import("function_app", REPO, env)
        _time_import("function_app", REPO, azure_env)

        floor: list[float] = []
        app: list[float] = []
        azure_app: list[float] = []
        for _ in range(runs):
            floor.append(_time_import("floor_app", tmp_path, env))
            app.append(_time_import("function_app", REPO, env))
            azure_app.append(_time_import("function_app", REPO, azure_env))

    floor_median = statistics.median(floor)
    app_median = statistics.median(app)
    ratio = app_median / floor_median
    azure_median = statistics.median(azure_app)
    azure_ratio = azure_median / floor_median
    result = {
        "benchmark": "cold_start",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": runs,
        "floor_median_ms": round(floor_median * 1000, 2),
        "function_app_median_ms": round(app_median * 1000, 2),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO,
        "function_app_azure_adapters_median_ms": round(azure_median * 1000, 2),
        "azure_adapters_ratio": round(azure_ratio, 3),
        "floor_ms": [round(s * 1000, 2) for s in floor],
        "function_app_ms": [round(s * 1000, 2) for s in app],
        "function_app_azure_adapters_ms": [round(s * 1000, 2) for s in azure_app],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"framework floor (AsgiFunctionApp + FastAPI): {floor_median * 1000:8.1f} ms median")
    print(f"import function_app:                         {app_median * 1000:8.1f} ms median")
    print(f"import function_app, Azure adapters:         {azure_median * 1000:8.1f} ms median")
    print(f"ratio: {ratio:.2f}x (target <= {TARGET_RATIO}x), Azure adapters {azure_ratio:.2f}x;")
    print(f"       {runs} interleaved runs each")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
