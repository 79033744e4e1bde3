"""Storefront pages: the JavaScript each ships, and what a page costs over its API calls.

1. **JavaScript per page**: `cloudcart serve --demo --no-triggers`, a customer signed in
   through the embedded identity provider with one item in the cart, then each storefront
   page (home, search, product, and those of /cart, /checkout, /orders, /account,
   /notifications, /recent the app serves) loaded in Chromium in a fresh context, so
   nothing comes from a cache: the bytes of every response of resource type "script"
   (`response.body()`). Aim: under 100 KB per page.
2. **Server time of a page against its API calls**: in-process on the app with the demo
   shop (`create_app`, like the in-process part of benchmarks/storefront_http.py). A
   middleware records the API calls a page makes through its in-process client; each
   round then times the page (until its response is sent: the storefront events it posts
   afterwards are not waited on by the browser) against the same API calls made directly
   one after another, rounds interleaved. The median per page, as a ratio. Aim: at most 3x.

Usage: `.venv/bin/python -m benchmarks.web_pages [--rounds 7] [--repeat 20]`.
Writes benchmarks/results/web_pages.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from playwright.sync_api import Browser, sync_playwright

from cloudcart.api.app import create_app
from cloudcart.catalog.search.indexer import reindex_all
from cloudcart.composition import Services
from cloudcart.core.settings import Settings
from cloudcart.local.demo_data import seed
from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_ENV, DEFAULT_CHROMIUM, sign_in
from tests.e2e.serving import ServeProcess, free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "web_pages.json"
PRODUCT = "oppo-a92"
SEARCH = "oppo phone"
STOREFRONT = {
    "home": "/",
    "search": f"/search?q={quote(SEARCH)}",
    "product": f"/products/{PRODUCT}",
}
SIGNED_IN_PAGES = ("/cart", "/checkout", "/orders", "/account", "/notifications", "/recent")
JS_AIM_BYTES = 100 * 1024
RATIO_AIM = 3.0
INTERNAL_HOST = "cloudcart.internal"
"""The host name of the pages' in-process API client (cloudcart/web/client.py)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- 1. JavaScript per page ------------------------------------------------------------------


def _script_bytes(browser: Browser, base_url: str, path: str, state: Any) -> dict[str, Any]:
    context = browser.new_context(base_url=base_url, ignore_https_errors=True, storage_state=state)
    page = context.new_page()
    scripts: dict[str, int] = {}

    def keep(response: Any) -> None:
        if response.request.resource_type == "script":
            scripts[urlsplit(response.url).path] = len(response.body())

    page.on("response", keep)
    try:
        answer = page.goto(path)
        page.wait_for_load_state("networkidle")
        final = urlsplit(page.url)
        return {
            "path": path,
            "status": answer.status if answer else None,
            "landedOn": final.path + (f"?{final.query}" if final.query else ""),
            "scriptBytes": sum(scripts.values()),
            "scripts": scripts,
            "underAim": sum(scripts.values()) < JS_AIM_BYTES,
        }
    finally:
        context.close()


def _signed_in_state(browser: Browser, base_url: str) -> tuple[Any, str]:
    """A customer's cookies: signed in, with one item in the cart when the product page
    offers "Add to cart"."""
    context = browser.new_context(base_url=base_url, ignore_https_errors=True)
    page = context.new_page()
    try:
        page.goto("/")
        sign_in(page, "bench.web@example.com", "Bench Web")
        page.goto(STOREFRONT["product"])
        add = page.get_by_role("button", name="Add to cart")
        cart = "empty"
        if add.count() and add.is_enabled():
            add.click()
            page.wait_for_load_state("load")
            cart = "one item"
        return context.storage_state(), cart
    finally:
        context.close()


def javascript_per_page() -> dict[str, Any]:
    """Script bytes of each storefront page, loaded fresh in Chromium."""
    chromium = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-") as tmp:
        root = Path(tmp)
        server = ServeProcess(
            data_dir=root / "data",
            log_path=root / "serve.log",
            env={"DEV_IDP_HTTPS_PORT": str(free_port()), "CLOUDCART_LOG_LEVEL": "WARNING"},
            demo=True,
            triggers=False,
        )
        base_url = server.start().base_url
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
                try:
                    anonymous = {
                        name: _script_bytes(browser, base_url, path, None)
                        for name, path in STOREFRONT.items()
                    }
                    state, cart = _signed_in_state(browser, base_url)
                    signed_in: dict[str, Any] = {}
                    for path in SIGNED_IN_PAGES:
                        measured = _script_bytes(browser, base_url, path, state)
                        # A page the app does not serve (yet), or one that sent the browser
                        # elsewhere (sign-in, another page), is not this page's cost.
                        if measured["status"] == 200 and measured["landedOn"].startswith(path):
                            signed_in[path.strip("/")] = measured
                        else:
                            signed_in[path.strip("/")] = {
                                "path": path,
                                "skipped": f"answered {measured['status']} at "
                                f"{measured['landedOn']}",
                            }
                finally:
                    browser.close()
        finally:
            server.stop()
    pages = {**anonymous, **signed_in}
    measured_pages = [p for p in pages.values() if "scriptBytes" in p]
    return {
        "aimBytes": JS_AIM_BYTES,
        "cartForSignedInPages": cart,
        "pages": pages,
        "maxScriptBytes": max(p["scriptBytes"] for p in measured_pages),
        "allUnderAim": all(p["underAim"] for p in measured_pages),
    }


