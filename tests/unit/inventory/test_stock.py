"""Stock per SKU (`cloudcart.inventory`) on a real embedded store: claims, moves, markers,
partner counts, concurrency, outbox events checked against docs/events, legacy documents."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from cloudcart.core.documents.embedded import SqliteDocumentStore
from cloudcart.core.ports.documents import Container, Document, Filter, Query
from cloudcart.inventory import (
    INVENTORY,
    INVENTORY_CHANGED,
    STOCK_OUTS_KEPT,
    STOCK_SHORTFALL,
    OutOfStock,
    PartnerCount,
    ReservationWithdrawn,
    SkuNotFound,
    StockLevel,
    all_levels,
    apply_partner_count,
    available_units,
    claim_sku,
    move_order_stock,
    record_partner_figure,
    release_reservation,
    release_sku,
    reserve_stock,
    set_stock,
    stock_level,
    stock_levels,
    take_over_orphan,
)

ROOT = Path(__file__).resolve().parents[3]
EVENTS_DOCS = ROOT / "docs" / "events"
PRODUCT = "prod_1"
SKU = "SKU-1"
OTHER = "SKU-2"


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    documents = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    documents.ensure_containers()
    yield documents
    documents.close()


def inventory(store: SqliteDocumentStore) -> Container:
    return store.container(INVENTORY)


def stocked(store: SqliteDocumentStore, sku: str, on_hand: int, product: str = PRODUCT) -> None:
    assert claim_sku(store, product, sku, on_hand=on_hand) is True


def level(store: SqliteDocumentStore, sku: str = SKU) -> StockLevel:
    found = stock_level(store, sku)
    assert found is not None, f"{sku} has no stock document"
    return found


def figures(store: SqliteDocumentStore, sku: str = SKU) -> tuple[int, int, int, int, int]:
    """(onHand, reserved, available, shortfall, sold)."""
    found = level(store, sku)
    return found.on_hand, found.reserved, found.available, found.shortfall, found.sold


def documents_in(store: SqliteDocumentStore, sku: str, *filters: Filter) -> list[Document]:
    found: list[Document] = []
    continuation: str | None = None
    while True:
        page = inventory(store).query(
            Query(filters=filters), partition_key=sku, continuation=continuation
        )
        found.extend(page.items)
        continuation = page.continuation
        if continuation is None:
            return found


def events(store: SqliteDocumentStore, sku: str = SKU, type_: str | None = None) -> list[Any]:
    """The outbox events of a SKU's partition, oldest first (optionally of one type)."""
    outbox = documents_in(store, sku, Filter("kind", "eq", "outbox"))
    outbox.sort(key=lambda d: (str(d["createdAt"]), int(d["position"])))
    return [d["event"] for d in outbox if type_ is None or d["event"]["type"] == type_]


def changed(store: SqliteDocumentStore, sku: str = SKU) -> list[dict[str, Any]]:
    """The `data` of every `inventory.changed` event of a SKU, oldest first."""
    return [e["data"] for e in events(store, sku, INVENTORY_CHANGED)]


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@cache
def validator(type_: str) -> Any:
    # Built as tests/unit/test_event_schemas.py does: the envelope schema is the registry.
    envelope = _load(EVENTS_DOCS / "event.schema.json")
    registry = jsonschema_rs.Registry([(envelope["$id"], envelope)])
    schema = _load(EVENTS_DOCS / f"{type_}.schema.json")
    return jsonschema_rs.validator_for(schema, registry=registry, validate_formats=True)


def schema_errors(event: Any) -> list[str]:
    return [e.message for e in validator(event["type"]).iter_errors(event)]


def count(sku: str, on_hand: int, sequence: int, event_id: str | None = None) -> PartnerCount:
    return PartnerCount(
        sku=sku,
        on_hand=on_hand,
        sequence=sequence,
        event_id=event_id or f"wms_{sku}_{sequence}",
        reason="cycle-count",
        occurred_at="2030-01-01T12:00:00.000000Z",
    )


def put_legacy(store: SqliteDocumentStore, **fields: Any) -> None:
    """A stock document as written before `onHand` was modelled."""
    inventory(store).create({"id": SKU, "sku": SKU, "productId": PRODUCT, **fields})


# --- claiming SKUs ------------------------------------------------------------------------


