"""The service's limits, refused the same way by both adapters (`ValueError`, nothing
written): 2 MB per document and per batch, 10 operations per patch, no '/', '\\', '?' or
'#' in an id; and a multi-field ORDER BY leaves out documents lacking one of its fields."""

from __future__ import annotations

from typing import Any

import pytest

from cloudcart.core.errors import NotFound
from cloudcart.core.ports.documents import BatchOp, DocumentStore, Order, PatchOp, Query

MB = 1024 * 1024


def _padded(doc_id: str, size: int, **fields: Any) -> dict[str, Any]:
    return {"id": doc_id, "customerId": "c1", **fields, "pad": "x" * size}


def test_a_document_over_2_mb_is_refused(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create(_padded("fits", 2 * MB - 100))
    with pytest.raises(ValueError, match="too large"):
        carts.create(_padded("big", 2 * MB))
    with pytest.raises(ValueError, match="too large"):
        carts.upsert(_padded("big", 2 * MB))
    with pytest.raises(ValueError, match="too large"):
        carts.replace(_padded("fits", 2 * MB))
    with pytest.raises(NotFound):
        carts.read("big", "c1")
    assert len(carts.read("fits", "c1")["pad"]) == 2 * MB - 100


def test_a_patch_that_grows_a_document_past_2_mb_is_refused(store: DocumentStore) -> None:
    carts = store.container("carts")
    before = carts.create(_padded("cart", MB + MB // 2))
    with pytest.raises(ValueError, match="too large"):
        carts.patch("cart", "c1", [PatchOp("set", "more", "y" * MB)])
    assert carts.read("cart", "c1")["_etag"] == before["_etag"]


def test_a_batch_over_2_mb_is_refused_and_nothing_is_written(store: DocumentStore) -> None:
    orders = store.container("orders")
    operations = [
        BatchOp("create", document=_padded(f"o{i}", 800 * 1024, type="order")) for i in range(3)
    ]
    with pytest.raises(ValueError, match="too large"):
        orders.batch("c1", operations)
    for i in range(3):
        with pytest.raises(NotFound):
            orders.read(f"o{i}", "c1")
    assert len(orders.batch("c1", operations[:2])) == 2


def test_a_patch_holds_at_most_10_operations(store: DocumentStore) -> None:
    customers = store.container("customers")
    customers.create({"id": "c1", "customerId": "c1"})
    eleven = [PatchOp("set", f"f{i}", i) for i in range(11)]
    with pytest.raises(ValueError, match="10"):
        customers.patch("c1", "c1", eleven)
    with pytest.raises(ValueError, match="10"):
        customers.batch("c1", [BatchOp("patch", id="c1", patch=eleven)])
    assert "f0" not in customers.read("c1", "c1")
    patched = customers.patch("c1", "c1", eleven[:10])
    assert patched["f9"] == 9


@pytest.mark.parametrize("character", ["/", "\\", "?", "#"])
def test_ids_with_a_forbidden_character_are_refused(store: DocumentStore, character: str) -> None:
    carts = store.container("carts")
    doc = {"id": f"a{character}b", "customerId": "c1"}
    with pytest.raises(ValueError, match="must not contain"):
        carts.create(doc)
    with pytest.raises(ValueError, match="must not contain"):
        carts.upsert(doc)
    with pytest.raises(ValueError, match="must not contain"):
        carts.batch("c1", [BatchOp("create", document=doc)])
    assert carts.query(Query(), partition_key="c1").items == []


def test_a_multi_field_order_by_leaves_out_documents_lacking_a_field(
    store: DocumentStore,
) -> None:
    items = store.container("items")
    for doc in (
        {"id": "both", "a": 1, "b": 2},
        {"id": "no-b", "a": 1},
        {"id": "no-a", "b": 1},
        {"id": "first", "a": 0, "b": 5},
        {"id": "null-b", "a": 2, "b": None},
    ):
        items.create({**doc, "categoryId": "x"})

    def ids(order_by: list[Order]) -> list[str]:
        return [d["id"] for d in items.query(Query(order_by=order_by), partition_key="x").items]

    # A JSON null is a value (it sorts lowest); only a missing field drops the document.
    assert ids([Order("a"), Order("b")]) == ["first", "both", "null-b"]
    # One field: every document, those lacking it first.
    single = ids([Order("a")])
    assert single[0] == "no-a" and set(single) == {"both", "no-b", "no-a", "first", "null-b"}
