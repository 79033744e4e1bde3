"""`GET /api/search` encodes its answer itself: it must be what its response model makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.catalog.search.routes import SearchResponse, router
from cloudcart.core.settings import Settings
from tests.unit.search.catalog_fixture import search_documents


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=Path(tmp_path_factory.mktemp("encoding"))))
    app.include_router(router)
    app.state.services.search.replace_all(search_documents())
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    "params",
    [
        {"q": "oppo a92"},
        {"q": "oneplus 64gb", "limit": 2},
        {"q": "charger"},
        {"q": "zzzz-nothing"},
        {"minPrice": 70000, "inStock": "true", "sort": "price_asc"},
    ],
)
def test_the_answer_is_exactly_what_the_response_model_serialises(
    client: TestClient, params: dict[str, object]
) -> None:
    answer = client.get("/api/search", params=params)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    modelled = SearchResponse.model_validate(body).model_dump(mode="json", by_alias=True)
    # Same keys in the same order (absent fields null), not only equal values.
    assert json.dumps(body) == json.dumps(modelled)
