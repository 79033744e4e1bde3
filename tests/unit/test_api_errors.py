"""The error model: every failure is an RFC 9457 problem, with a correlation id."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from cloudcart.api.app import create_app
from cloudcart.api.problems import Problem
from cloudcart.core.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from cloudcart.core.settings import Settings

PROBLEM = "application/problem+json"
SECRET_TEXT = "db password is hunter2"


class Item(BaseModel):
    name: str
    qty: int


def _app(tmp_path: Path) -> FastAPI:
    app = create_app(Settings(data_dir=tmp_path / "data"))

    # Test-only routes, added after the factory like any router would be.
    @app.get("/api/test/boom")
    def boom() -> None:
        raise RuntimeError(SECRET_TEXT)

    @app.post("/api/test/items")
    def create_item(item: Item) -> Item:
        return item

    @app.get("/api/test/problem")
    def problem() -> None:
        raise Problem(403, "Forbidden", "Admins only.", type_="forbidden")

    errors = {
        "not-found": NotFound("orders/o1 in partition c1"),
        "conflict": Conflict("id o1 exists"),
        "precondition": PreconditionFailed("etag mismatch"),
        "unavailable": Unavailable("cosmos at 10.0.0.1 unreachable"),
    }

    @app.get("/api/test/domain/{kind}")
    def domain(kind: str) -> None:
        raise errors[kind]

    return app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path)) as test_client:
        yield test_client


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/does-not-exist"
    assert body["correlationId"] == response.headers["x-correlation-id"]


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/api/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize("lazy", [False, True])
def test_a_405_allows_every_method_of_the_path(tmp_path: Path, lazy: bool) -> None:
    # Several routes serve /api/me/addresses/{addressId}; each names only its own method.
    app = create_app(Settings(data_dir=tmp_path / "data"), lazy_routes=lazy)
    with TestClient(app) as anyone:
        response = anyone.post("/api/me/addresses/addr_1")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"


def test_validation_error_is_a_422_problem_listing_errors(client: TestClient) -> None:
    huge = "x" * 100_000
    response = client.post("/api/test/items", json={"name": huge, "qty": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 422
    assert "body.qty" in body["detail"]
    assert body["errors"] == [
        {
            "location": "body.qty",
            "message": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]
    # The bad input is not echoed back.
    assert huge not in response.text
    assert len(response.content) < 2_000


def test_missing_body_is_a_422_problem(client: TestClient) -> None:
    response = client.post("/api/test/items")
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "body"


def test_unexpected_error_is_a_500_problem_without_internals(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/test/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["title"] == "Internal Server Error"
    assert body["detail"] == (
        "An unexpected error occurred. Quote the correlation id when reporting it."
    )
    assert SECRET_TEXT not in response.text
    assert "Traceback" not in response.text
    cid = body["correlationId"]
    assert cid and response.headers["x-correlation-id"] == cid
    # The operator finds the stack trace by the id the client quotes.
    logged = [r for r in caplog.records if getattr(r, "correlationId", None) == cid]
    assert logged, "no log record carries the correlation id"
    assert any(r.exc_info and SECRET_TEXT in str(r.exc_info[1]) for r in logged)


def test_json_log_line_carries_correlation_id_and_exception(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    response = client.get("/api/test/boom", headers={"x-correlation-id": "trace-me-42"})
    assert response.status_code == 500
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    errors = [d for d in lines if d["level"] == "ERROR"]
    assert errors and errors[0]["correlationId"] == "trace-me-42"
    assert "RuntimeError" in errors[0]["exception"]
    assert {"time", "logger", "message"} <= set(errors[0])


def test_incoming_correlation_id_is_echoed(client: TestClient) -> None:
    response = client.get("/api/health", headers={"x-correlation-id": "abc-123-XYZ"})
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "abc-123-XYZ"


@pytest.mark.parametrize(
    "bad", ["a" * 65, "has space", "semi;colon", "caf\u00e9".encode("latin-1"), ""]
)
def test_invalid_correlation_id_is_replaced(client: TestClient, bad: str | bytes) -> None:
    response = client.get("/api/health", headers={"x-correlation-id": bad})
    echoed = response.headers["x-correlation-id"]
    assert echoed != bad
    assert 0 < len(echoed) <= 64


def test_generated_correlation_ids_differ(client: TestClient) -> None:
    first = client.get("/api/health").headers["x-correlation-id"]
    second = client.get("/api/health").headers["x-correlation-id"]
    assert first != second


def test_raised_problem_keeps_its_status_and_type(client: TestClient) -> None:
    response = client.get("/api/test/problem")
    assert response.status_code == 403
    body = response.json()
    assert body["type"] == "https://cloudcart.dev/problems/forbidden"
    assert body["detail"] == "Admins only."


@pytest.mark.parametrize(
    ("kind", "status"),
    [("not-found", 404), ("conflict", 409), ("precondition", 412), ("unavailable", 503)],
)
def test_port_errors_map_to_problems(client: TestClient, kind: str, status: int) -> None:
    response = client.get(f"/api/test/domain/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    # Adapter messages (ids, hosts) stay in the logs.
    for leaked in ("o1", "10.0.0.1", "etag mismatch"):
        assert leaked not in response.json().get("detail", "")
    if status == 503:
        assert int(response.headers["retry-after"]) > 0


def test_problem_responses_are_declared_in_openapi(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    assert "ProblemDocument" in schema["components"]["schemas"]
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            for status in ("422", "500"):
                content = operation["responses"][status]["content"]
                assert list(content) == [PROBLEM]


def test_a_catalogued_problem_takes_its_status_and_title_from_the_catalogue() -> None:
    problem = Problem.of("bad-cursor", "the cursor is not one this API returned")
    assert problem.to_dict() == {
        "type": "https://cloudcart.dev/problems/bad-cursor",
        "title": "Bad Request",
        "status": 400,
        "detail": "the cursor is not one this API returned",
    }
    assert Problem.of("invalid-webhook-signature", status=400).status == 400
    with pytest.raises(ValueError, match="not answered with 500"):
        Problem.of("invalid-webhook-signature", status=500)
    with pytest.raises(KeyError):
        Problem.of("no-such-problem")
