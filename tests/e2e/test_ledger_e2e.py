"""The journal, the accounting system and the CRM over real HTTP against `cloudcart serve`
and its simulators: captures, partial and full refunds and a payout post balanced entries
that the accounting system's books match; the books and the CRM agree after an outage
and a resubmission; consent decides what the CRM may market with; erasure reaches it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.serving import REPO, ServeProcess, clean_env
from tests.e2e.shop import ShopClient, wait_for

pytestmark = pytest.mark.e2e

ENV = {
    "CLOUDCART_LOG_LEVEL": "INFO",
    "TEST_GATEWAY_DUPLICATE_WEBHOOKS": "1",
    # One attempt per delivery: a partner that is down dead-letters within a second, which
    # is what the outage tests want to see.
    "PARTNER_MAX_ATTEMPTS": "1",
    "SIM_FULFILMENT_SHIP_SECONDS": "600",
}


class Shop(ShopClient):
    """The shared client, with the journal's and the partners' views."""

    def paid_order(self, sub: str, sku: str, qty: int) -> dict[str, Any]:
        placed = self.buy(sub, sku, qty, method="express")
        self.pay(placed)
        wait_for("the capture entry", lambda: self.entries_of(placed["orderId"]))
        return placed

    def entries_of(self, order_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.http.get("/api/admin/ledger/entries", params=params, headers=self.admin)
            assert page.status_code == 200, page.text
            items += [e for e in page.json()["items"] if e["sourceEvent"]["subject"] == order_id]
            cursor = page.json()["cursor"]
            if cursor is None:
                return items

    def ours(self) -> dict[str, Any]:
        r = self.http.get("/api/admin/ledger/trial-balance", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def theirs(self) -> dict[str, Any]:
        r = self.http.get(
            "/dev/partners/accounting/trial-balance", params={"currency": "INR"}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def books_agree(self) -> bool:
        return bool(self.ours()["accounts"] == self.theirs()["accounts"])

    def resubmit_all(self, subscription: str) -> None:
        for letter in self.dead_letters("events", subscription):
            r = self.http.post(
                f"/api/admin/dead-letters/{letter['id']}/resubmit", headers=self.admin
            )
            assert r.status_code == 202, r.text


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("ledger-e2e")
    server = ServeProcess(data_dir=tmp / "main", log_path=tmp / "main.log", env=dict(ENV)).start()
    try:
        client = Shop(server)
        yield client
        client.close()
    finally:
        server.stop()


def _balances(balance: dict[str, Any]) -> dict[str, int]:
    return {a["account"]: a["balance"] for a in balance["accounts"]}


def test_capture_partial_and_full_refund_and_payout_balance_everywhere(shop: Shop) -> None:
    shop.product("LEDGER-1", 10, price=11800)
    placed = shop.paid_order("payer", "LEDGER-1", 2)
    oid = placed["orderId"]
    total = placed["total"]["amount"]
    (capture,) = shop.entries_of(oid)
    assert capture["rule"] == "capture"
    assert sum(x["debit"] for x in capture["lines"]) == total
    r = shop.http.post(
        f"/api/admin/orders/{oid}/refunds",
        json={"lines": [{"sku": "LEDGER-1", "quantity": 1}], "reason": "one broke"},
        headers=shop.admin,
    )
    assert r.status_code == 200, r.text
    r = shop.http.post(f"/api/orders/{oid}/cancel", headers=shop.headers("payer"))
    assert r.status_code == 200, r.text
    entries = wait_for("three entries", lambda: len(e := shop.entries_of(oid)) == 3 and e)
    assert sorted(e["rule"] for e in entries) == ["cancellation", "capture", "refund"]
    refund = next(e for e in entries if e["rule"] == "refund")
    assert {x["account"]: x["debit"] for x in refund["lines"] if x["debit"]} == {
        "4900 Refunds": 10000,
        "2100 Tax payable": 1800,
    }
    balance = shop.ours()
    assert balance["totalDebit"] == balance["totalCredit"]
    books = _balances(balance)
    # Everything was refunded: revenue + tax + shipping - refunds = captured - refunded = 0.
    assert (
        -books.get("4000 Sales revenue", 0)
        - books.get("2100 Tax payable", 0)
        - books.get("4100 Shipping revenue", 0)
        - books.get("4900 Refunds", 0)
        == 0
    )
    assert books["6100 Payment fees"] > 0  # the test gateway reports its fee
    r = shop.http.post("/dev/payments/payouts", json={"currency": "INR"})
    assert r.status_code == 200, r.text
    payout = r.json()["payout"]
    assert payout is None or payout["amount"] > 0
    wait_for("the books to agree", shop.books_agree)


def test_books_agree_after_an_accounting_outage_and_a_resubmit(shop: Shop) -> None:
    shop.product("LEDGER-2", 5, price=50000)
    r = shop.http.post("/dev/partners/accounting/outage", json={"seconds": 4}, headers=shop.admin)
    assert r.status_code == 200, r.text
    shop.paid_order("outage-payer", "LEDGER-2", 1)
    letters = wait_for(
        "the entry to dead-letter", lambda: shop.dead_letters("events", "accounting")
    )
    assert letters[0]["reason"] == "PartnerUnavailable"
    assert "503" in letters[0]["description"]
    assert not shop.books_agree()
    time.sleep(4)
    shop.resubmit_all("accounting")
    wait_for("the books to agree", shop.books_agree)
    assert shop.dead_letters("events", "accounting") == []


def test_crm_gets_consented_marketing_only_and_erasure_reaches_it(shop: Shop) -> None:
    client = shop.headers("crm-customer", email="crm@example.com")
    assert shop.http.get("/api/me/profile", headers=client).status_code == 200

    def contact() -> dict[str, Any] | None:
        r = shop.http.get("/dev/partners/crm/contacts/crm-customer", headers=shop.admin)
        return dict(r.json()) if r.status_code == 200 else None

    found = wait_for("the CRM contact", contact)
    assert found["email"] == "crm@example.com"
    assert found["marketing"] == {"email": False, "sms": False, "whatsapp": False}
    assert "marketingEmail" not in found["attributes"]
    r = shop.http.post("/dev/partners/crm/outage", json={"seconds": 3}, headers=shop.admin)
    assert r.status_code == 200, r.text
    r = shop.http.put(
        "/api/me/preferences",
        json={"channels": {"email": {"marketing": True}}, "source": "web"},
        headers=client,
    )
    assert r.status_code == 200, r.text
    wait_for("the CRM update to dead-letter", lambda: shop.dead_letters("events", "crm"))
    time.sleep(3)
    shop.resubmit_all("crm")
    found = wait_for(
        "consent to reach the CRM",
        lambda: (c := contact()) is not None and c["marketing"]["email"] and c,
    )
    assert found["marketing"]["sms"] is False
    assert found["attributes"]["marketingEmail"] == "crm@example.com"
    shop.product("LEDGER-3", 3, price=20000)
    shop.paid_order("crm-customer", "LEDGER-3", 1)
    found = wait_for("order figures in the CRM", lambda: (c := contact()) and c.get("orders") and c)
    assert found["orders"]["orderCount"] == 1

    def partner_systems() -> set[str]:
        exported = shop.http.get("/api/me/export", headers=client).json()["sections"]
        return {r["system"] for r in exported["partnerSystems"]}

    # The order reaches the fulfilment partner on its own subscription, maybe after the CRM.
    wait_for("the order to reach fulfilment", lambda: {"crm", "fulfilment"} <= partner_systems())
    assert shop.http.delete("/api/me", headers=client).status_code == 204
    wait_for("the erasure to reach the CRM", lambda: contact() is None)
    exported = shop.http.get("/api/me/export", headers=client).json()["sections"]
    crm = next(r for r in exported["partnerSystems"] if r["system"] == "crm")
    assert crm["erasedAt"] is not None


def test_zz_reconcile_sees_everything_add_up(shop: Shop) -> None:
    wait_for("the books to agree", shop.books_agree)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudcart.local.cli",
            "reconcile",
            "--data-dir",
            str(shop.server.data_dir),
        ],
        cwd=REPO,
        env=clean_env({"CLOUDCART_PUBLIC_BASE_URL": shop.server.base_url}),
        capture_output=True,
        timeout=120,
    )
    report = out.stdout.decode()
    # Orders paid in this run are younger than the 5 minute grace, so only the checks that
    # apply to them at once can complain: stock, money, the WMS and the books.
    assert out.returncode == 0, report + out.stderr.decode()
