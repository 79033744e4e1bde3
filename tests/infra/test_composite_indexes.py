"""Composite indexes: every multi-field sort has one, and the Bicep and the adapter agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cloudcart.core.documents.cosmos import indexing_policy
from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.ports.documents import CompositeOrder, ContainerSpec
from tests.infra import drift
from tests.infra.bicep_model import BICEP_ROOT, load_project

REPO = Path(__file__).resolve().parents[2]
Index = tuple[tuple[str, CompositeOrder], ...]
NEWEST_FIRST: Index = (("/createdAt", "descending"), ("/id", "ascending"))


def _with_index(name: str) -> tuple[ContainerSpec, ...]:
    return tuple(
        dataclasses.replace(spec, composite_indexes=(NEWEST_FIRST,)) if spec.name == name else spec
        for spec in CONTAINERS
    )


def test_every_multi_field_sort_in_the_code_has_a_composite_index() -> None:
    sorts = drift.multi_field_sorts(REPO / "cloudcart")
    assert drift.unindexed_sorts(sorts, CONTAINERS) == []


def test_sort_scan_finds_multi_field_sorts_and_accepts_reversed_indexes(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "listing.py").write_text(
        "from cloudcart.core.ports.documents import Order, Query\n"
        "Q = Query(order_by=(Order('createdAt', descending=True), Order('id')))\n"
        "SINGLE = [Order('title')]\n",
        "utf-8",
    )
    sorts = drift.multi_field_sorts(package)
    assert sorts == [("pkg/listing.py:2", NEWEST_FIRST)]
    problems = drift.unindexed_sorts(sorts, CONTAINERS)
    assert len(problems) == 1 and problems[0].startswith("pkg/listing.py:2"), problems
    assert drift.unindexed_sorts(sorts, _with_index("orders")) == []
    reversed_index: Index = (("/createdAt", "ascending"), ("/id", "descending"))
    specs = tuple(
        dataclasses.replace(s, composite_indexes=(reversed_index,)) if s.name == "orders" else s
        for s in CONTAINERS
    )
    assert drift.unindexed_sorts(sorts, specs) == []


def test_container_check_compares_composite_indexes() -> None:
    registry = _with_index("orders")
    problems = drift.container_drift(load_project(), registry)
    assert len(problems) == 1 and problems[0].startswith("container 'orders' differs"), problems
    # The suggested entry, pasted into cosmos.bicep, parses and makes the check pass.
    entry = problems[0].split("; use ", 1)[1]
    text = (BICEP_ROOT / "modules/cosmos.bicep").read_text("utf-8")
    lines = [
        entry if line.strip().startswith("{ name: 'orders'") else line.rstrip("\n")
        for line in text.splitlines()
    ]
    edited = load_project(overrides={"modules/cosmos.bicep": "\n".join(lines) + "\n"})
    assert edited.files["modules/cosmos.bicep"].syntax_errors == []
    assert drift.container_drift(edited, registry) == []


def test_adapter_creates_containers_with_the_bicep_indexing_policy() -> None:
    deployed = {
        str(r.name): r.properties["resource"]["indexingPolicy"]
        for r in load_project().resources(drift.COSMOS_CONTAINER)
    }
    for spec in CONTAINERS:
        if spec.embedded_only:
            continue
        assert indexing_policy(spec) == deployed[spec.name], spec.name


def test_adapter_policy_carries_the_composite_indexes() -> None:
    (orders,) = [s for s in _with_index("orders") if s.name == "orders"]
    assert indexing_policy(orders)["compositeIndexes"] == [
        [{"path": "/createdAt", "order": "descending"}, {"path": "/id", "order": "ascending"}]
    ]