def test_claim_creates_an_empty_stock_document_for_the_product(
    store: SqliteDocumentStore,
) -> None:
    assert claim_sku(store, PRODUCT, SKU) is True
    found = level(store)
    assert (found.sku, found.product_id) == (SKU, PRODUCT)
    assert figures(store) == (0, 0, 0, 0, 0)
    assert found.received == 0
    assert found.updated_at is not None


def test_claim_by_the_product_that_holds_the_sku_returns_false(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 4)
    assert claim_sku(store, PRODUCT, SKU) is False
    # A repeated claim must not reset the stock to an empty document.
    assert figures(store) == (4, 0, 4, 0, 0)


def test_claim_of_a_sku_another_product_holds_returns_that_product(
    store: SqliteDocumentStore,
) -> None:
    assert claim_sku(store, "prod_a", SKU) is True
    assert claim_sku(store, "prod_b", SKU) == "prod_a"
    assert level(store).product_id == "prod_a"


def test_take_over_orphan_moves_the_claim_only_from_the_named_owner(
    store: SqliteDocumentStore,
) -> None:
    assert claim_sku(store, "prod_ghost", SKU) is True
    assert take_over_orphan(store, SKU, "prod_someone_else", "prod_b") is False
    assert level(store).product_id == "prod_ghost"
    assert take_over_orphan(store, SKU, "prod_ghost", "prod_b") is True
    assert level(store).product_id == "prod_b"
    assert claim_sku(store, "prod_b", SKU) is False


def test_release_sku_gives_back_an_unused_claim(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 3)
    assert release_sku(store, "prod_other", SKU) is False
    assert stock_level(store, SKU) is not None
    assert release_sku(store, PRODUCT, SKU) is True
    assert stock_level(store, SKU) is None
    assert release_sku(store, PRODUCT, SKU) is False
    assert claim_sku(store, "prod_other", SKU) is True


def test_release_sku_refuses_while_units_are_reserved(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 3)
    reserve_stock(store, "att_1", {SKU: 1})
    assert release_sku(store, PRODUCT, SKU) is False
    assert level(store).reserved == 1


def test_release_sku_refuses_once_units_were_sold(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 3)
    reserve_stock(store, "att_1", {SKU: 1})
    assert move_order_stock(store, "ord_1", "sell", [(SKU, 1)]) == 1
    assert (level(store).reserved, level(store).sold) == (0, 1)
    assert release_sku(store, PRODUCT, SKU) is False
    assert stock_level(store, SKU) is not None


# --- set_stock ----------------------------------------------------------------------------


def test_set_stock_by_available_keeps_reservations(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 3})
    result = set_stock(store, SKU, available=5)
    assert (result.on_hand, result.reserved, result.available) == (8, 3, 5)
    assert figures(store) == (8, 3, 5, 0, 0)


def test_set_stock_by_on_hand_leaves_what_reservations_do_not_hold(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 3})
    set_stock(store, SKU, on_hand=4)
    assert figures(store) == (4, 3, 1, 0, 0)


def test_set_stock_below_reservations_records_a_shortfall(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 3})
    set_stock(store, SKU, on_hand=1, correlation_id="req_9")
    assert figures(store) == (1, 3, 0, 2, 0)
    [alert] = events(store, SKU, STOCK_SHORTFALL)
    assert alert["correlationId"] == "req_9"
    assert alert["data"]["reason"] == "set"
    assert alert["data"]["reference"] == "admin"
    assert alert["data"]["shortfall"] == 2
    assert schema_errors(alert) == []


@pytest.mark.parametrize(
    "figure",
    [
        {"available": -1},
        {"on_hand": -1},
        {"available": True},
        {"on_hand": False},
        {"on_hand": 2.0},
        {"available": 1, "on_hand": 1},
        {},
    ],
    ids=[
        "negative-available",
        "negative-on-hand",
        "bool-true",
        "bool-false",
        "float",
        "both",
        "neither",
    ],
)
def test_set_stock_rejects_what_is_not_one_whole_figure(
    store: SqliteDocumentStore, figure: dict[str, Any]
) -> None:
    stocked(store, SKU, 6)
    before = len(events(store))
    with pytest.raises(ValueError):
        set_stock(store, SKU, **figure)
    assert figures(store) == (6, 0, 6, 0, 0)
    assert len(events(store)) == before


