"""Cold-start benchmark: how long `import function_app` takes in a fresh interpreter.

Compared, in the same run, with the framework floor: a one-file Functions app wrapping a
one-route FastAPI app with `func.AsgiFunctionApp`. The app is timed twice: with default
settings (embedded adapters, as `cloudcart serve` and the target ratio use) and with every
port on its Azure adapter (what a Functions instance in Azure imports: no dev routers). Runs
are interleaved (floor, app, azure app, floor, ...) so drift on a shared, noisy machine hits
all alike; the figure that matters is the ratio of the medians. Each child times only the
import, with perf_counter, and prints it back, so interpreter start-up is not counted.

Since the FastAPI app is built on the first HTTP request, `import function_app` no longer
loads FastAPI, so that import-only ratio can fall below 1; the first-work figures below
are the ones that compare like with like.

Two first-work figures come from the same run, each against its own floor, both from
compiled bytecode in a fresh interpreter per run:

- first HTTP response: `import function_app` plus one `GET /api/health` through the
  Functions ASGI path (the registered `http_app_func`, as the worker calls it: lifespan
  startup, then the request), against the one-route floor app called the same way;
- first Service Bus message: `import function_app` plus one call of the `search_indexer`
  function with a real `azure.functions.ServiceBusMessage` carrying an event type the
  indexer ignores, against two floors: a Functions app with one Service Bus trigger doing
  nothing, and the same trigger reading a pydantic-settings class and validating the body
  with a pydantic model (the stack floor: the least any app built on these libraries pays,
  as FastAPI in the HTTP floor already brings pydantic).

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

SERVICE_BUS_FLOOR_MODULE = """
import azure.functions as func

app = func.FunctionApp()


@app.function_name("noop")
@app.service_bus_topic_trigger(
    arg_name="message", topic_name="events", subscription_name="noop", connection="ServiceBus"
)
def noop(message: func.ServiceBusMessage) -> None:
    pass
"""

# The same trigger doing the least any app on this stack does with a message: read its
# settings (pydantic-settings) and validate the body (pydantic), the libraries Cloudcart is
# built on, as the HTTP floor's FastAPI already brings pydantic.
SERVICE_BUS_STACK_FLOOR_MODULE = """
import azure.functions as func
from pydantic import BaseModel
from pydantic_settings import BaseSettings


class Config(BaseSettings):
    events_topic: str = "events"


class Envelope(BaseModel):
    id: str
    type: str
    data: dict[str, object]


app = func.FunctionApp()


@app.function_name("noop")
@app.service_bus_topic_trigger(
    arg_name="message", topic_name="events", subscription_name="noop", connection="ServiceBus"
)
def noop(message: func.ServiceBusMessage) -> None:
    Config()
    Envelope.model_validate_json(message.get_body())
