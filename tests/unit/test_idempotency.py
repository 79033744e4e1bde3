"""Idempotent consumers: processed markers in the effect's batch, and the side-effect guard."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.errors import BatchFailed, NotFound
from cloudcart.core.idempotency import (
    SideEffectGuard,
    SideEffectInProgress,
    is_duplicate,
    processed_marker,
    processed_marker_id,
)
from cloudcart.core.ports.documents import BatchOp, Container, PatchOp, Query
from tests.fakes.clock import ManualClock


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    s.ensure_containers()
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def guard(store: SqliteDocumentStore, clock: ManualClock) -> SideEffectGuard:
    return SideEffectGuard(store, "notify-email", lease=timedelta(minutes=5), clock=clock)


# --- processed markers ---------------------------------------------------------------------


def _handle_payment(orders: Container, message_id: str, customer: str = "cus_1") -> str:
    """A consumer: adds the paid amount to the order, once per message."""
    try:
        orders.batch(
            customer,
            [
                processed_marker(
                    "billing",
                    message_id,
                    partition_key_field=orders.spec.partition_key_field,
                    partition_key=customer,
                ),
                BatchOp("patch", id="ord_1", patch=[PatchOp("incr", "paid", 100)]),
            ],
        )
    except BatchFailed as error:
        if is_duplicate(error):
            return "duplicate"
        raise
    return "applied"


@pytest.fixture
def orders(store: SqliteDocumentStore) -> Container:
    container = store.container("orders")
    container.create({"id": "ord_1", "customerId": "cus_1", "paid": 0})
    return container


def test_the_second_delivery_is_a_duplicate_and_the_effect_applies_once(orders: Container) -> None:
    assert _handle_payment(orders, "evt_1") == "applied"
    assert _handle_payment(orders, "evt_1") == "duplicate"
    assert orders.read("ord_1", "cus_1")["paid"] == 100
    assert _handle_payment(orders, "evt_2") == "applied"
    assert orders.read("ord_1", "cus_1")["paid"] == 200
    marker = orders.read(processed_marker_id("billing", "evt_1"), "cus_1")
    assert marker["kind"] == "processed"
    assert marker["consumer"] == "billing" and marker["messageId"] == "evt_1"


def test_a_failing_effect_is_not_a_duplicate_and_leaves_no_marker(orders: Container) -> None:
    with pytest.raises(BatchFailed) as failure:
        orders.batch(
            "cus_1",
            [
                processed_marker(
                    "billing", "evt_9", partition_key_field="customerId", partition_key="cus_1"
                ),
                BatchOp("patch", id="ord_missing", patch=[PatchOp("incr", "paid", 1)]),
            ],
        )
    assert not is_duplicate(failure.value)
    with pytest.raises(NotFound):
        orders.read(processed_marker_id("billing", "evt_9"), "cus_1")
    # So the retry applies it.
    assert _handle_payment(orders, "evt_9") == "applied"


def test_markers_are_per_consumer(orders: Container) -> None:
    op = processed_marker("crm", "evt_1", partition_key_field="customerId", partition_key="cus_1")
    orders.batch("cus_1", [op])
    assert _handle_payment(orders, "evt_1") == "applied"


def test_marker_document_shape_and_safe_ids() -> None:
    op = processed_marker("billing", "m/1?#", partition_key_field="a.b", partition_key="p")
    assert op.kind == "create" and op.document is not None
    assert op.document["a"] == {"b": "p"}
    assert op.document["ttl"] == 14 * 86_400
    assert not any(c in op.document["id"] for c in "/\\?#")
    assert op.document["id"] == processed_marker_id("billing", "m/1?#")
    assert processed_marker_id("billing", "m/1?#") != processed_marker_id("billing", "m/2?#")
    plain = processed_marker("billing", "evt_1", partition_key_field="k", partition_key="p")
    assert plain.document is not None and plain.document["id"] == "processed:billing:evt_1"
    no_ttl = processed_marker(
        "b", "m", partition_key_field="k", partition_key="p", ttl_seconds=None
    )
    assert no_ttl.document is not None and "ttl" not in no_ttl.document


def test_is_duplicate_looks_at_the_marker_position(orders: Container) -> None:
    marker = processed_marker(
        "billing", "evt_1", partition_key_field="customerId", partition_key="cus_1"
    )
    orders.batch("cus_1", [marker])
    effect = BatchOp("patch", id="ord_1", patch=[PatchOp("incr", "paid", 1)])
    with pytest.raises(BatchFailed) as failure:
        orders.batch("cus_1", [effect, marker])
    assert is_duplicate(failure.value, marker_index=1)
    assert not is_duplicate(failure.value)


# --- the side-effect guard -----------------------------------------------------------------


def test_guard_states_new_in_progress_done(guard: SideEffectGuard) -> None:
    first = guard.begin("evt_1")
    assert first.state == "new" and first.key == "notify-email:evt_1"
    assert guard.begin("evt_1").state == "in_progress"
    guard.done("evt_1", {"providerId": "sg_42"})
    again = guard.begin("evt_1")
    assert again.state == "done"
    assert again.result == {"providerId": "sg_42"}
    assert again.key == first.key
    assert guard.begin("evt_2").state == "new"


def test_idempotency_key_is_stable_and_per_consumer(
    guard: SideEffectGuard, store: SqliteDocumentStore
) -> None:
    assert guard.idempotency_key("evt_1") == "notify-email:evt_1"
    assert guard.idempotency_key("evt_1") == guard.idempotency_key("evt_1")
    other = SideEffectGuard(store, "notify-sms")
    assert other.idempotency_key("evt_1") == "notify-sms:evt_1"
    # Separate partitions: another consumer's claim does not block this one.
    assert guard.begin("evt_1").state == "new"
    assert other.begin("evt_1").state == "new"


def test_failed_releases_the_claim(guard: SideEffectGuard) -> None:
    assert guard.begin("evt_1").state == "new"
    guard.failed("evt_1")
    assert guard.begin("evt_1").state == "new"
    guard.done("evt_1")
    guard.failed("evt_1")  # never undoes a done effect
    assert guard.begin("evt_1").state == "done"
    guard.failed("evt_unknown")  # nothing to release


def test_an_expired_lease_can_be_retaken_once(guard: SideEffectGuard, clock: ManualClock) -> None:
    assert guard.begin("evt_1").state == "new"
    clock.advance(minutes=4, seconds=59)
    assert guard.begin("evt_1").state == "in_progress"
    clock.advance(seconds=2)
    retaken = guard.begin("evt_1")
    assert retaken.state == "new" and retaken.attempt == 2
    assert retaken.key == "notify-email:evt_1"
    # The retaker holds a fresh lease.
    assert guard.begin("evt_1").state == "in_progress"


def test_concurrent_begins_have_one_winner(guard: SideEffectGuard) -> None:
    barrier = threading.Barrier(4)
    states: list[str] = []
    lock = threading.Lock()

    def claim() -> None:
        barrier.wait()
        state = guard.begin("evt_1").state
        with lock:
            states.append(state)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(states) == ["in_progress"] * 3 + ["new"]


def test_once_runs_the_block_once(guard: SideEffectGuard) -> None:
    sent: list[str] = []
    for _ in range(3):
        with guard.once("evt_1") as key:
            if key is not None:
                sent.append(key)
    assert sent == ["notify-email:evt_1"]
    assert guard.begin("evt_1").state == "done"


def test_once_releases_on_error_so_the_retry_runs(guard: SideEffectGuard) -> None:
    with pytest.raises(RuntimeError), guard.once("evt_1") as key:
        assert key is not None
        raise RuntimeError("partner said 503")
    with guard.once("evt_1") as key:
        assert key == "notify-email:evt_1"
    assert guard.begin("evt_1").state == "done"


def test_once_refuses_while_another_attempt_holds_the_lease(guard: SideEffectGuard) -> None:
    guard.begin("evt_1")
    ran = False
    with pytest.raises(SideEffectInProgress), guard.once("evt_1"):
        ran = True
    assert not ran


def test_guard_records_live_in_the_consumer_partition(
    guard: SideEffectGuard, store: SqliteDocumentStore
) -> None:
    guard.begin("evt/odd?id")
    guard.done("evt/odd?id", {"ok": True})
    page = store.container("processed").query(Query(), partition_key="notify-email")
    assert len(page.items) == 1
    record = page.items[0]
    assert record["kind"] == "side-effect" and record["state"] == "done"
    assert record["messageId"] == "evt/odd?id"
    assert record["ttl"] == 14 * 86_400
    assert guard.begin("evt/odd?id").result == {"ok": True}


def test_guard_rejects_bad_configuration(store: SqliteDocumentStore) -> None:
    with pytest.raises(ValueError):
        SideEffectGuard(store, "")
    with pytest.raises(ValueError):
        SideEffectGuard(store, "c", lease=timedelta(0))