def test_set_stock_of_an_unknown_sku_raises_sku_not_found(store: SqliteDocumentStore) -> None:
    with pytest.raises(SkuNotFound):
        set_stock(store, "NO-SUCH", on_hand=3)
    assert stock_level(store, "NO-SUCH") is None
    assert events(store, "NO-SUCH") == []


def test_received_follows_every_move_so_on_hand_plus_sold_equals_received(
    store: SqliteDocumentStore,
) -> None:
    claim_sku(store, PRODUCT, SKU)
    steps: list[tuple[Callable[[], object], tuple[int, int, int]]] = [
        # (move, expected (onHand, sold, received))
        (lambda: set_stock(store, SKU, on_hand=10), (10, 0, 10)),
        (lambda: reserve_stock(store, "att_1", {SKU: 4}), (10, 0, 10)),
        (lambda: move_order_stock(store, "ord_1", "sell", [(SKU, 3)]), (7, 3, 10)),
        (lambda: set_stock(store, SKU, on_hand=2), (2, 3, 5)),
        (lambda: set_stock(store, SKU, available=6), (7, 3, 10)),  # 1 still reserved
        (lambda: move_order_stock(store, "ord_1", "restock", [(SKU, 1)]), (8, 2, 10)),
        (lambda: apply_partner_count(store, count(SKU, 20, 1)), (20, 2, 22)),
        (lambda: apply_partner_count(store, count(SKU, 0, 2)), (0, 2, 2)),
    ]
    for step, (on_hand, sold, received) in steps:
        step()
        found = level(store)
        assert (found.on_hand, found.sold, found.received) == (on_hand, sold, received)
        assert found.on_hand + found.sold == found.received


# --- reservations -------------------------------------------------------------------------


def test_reserve_moves_units_from_available_to_reserved(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    stocked(store, OTHER, 2)
    reserve_stock(store, "att_1", {SKU: 2, OTHER: 2})
    assert figures(store, SKU) == (5, 2, 3, 0, 0)
    assert figures(store, OTHER) == (2, 2, 0, 0, 0)
    assert available_units(store, [SKU, OTHER]) == {SKU: 3, OTHER: 0}


def test_reserve_more_than_available_raises_out_of_stock_and_changes_nothing(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 4})
    with pytest.raises(OutOfStock) as raised:
        reserve_stock(store, "att_2", {SKU: 2})
    assert (raised.value.sku, raised.value.requested) == (SKU, 2)
    assert figures(store) == (5, 4, 1, 0, 0)
    assert [d["move"] for d in changed(store)] == ["set", "reserve"]


def test_a_failed_multi_sku_reserve_gives_back_what_it_reserved(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 5)
    stocked(store, OTHER, 1)
    with pytest.raises(OutOfStock) as raised:
        reserve_stock(store, "att_1", {SKU: 2, OTHER: 3})
    assert raised.value.sku == OTHER
    assert figures(store, SKU) == (5, 0, 5, 0, 0)
    assert figures(store, OTHER) == (1, 0, 1, 0, 0)
    # The first SKU was reserved and then released, each move announced.
    assert [(d["move"], d["reserved"]) for d in changed(store, SKU)] == [
        ("set", 0),
        ("reserve", 2),
        ("release", 0),
    ]


def test_a_reserve_naming_an_unknown_sku_is_out_of_stock_and_compensated(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 5)
    with pytest.raises(OutOfStock) as raised:
        reserve_stock(store, "att_1", {SKU: 1, "NO-SUCH": 1})
    assert raised.value.sku == "NO-SUCH"
    assert figures(store) == (5, 0, 5, 0, 0)


def test_a_repeated_reserve_of_one_attempt_is_a_no_op(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 2})
    reserve_stock(store, "att_1", {SKU: 2})
    assert figures(store) == (5, 2, 3, 0, 0)
    assert [d["move"] for d in changed(store)] == ["set", "reserve"]


def test_a_repeated_reserve_of_an_attempt_that_took_the_last_units_is_a_no_op(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 2)
    reserve_stock(store, "att_1", {SKU: 2})
    # The attempt already holds both units: repeating it (a lost answer, a retry) must
    # neither fail nor give back the reservation it holds.
    reserve_stock(store, "att_1", {SKU: 2})
    assert figures(store) == (2, 2, 0, 0, 0)
    assert release_reservation(store, "att_1", [SKU]) == 1


