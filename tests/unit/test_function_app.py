"""function_app.py registers the one HTTP function that carries the FastAPI app."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest

from cloudcart.core.settings import Settings
from tests.fakes.functions_context import FakeFunctionContext

FUNCTION_APP = Path(__file__).resolve().parents[2] / "function_app.py"


def _load_function_app() -> ModuleType:
    # A private module object, so this test's get_functions() call (which is not idempotent)
    # cannot collide with another test that imported `function_app`.
    spec = importlib.util.spec_from_file_location("function_app_under_test", FUNCTION_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def functions() -> Iterator[list[Any]]:
    module = _load_function_app()
    function_app = module.app
    assert isinstance(function_app, func.AsgiFunctionApp)
    yield function_app.get_functions()
    if function_app.startup_task_done:
        # Run the ASGI shutdown here, as the host would; otherwise AsgiFunctionApp.__del__
        # tries it during garbage collection, inside whatever event loop is running then.
        asyncio.run(function_app.middleware.notify_shutdown())
        function_app.startup_task_done = False


def _http_function(functions: list[Any]) -> Any:
    http = [f for f in functions if f.is_http_function()]
    assert len(http) == 1, [f.get_function_name() for f in functions]
    return http[0]


def test_registers_one_anonymous_catch_all_http_function(functions: list[Any]) -> None:
    fn = _http_function(functions)
    assert fn.get_function_name() == "http_app_func"
    trigger = fn.get_trigger()
    assert trigger.route == "/{*route}"
    assert str(trigger.auth_level.value).lower() == "anonymous"
    methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods


def test_binding_json_is_what_the_host_indexes(functions: list[Any]) -> None:
    bindings = json.loads(_http_function(functions).get_function_json())["bindings"]
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert trigger["route"] == "/{*route}"
    assert trigger["authLevel"].lower() == "anonymous"


def _call(fn: Any, method: str, url: str, headers: dict[str, str] | None = None) -> Any:
    request = func.HttpRequest(method=method, url=url, headers=headers or {}, body=b"")
    user_function = fn.get_user_function()
    return asyncio.run(user_function(request, FakeFunctionContext()))


def test_health_request_through_the_function(functions: list[Any]) -> None:
    fn = _http_function(functions)
    response = _call(
        fn, "GET", "http://localhost:7071/api/health", {"x-correlation-id": "fn-test-1"}
    )
    assert isinstance(response, func.HttpResponse)
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}
    assert response.headers["x-correlation-id"] == "fn-test-1"


def test_fastapi_app_is_built_lazily_once_and_shared() -> None:
    module = _load_function_app()
    assert not module.http_app.built
    first = module.fastapi_app
    assert module.http_app.built
    assert module.fastapi_app is first is module.http_app.get()
    with pytest.raises(AttributeError):
        _ = module.no_such_attribute


def test_first_request_builds_the_app_and_runs_its_lifespan(
    functions: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cloudcart.api.app as api_app

    built: list[object] = []
    real = api_app.create_app

    def counting_create_app(**options: Any) -> Any:
        assert options == {"lazy_routes": True}
        app = real(**options)
        built.append(app)
        return app

    monkeypatch.setattr(api_app, "create_app", counting_create_app)
    fn = _http_function(functions)

    async def two_requests() -> list[Any]:
        user_function = fn.get_user_function()
        requests = [
            func.HttpRequest(
                method="GET", url="http://localhost:7071/api/health", headers={}, body=b""
            )
            for _ in range(2)
        ]
        return list(
            await asyncio.gather(*(user_function(r, FakeFunctionContext()) for r in requests))
        )

    responses = asyncio.run(two_requests())
    assert [r.status_code for r in responses] == [200, 200]
    assert len(built) == 1


def test_unknown_route_through_the_function_is_a_problem(functions: list[Any]) -> None:
    response = _call(_http_function(functions), "GET", "http://localhost:7071/api/nowhere")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_body())["status"] == 404


HEAVY_PREFIXES = (
    "azure.cosmos",
    "azure.storage",
    "azure.identity",
    "azure.monitor",
    "azure.servicebus",
    "opentelemetry",
)


@pytest.mark.parametrize("adapter", ["embedded", "azure"])
def test_cold_start_imports_no_heavy_sdk(tmp_path: Path, adapter: str) -> None:
    # A fresh interpreter, because this test process has long since imported everything.
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    env["CLOUDCART_DATA_DIR"] = str(tmp_path / "data")
    for port in ("DOCUMENTS", "BLOBS", "MESSAGES", "IDENTITY"):
        env[f"CLOUDCART_{port}_ADAPTER"] = adapter
    if adapter == "azure":
        # The app refuses to start with azure identity but no trusted issuer.
        env["IDENTITY_METADATA_URLS"] = "https://login.example.com/t/v2.0/.well-known/x"
        env["IDENTITY_AUDIENCE"] = "3f6c1a52-0c5e-4d8a-9a7e-5b2f0d4c1e11"
    # Only what function_app adds to the framework floor counts (FastAPI itself loads the
    # OpenTelemetry API for its own telemetry hooks).
    code = (
        "import json, sys\n"
        "import azure.functions, fastapi, fastapi.security\n"
        "floor = set(sys.modules)\n"
        "import function_app\n"
        "sys.stdout.write('\\nMODULES=' + json.dumps(sorted(set(sys.modules) - floor)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=FUNCTION_APP.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = json.loads(out.rsplit("MODULES=", 1)[1])
    assert "function_app" in modules
    # The FastAPI app is built on the first HTTP request: trigger-only instances never
    # import the app factory or the routers.
    assert "cloudcart.api.app" not in modules
    heavy = [m for m in modules if m.startswith(HEAVY_PREFIXES)]
    assert heavy == []


def test_trigger_only_import_loads_no_web_framework(tmp_path: Path) -> None:
    # A Service Bus, change-feed or timer instance imports function_app and never serves
    # HTTP: FastAPI and Starlette wait for the first request.
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names().values()}
    env["CLOUDCART_DATA_DIR"] = str(tmp_path / "data")
    code = (
        "import json, sys\n"
        "import function_app\n"
        "web = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')]\n"
        "sys.stdout.write('\\nWEB=' + json.dumps(sorted(web)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=FUNCTION_APP.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out.rsplit("WEB=", 1)[1]) == []
