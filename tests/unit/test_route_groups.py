"""Routes mounted on first use (`create_app(lazy_routes=True)`, what the Functions host
runs) behave exactly as routes mounted at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.api.route_groups import RouteGroups, route_paths, routes_outside_prefixes
from cloudcart.core.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def lazy(settings: Settings) -> Iterator[FastAPI]:
    yield create_app(settings, lazy_routes=True)


def groups_of(app: FastAPI) -> RouteGroups:
    groups = app.state.route_groups
    assert isinstance(groups, RouteGroups)
    return groups


def routes_of(app: FastAPI) -> list[tuple[str, tuple[str, ...]]]:
    return route_paths(app.routes)


def test_every_route_starts_with_a_prefix_of_its_group(lazy: FastAPI) -> None:
    assert routes_outside_prefixes(groups_of(lazy)) == []
    assert len(route_paths(lazy.routes)) > 100


def test_the_first_request_mounts_only_what_it_needs(lazy: FastAPI) -> None:
    groups = groups_of(lazy)
    assert groups.mounted == set()
    with TestClient(lazy) as client:
        assert client.get("/api/health").status_code == 200
        assert groups.mounted == {"health"}
        assert client.get("/api/catalog/products").status_code == 200
        assert groups.mounted == {"health", "catalog"}
        # Three areas have routes under a product: all three are mounted before routing.
        also = client.get("/api/catalog/products/nothing-here/also-bought")
        assert also.status_code == 200
        assert groups.mounted == {"health", "catalog", "insights", "marketing"}


def test_the_lazy_app_documents_and_routes_exactly_like_the_eager_one(
    lazy: FastAPI, settings: Settings
) -> None:
    eager = create_app(settings)
    with TestClient(lazy) as client:
        # The document is whole even when it is the first thing asked for.
        document = client.get("/api/openapi.json").json()
    assert document == eager.openapi()
    assert routes_of(lazy) == routes_of(eager)


def test_unknown_paths_and_methods_answer_as_with_every_route_mounted(
    lazy: FastAPI, settings: Settings
) -> None:
    with TestClient(lazy) as client:
        missing = client.get("/api/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith(PROBLEM)
        assert groups_of(lazy).mounted == {group.name for group in groups_of(lazy).groups}
    with TestClient(create_app(settings, lazy_routes=True)) as client:
        wrong = client.put("/api/catalog/products")
        assert wrong.status_code == 405
        assert "GET" in wrong.headers.get("allow", "")
