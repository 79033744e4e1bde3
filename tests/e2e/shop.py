"""A storefront, admin and partner client of one `cloudcart serve`, shared by the e2e
suites: tokens from the embedded provider, a product with stock, checkout and payment."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.serving import ServeProcess

ADDRESS = {
    "name": "Asha Rao",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "postalCode": "560001",
    "country": "IN",
}
SUCCEEDS = "4242424242424242"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class ShopClient:
    """HTTP calls a storefront, an admin and a test make against one server."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=60.0)
        self._tokens: dict[str, str] = {}
        self.admin = self.headers("e2e-admin", admin=True)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def headers(self, sub: str, *, admin: bool = False, email: str | None = None) -> dict[str, str]:
        """A bearer token for `sub` (minted once per client)."""
        if sub not in self._tokens:
            form = {"sub": sub, **({"roles": "Admin"} if admin else {})}
            if email:
                form["email"] = email
            r = self.http.post("/dev/idp/token", data=form)
            assert r.status_code == 200, r.text
            self._tokens[sub] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[sub]}"}

    def product(self, sku: str, units: int, price: int = 10000, *, title: str | None = None) -> str:
        """A one-variant product in the phones category with `units` on hand; its id."""
        for body in (
            {"id": "electronics", "name": "Electronics", "parentId": None},
            {"id": "phones", "name": "Phones", "parentId": "electronics"},
        ):
            self.http.post("/api/admin/categories", json=body, headers=self.admin)
        created = self.http.post(
            "/api/admin/products",
            headers=self.admin,
            json={
                "title": title or f"Zephyr {sku} phone",
                "brand": "Zephyr",
                "categoryId": "phones",
                "description": "A phone",
                "attributes": {},
                "variants": [
                    {"sku": sku, "attributes": {}, "price": {"amount": price, "currency": "INR"}}
                ],
                "status": "active",
            },
        )
        assert created.status_code == 201, created.text
        r = self.http.put(f"/api/admin/inventory/{sku}", json={"onHand": units}, headers=self.admin)
        assert r.status_code == 200, r.text
        return str(created.json()["id"])

    def buy(self, sub: str, sku: str, qty: int = 1, *, method: str = "standard") -> dict[str, Any]:
        """Put `qty` of `sku` in the cart and check out; the checkout's answer."""
        h = self.headers(sub)
        r = self.http.post("/api/cart/items", json={"sku": sku, "quantity": qty}, headers=h)
        assert r.status_code == 200, r.text
        r = self.http.post(
            "/api/checkout",
            # The buyer's own address: many customers shipping to one address within the
            # hour is what the fraud rules' address velocity holds for review.
            json={
                "shippingAddress": {**ADDRESS, "line1": f"{sub}, 12 MG Road"},
                "shippingMethod": method,
            },
            headers={**h, "Idempotency-Key": f"k-{sub}-{sku}"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def pay(self, placed: dict[str, Any], card: str = SUCCEEDS) -> None:
        """Confirm a checkout's payment with a test card."""
        r = self.http.post(
            f"/dev/payments/{placed['payment']['paymentId']}/confirm", json={"card": card}
        )
        assert r.status_code == 200, r.text

    def order(self, sub: str, order_id: str) -> dict[str, Any]:
        """The customer's view of an order."""
        r = self.http.get(f"/api/orders/{order_id}", headers=self.headers(sub))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def dead_letters(self, entity: str, subscription: str | None = None) -> list[dict[str, Any]]:
        """Dead letters of a queue, or of a subscription of a topic."""
        params = {"entity": entity, **({"subscription": subscription} if subscription else {})}
        r = self.http.get("/api/admin/dead-letters", params=params, headers=self.admin)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items