def test_release_reservation_gives_back_exactly_once(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    stocked(store, OTHER, 3)
    reserve_stock(store, "att_1", {SKU: 2, OTHER: 3})
    reserve_stock(store, "att_2", {SKU: 1})
    assert release_reservation(store, "att_1", [SKU, OTHER, SKU]) == 2
    assert figures(store, SKU) == (5, 1, 4, 0, 0)
    assert figures(store, OTHER) == (3, 0, 3, 0, 0)
    assert release_reservation(store, "att_1", [SKU, OTHER]) == 0
    assert figures(store, SKU) == (5, 1, 4, 0, 0)
    assert figures(store, OTHER) == (3, 0, 3, 0, 0)
    assert [d["move"] for d in changed(store, SKU)].count("release") == 1


def test_a_released_attempt_can_no_longer_reserve(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 2})
    assert release_reservation(store, "att_1", [SKU]) == 1
    with pytest.raises(ReservationWithdrawn) as raised:
        reserve_stock(store, "att_1", {SKU: 2})
    assert raised.value.sku == SKU
    assert figures(store) == (5, 0, 5, 0, 0)


def test_releasing_an_attempt_before_it_reserves_blocks_its_reserve(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 5)
    # Recovery gave the attempt up while it was still running past its lease.
    assert release_reservation(store, "att_1", [SKU]) == 0
    with pytest.raises(ReservationWithdrawn):
        reserve_stock(store, "att_1", {SKU: 1})
    assert figures(store) == (5, 0, 5, 0, 0)
    assert [d["move"] for d in changed(store)] == ["set"]


# --- order moves --------------------------------------------------------------------------


def test_order_release_returns_reserved_units_once(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 3})
    assert move_order_stock(store, "ord_1", "release", [(SKU, 3)]) == 1
    assert figures(store) == (5, 0, 5, 0, 0)
    reserve_stock(store, "att_2", {SKU: 2})
    assert move_order_stock(store, "ord_1", "release", [(SKU, 3)]) == 0
    assert figures(store) == (5, 2, 3, 0, 0)


def test_order_sale_takes_reserved_units_off_hand_once(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 3})
    assert move_order_stock(store, "ord_1", "sell", [(SKU, 3)]) == 1
    # Available is unchanged: the sold units had already left it when reserved.
    assert figures(store) == (2, 0, 2, 0, 3)
    assert move_order_stock(store, "ord_1", "sell", [(SKU, 3)]) == 0
    assert figures(store) == (2, 0, 2, 0, 3)


def test_order_restock_puts_sold_units_back_on_hand_once(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 3})
    move_order_stock(store, "ord_1", "sell", [(SKU, 3)])
    assert move_order_stock(store, "ord_1", "restock", [(SKU, 2)]) == 1
    assert figures(store) == (4, 0, 4, 0, 1)
    assert move_order_stock(store, "ord_1", "restock", [(SKU, 2)]) == 0
    assert figures(store) == (4, 0, 4, 0, 1)


