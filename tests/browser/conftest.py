"""Browser tests: real Chromium against a real `cloudcart serve` with the demo shop.

One server and one Chromium serve all the browser tests (package-scoped fixtures: both stop
once the last of them has run, before the rest of the suite); every test gets a fresh
browser context (its own cookies and cache). The `page` and `phone` fixtures fail the test
when a shop page logged a console error, threw an uncaught exception or broke its Content
Security Policy.

Chromium is Debian's (`make browser-tools` installs it), never Playwright's download, so the
tests need no network. Helpers for tests: `screenshot`, `axe`, `sign_in`,
`sign_in_at_provider`, `watch`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    WebError,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.serving import ServeProcess, free_port

REPO = Path(__file__).resolve().parents[2]
AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ENV = "CLOUDCART_CHROMIUM"
ARTIFACTS_ENV = "CLOUDCART_ARTIFACTS_DIR"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Without the network switches Chromium keeps calling Google services, which on a machine
# without internet access means retries and noise; the sandbox needs privileges CI lacks.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 3,
}
ACTION_TIMEOUT_MS = 15_000
# Playwright's 5 s default for expect() is tight on a two-core CI machine that also runs
# the server and its triggers.
EXPECT_TIMEOUT_MS = 10_000
BLOCKING_IMPACTS = ("serious", "critical")
# The fulfilment simulator of the browser tests' shop: seconds from a shipment's acceptance
# to its `shipped` and `delivered` updates.
SHIP_SECONDS = 2
DELIVER_SECONDS = 4

# Runs before any script of every document, whatever the page's CSP (it is not a page
# script): records the document's CSP violations and reports each to the test.
_CSP_RECORDER = """
(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (event) => {
    const violation = {
      directive: event.effectiveDirective,
      blocked: event.blockedURI,
      source: event.sourceFile,
      line: event.lineNumber,
      page: document.location.href,
    };
    window.__cspViolations.push(violation);
    if (window.__reportCspViolation) window.__reportCspViolation(violation);
  });
})();
"""


expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@dataclass
class Shop:
    """The running shop: where it answers and where its identity provider does."""

    server: ServeProcess
    idp_url: str

    @property
    def base_url(self) -> str:
        """The storefront's origin, e.g. http://127.0.0.1:54321."""
        return self.server.base_url


