"""`Container.read_many`, on both adapters: point reads of many keys at once, in key order,
missing and expired documents left out, each document as `read` returns it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cloudcart.core.errors import NotFound
from cloudcart.core.ports.documents import MAX_READ_MANY_KEYS, DocumentStore
from tests.fakes.cosmos_server import CosmosFakeServer, parse_query


def test_found_documents_come_in_key_order_and_missing_ones_are_left_out(
    store: DocumentStore,
) -> None:
    carts = store.container("carts")
    for customer in ("c1", "c2", "c3"):
        for n in (1, 2):
            carts.create({"id": f"cart-{n}", "customerId": customer, "n": n})
    keys = [
        ("cart-2", "c3"),
        ("nope", "c1"),  # no such id
        ("cart-1", "c1"),
        ("cart-1", "c9"),  # no such partition
        ("cart-2", "c1"),
        ("cart-1", "c2"),
    ]
    found = carts.read_many(keys)
    assert [(d["id"], d["customerId"]) for d in found] == [
        ("cart-2", "c3"),
        ("cart-1", "c1"),
        ("cart-2", "c1"),
        ("cart-1", "c2"),
    ]


def test_each_document_is_what_read_returns(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create({"id": "a", "customerId": "c1", "lines": [{"sku": "x", "qty": 1}]})
    carts.create({"id": "b", "customerId": "c2", "nested": {"deep": [1, None, "z"]}})
    keys = [("b", "c2"), ("a", "c1")]
    assert carts.read_many(keys) == [carts.read(*key) for key in keys]
    # One key alone (the SDK then reads it by point read rather than by query).
    assert carts.read_many([("a", "c1")]) == [carts.read("a", "c1")]
    found = carts.read_many([("a", "c1")])[0]
    assert isinstance(found["_etag"], str) and isinstance(found["_ts"], int)


def test_a_key_given_twice_returns_its_document_once(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create({"id": "a", "customerId": "c1"})
    carts.create({"id": "b", "customerId": "c1"})
    found = carts.read_many([("b", "c1"), ("a", "c1"), ("b", "c1"), ("a", "c1")])
    assert [d["id"] for d in found] == ["b", "a"]


def test_one_id_in_several_partitions_is_read_per_partition(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create({"id": "same", "customerId": "c1", "who": 1})
    carts.create({"id": "same", "customerId": "c2", "who": 2})
    found = carts.read_many([("same", "c2"), ("same", "c3"), ("same", "c1")])
    assert [d["who"] for d in found] == [2, 1]


def test_keys_of_one_partition_and_of_many(store: DocumentStore) -> None:
    items = store.container("items")
    for n in range(40):
        items.create({"id": f"i{n:02d}", "categoryId": f"cat-{n % 8}", "n": n})
    # All in one partition (the SDK asks `pk = @pk AND id IN (...)`).
    one = [(f"i{n:02d}", "cat-3") for n in (35, 3, 11, 12)]
    assert [d["n"] for d in items.read_many(one)] == [35, 3, 11]
    # Spread over every partition, reversed.
    many = [(f"i{n:02d}", f"cat-{n % 8}") for n in reversed(range(40))]
    assert [d["n"] for d in items.read_many(many)] == list(reversed(range(40)))


def test_a_container_partitioned_by_id(store: DocumentStore) -> None:
    by_id = store.container("by_id")
    for sku in ("SKU-1", "SKU-2", "SKU-3"):
        by_id.create({"id": sku, "available": int(sku[-1])})
    found = by_id.read_many([("SKU-3", "SKU-3"), ("SKU-9", "SKU-9"), ("SKU-1", "SKU-1")])
    assert [(d["id"], d["available"]) for d in found] == [("SKU-3", 3), ("SKU-1", 1)]
    # An id under another partition key is another document: not found.
    assert by_id.read_many([("SKU-1", "SKU-2"), ("SKU-2", "SKU-1")]) == []


def test_expired_documents_are_left_out(store: DocumentStore) -> None:
    short = store.container("short_ttl")  # default 1 second
    short.create({"id": "default", "pk": "p"})
    short.create({"id": "forever", "pk": "p", "ttl": -1})
    short.create({"id": "other", "pk": "q", "ttl": -1})
    time.sleep(1.3)
    with pytest.raises(NotFound):
        short.read("default", "p")
    keys = [("default", "p"), ("other", "q"), ("forever", "p")]
    assert [d["id"] for d in short.read_many(keys)] == ["other", "forever"]


def test_no_keys_make_no_call(store: DocumentStore, cosmos_fake: CosmosFakeServer) -> None:
    carts = store.container("carts")
    requests = len(cosmos_fake.log)  # the embedded store never calls the fake at all
    assert carts.read_many([]) == []
    assert len(cosmos_fake.log) == requests


def test_at_most_the_limit_of_keys_per_call(store: DocumentStore) -> None:
    carts = store.container("carts")
    carts.create({"id": "cart-999", "customerId": "c999"})
    keys = [(f"cart-{n}", f"c{n}") for n in range(MAX_READ_MANY_KEYS)]
    assert [d["id"] for d in carts.read_many(keys)] == ["cart-999"]
    with pytest.raises(ValueError, match="at most 1000 keys"):
        carts.read_many([*keys, ("cart-x", "cx")])


def test_keys_must_be_pairs_of_strings(store: DocumentStore) -> None:
    carts = store.container("carts")
    with pytest.raises(ValueError, match="pair of strings"):
        carts.read_many([("cart-1", 1)])  # type: ignore[list-item]


def test_a_missing_container_is_not_found(bare_store: DocumentStore) -> None:
    with pytest.raises(NotFound):
        bare_store.container("carts").read_many([("a", "c1"), ("b", "c2")])


# --- the Cosmos fake's SQL: what the SDK's read many sends ----------------------------------


def test_the_fake_evaluates_or_in_and_parentheses_like_cosmos_sql() -> None:
    docs: list[dict[str, Any]] = [
        {"id": "a", "pk": "1"},
        {"id": "b", "pk": "2"},
        {"id": "c", "pk": 3},
    ]

    def matching(sql: str, **params: object) -> list[str]:
        where = parse_query(sql, {f"@{k}": v for k, v in params.items()}).where
        return [d["id"] for d in docs if where(d)]

    # AND binds tighter than OR.
    assert matching(
        "SELECT * FROM c WHERE c.id = @a OR c.id = @b AND c.pk = @x", a="a", b="b", x="9"
    ) == ["a"]
    assert matching(
        "SELECT * FROM c WHERE (c.id = @a OR c.id = @b) AND c.pk = @x", a="a", b="b", x="2"
    ) == ["b"]
    assert matching(
        "SELECT * FROM c WHERE ( ( c.id = @i0 AND c.pk = @p0 ) OR ( c.id = @i1 AND c.pk = @p1 ) )",
        i0="a",
        p0="1",
        i1="c",
        p1="3",
    ) == ["a"]  # "3" is a string: no document's pk 3 equals it
    # IN is typed equality with any of its values.
    assert matching("SELECT * FROM c WHERE c.pk IN (@a, @b)", a="2", b=3) == ["b", "c"]
    assert matching("SELECT * FROM c WHERE c.id IN ( @a )", a="c") == ["c"]
    assert matching("SELECT * FROM c WHERE c.missing IN (@a)", a="a") == []
    assert matching("SELECT * FROM c WHERE NOT (c.id = @a OR c.id = @b)", a="a", b="b") == ["c"]
