"""Provider webhooks through the HTTP app: signatures first (401 and nothing changed
otherwise), then statuses forward-only, bounces and STOP suppress, unsubscribes and STOP
change consent, START lifts STOP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudcart.api.app import create_app
from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.settings import Settings
from cloudcart.customers.models import PreferencesUpdate, ProfilePatch
from cloudcart.customers.service import CustomerService
from cloudcart.identity.caller import Caller
from cloudcart.notifications import service
from cloudcart.notifications.store import NotificationStore
from tests.fakes.notifications import FakeEmail, FakeText
from tests.fakes.sendgrid_server import WebhookSigner
from tests.fakes.twilio_server import sign

TOKEN = "twilio-test-token"
BASE = "https://shop.example"
PHONE = "+919876543210"


class Shop:
    def __init__(self, tmp_path: Path) -> None:
        self.signer = WebhookSigner()
        self.email = FakeEmail()
        self.text = FakeText()
        settings = Settings(
            data_dir=tmp_path / "data",
            public_base_url=BASE,
            sendgrid_webhook_public_key=self.signer.public_key,
            twilio_auth_token=TOKEN,  # type: ignore[arg-type]
        )
        self.app = create_app(settings)
        self.services = Services(
            settings, adapters={"email_channel": self.email, "text_channel": self.text}
        )
        self.app.state.services = self.services
        self.services.documents.ensure_containers()
        self.client = TestClient(self.app)
        self.store = NotificationStore(self.services.documents)

    def customer(self, sub: str) -> CustomerService:
        customers = CustomerService(self.services.documents)
        caller = Caller(sub, f"{sub}@example.com", "Asha", (), (), "test", False)
        customers.ensure_profile(caller)
        customers.update_profile(caller, ProfilePatch.model_validate({"phone": PHONE}), None)
        customers.mark_verified(sub, "phone", PHONE)
        customers.update_preferences(
            sub,
            PreferencesUpdate.model_validate(
                {"channels": {"sms": {"transactional": True}, "email": {"marketing": True}}}
            ),
            "web",
        )
        return customers

    def paid(self, sub: str) -> list[dict[str, Any]]:
        event = Event(
            type="order.paid",
            subject="ord_1",
            data={
                "orderId": "ord_1",
                "customerId": sub,
                "paymentId": "pay_1",
                "provider": "test",
                "amount": 1000,
                "currency": "INR",
            },
        )
        service.handle_event(self.services, event)
        items, _ = self.store.search(customer_id=sub, status=None, limit=10, cursor=None)
        return items

    def sendgrid(self, events: list[dict[str, Any]], *, signed: bool = True) -> Any:
        body = json.dumps(events).encode()
        now = str(int(time.time()))
        headers = {"X-Twilio-Email-Event-Webhook-Timestamp": now}
        if signed:
            headers["X-Twilio-Email-Event-Webhook-Signature"] = self.signer.sign(body, now)
        return self.client.post("/api/webhooks/sendgrid", content=body, headers=headers)

    def twilio(self, path: str, form: dict[str, str], *, token: str = TOKEN) -> Any:
        signature = sign(token, BASE + path, form)
        return self.client.post(path, data=form, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    found = Shop(tmp_path)
    yield found
    found.client.close()


def _one(records: list[dict[str, Any]], channel: str) -> dict[str, Any]:
    return next(r for r in records if r["channel"] == channel)


def test_sendgrid_events_need_a_valid_signature(shop: Shop) -> None:
    shop.customer("asha")
    email = _one(shop.paid("asha"), "email")
    event = {
        "event": "bounce",
        "type": "bounce",
        "email": "asha@example.com",
        "timestamp": 1,
        "notificationId": email["id"],
        "customerId": "asha",
    }
    assert shop.sendgrid([event], signed=False).status_code == 401
    body = json.dumps([event]).encode()
    now = str(int(time.time()))
    forged = {
        "X-Twilio-Email-Event-Webhook-Timestamp": now,
        "X-Twilio-Email-Event-Webhook-Signature": shop.signer.sign(b"other", now),
    }
    response = shop.client.post("/api/webhooks/sendgrid", content=body, headers=forged)
    assert response.status_code == 401
    stale = str(int(time.time()) - 3600)
    old = {
        "X-Twilio-Email-Event-Webhook-Timestamp": stale,
        "X-Twilio-Email-Event-Webhook-Signature": shop.signer.sign(body, stale),
    }
    assert shop.client.post("/api/webhooks/sendgrid", content=body, headers=old).status_code == 401
    assert shop.store.suppression("asha@example.com") is None
    stored = shop.store.get(email["id"], "asha")
    assert stored is not None and stored["status"] == "sent"


def test_bounce_suppresses_and_unsubscribe_turns_marketing_off(shop: Shop) -> None:
    customers = shop.customer("asha")
    email = _one(shop.paid("asha"), "email")
    common = {"notificationId": email["id"], "customerId": "asha", "email": "asha@example.com"}
    events = [
        {**common, "event": "bounce", "type": "bounce", "timestamp": 5, "sg_event_id": "a"},
        {**common, "event": "bounce", "type": "bounce", "timestamp": 5, "sg_event_id": "b"},
        {**common, "event": "unsubscribe", "timestamp": 6, "sg_event_id": "c"},
    ]
    response = shop.sendgrid(events)
    assert response.status_code == 200, response.text
    stored = shop.store.get(email["id"], "asha")
    assert stored is not None and stored["status"] == "bounced"
    assert len(stored["statusEvents"]) == 1  # the repeated bounce was applied once
    assert shop.store.suppression("asha@example.com") is not None
    consent = customers.get_preferences("asha")["consents"]["email"]
    assert consent["marketing"]["granted"] is False
    assert consent["marketing"]["source"] == "provider"
    assert consent["transactional"]["granted"] is True


def test_twilio_status_moves_forward_once(shop: Shop) -> None:
    shop.customer("asha")
    sms = _one(shop.paid("asha"), "sms")
    path = f"/api/webhooks/twilio/status?n={sms['id']}&c=asha"
    forged = shop.twilio(path, {"MessageSid": "SM1", "MessageStatus": "failed"}, token="wrong")
    assert forged.status_code == 401
    for status in ("delivered", "sent", "delivered"):
        response = shop.twilio(path, {"MessageSid": "SM1", "MessageStatus": status})
        assert response.status_code == 200, response.text
    stored = shop.store.get(sms["id"], "asha")
    assert stored is not None and stored["status"] == "delivered"
    assert stored["statusEvents"] == ["tw|SM1|delivered|"]


def test_undelivered_to_an_unreachable_number_suppresses_it(shop: Shop) -> None:
    shop.customer("asha")
    sms = _one(shop.paid("asha"), "sms")
    path = f"/api/webhooks/twilio/status?n={sms['id']}&c=asha"
    form = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert shop.twilio(path, form).status_code == 200
    stored = shop.store.get(sms["id"], "asha")
    assert stored is not None and stored["status"] == "failed"
    assert shop.store.suppression(PHONE) is not None


def test_stop_and_start_change_sms_consent(shop: Shop) -> None:
    customers = shop.customer("asha")
    path = "/api/webhooks/twilio/inbound"
    unsigned = shop.client.post(path, data={"From": PHONE, "Body": "STOP"})
    assert unsigned.status_code == 401
    assert customers.get_preferences("asha")["consents"]["sms"]["transactional"]["granted"]

    stop = shop.twilio(path, {"From": PHONE, "Body": " stop "})
    assert stop.status_code == 200 and stop.headers["content-type"].startswith("text/xml")
    sms = customers.get_preferences("asha")["consents"]["sms"]
    assert not sms["transactional"]["granted"] and not sms["marketing"]["granted"]
    assert shop.store.suppression(PHONE) is not None
    shop.paid("asha")
    assert shop.text.sent == []

    help_reply = shop.twilio(path, {"From": PHONE, "Body": "HELP"})
    assert "STOP" in help_reply.text and "<Message>" in help_reply.text

    assert shop.twilio(path, {"From": PHONE, "Body": "START"}).status_code == 200
    assert customers.get_preferences("asha")["consents"]["sms"]["transactional"]["granted"]
    assert shop.store.suppression(PHONE) is None
