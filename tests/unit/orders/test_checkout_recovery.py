"""A checkout that dies between reserving stock and placing its order loses no unit: the
expiry timer's recovery (or a retry taking the key over) releases exactly what it held."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from cloudcart.composition import Services
from cloudcart.core.clock import utcnow
from cloudcart.inventory import ReservationWithdrawn, release_reservation, reserve_stock
from cloudcart.orders import checkout as checkout_module
from cloudcart.orders.checkout import checkout, record_id, recover_abandoned_checkouts
from cloudcart.orders.models import CheckoutIn
from cloudcart.orders.reconcile import reconcile
from tests.unit.orders.conftest import ADDRESS, Shop


class Crash(BaseException):
    """The process died: no handler may run any more store call."""


class CrashingStore:
    """Wraps a document store; the `nth` call of `method` on container `name` kills the
    "process": that call and every later one raise Crash, so compensation cannot run."""

    def __init__(self, inner: Any, *, name: str, method: str, nth: int = 1) -> None:
        self.inner, self.trigger, self.nth = inner, (name, method), nth
        self.calls = 0
        self.dead = False

    def container(self, name: str) -> Any:
        return _CrashingContainer(self, name, self.inner.container(name))

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


class _CrashingContainer:
    def __init__(self, store: CrashingStore, name: str, inner: Any) -> None:
        self.store, self.name, self.inner = store, name, inner

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self.inner, attr)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            store = self.store
            if store.dead:
                raise Crash("the process is gone")
            if (self.name, attr) == store.trigger:
                store.calls += 1
                if store.calls == store.nth:
                    store.dead = True
                    raise Crash(f"died during {self.name}.{attr}")
            return target(*args, **kwargs)

        return call


BODY = {"shippingAddress": ADDRESS, "shippingMethod": "standard"}


def _crash(shop: Shop, customer: str, key: str, *, method: str, nth: int, name: str) -> None:
    crashing = CrashingStore(shop.services.documents, name=name, method=method, nth=nth)
    services = Services(shop.settings, adapters={"documents": crashing, "payments": shop.gateway})
    with pytest.raises(Crash):
        checkout(services, customer, key, CheckoutIn.model_validate(BODY))
    assert crashing.dead


def _record(shop: Shop, customer: str, key: str) -> dict[str, Any]:
    return shop.services.documents.container("orders").read(record_id(key), customer)


def _later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    start: datetime = utcnow()
    monkeypatch.setattr(checkout_module, "utcnow", lambda: start + delta)


def _ok(shop: Shop) -> bool:
    report = reconcile(shop.services, check_gateway=False)
    return report.ok


@pytest.mark.parametrize(
    ("name", "method", "nth", "held_a", "held_b"),
    [
        ("orders", "batch", 1, 2, 1),  # both SKUs reserved, the order batch never ran
        ("inventory", "batch", 2, 2, 0),  # died reserving the second SKU
    ],
)
def test_crashed_checkout_is_recovered_exactly_once(
    shop: Shop,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    method: str,
    nth: int,
    held_a: int,
    held_b: int,
) -> None:
    shop.stock("A", 5)
    shop.stock("B", 3)
    shop.add_to_cart("erin", "A", 2)
    shop.add_to_cart("erin", "B", 1)
    _crash(shop, "erin", "k", name=name, method=method, nth=nth)

    record = _record(shop, "erin", "k")
    assert record["status"] == "in_progress"
    assert record["reservation"]["lines"] == [
        {"sku": "A", "quantity": 2},
        {"sku": "B", "quantity": 1},
    ]
    assert shop.inventory("A")["reserved"] == held_a
    assert shop.inventory("B")["reserved"] == held_b
    assert not _ok(shop)  # the leak is visible before recovery

    # Within the lease (+ grace) the owner may still be alive: nothing is touched.
    assert recover_abandoned_checkouts(shop.services) == 0
    assert shop.inventory("A")["reserved"] == held_a

    _later(monkeypatch, timedelta(minutes=2))
    assert recover_abandoned_checkouts(shop.services) == 1
    assert recover_abandoned_checkouts(shop.services) == 0
    # Released markers make a direct repeat a no-op too.
    attempt = record["reservation"]["attempt"]
    assert release_reservation(shop.services.documents, attempt, ["A", "B"]) == 0
    for sku, received in (("A", 5), ("B", 3)):
        assert shop.inventory(sku) == {
            "available": received,
            "reserved": 0,
            "sold": 0,
            "received": received,
        }
    assert _record(shop, "erin", "k")["status"] == "abandoned"
    assert _ok(shop)

    # The same key then starts afresh and reserves once.
    status, body = shop.checkout("erin", "k", BODY)
    assert status == 201, body
    assert shop.inventory("A")["reserved"] == 2 and shop.inventory("B")["reserved"] == 1
    assert recover_abandoned_checkouts(shop.services) == 0
    assert shop.inventory("A")["reserved"] == 2
    assert _ok(shop)


def test_lease_takeover_releases_the_crashed_attempts_stock(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.stock("A", 5)
    shop.add_to_cart("fay", "A", 3)
    _crash(shop, "fay", "k", name="orders", method="batch", nth=1)
    assert shop.inventory("A")["reserved"] == 3

    _later(monkeypatch, LEASE_OVER)  # lease over, recovery grace not yet
    status, body = shop.checkout("fay", "k", BODY)
    assert status == 201, body
    # 3 held by the order, not 6: the crashed attempt's units went back first.
    assert shop.inventory("A") == {"available": 2, "reserved": 3, "sold": 0, "received": 5}
    assert _ok(shop)

    _later(monkeypatch, timedelta(minutes=5))
    assert recover_abandoned_checkouts(shop.services) == 0
    assert shop.inventory("A")["reserved"] == 3
    assert shop.checkout("fay", "k", BODY) == (status, body)


LEASE_OVER = checkout_module.LEASE + timedelta(seconds=1)


def test_a_released_attempt_cannot_reserve_afterwards(shop: Shop) -> None:
    """An owner still running past its lease (a zombie) finds its reservation withdrawn."""
    shop.stock("A", 5)
    store = shop.services.documents
    assert release_reservation(store, "att_zombie", ["A"]) == 0
    with pytest.raises(ReservationWithdrawn):
        reserve_stock(store, "att_zombie", {"A": 2})
    assert shop.inventory("A")["available"] == 5 and shop.inventory("A")["reserved"] == 0


def test_recovery_leaves_normal_checkouts_alone(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.stock("A", 5)
    shop.stock("B", 1)
    shop.add_to_cart("gus", "A", 1)
    assert shop.checkout("gus", "placed", BODY)[0] == 201
    shop.add_to_cart("gus", "A", 1)
    shop.gateway.fail_next_create = True
    assert shop.checkout("gus", "unpaid", BODY)[0] == 503
    shop.add_to_cart("gus", "B", 1)
    shop.stock("B", 0)  # sold out meanwhile
    assert shop.checkout("gus", "no-stock", BODY)[0] == 409
    before = {k: _record(shop, "gus", k) for k in ("placed", "unpaid", "no-stock")}
    stock_before = {sku: shop.inventory(sku) for sku in ("A", "B")}

    _later(monkeypatch, timedelta(hours=1))
    assert recover_abandoned_checkouts(shop.services) == 0
    assert {k: _record(shop, "gus", k) for k in before} == before
    assert {sku: shop.inventory(sku) for sku in ("A", "B")} == stock_before
    assert stock_before["A"]["reserved"] == 2 and stock_before["B"]["reserved"] == 0
    assert _ok(shop)