@dataclass
class Watch:
    """What went wrong in one browser context: console errors, uncaught exceptions and
    CSP violations. Errors of the dev identity provider's own page are left out (it is a
    development tool, not a page under test)."""

    shop: Shop
    errors: list[str] = field(default_factory=list)
    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        """Keep the error-level console messages."""
        if message.type != "error":
            return
        where = message.location.get("url") or ""
        if where.startswith(self.shop.idp_url):
            return
        self.errors.append(f"{message.text} ({where or (message.page and message.page.url)})")

    def on_web_error(self, error: WebError) -> None:
        """Keep uncaught exceptions of page scripts."""
        self.errors.append(f"uncaught: {error.error}")

    def on_csp_violation(self, _source: Any, violation: dict[str, Any]) -> None:
        """Keep a violation the init script reported."""
        self.csp_violations.append(violation)

    def allow(self, pattern: str) -> None:
        """Accept console errors matching `pattern` (for a test that provokes one)."""
        self.allowed.append(re.compile(pattern))

    def clear(self) -> None:
        """Forget everything seen so far."""
        self.errors.clear()
        self.csp_violations.clear()

    def problems(self) -> list[str]:
        """Everything that should fail the test."""
        found = [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
        found += [f"CSP violation: {json.dumps(v, sort_keys=True)}" for v in self.csp_violations]
        return found


_WATCHES: weakref.WeakKeyDictionary[BrowserContext, Watch] = weakref.WeakKeyDictionary()
_TEST_WATCHES = pytest.StashKey[list[tuple[BrowserContext, Watch]]]()


def watch(page: Page) -> Watch:
    """The watch of `page`'s context (to allow an expected error, or inspect what it saw)."""
    return _WATCHES[page.context]


def _chromium() -> str:
    path = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    if not (Path(path).is_file() and os.access(path, os.X_OK)) and shutil.which(path) is None:
        pytest.fail(
            f"Chromium is not installed at {path}: run `make browser-tools` "
            f"(Debian's chromium package), or set {CHROMIUM_ENV}.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="package")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """`cloudcart serve --demo` on a fresh data folder, for all the browser tests."""
    root = tmp_path_factory.mktemp("browser-shop")
    idp_port = free_port()
    server = ServeProcess(
        data_dir=root / "data",
        log_path=root / "serve.log",
        env={
            "DEV_IDP_HTTPS_PORT": str(idp_port),
            "CLOUDCART_LOG_LEVEL": "WARNING",
            # A parcel ships and arrives within seconds, so a journey can follow an order
            # to the end without waiting the simulator's default 20 and 40 s.
            "SIM_FULFILMENT_SHIP_SECONDS": str(SHIP_SECONDS),
            "SIM_FULFILMENT_DELIVER_SECONDS": str(DELIVER_SECONDS),
            # Every browser test pays with the same few test cards: at the default card
            # velocity (3 orders an hour) whether an order is held would depend on how
            # many tests paid before it.
            "RISK_LIMITS": json.dumps({"card_orders_per_hour": 1000, "card_orders_per_day": 1000}),
        },
        demo=True,
    )
    server.start()
    try:
        yield Shop(server, f"https://127.0.0.1:{idp_port}")
    finally:
        server.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium (Debian's), for all the browser tests."""
    chromium = playwright.chromium.launch(
        executable_path=_chromium(), args=list(CHROMIUM_ARGS), headless=True
    )
    try:
        yield chromium
    finally:
        chromium.close()


def _watched_page(
    request: pytest.FixtureRequest, browser: Browser, shop: Shop, options: dict[str, Any]
) -> Iterator[Page]:
    context = browser.new_context(base_url=shop.base_url, ignore_https_errors=True, **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    seen = Watch(shop)
    context.expose_binding("__reportCspViolation", seen.on_csp_violation)
    context.add_init_script(_CSP_RECORDER)
    context.on("console", seen.on_console)
    context.on("weberror", seen.on_web_error)
    _WATCHES[context] = seen
    request.node.stash.setdefault(_TEST_WATCHES, []).append((context, seen))
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Browser, shop: Shop) -> Iterator[Page]:
    """A desktop page (1280x900) in a fresh context; its base URL is the shop's."""
    yield from _watched_page(request, browser, shop, DESKTOP)


@pytest.fixture
def phone(request: pytest.FixtureRequest, browser: Browser, shop: Shop) -> Iterator[Page]:
    """A phone-sized touch page (390x844 at 3x) in a fresh context."""
    yield from _watched_page(request, browser, shop, PHONE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test that passed when its pages logged errors or broke their CSP."""
    result = yield
    problems: list[str] = []
    for context, seen in item.stash.get(_TEST_WATCHES, []):
        for open_page in context.pages:
            # A round trip delivers the events Chromium sent before it.
            try:
                open_page.evaluate("0")
            except PlaywrightError:
                continue  # it is navigating or closed: nothing more to deliver
        problems += seen.problems()
    if problems:
        pytest.fail("the browser reported problems:\n" + "\n".join(problems), pytrace=False)
    return result


def artifacts_dir() -> Path:
    """Where screenshots go: $CLOUDCART_ARTIFACTS_DIR/browser, else .artifacts/browser."""
    root = Path(os.environ.get(ARTIFACTS_ENV) or REPO / ".artifacts")
    folder = root / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of `page` as `<name>.png`; returns its path."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def _axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        pytest.fail(
            f"{AXE_SCRIPT.relative_to(REPO)} is missing: run `make install-dev` (npm install).",
            pytrace=False,
        )
    return AXE_SCRIPT.read_text(encoding="utf-8")


def _run_axe(page: Page, context: dict[str, Any] | None) -> list[dict[str, Any]]:
    # evaluate() runs outside the page's CSP, which forbids the inline script an injected
    # <script> tag would be; axe itself needs no eval.
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(
        """(context) => axe.run(context || document, {resultTypes: ["violations"]}).then((r) =>
             r.violations.map((v) => ({
               id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
             })))""",
        context,
    )
    return violations


def _describe(violations: Iterable[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} nodes)")
        lines += [f"    {n['target']}: {n['summary']}".replace("\n", " ") for n in v["nodes"][:5]]
    return "\n".join(lines)


def axe(page: Page, *, third_party: str | None = None) -> list[dict[str, Any]]:
    """Scan the page with axe-core; fail on a serious or critical violation, print the rest.

    `third_party` is a CSS selector of markup a vendored library renders (Swagger UI): it
    is left out of the scan, since only a patch of the library could change it. Returns
    the violations found.
    """
    violations = _run_axe(page, {"exclude": [[third_party]]} if third_party else None)
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    minor = [v for v in violations if v["impact"] not in BLOCKING_IMPACTS]
    if minor:
        print(f"axe on {page.url}, not blocking:\n{_describe(minor)}")
    assert not blocking, f"axe on {page.url}:\n{_describe(blocking)}"
    return violations


def _on_shop(shop_origin: str) -> Callable[[str], bool]:
    def landed(url: str) -> bool:
        return url.startswith(shop_origin + "/") and not urlsplit(url).path.startswith("/auth/")

    return landed


def sign_in(page: Page, email: str, name: str, *, admin: bool = False) -> None:
    """Sign in through the shop's "Sign in" link and the dev identity provider's page,
    as a new test customer (the same email again signs that customer in again); returns
    once the browser is back on the shop page it started from."""
    if not page.url.startswith("http"):
        page.goto("/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    sign_in_at_provider(page, email, name, admin=admin)


def sign_in_at_provider(page: Page, email: str, name: str, *, admin: bool = False) -> None:
    """Finish a sign-in the shop started (its "Sign in" link, or a page that needs a
    customer redirecting there): create or reuse the test customer on the dev identity
    provider's page; returns once the browser is back on the shop, where the sign-in
    was asked for."""
    page.wait_for_url("**/dev/idp/authorize?**")
    parts = urlsplit(page.url)
    returned = parse_qs(parts.query).get("redirect_uri", [""])[0]
    shop = urlsplit(returned)
    origin = f"{shop.scheme}://{shop.netloc}"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Admin", exact=True).set_checked(admin)
    page.get_by_role("button", name="Create and sign in").click()
    page.wait_for_url(_on_shop(origin))
