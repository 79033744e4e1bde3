"""Analytics over real HTTP against `cloudcart serve`: storefront events, orders paid,
cancelled and partly refunded, and a stock-out that ends reach the admin analytics API
through the relay, the `analytics` subscription, the facts journal and its change feed,
with exact figures; `cloudcart analytics verify` then finds no difference."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.serving import REPO, ServeProcess, clean_env
from tests.e2e.shop import ShopClient, wait_for

pytestmark = pytest.mark.e2e


class Shop(ShopClient):
    """The shared client with the analytics views."""

    def record(self, visitor: str, events: list[dict[str, Any]]) -> None:
        r = self.http.post(
            "/api/events", json={"events": events}, headers={"X-Visitor-Id": visitor}
        )
        assert r.status_code == 202, r.text

    def summary(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        r = self.http.get(
            "/api/admin/analytics/summary",
            params={
                "from": (now - timedelta(days=1)).isoformat(),
                "to": (now + timedelta(hours=1)).isoformat(),
            },
            headers=self.admin,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def inventory(self) -> dict[str, Any]:
        r = self.http.get("/api/admin/analytics/inventory", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("analytics-e2e")
    server = ServeProcess(data_dir=tmp / "data", log_path=tmp / "serve.log", partners=False)
    server.start()
    client = Shop(server)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def test_a_shop_hour_reaches_the_roll_ups_exactly_and_verifies(shop: Shop) -> None:
    product = shop.product("AN-E2E-A", 10, 10000)
    shop.product("AN-E2E-B", 1, 5000)
    visitor = secrets.token_urlsafe(16)
    now = datetime.now(UTC).isoformat()
    shop.record(
        visitor,
        [
            {"type": "product_viewed", "productId": product, "at": now},
            {"type": "add_to_cart", "productId": product, "sku": "AN-E2E-A", "at": now},
            {"type": "search", "query": "zephyr", "resultsCount": 0, "at": now},
        ],
    )
    first = shop.buy("an-buyer-1", "AN-E2E-A", 2)
    second = shop.buy("an-buyer-2", "AN-E2E-B", 1)  # the last unit: B runs out
    third = shop.buy("an-buyer-3", "AN-E2E-A", 1)
    shop.pay(first)
    shop.pay(second)
    r = shop.http.post(
        f"/api/orders/{third['orderId']}/cancel",
        json={"reason": "changed_mind"},
        headers=shop.headers("an-buyer-3"),
    )
    assert r.status_code == 200, r.text
    wait_for(
        "both payments applied",
        lambda: all(
            shop.order(sub, placed["orderId"])["status"] == "paid"
            for sub, placed in (("an-buyer-1", first), ("an-buyer-2", second))
        ),
    )
    r = shop.http.post(
        f"/api/admin/orders/{first['orderId']}/refunds",
        json={"amount": 3000, "reason": "goodwill"},
        headers=shop.admin,
    )
    assert r.status_code == 200, r.text
    r = shop.http.put("/api/admin/inventory/AN-E2E-B", json={"onHand": 4}, headers=shop.admin)
    assert r.status_code == 200, r.text

    gross = int(first["totals"]["total"]) + int(second["totals"]["total"])
    expected = {
        "orders": 3,
        "paidOrders": 2,
        "units": 3,
        "revenue": {"INR": {"gross": gross, "refunded": 3000, "net": gross - 3000}},
    }

    def counted() -> bool:
        summary = shop.summary()
        return {key: summary[key] for key in expected} == expected and summary["funnel"][
            "views"
        ] >= 1

    wait_for("the day's figures in the roll-ups", counted, timeout=60)
    summary = shop.summary()
    assert summary["funnel"]["addToCart"] == 1
    assert summary["visitors"] >= 1
    assert summary["aov"] == {"INR": round(gross / 2, 2)}

    def stock_out_ended() -> list[dict[str, Any]]:
        return [s for s in shop.inventory()["stockOuts"]["recent"] if s["sku"] == "AN-E2E-B"]

    [ended] = wait_for("the ended stock-out", stock_out_ended, timeout=60)
    assert ended["seconds"] >= 0

    command = ["analytics", "verify", "--data-dir", str(shop.server.data_dir)]
    verify = subprocess.run(
        [sys.executable, "-m", "cloudcart.local.cli", *command],
        cwd=REPO,
        env=clean_env({}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
