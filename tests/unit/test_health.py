"""Liveness never touches an adapter; readiness checks each one and names the failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.errors import Unavailable
from cloudcart.core.settings import Settings


class _FailingStore:
    def check(self) -> None:
        raise Unavailable("cosmos.example.internal refused the connection")


class _ExplodingServices(Services):
    """Services whose adapters must not be touched (liveness) or fail their check."""

    touched: list[str]

    def __init__(self, settings: Settings, *, failing: str | None = None) -> None:
        super().__init__(settings)
        self.touched = []
        self.failing = failing

    def _use(self, port: str, real: Any) -> Any:
        self.touched.append(port)
        return _FailingStore() if port == self.failing else real

    @property
    def documents(self) -> Any:
        return self._use("documents", super().documents)

    @property
    def blobs(self) -> Any:
        return self._use("blobs", super().blobs)


def _client(tmp_path: Path, failing: str | None = None) -> tuple[TestClient, _ExplodingServices]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    services = _ExplodingServices(settings, failing=failing)
    app.state.services = services
    return TestClient(app), services


@pytest.fixture
def healthy(tmp_path: Path) -> Iterator[tuple[TestClient, _ExplodingServices]]:
    client, services = _client(tmp_path)
    services.documents.ensure_containers()
    services.touched.clear()
    yield client, services
    services.close()


def test_health_touches_no_adapter(tmp_path: Path) -> None:
    client, services = _client(tmp_path)
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert services.touched == []
    assert services.built() == {}


def test_ready_when_every_adapter_answers(healthy: tuple[TestClient, _ExplodingServices]) -> None:
    client, services = healthy
    response = client.get("/api/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["environment"] == "local"
    assert set(body["checks"]) == {"documents", "blobs", "identity"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["adapter"] == "embedded"
    assert set(services.touched) == {"documents", "blobs"}


def test_unready_names_the_failing_check_without_its_message(tmp_path: Path) -> None:
    client, services = _client(tmp_path, failing="documents")
    response = client.get("/api/ready")
    services.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"]["documents"] == {
        "status": "failed",
        "adapter": "embedded",
        "error": "Unavailable",
    }
    assert body["checks"]["blobs"]["status"] == "ok"
    assert "cosmos.example.internal" not in response.text


def test_probes_are_documented(healthy: tuple[TestClient, _ExplodingServices]) -> None:
    client, _ = healthy
    paths = client.get("/api/openapi.json").json()["paths"]
    ready = paths["/api/ready"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadyResponse")
    assert "503" in ready
    assert paths["/api/health"]["get"]["responses"]["200"]["content"]["application/json"]
