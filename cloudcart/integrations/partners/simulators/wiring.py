"""Running the partner simulators beside `cloudcart serve`.

`start(settings)` starts a simulator for each partner whose URL is not configured (the
fulfilment centre, the WMS, the accounting system and the CRM), points
the partner's settings (environment variables) at it, with an API key kept in the data
folder so the adapters authenticate as they would against a real partner, and returns
them. The simulators send their inbound messages through the process's messages port once
`ready()` is called (after the app that owns the port is built), so a message left from a
previous run never reaches a port built on the old settings. Never used on Azure.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from cloudcart.core.files import create_private_file_once
from cloudcart.core.settings import Settings
from cloudcart.integrations.partners.simulators.accounting import AccountingSimulator
from cloudcart.integrations.partners.simulators.crm import CrmSimulator
from cloudcart.integrations.partners.simulators.fulfilment import FulfilmentSimulator
from cloudcart.integrations.partners.simulators.server import PartnerSimulator, publisher_sender
from cloudcart.integrations.partners.simulators.warehouse import WarehouseSimulator

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 60.0

running: dict[str, PartnerSimulator] = {}
"""The simulators of this process by partner name (`fulfilment`, `inventory`)."""

_ready = threading.Event()


def _send(queue: str, body: dict[str, Any], message_id: str) -> None:
    if not _ready.wait(READY_TIMEOUT_SECONDS):
        raise RuntimeError("the messages port is not ready yet")
    from cloudcart import composition

    publisher_sender(composition.services().messages)(queue, body, message_id)


def _api_key(settings: Settings) -> str:
    path = settings.data_dir / "keys" / "partner-simulators.key"
    return create_private_file_once(path, lambda: secrets.token_urlsafe(32).encode()).decode()


def start(settings: Settings) -> dict[str, PartnerSimulator]:
    """Start the simulators of the partners that have no configured URL; sets
    `FULFILMENT_PARTNER_URL` / `INVENTORY_PARTNER_URL` and their API keys in the
    environment (call `get_settings.cache_clear()` after)."""
    folder = settings.data_dir
    key = _api_key(settings)
    if not settings.fulfilment_partner_url:
        fulfilment = FulfilmentSimulator(
            folder, _send, settings.fulfilment_updates_queue, api_key=key
        ).start()
        running["fulfilment"] = fulfilment
        os.environ["FULFILMENT_PARTNER_URL"] = fulfilment.base_url
        os.environ["FULFILMENT_PARTNER_API_KEY"] = key
    if not settings.inventory_partner_url:
        warehouse = WarehouseSimulator(
            folder, _send, settings.inventory_updates_queue, api_key=key
        ).start()
        running["inventory"] = warehouse
        os.environ["INVENTORY_PARTNER_URL"] = warehouse.base_url
        os.environ["INVENTORY_PARTNER_API_KEY"] = key
    if not settings.accounting_partner_url:
        accounting = AccountingSimulator(folder, api_key=key).start()
        running["accounting"] = accounting
        os.environ["ACCOUNTING_PARTNER_URL"] = accounting.base_url
        os.environ["ACCOUNTING_PARTNER_API_KEY"] = key
    if not settings.crm_partner_url:
        crm = CrmSimulator(folder, api_key=key).start()
        running["crm"] = crm
        os.environ["CRM_PARTNER_URL"] = crm.base_url
        os.environ["CRM_PARTNER_API_KEY"] = key
    for name, simulator in running.items():
        logger.info("%s partner simulator on %s", name, simulator.base_url)
    _endpoints(settings).write_text(
        json.dumps({name: sim.base_url for name, sim in running.items()}, indent=2)
    )
    return dict(running)


def _endpoints(settings: Settings) -> Path:
    return settings.data_dir / "partners" / "simulators.json"


def use_running_simulators(settings: Settings) -> bool:
    """Point the partner settings of this process at the simulators a `cloudcart serve` on
    the same data folder started (for `cloudcart reconcile` and other tools); False when
    there are none. Only URLs a configuration leaves unset are filled in."""
    path = _endpoints(settings)
    if not path.is_file():
        return False
    key = _api_key(settings)
    for name, url in json.loads(path.read_text()).items():
        prefix = f"{name.upper()}_PARTNER"
        if not getattr(settings, f"{name}_partner_url"):
            os.environ[f"{prefix}_URL"] = url
            os.environ[f"{prefix}_API_KEY"] = key
    return True


def new_message_id() -> str:
    """A fresh message id for a message put on a queue by hand."""
    return secrets.token_hex(12)


def ready() -> None:
    """Let the simulators send: the process's messages port is built on final settings."""
    _ready.set()


def stop(settings: Settings | None = None) -> None:
    """Stop every running simulator (and forget their addresses in `settings`' folder)."""
    for simulator in list(running.values()):
        simulator.stop()
    running.clear()
    _ready.clear()
    if settings is not None:
        _endpoints(settings).unlink(missing_ok=True)
