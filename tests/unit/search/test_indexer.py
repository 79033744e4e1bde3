"""The indexer: events through the embedded broker reach the handler function as real
`azure.functions.ServiceBusMessage`s and change what search returns; full rebuilds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudcart import composition
from cloudcart.catalog.search import indexer, indexer_functions
from cloudcart.composition import Services
from cloudcart.core.events import new_event
from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import TOPOLOGY
from cloudcart.core.ports.search import SearchQuery
from cloudcart.core.settings import Settings
from cloudcart.local.trigger_host import to_service_bus_message
from tests.unit.search.catalog_fixture import catalog


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = Settings(data_dir=tmp_path)
    broker = SqliteBroker(tmp_path / "broker.db", TOPOLOGY)
    built = Services(settings, adapters={"messages": broker})
    built.documents.ensure_containers()
    categories, products, inventory = catalog()
    for doc in categories + products:
        built.documents.container("catalog").upsert(doc)
    for doc in inventory:
        built.documents.container("inventory").upsert(doc)
    # The trigger function reaches the adapters through the process-wide Services.
    monkeypatch.setattr(composition, "_services", built)
    yield built
    monkeypatch.setattr(composition, "_services", None)
    built.close()


def deliver(services: Services, event_type: str, subject: str, data: dict[str, object]) -> None:
    """Publish like the outbox relay does, receive on the indexer's subscription, run the
    function, complete."""
    broker = services.messages
    assert isinstance(broker, SqliteBroker)
    broker.publish("events", [new_event(event_type, subject, data).to_message()])
    received = broker.receive("events", indexer_functions.SUBSCRIPTION)
    assert len(received) == 1
    indexer_functions.index_catalog_event(to_service_bus_message(received[0]))
    broker.complete(received[0].lock_token)


def titles(services: Services, text: str) -> list[str]:
    return [i["title"] for i in services.search.search(SearchQuery(text=text)).items]


def test_reindex_all_indexes_active_products(services):
    assert indexer.reindex_all(services) == 17  # 18 products, one draft
    assert titles(services, "oppo a92")[0] == "OPPO A92"


def test_product_events_upsert_and_archive(services):
    catalog_c = services.documents.container("catalog")
    product = catalog_c.read("oppo-a92", "oppo-a92")
    product["title"] = "OPPO A92 Aurora"
    catalog_c.upsert({k: v for k, v in product.items() if not k.startswith("_")})
    deliver(services, "product.created", "oppo-a92", {"productId": "oppo-a92"})
    assert titles(services, "aurora") == ["OPPO A92 Aurora"]

    product["status"] = "archived"
    catalog_c.upsert({k: v for k, v in product.items() if not k.startswith("_")})
    deliver(services, "product.archived", "oppo-a92", {"productId": "oppo-a92"})
    assert titles(services, "aurora") == []


def test_inventory_changed_updates_in_stock(services):
    indexer.reindex_all(services)
    in_stock = SearchQuery(text="pixel", in_stock=True)
    assert services.search.search(in_stock).total == 0
    stock = services.documents.container("inventory")
    stock.upsert(
        {"id": "PX8-128", "sku": "PX8-128", "productId": "pixel-8", "available": 4, "reserved": 0}
    )
    deliver(
        services,
        "inventory.changed",
        "PX8-128",
        {"sku": "PX8-128", "productId": "pixel-8", "available": 4},
    )
    assert services.search.search(in_stock).total == 1


def test_replayed_event_is_harmless_and_unrelated_events_are_ignored(services):
    deliver(services, "product.updated", "oneplus-11r", {"productId": "oneplus-11r"})
    deliver(services, "product.updated", "oneplus-11r", {"productId": "oneplus-11r"})
    assert titles(services, "oneplus 11r").count("OnePlus 11R") == 1
    assert indexer.handle_event(services, new_event("order.placed", "o1", {})) is None


def test_unknown_product_is_removed(services):
    services.search.upsert(
        [
            {
                "id": "ghost",
                "title": "Ghost phone",
                "brand": "X",
                "categoryId": "phones",
                "variants": "[]",
            }
        ]
    )
    assert titles(services, "ghost") == ["Ghost phone"]
    deliver(services, "product.updated", "ghost", {"productId": "ghost"})
    assert titles(services, "ghost") == []