def test_order_moves_are_keyed_per_order_and_per_sku(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    stocked(store, OTHER, 5)
    reserve_stock(store, "att_1", {SKU: 2, OTHER: 1})
    reserve_stock(store, "att_2", {SKU: 1})
    lines = [(SKU, 2), (OTHER, 1), ("NO-SUCH", 4), (OTHER, 0)]
    assert move_order_stock(store, "ord_1", "sell", lines) == 2
    assert move_order_stock(store, "ord_2", "sell", [(SKU, 1)]) == 1
    assert figures(store, SKU) == (2, 0, 2, 0, 3)
    assert figures(store, OTHER) == (4, 0, 4, 0, 1)
    assert move_order_stock(store, "ord_1", "sell", lines) == 0
    assert figures(store, SKU) == (2, 0, 2, 0, 3)


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_buyers_never_get_more_than_is_available(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    buyers = 12
    start = threading.Barrier(buyers)
    outcomes: dict[int, str] = {}
    guard = threading.Lock()

    def buy(n: int) -> None:
        start.wait()
        try:
            reserve_stock(store, f"att_{n}", {SKU: 1})
            outcome = "reserved"
        except OutOfStock:
            outcome = "out-of-stock"
        except Exception as exc:  # recorded so the assertion shows it
            outcome = repr(exc)
        with guard:
            outcomes[n] = outcome

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(buyers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["out-of-stock"] * 7 + ["reserved"] * 5
    assert figures(store) == (5, 5, 0, 0, 0)
    moves = changed(store)
    assert [d["move"] for d in moves].count("reserve") == 5
    assert all(d["available"] >= 0 and 0 <= d["reserved"] <= 5 for d in moves)
    # Each winner holds exactly its unit: releasing every attempt gives back the 5.
    released = sum(release_reservation(store, f"att_{n}", [SKU]) for n in range(buyers))
    assert released == 5
    assert figures(store) == (5, 0, 5, 0, 0)


# --- the warehouse's counts ---------------------------------------------------------------


def test_a_partner_count_sets_on_hand(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 2})
    assert apply_partner_count(store, count(SKU, 12, 1, "wms_1")) == "applied"
    found = level(store)
    assert figures(store) == (12, 2, 10, 0, 0)
    assert (found.partner_on_hand, found.partner_sequence) == (12, 1)
    last = changed(store)[-1]
    assert (last["move"], last["quantity"], last["reference"]) == ("adjust", 12, "wms_1")
    assert (last["sequence"], last["reason"]) == (1, "cycle-count")


def test_a_repeated_partner_event_is_a_duplicate(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 5)
    assert apply_partner_count(store, count(SKU, 8, 1, "wms_1")) == "applied"
    # Same event id, even with a higher sequence: the same message delivered again.
    assert apply_partner_count(store, count(SKU, 3, 2, "wms_1")) == "duplicate"
    assert figures(store) == (8, 0, 8, 0, 0)
    assert level(store).partner_sequence == 1
    assert [d["move"] for d in changed(store)] == ["set", "adjust"]


@pytest.mark.parametrize("sequence", [4, 5])
def test_a_partner_count_with_an_older_or_equal_sequence_is_stale(
    store: SqliteDocumentStore, sequence: int
) -> None:
    stocked(store, SKU, 5)
    assert apply_partner_count(store, count(SKU, 8, 5)) == "applied"
    assert apply_partner_count(store, count(SKU, 1, sequence, "wms_late")) == "stale"
    assert figures(store) == (8, 0, 8, 0, 0)
    assert (level(store).partner_on_hand, level(store).partner_sequence) == (8, 5)
    assert [d["move"] for d in changed(store)] == ["set", "adjust"]


def test_a_count_below_reservations_records_a_shortfall_and_alerts(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 6})
    outcome = apply_partner_count(store, count(SKU, 4, 1, "wms_1"), correlation_id="msg_1")
    assert outcome == "applied"
    assert figures(store) == (4, 6, 0, 2, 0)
    assert level(store).shortfall == 2
    [alert] = events(store, SKU, STOCK_SHORTFALL)
    assert alert["subject"] == SKU
    assert alert["correlationId"] == "msg_1"
    assert alert["data"] == {
        "sku": SKU,
        "productId": PRODUCT,
        "onHand": 4,
        "reserved": 6,
        "shortfall": 2,
        "reason": "adjust",
        "reference": "wms_1",
    }
    assert schema_errors(alert) == []
    # Reservations are never touched by a count.
    assert changed(store)[-1]["reserved"] == 6


def test_a_shortfall_alerts_again_only_when_it_grows(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 6})
    apply_partner_count(store, count(SKU, 4, 1))
    apply_partner_count(store, count(SKU, 4, 2))
    assert len(events(store, SKU, STOCK_SHORTFALL)) == 1
    apply_partner_count(store, count(SKU, 1, 3))
    alerts = events(store, SKU, STOCK_SHORTFALL)
    assert [a["data"]["shortfall"] for a in alerts] == [2, 5]
    assert figures(store) == (1, 6, 0, 5, 0)