"""

# Times the import plus the first HTTP response through the registered http_app_func.
HTTP_CHILD = (
    "import sys, time\n"
    "sys.path.insert(0, {path!r})\n"
    "t = time.perf_counter()\n"
    "import asyncio, threading\n"
    "import {module}\n"
    "import azure.functions as func\n"
    "class Ctx:\n"
    "    function_name = 'http_app_func'; function_directory = '.'; invocation_id = '1'\n"
    "    thread_local_storage = threading.local(); trace_context = None; retry_context = None\n"
    "fn = next(f for f in {module}.app.get_functions() if f.is_http_function())\n"
    "req = func.HttpRequest(method='GET', url='http://localhost/api/health', headers={{}}, "
    "body=b'')\n"
    "resp = asyncio.run(fn.get_user_function()(req, Ctx()))\n"
    "assert resp.status_code == 200, resp.status_code\n"
    "print(time.perf_counter() - t)\n"
)

# Times the import plus one Service Bus message handled by the named function.
SERVICE_BUS_CHILD = (
    "import sys, time\n"
    "sys.path.insert(0, {path!r})\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "import azure.functions as func\n"
    "fn = next(f for f in {module}.app.get_functions() if f.get_function_name() == {name!r})\n"
    "fn.get_user_function()(func.ServiceBusMessage(body={body!r}))\n"
    "print(time.perf_counter() - t)\n"
)

SERVICE_BUS_FUNCTION = "search_indexer"


def _ignored_event_body() -> bytes:
    # An event type the search indexer ignores: the figure is the cold start, not indexing.
    from cloudcart.core.events import new_event

    return new_event("benchmark.ignored", "cold-start", {}).to_json_bytes()


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


def _time_import(module: str, path: Path, env: dict[str, str], code: str = CHILD) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The app logs JSON lines to stdout too; the timing is the last line.
    return float(out.strip().splitlines()[-1])


def _figure(floor: list[float], app: list[float]) -> dict[str, object]:
    floor_median, app_median = statistics.median(floor), statistics.median(app)
    ratio = app_median / floor_median
    return {
        "floor_median_ms": round(floor_median * 1000, 2),
        "app_median_ms": round(app_median * 1000, 2),
        "ratio": round(ratio, 3),
        "within_target": ratio <= TARGET_RATIO,
        "floor_ms": [round(s * 1000, 2) for s in floor],
        "app_ms": [round(s * 1000, 2) for s in app],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each (at least 10)")
    args = parser.parse_args()
    runs = max(10, args.runs)

    with tempfile.TemporaryDirectory(prefix="cloudcart-cold-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "floor_app.py").write_text(FLOOR_MODULE, encoding="utf-8")
        (tmp_path / "floor_sb_app.py").write_text(SERVICE_BUS_FLOOR_MODULE, encoding="utf-8")
        (tmp_path / "floor_sb_stack_app.py").write_text(
            SERVICE_BUS_STACK_FLOOR_MODULE, encoding="utf-8"
        )
        body = _ignored_event_body()

        def imp(module: str, path: Path) -> str:
            return CHILD.format(path=str(path), module=module)

        def http(module: str, path: Path) -> str:
            return HTTP_CHILD.format(path=str(path), module=module)

        def bus(module: str, path: Path, name: str) -> str:
            return SERVICE_BUS_CHILD.format(path=str(path), module=module, name=name, body=body)

        jobs = {
            "floor": ("floor_app", tmp_path, "env", imp("floor_app", tmp_path)),
            "app": ("function_app", REPO, "env", imp("function_app", REPO)),
            "azure_app": ("function_app", REPO, "azure", imp("function_app", REPO)),
            "http_floor": ("floor_app", tmp_path, "env", http("floor_app", tmp_path)),
            "http_app": ("function_app", REPO, "azure", http("function_app", REPO)),
            "sb_floor": (
                "floor_sb_app",
                tmp_path,
                "env",
                bus("floor_sb_app", tmp_path, "noop"),
            ),
            "sb_stack_floor": (
                "floor_sb_stack_app",
                tmp_path,
                "env",
                bus("floor_sb_stack_app", tmp_path, "noop"),
            ),
            "sb_app": (
                "function_app",
                REPO,
                "azure",
                bus("function_app", REPO, SERVICE_BUS_FUNCTION),
            ),
        }
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

        envs = {"env": env, "azure": azure_env}
        # One untimed run each, so all pay bytecode compilation before measuring.
        for module, path, which, code in jobs.values():
            _time_import(module, path, envs[which], code)

        times: dict[str, list[float]] = {key: [] for key in jobs}
        for _ in range(runs):
            for key, (module, path, which, code) in jobs.items():
                times[key].append(_time_import(module, path, envs[which], code))
        floor, app, azure_app = times["floor"], times["app"], times["azure_app"]

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
        # First work, Azure adapters (what an instance in Azure runs), each vs its floor.
        "first_http_response": _figure(times["http_floor"], times["http_app"]),
        "first_service_bus_message": _figure(times["sb_floor"], times["sb_app"]),
        "first_service_bus_message_vs_stack_floor": _figure(
            times["sb_stack_floor"], times["sb_app"]
        ),
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
    for key in (
        "first_http_response",
        "first_service_bus_message",
        "first_service_bus_message_vs_stack_floor",
    ):
        fig = result[key]
        assert isinstance(fig, dict)
        print(
            f"{key}: {fig['app_median_ms']:.1f} ms vs floor {fig['floor_median_ms']:.1f} ms, "
            f"{fig['ratio']:.2f}x"
        )
    print(f"       {runs} interleaved runs each")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
