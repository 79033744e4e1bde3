"""Local simulators of the partners: a fulfilment centre and a warehouse management system.

Each speaks the partner API of docs/partners/api.md on its own loopback port, keeps its
state in SQLite under `<data_dir>/partners/`, and sends the partner's inbound messages
(`cloudcart.integrations.partners.messages`) through a `send(queue, body, message_id)`
callable; `publisher_sender(publisher)` makes one from Cloudcart's messages port::

    send = publisher_sender(services.messages)
    fulfilment = FulfilmentSimulator(data_dir, send, "fulfilment-updates").start()
    warehouse = WarehouseSimulator(data_dir, send, "inventory-updates").start()
    ...  # FULFILMENT_PARTNER_URL = fulfilment.base_url, INVENTORY_PARTNER_URL = ...
    fulfilment.stop()
    warehouse.stop()
"""

from cloudcart.local.partners.fulfilment import FulfilmentSimulator
from cloudcart.local.partners.server import PartnerSimulator, Sender, publisher_sender
from cloudcart.local.partners.warehouse import WarehouseSimulator

__all__ = [
    "FulfilmentSimulator",
    "PartnerSimulator",
    "Sender",
    "WarehouseSimulator",
    "publisher_sender",
]
