"""The web front end's foundation: pages over the API, security headers, static assets and
the offline API reference."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from cloudcart.web import client
from cloudcart.web.pages import STATIC_DIR, asset_url
from cloudcart.web.security import CSRF_COOKIE, VISITOR_COOKIE
from tests.unit.web.conftest import Site, csrf

REPO = Path(__file__).resolve().parents[3]
_SRC = re.compile(r'(?:src|href)="([^"]+)"')


def _csp(headers: dict[str, str] | object) -> dict[str, str]:
    policy = str(headers["content-security-policy"])  # type: ignore[index]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in policy.split(";"))
        if part
    }


def test_home_lists_categories_and_products_from_the_api(site: Site) -> None:
    browser = site.browser()
    page = browser.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Mobile Phones" in page.text
    products = browser.get("/api/catalog/products", params={"limit": 8}).json()["items"]
    for product in products:
        assert f'href="/products/{product["productId"]}"' in page.text


def test_pages_send_a_strict_policy_and_safe_cookies(site: Site) -> None:
    page = site.browser().get("/")
    policy = _csp(page.headers)
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in policy["style-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    cookies = page.headers.get_list("set-cookie")
    for name in (CSRF_COOKIE, VISITOR_COOKIE):
        cookie = next(c for c in cookies if c.startswith(name + "="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        # The app runs on plain http on loopback here: browsers drop Secure cookies there.
        assert "Secure" not in cookie


def test_no_page_carries_inline_script_or_handlers(site: Site) -> None:
    browser = site.browser()
    for path in ("/", "/search?q=oppo", "/products/oppo-a92", "/nope-page", "/api/docs"):
        text = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path


def test_search_page_shows_results_and_facets(site: Site) -> None:
    page = site.browser().get("/search", params={"q": "OPPO A92"})
    assert page.status_code == 200
    assert 'href="/products/oppo-a92"' in page.text
    assert "Brand" in page.text


def test_search_escapes_what_was_typed(site: Site) -> None:
    page = site.browser().get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_product_page_shows_variants_and_stock(site: Site) -> None:
    page = site.browser().get("/products/oppo-a92")
    assert page.status_code == 200
    assert "OPPO A92" in page.text
    assert "In stock" in page.text
    assert 'name="sku" value="OPPO-A92-' in page.text


def test_unknown_product_is_a_not_found_page(site: Site) -> None:
    page = site.browser().get("/products/no-such-product")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text


def test_a_dot_segment_id_is_not_found_and_never_reaches_an_api_path(
    site: Site, api_calls: list[str]
) -> None:
    # `/api/catalog/products/..` would be `/api/catalog` once the URL is normalised.
    page = site.browser().get("/products/%2E%2E")
    assert page.status_code == 404
    assert "Not found" in page.text
    assert [call for call in api_calls if "/api/catalog" in call] == []
    assert client.segment("a b/c") == "a%20b%2Fc"
    for bad in ("", ".", ".."):
        with pytest.raises(ValueError):
            client.segment(bad)


def test_static_assets_are_versioned_and_cached_for_a_year(site: Site) -> None:
    browser = site.browser()
    url = asset_url("site.css")
    digest = hashlib.sha256((STATIC_DIR / "site.css").read_bytes()).hexdigest()[:12]
    assert url == f"/static/{digest}/site.css"
    answer = browser.get(url)
    assert answer.status_code == 200
    assert "immutable" in answer.headers["cache-control"]
    assert answer.headers["content-type"].startswith("text/css")
    assert browser.get("/static/000000000000/site.css").status_code == 404
    assert browser.get(f"/static/{digest}/..%2fpages.py").status_code == 404
    assert browser.get(f"/static/{digest}/%2e%2e%2f%2e%2e%2fapi/app.py").status_code == 404


def test_sign_out_needs_the_csrf_token_and_ends_the_session(site: Site) -> None:
    browser = site.browser()
    site.sign_in(browser, "cust-signout")
    assert "Sign out" in browser.get("/").text
    refused = browser.post("/signout", data={})
    assert refused.status_code == 403
    assert browser.get("/api/me").status_code == 200
    token = csrf(browser)
    answer = browser.post("/signout", data={"csrf": token})
    assert answer.status_code == 303
    assert browser.get("/api/me").status_code == 401
    assert "Sign in" in browser.get("/").text


def test_api_reference_is_served_from_the_app(site: Site) -> None:
    browser = site.browser()
    page = browser.get("/api/docs")
    assert page.status_code == 200
    urls = [url for url in _SRC.findall(page.text) if not url.startswith("data:")]
    assert urls, page.text
    for url in urls:
        assert url.startswith("/"), f"{url} is not served by the app"
        assert browser.get(url).status_code == 200, url
    assert browser.get("/api/docs/oauth2-redirect").status_code == 200
    assert _csp(page.headers)["script-src"] == "'self'"


@pytest.mark.parametrize("name", ["swagger-ui-bundle.js", "swagger-ui.css", "oauth2-redirect.js"])
def test_vendored_swagger_ui_is_the_pinned_npm_release(name: str) -> None:
    package = REPO / "node_modules" / "swagger-ui-dist"
    assert package.is_dir(), "run `make install-dev` (npm install) first"
    vendored = STATIC_DIR / "vendor" / "swagger-ui-dist" / name
    assert vendored.read_bytes() == (package / name).read_bytes()


def test_out_of_stock_product_offers_back_in_stock_alerts(site: Site) -> None:
    admin = site.bearer("admin-1", admin=True)
    browser = site.browser()
    product = browser.get("/api/catalog/products/oppo-a92").json()
    sku = product["variants"][0]["sku"]
    cleared = browser.put(f"/api/admin/inventory/{sku}", json={"available": 0}, headers=admin)
    assert cleared.status_code == 200, cleared.text
    anonymous = browser.get("/products/oppo-a92", params={"sku": sku})
    assert "Out of stock" in anonymous.text and "to hear when it is back" in anonymous.text
    site.sign_in(browser, "cust-notify")
    token = csrf(browser, f"/products/oppo-a92?sku={sku}")
    answer = browser.post("/products/oppo-a92/notify-me", data={"csrf": token, "sku": sku})
    assert answer.status_code == 303
    assert "We will tell you when it is back" in browser.get(answer.headers["location"]).text
    mine = browser.get("/api/me/notify-me").json()["items"]
    assert [item["sku"] for item in mine] == [sku]


def test_cookies_are_secure_when_the_shop_is_served_over_https(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from cloudcart.api.app import create_app
    from cloudcart.core.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", public_base_url="https://shop.example.com")
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    with TestClient(app, base_url="https://shop.example.com") as browser:
        page = browser.get("/search", params={"q": "phone"})
    assert page.status_code == 200
    policy = _csp(page.headers)
    assert "127.0.0.1" not in policy["img-src"]
    for cookie in page.headers.get_list("set-cookie"):
        assert "Secure" in cookie and "HttpOnly" in cookie, cookie