def test_a_later_count_restoring_stock_clears_the_shortfall(store: SqliteDocumentStore) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 6})
    apply_partner_count(store, count(SKU, 4, 1))
    assert level(store).shortfall == 2
    assert apply_partner_count(store, count(SKU, 9, 2)) == "applied"
    assert figures(store) == (9, 6, 3, 0, 0)
    assert inventory(store).read(SKU, SKU)["shortfall"] == 0
    assert len(events(store, SKU, STOCK_SHORTFALL)) == 1


def test_a_count_for_an_unknown_sku_is_reported_as_such(store: SqliteDocumentStore) -> None:
    assert apply_partner_count(store, count("NO-SUCH", 3, 1)) == "unknown-sku"
    assert stock_level(store, "NO-SUCH") is None
    assert events(store, "NO-SUCH") == []


def test_record_partner_figure_never_changes_the_shops_figures(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 5)
    reserve_stock(store, "att_1", {SKU: 2})
    before = len(events(store))
    record_partner_figure(store, SKU, 40, 7)
    found = level(store)
    assert figures(store) == (5, 2, 3, 0, 0)
    assert (found.partner_on_hand, found.partner_sequence) == (40, 7)
    record_partner_figure(store, SKU, 1, 6)
    record_partner_figure(store, SKU, 1, 7)
    found = level(store)
    assert (found.partner_on_hand, found.partner_sequence) == (40, 7)
    record_partner_figure(store, SKU, 38, 8)
    assert (level(store).partner_on_hand, level(store).partner_sequence) == (38, 8)
    assert figures(store) == (5, 2, 3, 0, 0)
    assert len(events(store)) == before
    record_partner_figure(store, "NO-SUCH", 1, 1)
    assert stock_level(store, "NO-SUCH") is None


# --- events -------------------------------------------------------------------------------


def _set(store: SqliteDocumentStore) -> None:
    set_stock(store, SKU, on_hand=9)


def _reserve(store: SqliteDocumentStore) -> None:
    reserve_stock(store, "att_9", {SKU: 2}, reference="chk_9")


def _release(store: SqliteDocumentStore) -> None:
    release_reservation(store, "att_1", [SKU])


def _order_release(store: SqliteDocumentStore) -> None:
    move_order_stock(store, "ord_1", "release", [(SKU, 3)])


def _sale(store: SqliteDocumentStore) -> None:
    move_order_stock(store, "ord_1", "sell", [(SKU, 3)])


def _return(store: SqliteDocumentStore) -> None:
    move_order_stock(store, "ord_1", "sell", [(SKU, 3)])
    move_order_stock(store, "ord_1", "restock", [(SKU, 1)])


def _adjust(store: SqliteDocumentStore) -> None:
    apply_partner_count(store, count(SKU, 1, 1, "wms_1"))


# Each starts from 10 on hand with 3 reserved by attempt att_1.
MOVES: dict[str, tuple[Callable[[SqliteDocumentStore], None], dict[str, Any]]] = {
    "set": (
        _set,
        {"move": "set", "quantity": 9, "reference": "admin", "onHand": 9, "reserved": 3},
    ),
    "reserve": (
        _reserve,
        {"move": "reserve", "quantity": 2, "reference": "chk_9", "onHand": 10, "reserved": 5},
    ),
    "release": (
        _release,
        {"move": "release", "quantity": 3, "reference": "att_1", "onHand": 10, "reserved": 0},
    ),
    "order-release": (
        _order_release,
        {
            "move": "release",
            "quantity": 3,
            "reference": "ord_1",
            "orderId": "ord_1",
            "onHand": 10,
            "reserved": 0,
        },
    ),
    "sale": (
        _sale,
        {
            "move": "sale",
            "quantity": 3,
            "reference": "ord_1",
            "orderId": "ord_1",
            "onHand": 7,
            "reserved": 0,
        },
    ),
    "return": (
        _return,
        {
            "move": "return",
            "quantity": 1,
            "reference": "ord_1",
            "orderId": "ord_1",
            "onHand": 8,
            "reserved": 0,
        },
    ),
    "adjust": (
        _adjust,
        {
            "move": "adjust",
            "quantity": 1,
            "reference": "wms_1",
            "sequence": 1,
            "reason": "cycle-count",
            "onHand": 1,
            "reserved": 3,
        },
    ),
}


