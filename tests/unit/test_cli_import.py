"""`cloudcart import products|orders FILE`: the bulk imports against the embedded store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cloudcart.catalog.models import CategoryIn
from cloudcart.catalog.service import CatalogService
from cloudcart.composition import Services
from cloudcart.core.ports.documents import Filter, Query
from cloudcart.core.settings import Settings
from cloudcart.local.cli import cli

PRODUCT = {
    "id": "prd_1",
    "title": "Acme One",
    "brand": "Acme",
    "categoryId": "phones",
    "variants": [{"sku": "PHN-1", "price": {"amount": 1999900, "currency": "INR"}}],
    "stock": {"PHN-1": 4},
}
ORDER = {
    "orderId": "H-1",
    "customerId": "alice",
    "placedAt": "2024-03-01T10:00:00Z",
    "lines": [{"sku": "PHN-1", "quantity": 1, "unitPrice": 1999900}],
}


def _file(tmp_path: Path, name: str, lines: list[Any]) -> Path:
    path = tmp_path / name
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def _store(data_dir: Path) -> Services:
    services = Services(Settings(data_dir=data_dir))
    services.documents.ensure_containers()
    return services


def test_products_then_orders(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = _store(data_dir)
    CatalogService(services.documents).create_category(CategoryIn(id="phones", name="Phones"))
    services.close()

    products = _file(tmp_path, "products.ndjson", [PRODUCT, {**PRODUCT, "id": "prd_2"}])
    result = CliRunner().invoke(
        cli, ["import", "products", str(products), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 1, result.output
    assert "imported 1, updated 0, unchanged 0, rejected 1" in result.stdout
    assert "line 2: variants: SKU 'PHN-1' already belongs to product 'prd_1'" in result.stdout

    orders = _file(tmp_path, "orders.ndjson", [ORDER])
    args = ["import", "orders", str(orders), "--data-dir", str(data_dir), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    # Log lines may precede it when an earlier test configured logging in this process.
    assert json.loads(result.stdout[result.stdout.index("{\n") :]) == {
        "imported": 1,
        "updated": 0,
        "rejected": [],
        "rejectedCount": 0,
    }
    again = CliRunner().invoke(cli, args[:-1])
    assert again.exit_code == 0
    assert "imported 0, updated 0, unchanged 1, rejected 0" in again.stdout

    services = _store(data_dir)
    stored = services.documents.container("orders").read("H-1", "alice")
    assert stored["lines"][0]["productId"] == "prd_1"
    assert CatalogService(services.documents).get_inventory("PHN-1").available == 4
    audit = services.documents.container("audit").query(
        Query(filters=[Filter("action", "eq", "import.orders")])
    )
    assert {r["actorId"].split(":")[0] for r in audit.items} == {"cli"}
    services.close()


def test_a_file_that_is_not_ndjson_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text(json.dumps([ORDER], indent=2), encoding="utf-8")
    data_dir = str(tmp_path / "data")
    result = CliRunner().invoke(cli, ["import", "orders", str(path), "--data-dir", data_dir])
    assert result.exit_code == 2
    assert "not NDJSON" in result.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import", "products", str(tmp_path / "nope.ndjson")])
    assert result.exit_code == 2


def test_import_has_help() -> None:
    for command in (["import", "--help"], ["import", "orders", "--help"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0 and "Usage" in result.output
