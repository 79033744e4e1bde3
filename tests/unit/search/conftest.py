from __future__ import annotations

from pathlib import Path

import pytest

from cloudcart.core.search.embedded import TantivySearchIndex
from tests.unit.search.catalog_fixture import search_documents


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> TantivySearchIndex:
    built = TantivySearchIndex(Path(tmp_path_factory.mktemp("search")) / "products")
    built.replace_all(search_documents())
    return built
