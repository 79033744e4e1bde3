"""Storefront events and browsing history over real HTTP against `cloudcart serve`: a view
sent from one device is in the history on another within a second (through the broker and
the local trigger host); an anonymous visitor's views join the customer's history on
sign-in; archived products are left out; clearing and the personalisation opt-out empty
it and keep it empty."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.serving import ServeProcess
from tests.e2e.shop import ShopClient, wait_for

pytestmark = pytest.mark.e2e

VISITOR_HEADER = "X-Visitor-Id"


class Shop(ShopClient):
    """The shared client with the storefront events and history calls."""

    def send(
        self, events: list[dict[str, Any]], *, sub: str | None = None, visitor: str | None = None
    ) -> httpx.Response:
        headers = self.headers(sub) if sub else {}
        if visitor:
            headers = {**headers, VISITOR_HEADER: visitor}
        return self.http.post("/api/events", json={"events": events}, headers=headers)

    def history(self, sub: str, *, visitor: str | None = None) -> list[str]:
        headers = self.headers(sub)
        if visitor:
            headers = {**headers, VISITOR_HEADER: visitor}
        r = self.http.get("/api/me/history", headers=headers)
        assert r.status_code == 200, r.text
        return [i["productId"] for i in r.json()["items"]]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("history-e2e")
    server = ServeProcess(data_dir=tmp / "data", log_path=tmp / "serve.log", partners=False).start()
    try:
        client = Shop(server)
        yield client
        client.close()
    finally:
        server.stop()


def viewed(product_id: str) -> dict[str, Any]:
    return {"type": "product_viewed", "productId": product_id}


def test_a_view_on_the_phone_is_on_the_laptop_within_a_second(shop: Shop) -> None:
    first = shop.product("HIS-1", 5)
    second = shop.product("HIS-2", 5)
    phone = shop.send([viewed(first)], sub="meera")
    assert phone.status_code == 202, phone.text
    assert phone.json() == {"accepted": 1}
    wait_for("the first view", lambda: shop.history("meera") == [first], timeout=5)
    r = shop.send([viewed(second), {"type": "search", "query": "phone"}], sub="meera")
    assert r.status_code == 202, r.text
    sent = time.monotonic()
    # The laptop: its own connection, the same customer.
    with httpx.Client(base_url=shop.server.base_url, timeout=10) as laptop:
        while True:
            got = laptop.get("/api/me/history", headers=shop.headers("meera"))
            assert got.status_code == 200, got.text
            if [i["productId"] for i in got.json()["items"]] == [second, first]:
                break
            assert time.monotonic() - sent < 1.0, "the view was not there within 1 s"
            time.sleep(0.05)


def test_an_anonymous_visitors_views_join_the_history_on_sign_in(shop: Shop) -> None:
    product = shop.product("HIS-3", 5)
    visitor = secrets.token_urlsafe(16)
    assert shop.send([viewed(product)], visitor=visitor).status_code == 202
    assert shop.send([viewed(product)]).status_code == 400
    time.sleep(0.5)
    assert shop.history("kiran") == []
    merged = wait_for(
        "the visitor's views", lambda: shop.history("kiran", visitor=visitor), timeout=5
    )
    assert merged == [product]
    assert shop.history("kiran") == [product]


def test_archived_products_are_left_out(shop: Shop) -> None:
    kept = shop.product("HIS-4", 5)
    gone = shop.product("HIS-5", 5)
    assert shop.send([viewed(kept), viewed(gone)], sub="arjun").status_code == 202
    wait_for("both views", lambda: len(shop.history("arjun")) == 2, timeout=5)
    r = shop.http.delete(f"/api/admin/products/{gone}", headers=shop.admin)
    assert r.status_code == 200, r.text
    assert shop.history("arjun") == [kept]


def test_clearing_and_turning_personalisation_off_keep_it_empty(shop: Shop) -> None:
    product = shop.product("HIS-6", 5)
    assert shop.send([viewed(product)], sub="leela").status_code == 202
    wait_for("the view", lambda: shop.history("leela") == [product], timeout=5)
    r = shop.http.delete("/api/me/history", headers=shop.headers("leela"))
    assert r.status_code == 204
    assert shop.history("leela") == []
    assert shop.send([viewed(product)], sub="leela").status_code == 202
    wait_for("the view after the clear", lambda: shop.history("leela") == [product], timeout=5)
    r = shop.http.put(
        "/api/me/preferences", json={"personalization": False}, headers=shop.headers("leela")
    )
    assert r.status_code == 200, r.text
    assert r.json()["personalization"] is False
    assert shop.history("leela") == []
    assert shop.send([viewed(product)], sub="leela").status_code == 202
    time.sleep(1.0)
    assert shop.history("leela") == []
    export = shop.http.get("/api/me/export", headers=shop.headers("leela"))
    assert export.status_code == 200, export.text
    assert export.json()["sections"]["history"] == {"items": [], "events": []}
