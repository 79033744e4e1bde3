"""Notifications over real HTTP against `cloudcart serve` with the capture adapters: a paid
order reaches the feed and the mailbox once per event; SMS follows consent and a verified
number; signed webhooks move statuses once and unsigned ones change nothing; a process
killed while a send is in flight sends it again at most once and never loses it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serving import ServeProcess
from tests.e2e.shop import ShopClient, wait_for
from tests.fakes.sendgrid_server import WebhookSigner
from tests.fakes.twilio_server import sign as twilio_sign

pytestmark = pytest.mark.e2e

SIGNER = WebhookSigner()
TWILIO_TOKEN = "e2e-twilio-auth-token"

ENV = {
    "CLOUDCART_LOG_LEVEL": "INFO",
    "TEST_GATEWAY_DUPLICATE_WEBHOOKS": "1",
    "SENDGRID_WEBHOOK_PUBLIC_KEY": SIGNER.public_key,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
}


class Shop(ShopClient):
    """The shared client with the notification views."""

    def sent(self, to: str, channel: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to, **({"channel": channel} if channel else {})}
        r = self.http.get("/dev/notifications/sent", params=params, headers=self.admin)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def feed(self, sub: str) -> dict[str, Any]:
        r = self.http.get("/api/me/notifications", headers=self.headers(sub))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def records(self, sub: str) -> list[dict[str, Any]]:
        r = self.http.get(
            "/api/admin/notifications", params={"customerId": sub}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def customer(self, sub: str) -> str:
        email = f"{sub}@example.com"
        self.headers(sub, email=email)
        r = self.http.get("/api/me/profile", headers=self.headers(sub))
        assert r.status_code == 200, r.text
        return email

    def paid_order(self, sub: str, sku: str) -> str:
        placed = self.buy(sub, sku)
        self.pay(placed)
        return str(placed["orderId"])

    def templates_sent(self, to: str, channel: str = "email") -> list[str]:
        return sorted(i["template"] for i in self.sent(to, channel))


def _start(tmp: Path, name: str) -> ServeProcess:
    return ServeProcess(
        data_dir=tmp / name, log_path=tmp / f"{name}.log", env=dict(ENV), partners=False
    ).start()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("notifications-e2e")
    server = _start(tmp, "main")
    try:
        client = Shop(server)
        client.product("NTF-1", 1000)
        yield client
        client.close()
    finally:
        server.stop()


def test_paid_order_reaches_the_feed_and_the_mailbox_once_per_event(shop: Shop) -> None:
    email = shop.customer("nina")
    order_id = shop.paid_order("nina", "NTF-1")
    feed = wait_for(
        "the in-app notification of the payment",
        lambda: [i for i in shop.feed("nina")["items"] if i["type"] == "order-paid"],
        timeout=5,
    )
    assert feed[0]["link"] == f"/orders/{order_id}"
    assert feed[0]["readAt"] is None
    wait_for(
        "the order emails",
        lambda: {"order-placed", "order-paid"} <= set(shop.templates_sent(email)),
        timeout=5,
    )
    # The gateway delivered its webhook twice; the relay may replay: still one per event.
    time.sleep(1.5)
    sent = shop.sent(email, "email")
    by_template = sorted(i["template"] for i in sent)
    assert by_template.count("order-paid") == 1
    assert by_template.count("order-placed") == 1
    assert all(i["eventId"] and i["status"] == "sent" for i in sent)
    assert sent[0]["subject"] and order_id in sent[0]["text"]


def test_feed_polling_read_and_read_all(shop: Shop) -> None:
    shop.customer("omar")
    shop.paid_order("omar", "NTF-1")
    # Welcome, order placed, order paid: nothing else is coming that would change the feed.
    wait_for(
        "the payment's feed item",
        lambda: any(i["type"] == "order-paid" for i in shop.feed("omar")["items"]),
        timeout=5,
    )
    wait_for("three feed items", lambda: len(shop.feed("omar")["items"]) >= 3, timeout=5)
    h = shop.headers("omar")
    first = shop.http.get("/api/me/notifications", headers=h)
    etag = first.headers["ETag"]
    assert first.json()["unread"] >= 2
    unchanged = shop.http.get("/api/me/notifications", headers={**h, "If-None-Match": etag})
    assert unchanged.status_code == 304
    item = first.json()["items"][0]
    read = shop.http.post(f"/api/me/notifications/{item['id']}/read", headers=h)
    assert read.status_code == 200 and read.json()["readAt"]
    changed = shop.http.get("/api/me/notifications", headers={**h, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["unread"] == first.json()["unread"] - 1
    # Another customer's item is unknown here.
    other = shop.http.post(f"/api/me/notifications/{item['id']}/read", headers=shop.headers("x"))
    assert other.status_code == 404
    everything = shop.http.post("/api/me/notifications/read-all", headers=h)
    assert everything.status_code == 200 and everything.json()["unread"] == 0
    assert shop.http.get("/api/me/notifications").status_code == 401


def _verify_phone(shop: Shop, sub: str, phone: str) -> None:
    h = shop.headers(sub)
    r = shop.http.patch("/api/me/profile", json={"phone": phone}, headers=h)
    assert r.status_code == 200, r.text
    r = shop.http.post("/api/me/verify/phone", headers=h)
    assert r.status_code == 202, r.text
    texts = wait_for("the code by SMS", lambda: shop.sent(phone, "sms"), timeout=5)
    code = re.search(r"\b(\d{6})\b", texts[0]["text"])
    assert code is not None, texts[0]["text"]
    r = shop.http.post("/api/me/verify/phone/confirm", json={"code": code.group(1)}, headers=h)
    assert r.status_code == 200, r.text


def _sms_consent(shop: Shop, sub: str, granted: bool) -> None:
    r = shop.http.put(
        "/api/me/preferences",
        json={"channels": {"sms": {"transactional": granted}}},
        headers=shop.headers(sub),
    )
    assert r.status_code == 200, r.text


def test_sms_follows_consent(shop: Shop) -> None:
    phone = "+919800000001"
    shop.customer("priya")
    _verify_phone(shop, "priya", phone)
    _sms_consent(shop, "priya", True)
    shop.paid_order("priya", "NTF-1")
    wait_for(
        "the payment SMS",
        lambda: "order-paid" in [i["template"] for i in shop.sent(phone, "sms")],
        timeout=5,
    )
    _sms_consent(shop, "priya", False)
    before = len(shop.sent(phone, "sms"))
    order_id = shop.paid_order("priya", "NTF-1")
    wait_for(
        "the payment email of the second order",
        lambda: any(
            r["template"] == "order-paid" and r["channel"] == "email" and order_id in r["text"]
            for r in shop.records("priya")
        ),
        timeout=5,
    )
    time.sleep(1)
    assert len(shop.sent(phone, "sms")) == before


def test_webhooks_need_their_signature_and_apply_once(shop: Shop) -> None:
    shop.customer("ravi")
    shop.paid_order("ravi", "NTF-1")
    record = wait_for(
        "the payment email record",
        lambda: [
            r
            for r in shop.records("ravi")
            if r["template"] == "order-paid" and r["channel"] == "email" and r["status"] == "sent"
        ],
        timeout=5,
    )[0]
    now = str(int(time.time()))
    events = [
        {
            "email": record["to"],
            "event": "delivered",
            "timestamp": int(now),
            "sg_event_id": f"evt-{n}",
            "sg_message_id": "msg-1.filter",
            "notificationId": record["id"],
            "customerId": "ravi",
        }
        for n in range(3)  # SendGrid's retries carry a new sg_event_id each time
    ]
    body = json.dumps(events).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Timestamp": now,
    }
    bad = shop.http.post(
        "/api/webhooks/sendgrid",
        content=body,
        headers={**headers, "X-Twilio-Email-Event-Webhook-Signature": SIGNER.sign(b"[]", now)},
    )
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith("application/problem+json")
    unsigned = shop.http.post("/api/webhooks/sendgrid", content=body, headers=headers)
    assert unsigned.status_code == 401
    assert next(r for r in shop.records("ravi") if r["id"] == record["id"])["status"] == "sent"
    good = {**headers, "X-Twilio-Email-Event-Webhook-Signature": SIGNER.sign(body, now)}
    for _ in range(2):
        r = shop.http.post("/api/webhooks/sendgrid", content=body, headers=good)
        assert r.status_code == 200, r.text
    stored = next(r for r in shop.records("ravi") if r["id"] == record["id"])
    assert stored["status"] == "delivered"
    # Twilio: a status callback signed with another token changes nothing.
    url = f"{shop.server.base_url}/api/webhooks/twilio/status?n={record['id']}&c=ravi"
    form = {"MessageSid": "SM1", "MessageStatus": "failed"}
    forged = twilio_sign("not-the-token", url, form)
    r = shop.http.post(
        "/api/webhooks/twilio/status?n=" + record["id"] + "&c=ravi",
        data=form,
        headers={"X-Twilio-Signature": forged},
    )
    assert r.status_code == 401


def test_a_send_killed_in_flight_is_sent_again_at_most_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("notifications-crash")
    server = _start(tmp, "crash")
    try:
        shop = Shop(server)
        shop.product("NTF-2", 10)
        email = shop.customer("kim")
        wait_for("the welcome email", lambda: shop.sent(email, "email"), timeout=10)
        r = shop.http.post(
            "/dev/notifications/faults", json={"holdAfterSendSeconds": 60}, headers=shop.admin
        )
        assert r.status_code == 200, r.text
        shop.buy("kim", "NTF-2")
        # The provider has the email; the sender has not heard back: crash now.
        wait_for(
            "the order email at the provider",
            lambda: "order-placed" in shop.templates_sent(email),
            timeout=10,
        )
        server.kill()
        server.start()
        shop = Shop(server)
        records = wait_for(
            "the interrupted email to be sent after the restart",
            lambda: [
                r
                for r in shop.records("kim")
                if r["channel"] == "email"
                and r["template"] == "order-placed"
                and r["status"] == "sent"
            ],
            timeout=90,
        )
        assert records[0]["attempts"] == 2
        captured = [i for i in shop.sent(email, "email") if i["template"] == "order-placed"]
        assert len(captured) == 2  # documented: one duplicate per crash, never a loss
        feed = [i for i in shop.feed("kim")["items"] if i["type"] == "order-placed"]
        assert len(feed) == 1  # in-app is written once, in one batch
        shop.close()
    finally:
        server.stop()