@pytest.mark.parametrize("name", list(MOVES))
def test_every_move_writes_inventory_changed_matching_its_schema(
    store: SqliteDocumentStore, name: str
) -> None:
    stocked(store, SKU, 10)
    reserve_stock(store, "att_1", {SKU: 3})
    move, expected = MOVES[name]
    move(store)
    last = events(store, SKU, INVENTORY_CHANGED)[-1]
    assert last["type"] == INVENTORY_CHANGED
    assert last["subject"] == SKU
    found = level(store)
    assert last["data"] == {
        "sku": SKU,
        "productId": PRODUCT,
        "available": found.available,
        "availableBefore": 7,
        "outSince": found.out_since,
        "stockOut": None,
        **expected,
    }
    assert (found.out_since is None) == (found.available > 0)
    assert (found.on_hand, found.reserved) == (expected["onHand"], expected["reserved"])
    assert found.available == max(0, found.on_hand - found.reserved)
    every = events(store)
    assert every, "no outbox events"
    for event in every:
        assert schema_errors(event) == [], event


def test_outbox_documents_are_unrelayed_events_in_the_skus_partition(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 2)
    [document] = documents_in(store, SKU, Filter("kind", "eq", "outbox"))
    assert document["container"] == INVENTORY
    assert document["sku"] == SKU
    assert "relayedAt" not in document
    assert document["id"] == document["event"]["id"]


def test_the_schemas_would_catch_a_broken_payload(store: SqliteDocumentStore) -> None:
    # Guards the validator itself: a check that accepts anything proves nothing.
    stocked(store, SKU, 2)
    event = events(store, SKU, INVENTORY_CHANGED)[-1]
    assert schema_errors({**event, "data": {**event["data"], "available": -1}})
    assert schema_errors({**event, "data": {**event["data"], "move": "teleport"}})
    no_owner = {k: v for k, v in event["data"].items() if k != "productId"}
    assert schema_errors({**event, "data": no_owner})
    alert = {**event, "type": STOCK_SHORTFALL, "data": {"sku": SKU, "shortfall": 0}}
    assert schema_errors(alert)


# --- legacy documents ---------------------------------------------------------------------


def test_a_legacy_document_reads_with_on_hand_derived(store: SqliteDocumentStore) -> None:
    put_legacy(store, available=7, reserved=2, sold=1, received=10)
    found = level(store)
    assert figures(store) == (9, 2, 7, 0, 1)
    assert found.received == 10
    assert found.product_id == PRODUCT
    assert available_units(store, [SKU]) == {SKU: 7}


def test_a_reserve_on_a_legacy_document_writes_on_hand(store: SqliteDocumentStore) -> None:
    put_legacy(store, available=7, reserved=2, sold=1, received=10)
    reserve_stock(store, "att_1", {SKU: 3})
    stored = inventory(store).read(SKU, SKU)
    assert (stored["onHand"], stored["reserved"], stored["available"]) == (9, 5, 4)
    assert figures(store) == (9, 5, 4, 0, 1)


def test_a_sale_on_a_legacy_document_writes_on_hand(store: SqliteDocumentStore) -> None:
    put_legacy(store, available=7, reserved=2, sold=1, received=10)
    assert move_order_stock(store, "ord_1", "sell", [(SKU, 2)]) == 1
    stored = inventory(store).read(SKU, SKU)
    assert (stored["onHand"], stored["reserved"], stored["available"]) == (7, 0, 7)
    assert (stored["sold"], stored["received"]) == (3, 10)
    assert stored["onHand"] + stored["sold"] == stored["received"]


def test_setting_stock_on_a_legacy_document_without_received_keeps_the_invariant(
    store: SqliteDocumentStore,
) -> None:
    # Stored before `received` too: the units sold were received once as well.
    put_legacy(store, available=7, reserved=2, sold=1)
    assert level(store).received is None
    set_stock(store, SKU, on_hand=12)
    found = level(store)
    assert (found.on_hand, found.sold) == (12, 1)
    assert found.received == 13


# --- listing ------------------------------------------------------------------------------


def test_stock_levels_and_available_units_leave_out_unknown_skus(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 4)
    stocked(store, OTHER, 1)
    reserve_stock(store, "att_1", {OTHER: 1})
    levels = stock_levels(store, [SKU, "NO-SUCH", SKU, OTHER])
    assert list(levels) == [SKU, OTHER]
    assert (levels[SKU].available, levels[OTHER].available) == (4, 0)
    assert available_units(store, ["NO-SUCH", SKU, OTHER]) == {"NO-SUCH": 0, SKU: 4, OTHER: 0}


