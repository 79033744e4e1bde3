"""Conditional patches and transactional batches, on both adapters."""

from __future__ import annotations

import pytest

from cloudcart.core.errors import BatchFailed, Conflict, NotFound, PreconditionFailed
from cloudcart.core.ports.documents import BatchOp, DocumentStore, Filter, PatchOp, bulk


def _reserve(qty: int) -> tuple[list[PatchOp], list[Filter]]:
    return [PatchOp("incr", "available", -qty), PatchOp("incr", "reserved", qty)], [
        Filter("available", "ge", qty)
    ]


def test_patch_reserves_stock_only_while_available(store: DocumentStore) -> None:
    inventory = store.container("inventory")
    inventory.create({"id": "sku-1", "sku": "sku-1", "available": 5, "reserved": 0})

    ops, condition = _reserve(3)
    after = inventory.patch("sku-1", "sku-1", ops, condition=condition)
    assert (after["available"], after["reserved"]) == (2, 3)

    before = inventory.read("sku-1", "sku-1")
    with pytest.raises(PreconditionFailed):
        inventory.patch("sku-1", "sku-1", ops, condition=condition)
    unchanged = inventory.read("sku-1", "sku-1")
    assert (unchanged["available"], unchanged["reserved"]) == (2, 3)
    assert unchanged["_etag"] == before["_etag"]

    ops, condition = _reserve(2)
    assert inventory.patch("sku-1", "sku-1", ops, condition=condition)["available"] == 0


def test_patch_operations_on_dotted_paths(store: DocumentStore) -> None:
    customers = store.container("customers")
    customers.create(
        {
            "id": "c1",
            "customerId": "c1",
            "profile": {"name": "Ann", "visits": 1},
            "old": True,
            "tags": ["a"],
        }
    )
    patched = customers.patch(
        "c1",
        "c1",
        [
            PatchOp("set", "profile.email", "ann@example.org"),
            PatchOp("replace", "profile.name", "Anne"),
            PatchOp("incr", "profile.visits", 2),
            PatchOp("remove", "old"),
            PatchOp("add", "tags.-", "b"),
        ],
    )
    assert patched["profile"] == {"name": "Anne", "visits": 3, "email": "ann@example.org"}
    assert "old" not in patched
    assert patched["tags"] == ["a", "b"]
    assert customers.read("c1", "c1")["profile"]["visits"] == 3


def test_patch_if_match_and_missing_document(store: DocumentStore) -> None:
    customers = store.container("customers")
    first = customers.create({"id": "c1", "customerId": "c1", "n": 0})
    customers.patch("c1", "c1", [PatchOp("set", "n", 1)], if_match=first["_etag"])
    with pytest.raises(PreconditionFailed):
        customers.patch("c1", "c1", [PatchOp("set", "n", 2)], if_match=first["_etag"])
    with pytest.raises(NotFound):
        customers.patch("nope", "c1", [PatchOp("set", "n", 1)])
    assert customers.read("c1", "c1")["n"] == 1


def test_batch_applies_every_operation(store: DocumentStore) -> None:
    orders = store.container("orders")
    existing = orders.create({"id": "old", "customerId": "c1", "n": 0})
    orders.create({"id": "gone", "customerId": "c1"})
    results = orders.batch(
        "c1",
        [
            BatchOp("create", document={"id": "order-1", "customerId": "c1", "total": 10}),
            BatchOp("upsert", document={"id": "idem-1", "customerId": "c1", "order": "order-1"}),
            BatchOp("replace", document={**existing, "n": 1}, if_match=existing["_etag"]),
            BatchOp("patch", id="order-1", patch=[PatchOp("incr", "total", 5)]),
            BatchOp("delete", id="gone"),
            BatchOp("read", id="order-1"),
        ],
    )
    assert len(results) == 6
    assert results[0]["total"] == 10
    assert results[3]["total"] == 15
    assert results[4] == {}
    assert results[5]["total"] == 15
    assert orders.read("old", "c1")["n"] == 1
    assert orders.read("idem-1", "c1")["order"] == "order-1"
    with pytest.raises(NotFound):
        orders.read("gone", "c1")


def test_batch_is_all_or_nothing(store: DocumentStore) -> None:
    orders = store.container("orders")
    orders.create({"id": "idem-1", "customerId": "c1"})
    with pytest.raises(BatchFailed) as failed:
        orders.batch(
            "c1",
            [
                BatchOp("create", document={"id": "order-1", "customerId": "c1"}),
                BatchOp("upsert", document={"id": "event-1", "customerId": "c1"}),
                BatchOp("create", document={"id": "idem-1", "customerId": "c1"}),
            ],
        )
    assert failed.value.index == 2
    assert isinstance(failed.value.cause, Conflict)
    for doc_id in ("order-1", "event-1"):
        with pytest.raises(NotFound):
            orders.read(doc_id, "c1")


def test_batch_failing_patch_condition_rolls_back(store: DocumentStore) -> None:
    inventory = store.container("inventory")
    inventory.create({"id": "sku-1", "sku": "sku-1", "available": 1})
    with pytest.raises(BatchFailed) as failed:
        inventory.batch(
            "sku-1",
            [
                BatchOp("patch", id="sku-1", patch=[PatchOp("incr", "available", -1)]),
                BatchOp(
                    "patch",
                    id="sku-1",
                    patch=[PatchOp("incr", "available", -1)],
                    condition=[Filter("available", "ge", 1)],
                ),
            ],
        )
    assert failed.value.index == 1
    assert isinstance(failed.value.cause, PreconditionFailed)
    assert inventory.read("sku-1", "sku-1")["available"] == 1


def test_batch_limits(store: DocumentStore) -> None:
    orders = store.container("orders")
    too_many = [BatchOp("create", document={"id": f"o{i}", "customerId": "c1"}) for i in range(101)]
    with pytest.raises(ValueError, match="100"):
        orders.batch("c1", too_many)
    with pytest.raises(ValueError, match="partition"):
        orders.batch("c1", [BatchOp("create", document={"id": "x", "customerId": "c2"})])
    assert orders.batch("c1", too_many[:100])[99]["id"] == "o99"


def test_batches_inside_bulk_stay_all_or_nothing_each(store: DocumentStore) -> None:
    orders = store.container("orders")
    orders.create({"id": "taken", "customerId": "c2"})
    with bulk(store):
        orders.batch("c1", [BatchOp("create", document={"id": "a", "customerId": "c1"})])
        with pytest.raises(BatchFailed):
            orders.batch(
                "c2",
                [
                    BatchOp("create", document={"id": "b", "customerId": "c2"}),
                    BatchOp("create", document={"id": "taken", "customerId": "c2"}),
                ],
            )
        # The block's own writes are visible to its reads.
        assert orders.read("a", "c1")["id"] == "a"
        orders.batch("c3", [BatchOp("create", document={"id": "c", "customerId": "c3"})])
    assert orders.read("a", "c1")["id"] == "a"
    assert orders.read("c", "c3")["id"] == "c"
    with pytest.raises(NotFound):
        orders.read("b", "c2")
