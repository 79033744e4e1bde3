"""Notifications benchmark: events become notifications accepted by SendGrid and Twilio
stand-ins, through the real `sendgrid` and `twilio` adapters over HTTP.

The capture servers (tests/fakes/sendgrid_server.py, twilio_server.py: they speak the
providers' HTTP APIs) run in a process of their own, so they do not share this process's
interpreter lock. The documents port is the embedded SQLite store.

1. Transactional: `order.paid` events for N customers go through
   `service.handle_event` from 4 threads (a subscription's concurrent handlers). Every
   customer gets an email and an in-app item; every other one also an SMS to a verified
   number. One SendGrid or Twilio request per message.
2. Bulk: one back-in-stock event for M customers through `service.send_bulk`: emails of
   the same content share requests (up to 1,000 personalizations each).
3. Cost of one event: documents-port calls, counted at the port.

Aim: >= 500 notifications/s on this machine, with batching.

Usage: `.venv/bin/python -m benchmarks.notifications [--events 1500] [--bulk 3000]`.
Writes benchmarks/results/notifications.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.settings import Settings
from cloudcart.customers.models import PreferencesUpdate, ProfilePatch
from cloudcart.customers.service import CustomerService
from cloudcart.identity.caller import Caller
from cloudcart.notifications import service
from tests.fakes.counting import CountingStore

RESULTS = Path(__file__).resolve().parent / "results" / "notifications.json"
THREADS = 4
TWILIO_SID = "AC00000000000000000000000000000000"
TWILIO_TOKEN = "bench-token"
SENDGRID_KEY = "SG.bench"


def _serve(pipe: Connection) -> None:
    from tests.fakes.sendgrid_server import running_sendgrid
    from tests.fakes.twilio_server import running_twilio

    with (
        running_sendgrid(api_key=SENDGRID_KEY) as sendgrid,
        running_twilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) as twilio,
    ):
        pipe.send((sendgrid.base_url, twilio.base_url))
        pipe.recv()  # until the benchmark is done
        pipe.send(
            (
                len(sendgrid.requests),
                sum(len(r.personalizations) for r in sendgrid.requests),
                len(twilio.messages),
            )
        )


def _customers(services: Services, count: int, prefix: str, sms_every: int) -> list[str]:
    customers = CustomerService(services.documents)
    ids = []
    for n in range(count):
        sub = f"{prefix}{n}"
        caller = Caller(sub, f"{sub}@example.com", f"Customer {n}", (), (), "bench", False)
        customers.ensure_profile(caller)
        if sms_every and n % sms_every == 0:
            phone = f"+9198{n:08d}"
            customers.update_profile(caller, ProfilePatch.model_validate({"phone": phone}), None)
            customers.mark_verified(sub, "phone", phone)
            customers.update_preferences(
                sub,
                PreferencesUpdate.model_validate({"channels": {"sms": {"transactional": True}}}),
                "api",
            )
        ids.append(sub)
    return ids


def _paid(sub: str, n: int) -> Event:
    return Event(
        type="order.paid",
        subject=f"ord_{n}",
        data={
            "orderId": f"ord_{n}",
            "customerId": sub,
            "paymentId": f"pay_{n}",
            "provider": "test",
            "amount": 129900,
            "currency": "INR",
        },
    )


def main() -> None:
    """Run the measurements, print them and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--bulk", type=int, default=3000)
    args = parser.parse_args()
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    servers = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs,))
    servers.start()
    sendgrid_url, twilio_url = ours.recv()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            notifications_email_provider="sendgrid",
            notifications_text_provider="twilio",
            sendgrid_api_key=SENDGRID_KEY,  # type: ignore[arg-type]
            sendgrid_api_base=sendgrid_url,
            twilio_account_sid=TWILIO_SID,
            twilio_auth_token=TWILIO_TOKEN,  # type: ignore[arg-type]
            twilio_api_base=twilio_url,
            twilio_sms_from="+15005550006",
            notifications_email_per_second=10_000,
            notifications_text_per_second=10_000,
        )
        services = Services(settings)
        services.documents.ensure_containers()
        buyers = _customers(services, args.events, "buyer", sms_every=2)
        shoppers = _customers(services, args.bulk, "shopper", sms_every=0)

        events = [_paid(sub, n) for n, sub in enumerate(buyers)]
        started = time.perf_counter()
        cpu = time.process_time()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            outcomes = list(pool.map(lambda e: service.handle_event(services, e), events))
        transactional_seconds = time.perf_counter() - started
        transactional_cpu = time.process_time() - cpu
        transactional = sum(o.sent for o in outcomes)
        assert all(o.pending == 0 and o.failed == 0 for o in outcomes)

        data = {
            "productId": "p1",
            "sku": "OPPO-A92-64",
            "name": "OPPO A92 64GB",
            "url": "https://shop.example/products/p1",
        }
        started = time.perf_counter()
        bulk = service.send_bulk(
            services,
            source_id="restock-1",
            template="back-in-stock",
            customer_ids=shoppers,
            data=data,
        )
        bulk_seconds = time.perf_counter() - started
        assert bulk.pending == 0 and bulk.failed == 0

        counting = CountingStore(services.documents)
        counted = Services(settings, adapters={"documents": counting})
        service.handle_event(counted, _paid(buyers[0], 10**6))
        calls: Counter[str] = counting.counts
        services.close()
    ours.send("done")
    requests, personalizations, texts = ours.recv()
    servers.join(timeout=10)
    result = {
        "benchmark": "notifications",
        "command": "python -m benchmarks.notifications",
        "recordedAt": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "aim": {"notificationsPerSecond": 500},
        "transactional": {
            "events": args.events,
            "threads": THREADS,
            "notifications": transactional,
            "seconds": round(transactional_seconds, 2),
            "notifications_per_second": round(transactional / transactional_seconds, 1),
            "events_per_second": round(args.events / transactional_seconds, 1),
            "handlerCpuShare": round(transactional_cpu / transactional_seconds, 2),
        },
        "bulk": {
            "customers": args.bulk,
            "notifications": bulk.sent,
            "seconds": round(bulk_seconds, 2),
            "notifications_per_second": round(bulk.sent / bulk_seconds, 1),
        },
        "providers": {
            "sendgridRequests": requests,
            "sendgridRecipients": personalizations,
            "twilioMessages": texts,
        },
        "perTransactionalEvent": {
            "documentCalls": dict(sorted(calls.items())),
            "total": sum(calls.values()),
        },
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
