"""What the OpenAPI document declares for the admin reports, imports and diagnostics, and
that the API refuses what the document forbids with the problem types it always used."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.core.settings import Settings
from cloudcart.identity.dev_provider import mint_token
from cloudcart.notifications.store import NotificationStore


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    app.state.services.documents.ensure_containers()
    token, _ = mint_token(settings, "ops", roles=("Admin",))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def _parameter(client: TestClient, path: str, name: str, method: str = "get") -> dict[str, Any]:
    operation = client.app.openapi()["paths"][path][method]  # type: ignore[attr-defined]
    found: dict[str, Any] = next(p for p in operation["parameters"] if p["name"] == name)
    return found


DATE_TIME_PARAMETERS = [
    ("/api/admin/analytics/summary", "from"),
    ("/api/admin/analytics/summary", "to"),
    ("/api/admin/analytics/products", "from"),
    ("/api/admin/analytics/search", "to"),
    ("/api/admin/analytics/fulfilment", "to"),
    ("/api/admin/ledger/entries", "from"),
    ("/api/admin/ledger/export", "to"),
    ("/api/admin/ledger/trial-balance", "asOf"),
]


@pytest.mark.parametrize(("path", "name"), DATE_TIME_PARAMETERS)
def test_date_time_parameters_take_rfc_3339_only(client: TestClient, path: str, name: str) -> None:
    schema = _parameter(client, path, name)["schema"]
    assert {"type": "string", "format": "date-time"} in schema["anyOf"]
    # Unix seconds, a bare date and a time without offset were read as datetimes before.
    for value in ("0.5", "1700000000", "2030-01-01", "2030-01-01T00:00:00", "soon"):
        r = client.get(path, params={name: value})
        assert r.status_code == 422, (value, r.text)
        body = r.json()
        assert body["type"].endswith("/validation-error")
        assert body["errors"][0]["location"] == f"query.{name}"
    # A moment inside the default range of each report (which ends now).
    moment = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5.5)))
    ok = client.get(path, params={name: moment.isoformat()})
    assert ok.status_code == 200, ok.text
    lower = moment.astimezone(UTC).strftime("%Y-%m-%dt%H:%M:%S.5z")
    assert client.get(path, params={name: lower}).status_code == 200


def test_an_invalid_range_keeps_its_problem(client: TestClient) -> None:
    r = client.get(
        "/api/admin/analytics/summary",
        params={"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/invalid-range")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/api/admin/ledger/entries", "invalid-ledger-query"),
        ("/api/admin/notifications", "bad-cursor"),
        ("/api/me/notifications", "bad-cursor"),
    ],
)
def test_cursors_are_declared_base64url(client: TestClient, path: str, problem: str) -> None:
    schema = _parameter(client, path, "cursor")["schema"]
    pattern = re.compile(schema["pattern"])
    assert pattern.search("eyJjIjoieCJ9") and not pattern.search("eyJj!IjoieCJ9")
    # Outside the alphabet (which base64 decoding would silently skip), forged, or empty:
    # the route's own 400, as before.
    for cursor in ("eyJj!IjoieCJ9", "eyJjIjoieCJ9", "zzz", ""):
        r = client.get(path, params={"cursor": cursor})
        assert r.status_code == 400, (cursor, r.text)
        assert r.json()["type"].endswith(f"/{problem}")


@pytest.mark.parametrize("value", [False, True, "5", "0"])
def test_a_ping_takes_json_integers_only(client: TestClient, value: object) -> None:
    r = client.post("/api/admin/diagnostics/pings", json={"holdMs": value})
    assert r.status_code == 422 and r.json()["type"].endswith("/validation-error")
    r = client.post("/api/admin/diagnostics/pings", json={"failAttempts": value})
    assert r.status_code == 422


def test_a_ping_takes_integers(client: TestClient) -> None:
    r = client.post("/api/admin/diagnostics/pings", json={"holdMs": 5, "failAttempts": 1.0})
    assert r.status_code == 201 and r.json()["holdMs"] == 5 and r.json()["failAttempts"] == 1
    assert client.post("/api/admin/diagnostics/pings").status_code == 201


@pytest.mark.parametrize("kind", ["products", "orders"])
def test_an_import_body_is_optional_and_empty_imports_nothing(
    client: TestClient, kind: str
) -> None:
    path = f"/api/admin/import/{kind}"
    body = client.app.openapi()["paths"][path]["post"]["requestBody"]  # type: ignore[attr-defined]
    assert body["required"] is False
    r = client.post(path)
    assert r.status_code == 200
    assert r.json() == {"imported": 0, "updated": 0, "rejected": [], "rejectedCount": 0}
    bad = client.post(path, content=b"not json\n", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/not-ndjson")


def test_feed_cursors_page_through_the_feed(client: TestClient) -> None:
    store = NotificationStore(client.app.state.services.documents)  # type: ignore[attr-defined]
    for n in range(3):
        store.create_or_get(
            {
                "id": f"ntf_{n}",
                "kind": "notification",
                "customerId": "ops",
                "channel": "inApp",
                "template": "order-paid",
                "createdAt": f"2030-01-0{n + 1}T00:00:00Z",
            }
        )
    pattern = re.compile(_parameter(client, "/api/me/notifications", "cursor")["schema"]["pattern"])
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(3):
        page = client.get("/api/me/notifications", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["cursor"]
        assert cursor is None or pattern.search(cursor)
        params["cursor"] = cursor
    assert seen == ["ntf_2", "ntf_1", "ntf_0"]
