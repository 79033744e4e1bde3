"""Local simulators of the partners (dev only, started by `cloudcart serve`): a fulfilment
centre, a warehouse management system, an accounting system and a CRM.

Each speaks the partner API of docs/partners/api.md on its own loopback port and keeps its
state in SQLite under `<data_dir>/partners/`. The fulfilment centre and the WMS send the
partner's inbound messages (`cloudcart.integrations.partners.messages`) through a
`send(queue, body, message_id)` callable; `publisher_sender(publisher)` makes one from
Cloudcart's messages port. The accounting system and the CRM send nothing::

    send = publisher_sender(services.messages)
    fulfilment = FulfilmentSimulator(data_dir, send, "fulfilment-updates").start()
    warehouse = WarehouseSimulator(data_dir, send, "inventory-updates").start()
    accounting = AccountingSimulator(data_dir).start()
    crm = CrmSimulator(data_dir).start()
    ...  # FULFILMENT_PARTNER_URL = fulfilment.base_url, INVENTORY_PARTNER_URL = ...
    for simulator in (fulfilment, warehouse, accounting, crm):
        simulator.stop()
"""

from cloudcart.integrations.partners.simulators.accounting import AccountingSimulator
from cloudcart.integrations.partners.simulators.crm import CrmSimulator
from cloudcart.integrations.partners.simulators.fulfilment import FulfilmentSimulator
from cloudcart.integrations.partners.simulators.server import (
    PartnerSimulator,
    Sender,
    publisher_sender,
)
from cloudcart.integrations.partners.simulators.warehouse import WarehouseSimulator

__all__ = [
    "AccountingSimulator",
    "CrmSimulator",
    "FulfilmentSimulator",
    "PartnerSimulator",
    "Sender",
    "WarehouseSimulator",
    "publisher_sender",
]
