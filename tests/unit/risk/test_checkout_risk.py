"""The fraud rules at checkout and on payment events, through the HTTP API: each rule holds
or blocks what it should, a normal first order goes through, a held order is never sent to
fulfilment until approved, a declined checkout changes nothing, redeliveries count once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cloudcart.core.ports.documents import Filter, Query
from cloudcart.integrations.partners import connectors
from cloudcart.orders.payments import apply_payment_event
from cloudcart.risk import service as risk_service
from tests.unit.orders.conftest import ADDRESS
from tests.unit.orders.test_fulfilment import _events
from tests.unit.risk.conftest import RiskShop

MakeShop = Callable[..., RiskShop]
ELSEWHERE = {
    "name": "Ravi K",
    "line1": "7 Park Street",
    "city": "Kolkata",
    "postalCode": "700016",
    "country": "IN",
}


def _pay(shop: RiskShop, body: dict[str, Any], event_id: str, **card: Any) -> None:
    event = shop.gateway.settle(body["payment"]["paymentId"], "succeeded", event_id, **card)
    apply_payment_event(shop.services, event)


def _fulfil(shop: RiskShop, sub: str, order_id: str) -> list[str]:
    """Deliver every fulfilment-relevant event of the order to the connector."""
    outcomes: list[str] = []
    for type_ in ("order.paid", "order.status_changed"):
        for event in _events(shop, sub, type_):
            if event.subject == order_id:
                outcomes.append(connectors.handle_fulfilment_event(shop.services, event))
    return outcomes


def _reasons(view: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in view["risk"]["reasons"]]


def _review(shop: RiskShop, order_id: str, decision: str, *, admin: bool = True) -> Any:
    return shop.client.post(
        f"/api/admin/orders/{order_id}/review",
        json={"decision": decision},
        headers=shop.headers("root", admin=admin),
    )


def test_a_normal_first_order_goes_through_and_customers_never_see_risk(
    make_shop: MakeShop,
) -> None:
    shop = make_shop()
    status, body = shop.buy("asha", "k1", email="asha@example.com")
    assert status == 201, body
    assert body["status"] == "pending_payment"
    assert "risk" not in body
    view = shop.admin_view(body["orderId"])
    assert view["risk"]["decision"] == "allow" and view["risk"]["score"] == 0
    assert view["risk"]["reasons"] == []
    mine = shop.client.get(f"/api/orders/{body['orderId']}", headers=shop.headers("asha"))
    assert "risk" not in mine.json() and "risk" not in json.dumps(mine.json())
    listed = shop.client.get("/api/orders", headers=shop.headers("asha")).json()
    assert all("risk" not in o for o in listed["items"])
    _pay(shop, body, "e1", card_country="IN", card_fingerprint="fp-asha")
    assert _fulfil(shop, "asha", body["orderId"])[0] == "requested"
    assert shop.admin_view(body["orderId"])["status"] == "fulfilling"


@pytest.mark.parametrize(
    ("rule", "overrides", "orders"),
    [
        ("customer_velocity", {"risk_limits": '{"customer_orders_per_hour": 2}'}, "same"),
        (
            "ip_velocity",
            {"risk_limits": '{"ip_orders_per_hour": 2, "accounts_per_ip_per_day": 9}'},
            "ip",
        ),
        ("address_velocity", {"risk_limits": '{"address_orders_per_day": 2}'}, "address"),
        ("accounts_per_ip", {"risk_limits": '{"accounts_per_ip_per_day": 2}'}, "ip"),
    ],
)
def test_velocity_rules_hold_the_order_over_the_limit(
    make_shop: MakeShop, rule: str, overrides: dict[str, str], orders: str
) -> None:
    shop = make_shop(**overrides)
    buyers = ["asha", "asha", "asha"] if orders == "same" else ["asha", "bala", "chen"]
    results = []
    for i, sub in enumerate(buyers):
        # Different IPs except where the IP is what the rule counts.
        ip = "203.0.113.7" if orders in ("ip", "same") else f"198.51.100.{i + 1}"
        results.append(shop.buy(sub, f"k{i}", ip=ip))
    assert [s for s, _ in results] == [201, 201, 201]
    first, _, third = (b for _, b in results)
    assert first["status"] == "pending_payment"
    assert third["status"] == "on_hold"
    view = shop.admin_view(third["orderId"])
    assert view["status"] == "on_hold" and view["risk"]["decision"] == "review"
    assert rule in _reasons(view)
    assert shop.admin_view(first["orderId"])["risk"]["reasons"] == []


def test_high_value_first_order_is_held_but_not_a_later_one(make_shop: MakeShop) -> None:
    shop = make_shop(risk_high_value_first_order='{"INR": 20000}')
    status, small = shop.buy("asha", "k1", qty=1)
    assert status == 201 and small["status"] == "pending_payment"
    status, big = shop.buy("asha", "k2", qty=2)  # not the first order any more
    assert status == 201 and big["status"] == "pending_payment"
    status, first_big = shop.buy("bala", "k3", qty=2, ip="198.51.100.9")
    assert status == 201 and first_big["status"] == "on_hold"
    assert _reasons(shop.admin_view(first_big["orderId"])) == ["high_value_first_order"]


def test_disposable_email_and_quantity_spike_add_to_the_score(make_shop: MakeShop) -> None:
    shop = make_shop()
    status, body = shop.buy("asha", "k1", email="someone@mailinator.com")
    assert status == 201 and body["status"] == "pending_payment"  # 30 alone: allowed
    assert _reasons(shop.admin_view(body["orderId"])) == ["disposable_email"]
    status, body = shop.buy("bala", "k2", qty=11, email="b@mailinator.com", ip="198.51.100.2")
    assert status == 201 and body["status"] == "on_hold"  # 30 + 30 >= 50
    view = shop.admin_view(body["orderId"])
    assert set(_reasons(view)) == {"disposable_email", "sku_quantity_spike"}
    assert view["risk"]["score"] == 60


def _decline(shop: RiskShop, sub: str, key: str, ip: str) -> None:
    status, body = shop.buy(sub, key, ip=ip)
    assert status == 201, body
    event = shop.gateway.settle(body["payment"]["paymentId"], "failed", f"decline-{key}")
    apply_payment_event(shop.services, event)
    apply_payment_event(shop.services, event)  # redelivered: counted once


def test_card_testing_declines_the_checkout_and_changes_nothing(make_shop: MakeShop) -> None:
    shop = make_shop()
    for i in range(3):
        _decline(shop, "mallory", f"d{i}", "203.0.113.66")
    before_stock = shop.inventory("SKU-1")
    creates = shop.gateway.create_calls
    orders_before = _orders(shop, "mallory")
    status, body = shop.buy("mallory", "k-blocked", ip="203.0.113.66")
    assert status == 422
    assert body["type"] == "https://cloudcart.dev/problems/checkout-declined"
    assert "card" not in body["detail"] and "decline" not in body["detail"].replace("declined", "")
    assert "reasons" not in body and "score" not in body
    assert shop.inventory("SKU-1") == before_stock
    assert shop.gateway.create_calls == creates
    assert _orders(shop, "mallory") == orders_before
    cart = shop.client.get("/api/cart", headers=shop.headers("mallory")).json()
    assert cart["items"], "the cart is kept"
    # The same key answers the same refusal.
    r = shop.client.post(
        "/api/checkout",
        json={"shippingAddress": ELSEWHERE, "shippingMethod": "standard"},
        headers={**shop.headers("mallory"), "Idempotency-Key": "k-blocked"},
    )
    assert r.status_code == 422


def _orders(shop: RiskShop, sub: str) -> list[str]:
    docs = (
        shop.services.documents.container("orders")
        .query(Query(filters=[Filter("type", "eq", "order")]), partition_key=sub)
        .items
    )
    return sorted(d["id"] for d in docs)


def test_declines_are_counted_per_ip_too(make_shop: MakeShop) -> None:
    shop = make_shop(risk_limits='{"ip_declines_per_hour": 1, "accounts_per_ip_per_day": 9}')
    _decline(shop, "m1", "a", "203.0.113.66")
    _decline(shop, "m2", "b", "203.0.113.66")
    status, body = shop.buy("m3", "c", ip="203.0.113.66")
    assert status == 422, body
    status, body = shop.buy("m3", "d", ip="198.51.100.3")
    assert status == 201, body


def test_review_holds_until_approved_then_fulfils(make_shop: MakeShop) -> None:
    shop = make_shop(risk_limits='{"customer_orders_per_hour": 0}')
    status, body = shop.buy("asha", "k1")
    assert status == 201 and body["status"] == "on_hold"
    order_id = body["orderId"]
    _pay(shop, body, "e1", card_country="IN", card_fingerprint="fp1")
    _pay(shop, body, "e1", card_country="IN", card_fingerprint="fp1")  # redelivered
    view = shop.admin_view(order_id)
    assert view["status"] == "on_hold" and view["captured"]["amount"] == 11800
    assert "requested" not in _fulfil(shop, "asha", order_id)
    assert shop.partner.requests == {}
    r = _review(shop, order_id, "approve", admin=False)
    assert r.status_code == 403
    r = _review(shop, order_id, "approve")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid"
    assert r.json()["risk"]["review"]["decision"] == "approve"
    assert "requested" in _fulfil(shop, "asha", order_id)
    assert list(shop.partner.requests) == [f"fulfilment-request:{order_id}"]
    assert shop.admin_view(order_id)["status"] == "fulfilling"
    again = _review(shop, order_id, "approve")
    assert again.status_code == 200 and again.json()["status"] == "fulfilling"


def test_an_approved_unpaid_order_is_fulfilled_once_paid(make_shop: MakeShop) -> None:
    shop = make_shop(risk_limits='{"customer_orders_per_hour": 0}')
    _, body = shop.buy("asha", "k1")
    assert body["status"] == "on_hold"
    r = _review(shop, body["orderId"], "approve")
    assert r.json()["status"] == "pending_payment"
    _pay(shop, body, "e1", card_country="US", card_fingerprint="fp1")  # held again? no
    assert shop.admin_view(body["orderId"])["status"] == "paid"
    assert "requested" in _fulfil(shop, "asha", body["orderId"])


def test_reject_refunds_a_paid_held_order_and_voids_an_open_one(make_shop: MakeShop) -> None:
    shop = make_shop(risk_limits='{"customer_orders_per_hour": 0}')
    _, paid = shop.buy("asha", "k1")
    _pay(shop, paid, "e1")
    r = _review(shop, paid["orderId"], "reject")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["refunded"]["amount"] == 11800
    assert shop.gateway.captured_total() == 0
    _, unpaid = shop.buy("asha", "k2")
    r = _review(shop, unpaid["orderId"], "reject")
    assert r.json()["status"] == "cancelled"
    assert shop.gateway.payments[unpaid["payment"]["paymentId"]].status == "cancelled"
    assert shop.inventory("SKU-1")["available"] == 1000
    assert _review(shop, unpaid["orderId"], "approve").status_code == 409


def test_reviewing_an_order_that_is_not_held_is_refused(make_shop: MakeShop) -> None:
    shop = make_shop()
    _, body = shop.buy("asha", "k1")
    r = _review(shop, body["orderId"], "approve")
    assert r.status_code == 409
    assert r.json()["type"].endswith("/invalid-transition")
    r = shop.client.post(
        f"/api/admin/orders/{body['orderId']}/review",
        json={"decision": "maybe"},
        headers=shop.headers("root", admin=True),
    )
    assert r.status_code == 422
    assert (
        shop.client.post(
            f"/api/admin/orders/{body['orderId']}/review", json={"decision": "approve"}
        ).status_code
        == 401
    )


def test_card_country_and_card_velocity_hold_after_payment(make_shop: MakeShop) -> None:
    shop = make_shop(
        risk_weights='{"card_country_mismatch": 50}',
        risk_limits='{"card_orders_per_hour": 1}',
    )
    _, ok = shop.buy("asha", "k1")
    _pay(shop, ok, "e1", card_country="IN", card_fingerprint="card-A")
    assert shop.admin_view(ok["orderId"])["status"] == "paid"
    _, foreign = shop.buy("bala", "k2", ip="198.51.100.2")
    _pay(shop, foreign, "e2", card_country="GB", card_fingerprint="card-B")
    view = shop.admin_view(foreign["orderId"])
    assert view["status"] == "on_hold" and _reasons(view) == ["card_country_mismatch"]
    assert [h["status"] for h in view["timeline"]] == ["pending_payment", "paid", "on_hold"]
    assert "requested" not in _fulfil(shop, "bala", foreign["orderId"])
    _, reused = shop.buy("chen", "k3", ip="198.51.100.3", address=ELSEWHERE)
    _pay(shop, reused, "e3", card_country="IN", card_fingerprint="card-A")
    _pay(shop, reused, "e3", card_country="IN", card_fingerprint="card-A")
    view = shop.admin_view(reused["orderId"])
    assert view["status"] == "on_hold" and _reasons(view) == ["card_velocity"]
    counters = shop.services.documents.container("risk").read(
        risk_service.card_key("card-A"), view["risk"]["evaluatedAt"][:10]
    )
    assert sum(counters["orders"].values()) == 2  # the redelivery counted nothing


def test_monitor_mode_records_without_acting(make_shop: MakeShop) -> None:
    shop = make_shop(risk_mode="monitor", risk_limits='{"customer_orders_per_hour": 0}')
    status, body = shop.buy("asha", "k1")
    assert status == 201 and body["status"] == "pending_payment"
    view = shop.admin_view(body["orderId"])
    assert view["risk"]["decision"] == "review" and view["risk"]["mode"] == "monitor"
    _pay(shop, body, "e1")
    assert "requested" in _fulfil(shop, "asha", body["orderId"])
    # Even a score over the block threshold only records.
    shop2 = make_shop(
        risk_mode="monitor", risk_block_score=50, risk_limits='{"customer_orders_per_hour": 0}'
    )
    status, body = shop2.buy("asha", "k1")
    assert status == 201 and shop2.admin_view(body["orderId"])["risk"]["decision"] == "block"


def test_rules_off_scores_nothing(make_shop: MakeShop) -> None:
    shop = make_shop(risk_mode="off", risk_limits='{"customer_orders_per_hour": 0}')
    status, body = shop.buy("asha", "k1")
    assert status == 201 and body["status"] == "pending_payment"
    assert shop.admin_view(body["orderId"])["risk"] is None


def test_a_client_set_forwarded_for_is_not_trusted(make_shop: MakeShop) -> None:
    shop = make_shop(risk_limits='{"ip_orders_per_hour": 1, "accounts_per_ip_per_day": 9}')
    for i, sub in enumerate(["asha", "bala"]):
        auth = {"Authorization": f"Bearer {shop.token(sub)}"}
        shop.client.post("/api/cart/items", json={"sku": "SKU-1", "quantity": 1}, headers=auth)
        r = shop.client.post(
            "/api/checkout",
            json={"shippingAddress": [ADDRESS, ELSEWHERE][i], "shippingMethod": "standard"},
            headers={
                **auth,
                "Idempotency-Key": f"k{i}",
                "X-Forwarded-For": "203.0.113.7",  # the same, but client-set: ignored
                "X-Client-IP": f"198.51.100.{i + 1}",
            },
        )
        assert r.status_code == 201 and r.json()["status"] == "pending_payment", r.text


def test_a_placed_order_is_counted_once(make_shop: MakeShop) -> None:
    shop = make_shop()
    status, body = shop.buy("asha", "k1")
    assert status == 201
    day = shop.admin_view(body["orderId"])["createdAt"][:10]
    doc = shop.services.documents.container("risk").read(risk_service.customer_key("asha"), day)
    assert sum(doc["orders"].values()) == 1
    marker = shop.services.documents.container("risk").read(f"order:{body['orderId']}", day)
    assert marker["keys"]["ip"].startswith("ip:") and "203.0.113.7" not in json.dumps(marker)
