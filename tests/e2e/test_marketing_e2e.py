"""Marketing triggers over real HTTP against `cloudcart serve` with the capture adapters:
two customers subscribe to a sold-out SKU, the restock notifies each of them once and ends
their subscriptions, and a later restock sends nothing more; an abandoned cart gets one
reminder, and only with marketing consent (reminders due at once, no quiet hours)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.e2e.serving import ServeProcess
from tests.e2e.shop import ShopClient, wait_for

pytestmark = pytest.mark.e2e


class Shop(ShopClient):
    """The shared client with the marketing views."""

    def customer(self, sub: str) -> str:
        email = f"{sub}@example.com"
        self.headers(sub, email=email)
        r = self.http.get("/api/me/profile", headers=self.headers(sub))
        assert r.status_code == 200, r.text
        return email

    def subscribe(self, sub: str, product_id: str, sku: str) -> int:
        r = self.http.post(
            f"/api/catalog/products/{product_id}/notify-me",
            json={"sku": sku},
            headers=self.headers(sub),
        )
        assert r.status_code in (200, 201), r.text
        return r.status_code

    def subscriptions(self, sub: str) -> list[dict[str, Any]]:
        r = self.http.get("/api/me/notify-me", headers=self.headers(sub))
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def restock(self, sku: str, units: int) -> None:
        r = self.http.put(f"/api/admin/inventory/{sku}", json={"onHand": units}, headers=self.admin)
        assert r.status_code == 200, r.text

    def mail(self, email: str, template: str = "back-in-stock") -> list[dict[str, Any]]:
        r = self.http.get(
            "/dev/notifications/sent", params={"to": email, "channel": "email"}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        return [i for i in r.json()["items"] if i["template"] == template]

    def back_in_stock_mail(self, email: str) -> list[dict[str, Any]]:
        return self.mail(email)

    def consent_to_marketing_email(self, sub: str) -> None:
        r = self.http.put(
            "/api/me/preferences",
            json={"channels": {"email": {"marketing": True}}},
            headers=self.headers(sub),
        )
        assert r.status_code == 200, r.text

    def add_to_cart(self, sub: str, sku: str, quantity: int) -> None:
        r = self.http.post(
            "/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=self.headers(sub)
        )
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("marketing-e2e")
    env = {"ABANDONED_CART_MINUTES": "0", "NOTIFICATIONS_QUIET_HOURS": "00:00-00:00"}
    server = ServeProcess(
        data_dir=tmp / "data", log_path=tmp / "serve.log", env=env, partners=False
    ).start()
    try:
        client = Shop(server)
        yield client
        client.close()
    finally:
        server.stop()


def no_subscriptions(shop: Shop, sub: str) -> bool:
    return not shop.subscriptions(sub)


def test_a_restock_notifies_each_subscriber_once(shop: Shop) -> None:
    product_id = shop.product("BIS-1", 0)
    emails = {sub: shop.customer(sub) for sub in ("ravi", "meera")}
    for sub in emails:
        assert shop.subscribe(sub, product_id, "BIS-1") == 201
        assert shop.subscribe(sub, product_id, "BIS-1") == 200  # a repeat is the same one
        assert [s["sku"] for s in shop.subscriptions(sub)] == ["BIS-1"]

    shop.restock("BIS-1", 5)
    for sub, email in emails.items():
        wait_for(f"{sub}'s back-in-stock email", partial(shop.back_in_stock_mail, email))
        wait_for(f"{sub}'s subscription to end", partial(no_subscriptions, shop, sub))

    # Sold out and back again: the subscriptions ended, so nobody hears twice.
    shop.restock("BIS-1", 0)
    shop.restock("BIS-1", 3)
    time.sleep(2.0)
    for email in emails.values():
        assert len(shop.back_in_stock_mail(email)) == 1


def test_an_abandoned_cart_gets_one_reminder_with_consent_only(shop: Shop) -> None:
    shop.product("CART-1", 50)
    keen, quiet = shop.customer("keen"), shop.customer("quiet")
    shop.consent_to_marketing_email("keen")
    shop.add_to_cart("keen", "CART-1", 1)
    shop.add_to_cart("quiet", "CART-1", 1)
    wait_for("keen's reminder", partial(shop.mail, keen, "abandoned-cart"))
    # The same customer changes the cart again within the day: no second reminder.
    shop.add_to_cart("keen", "CART-1", 1)
    time.sleep(2.0)
    assert len(shop.mail(keen, "abandoned-cart")) == 1
    assert shop.mail(quiet, "abandoned-cart") == []