# --- 2. Server time of a page against its API calls -------------------------------------------


class RecordInnerCalls:
    """Middleware that notes each request of the pages' in-process API client (by its host
    name), with the time it started."""

    def __init__(self, app: Asgi, calls: list[tuple[float, str]]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode()
            if host == INTERNAL_HOST:
                query = scope["query_string"].decode()
                target = scope["path"] + (f"?{query}" if query else "")
                self.calls.append((time.perf_counter(), f"{scope['method']} {target}"))
        await self.app(scope, receive, send)


@dataclass
class Answer:
    """One request through the app: its status and how long until its response was sent."""

    status: int
    seconds: float
    started: float
    answered: float


async def call(app: Asgi, method: str, target: str, headers: dict[str, str]) -> Answer:
    """Drive the app directly over ASGI; the time stops when the response's last byte is
    sent, although the call waits for work the app does afterwards (background tasks) so
    it never overlaps the next measurement."""
    path, _, query = target.partition("?")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    answered = 0.0

    async def receive() -> Message:
        if sent:
            await asyncio.Event().wait()  # like a client that keeps the connection open
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal sent, status, answered
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            answered = time.perf_counter()
            sent = True

    started = time.perf_counter()
    await app(scope, receive, send)
    return Answer(status, answered - started, started, answered)


def _browser_headers(visitor: str, csrf: str) -> dict[str, str]:
    # A returning browser: it already has its visitor and CSRF cookies.
    return {
        "host": "127.0.0.1",
        "accept": "text/html",
        "cookie": f"cloudcart_visitor={visitor}; cloudcart_csrf={csrf}",
    }


# What the pages' client sends (client.py), from an ordinary client's host.
API_HEADERS = {"host": "127.0.0.1", "accept": "application/json"}


async def _page_calls(
    app: Asgi, calls: list[tuple[float, str]], target: str, headers: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The API calls `target` makes before its response, and those it makes after."""
    calls.clear()
    answer = await call(app, "GET", target, headers)
    assert answer.status == 200, (target, answer.status)
    before = [c for t, c in calls if t < answer.answered]
    after = [c for t, c in calls if t >= answer.answered]
    return before, after


async def _mean(run: Callable[[], Awaitable[float]], repeat: int) -> float:
    total = 0.0
    for _ in range(repeat):
        total += await run()
    return total / repeat


async def _measure(
    app: Asgi, calls: list[tuple[float, str]], rounds: int, repeat: int
) -> dict[str, Any]:
    headers = _browser_headers("benchvisitor0000000000", "c" * 43)
    plans: dict[str, dict[str, Any]] = {}
    for name, target in STOREFRONT.items():
        await call(app, "GET", target, headers)  # warm caches and the lazy route groups
        before, after = await _page_calls(app, calls, target, headers)
        plans[name] = {"page": target, "apiCalls": before, "afterResponse": after}
        for api_call in before:
            method, api_target = api_call.split(" ", 1)
            answer = await call(app, method, api_target, API_HEADERS)
            assert answer.status == 200, (api_call, answer.status)

    samples: dict[str, dict[str, list[float]]] = {n: {"page": [], "api": []} for n in plans}
    for _ in range(rounds):
        for name, plan in plans.items():

            async def page(target: str = plan["page"]) -> float:
                return (await call(app, "GET", target, headers)).seconds

            async def api(calls: list[str] = plan["apiCalls"]) -> float:
                spent = 0.0
                for api_call in calls:
                    method, api_target = api_call.split(" ", 1)
                    spent += (await call(app, method, api_target, API_HEADERS)).seconds
                return spent

            samples[name]["page"].append(await _mean(page, repeat))
            samples[name]["api"].append(await _mean(api, repeat))

    report: dict[str, Any] = {"aim": RATIO_AIM, "rounds": rounds, "repeat": repeat, "pages": {}}
    for name, plan in plans.items():
        page_s = statistics.median(samples[name]["page"])
        api_s = statistics.median(samples[name]["api"])
        report["pages"][name] = {
            **plan,
            "pageMilliseconds": round(page_s * 1e3, 2),
            "apiCallsMilliseconds": round(api_s * 1e3, 2),
            "ratio": round(page_s / api_s, 2),
            "withinAim": page_s / api_s <= RATIO_AIM,
        }
    return report


def server_time(rounds: int, repeat: int) -> dict[str, Any]:
    """Each storefront page against its own API calls, in-process on the demo shop."""
    with tempfile.TemporaryDirectory(prefix="cloudcart-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        app = create_app(settings)
        services: Services = app.state.services
        services.documents.ensure_containers()
        seed(services)
        reindex_all(services)
        calls: list[tuple[float, str]] = []
        # The pages' client calls the app it runs in (request.app), so the recorder must
        # sit inside the app's own middleware stack to see those calls.
        app.add_middleware(RecordInnerCalls, calls=calls)
        try:
            return asyncio.run(_measure(app, calls, rounds, repeat))
        finally:
            services.close()


def run(rounds: int, repeat: int) -> dict[str, Any]:
    """Both measurements, as the report."""
    return {
        "benchmark": "web_pages",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "javascript": javascript_per_page(),
        "serverTime": server_time(rounds, repeat),
    }


def main() -> None:
    """Run the benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--repeat", type=int, default=20, help="requests of each per round")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # a log line per request would be most of what is timed
    report = run(args.rounds, args.repeat)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