class _CountingStore:
    """The store, counting the calls made on its containers by operation name."""

    def __init__(self, inner: SqliteDocumentStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def container(self, name: str) -> Any:
        return _CountingContainer(self.inner.container(name), self.calls)

    def ensure_containers(self) -> None:
        self.inner.ensure_containers()

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        self.inner.close()


class _CountingContainer:
    def __init__(self, inner: Container, calls: list[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return target(*args, **kwargs)

        return counted


def test_stock_levels_read_every_sku_in_one_call_per_thousand(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 4)
    stocked(store, OTHER, 2)
    counting = _CountingStore(store)
    assert list(stock_levels(counting, [OTHER, "NO-SUCH", SKU])) == [OTHER, SKU]
    assert counting.calls == ["read_many"]

    counting.calls.clear()
    unknown = [f"NONE-{n}" for n in range(1500)]
    levels = stock_levels(counting, [SKU, *unknown[:999], OTHER, *unknown[999:]])
    assert list(levels) == [SKU, OTHER]  # one in each chunk of a thousand
    assert counting.calls == ["read_many", "read_many"]

    counting.calls.clear()
    assert available_units(counting, [SKU, "NO-SUCH"]) == {SKU: 4, "NO-SUCH": 0}
    assert counting.calls == ["read_many"]


def test_stock_levels_take_no_typed_document_for_stock(store: SqliteDocumentStore) -> None:
    inventory(store).create({"id": "SKU-9", "sku": "SKU-9", "type": "stock-move"})
    stocked(store, SKU, 1)
    assert stock_level(store, "SKU-9") is None
    assert list(stock_levels(store, ["SKU-9", SKU])) == [SKU]


def test_all_levels_lists_only_stock_documents(store: SqliteDocumentStore) -> None:
    # More SKUs than one query page, each partition also holding markers and events.
    skus = [f"SKU-{n:03d}" for n in range(105)]
    for sku in skus:
        assert claim_sku(store, PRODUCT, sku) is True
    for sku in skus[:3]:
        set_stock(store, sku, on_hand=5)
        reserve_stock(store, f"att_{sku}", {sku: 2})
        move_order_stock(store, f"ord_{sku}", "sell", [(sku, 1)])
        release_reservation(store, f"att_{sku}", [sku])
    release_reservation(store, "att_never", [skus[3]])
    apply_partner_count(store, count(skus[4], 2, 1))
    assert documents_in(store, skus[0], Filter("type", "exists", True))
    assert documents_in(store, skus[0], Filter("kind", "eq", "outbox"))

    listed = list(all_levels(store))
    assert sorted(found.sku for found in listed) == skus
    by_sku = {found.sku: found for found in listed}
    assert (by_sku[skus[0]].on_hand, by_sku[skus[0]].sold) == (4, 1)
    assert by_sku[skus[4]].on_hand == 2
    assert all(found.product_id == PRODUCT for found in listed)


def test_out_of_stock_periods_are_kept_on_the_stock_and_announced(
    store: SqliteDocumentStore,
) -> None:
    stocked(store, SKU, 1)
    assert level(store).out_since is None
    reserve_stock(store, "att_1", {SKU: 1})
    went_out = level(store).out_since
    assert went_out is not None
    assert changed(store)[-1]["outSince"] == went_out
    release_reservation(store, "att_1", [SKU])
    back = level(store)
    assert back.out_since is None
    [period] = back.stock_outs
    assert period["from"] == went_out and period["to"] == back.updated_at
    assert period["seconds"] >= 0
    assert changed(store)[-1]["stockOut"] == period
    assert changed(store)[-1]["outSince"] is None
    for attempt in range(STOCK_OUTS_KEPT + 3):
        reserve_stock(store, f"att_more_{attempt}", {SKU: 1})
        release_reservation(store, f"att_more_{attempt}", [SKU])
    kept = level(store).stock_outs
    assert len(kept) == STOCK_OUTS_KEPT
    assert [p["to"] for p in kept] == sorted((p["to"] for p in kept), reverse=True)
