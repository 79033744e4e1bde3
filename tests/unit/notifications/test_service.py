"""Deciding and sending: channels follow preferences, consent and verified numbers; a
redelivered event sends nothing; busy providers are retried, permanent errors suppress;
a crashed send is resent once; marketing waits for the end of quiet hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudcart.composition import Services
from cloudcart.core.events import Event
from cloudcart.core.ports.channels import ProviderBusy, ProviderRejected
from cloudcart.core.settings import Settings
from cloudcart.customers.models import PreferencesUpdate, ProfilePatch
from cloudcart.customers.service import CustomerService
from cloudcart.identity.caller import Caller
from cloudcart.notifications import service
from cloudcart.notifications.store import NotificationStore, notification_id
from cloudcart.notifications.webhooks import StatusUpdate, apply_status
from tests.fakes.notifications import FakeEmail, FakeText

NOON = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def email() -> FakeEmail:
    return FakeEmail()


@pytest.fixture
def text() -> FakeText:
    return FakeText()


def _services(tmp_path: Path, email: FakeEmail, text: FakeText, **settings: object) -> Services:
    found = Services(
        Settings(data_dir=tmp_path / "data", **settings),  # type: ignore[arg-type]
        adapters={"email_channel": email, "text_channel": text},
    )
    found.documents.ensure_containers()
    return found


@pytest.fixture
def services(tmp_path: Path, email: FakeEmail, text: FakeText) -> Iterator[Services]:
    found = _services(tmp_path, email, text, notifications_ops_email="ops@shop.example")
    yield found
    found.close()


def _customer(services: Services, sub: str = "asha", **profile: object) -> CustomerService:
    customers = CustomerService(services.documents)
    customers.ensure_profile(
        Caller(
            customer_id=sub,
            email=f"{sub}@example.com",
            name="Asha",
            roles=(),
            scopes=(),
            issuer="test",
            is_admin=False,
        )
    )
    if profile:
        caller = Caller(sub, f"{sub}@example.com", "Asha", (), (), "test", False)
        customers.update_profile(caller, ProfilePatch.model_validate(profile), None)
    return customers


def _consent(services: Services, sub: str, channels: dict[str, dict[str, bool]]) -> None:
    CustomerService(services.documents).update_preferences(
        sub, PreferencesUpdate.model_validate({"channels": channels}), "web"
    )


def _verified_phone(services: Services, sub: str, phone: str = "+919876543210") -> None:
    customers = _customer(services, sub, phone=phone)
    assert customers.mark_verified(sub, "phone", phone)


def _paid(sub: str = "asha", order: str = "ord_1") -> Event:
    return Event(
        type="order.paid",
        subject=order,
        data={
            "orderId": order,
            "customerId": sub,
            "paymentId": "pay_1",
            "provider": "test",
            "amount": 129900,
            "currency": "INR",
        },
    )


def _records(services: Services, sub: str) -> list[dict[str, object]]:
    items, _ = NotificationStore(services.documents).search(
        customer_id=sub, status=None, limit=100, cursor=None
    )
    return items


def test_paid_order_emails_once_and_lands_in_the_feed(
    services: Services, email: FakeEmail, text: FakeText
) -> None:
    _customer(services)
    event = _paid()
    outcome = service.handle_event(services, event)
    assert (outcome.sent, outcome.pending) == (2, 0)
    assert [m.template for m in email.to("asha@example.com")] == ["order-paid"]
    assert text.sent == []  # SMS and WhatsApp are off until the customer opts in
    message = email.sent[0]
    assert message.customer_id == "asha"
    assert "ord_1" in message.text
    store = NotificationStore(services.documents)
    feed, _ = store.feed_page("asha", 10, None)
    assert [(i["template"], i["link"]) for i in feed] == [("order-paid", "/orders/ord_1")]
    assert store.feed_state("asha")["unread"] == 1
    # Redelivered: the records exist, nothing is sent or added again.
    again = service.handle_event(services, event)
    assert (again.sent, again.skipped) == (0, 2)
    assert len(email.sent) == 1
    assert store.feed_state("asha")["unread"] == 1
    assert {r["status"] for r in _records(services, "asha")} == {"sent", "delivered"}


def test_sms_needs_consent_and_a_verified_number(
    services: Services, email: FakeEmail, text: FakeText
) -> None:
    _customer(services, phone="+919876543210")
    _consent(services, "asha", {"sms": {"transactional": True}})
    service.handle_event(services, _paid(order="ord_1"))
    assert text.sent == []  # consented, but the number is not verified
    _verified_phone(services, "asha")
    service.handle_event(services, _paid(order="ord_2"))
    assert [(m.channel, m.to) for m in text.sent] == [("sms", "+919876543210")]
    assert text.sent[0].status_callback is not None
    assert "/api/webhooks/twilio/status?n=ntf_" in text.sent[0].status_callback
    _consent(services, "asha", {"sms": {"transactional": False}})
    service.handle_event(services, _paid(order="ord_3"))
    assert len(text.sent) == 1


def test_busy_provider_is_retried_and_sends_once(services: Services, email: FakeEmail) -> None:
    _customer(services)
    email.failures = [ProviderBusy("429", code="429", retry_after=0.01)] * 2
    event = _paid()
    with pytest.raises(service.NotificationsPending):
        service.handle_event(services, event)
    [record] = [r for r in _records(services, "asha") if r["channel"] == "email"]
    assert record["status"] == "pending"
    assert record["attempts"] == 1
    assert email.sent == []
    outcome = service.handle_event(services, event)  # the broker's redelivery
    assert (outcome.sent, outcome.skipped) == (1, 1)  # the email now; the in-app item exists
    assert len(email.sent) == 1
    [record] = [r for r in _records(services, "asha") if r["channel"] == "email"]
    assert (record["status"], record["attempts"]) == ("sent", 2)


def test_permanent_rejection_fails_and_suppresses(services: Services, email: FakeEmail) -> None:
    _customer(services)
    email.failures = [ProviderRejected("invalid address", code="400", suppress=True)]
    outcome = service.handle_event(services, _paid(order="ord_1"))
    assert outcome.failed == 1 and outcome.pending == 0
    assert NotificationStore(services.documents).suppression("ASHA@example.com") is not None
    service.handle_event(services, _paid(order="ord_2"))
    assert email.sent == []
    failed = [r for r in _records(services, "asha") if r["channel"] == "email"]
    assert sorted(str(r["error"]["code"]) for r in failed) == ["400", "suppressed"]  # type: ignore[index]


def test_a_crash_after_the_provider_accepted_resends_once(
    services: Services, email: FakeEmail
) -> None:
    _customer(services)
    event = _paid()
    store = NotificationStore(services.documents)
    record_id = notification_id(event.id, "order-paid", "email", "asha@example.com")
    # The first attempt claimed the record, the provider accepted, the process died.
    service.handle_event(services, event)
    record = store.get(record_id, "asha")
    assert record is not None
    store.replace(
        record,
        {
            "status": "sending",
            "leaseUntil": (NOON - timedelta(seconds=1)).isoformat(),
            "dueAt": NOON.isoformat(),
        },
    )
    # A live lease is another worker's send: nothing is sent, the message is retried.
    live = store.get(record_id, "asha")
    assert live is not None
    store.replace(live, {"leaseUntil": (NOON + timedelta(seconds=5)).isoformat()})
    with pytest.raises(service.NotificationsPending):
        service.handle_event(services, event, now=NOON - timedelta(seconds=60))
    assert len(email.sent) == 1
    # After the lease lapsed the redelivery sends again: one duplicate for one crash.
    service.handle_event(services, event, now=NOON + timedelta(minutes=1))
    assert len(email.sent) == 2
    service.handle_event(services, event, now=NOON + timedelta(minutes=2))
    assert len(email.sent) == 2


def test_a_delivery_webhook_during_the_crash_window_prevents_the_resend(
    services: Services, email: FakeEmail
) -> None:
    _customer(services)
    event = _paid()
    store = NotificationStore(services.documents)
    record_id = notification_id(event.id, "order-paid", "email", "asha@example.com")
    service.handle_event(services, event)
    record = store.get(record_id, "asha")
    assert record is not None
    store.replace(record, {"status": "sending", "leaseUntil": NOON.isoformat()})
    apply_status(store, StatusUpdate(record_id, "asha", "delivered", key="sg|m1|delivered|1"))
    service.handle_event(services, event, now=NOON + timedelta(minutes=5))
    assert len(email.sent) == 1
    stored = store.get(record_id, "asha")
    assert stored is not None and stored["status"] == "delivered"


def test_statuses_only_move_forward_and_repeats_change_nothing(
    services: Services, email: FakeEmail
) -> None:
    _customer(services)
    event = _paid()
    service.handle_event(services, event)
    store = NotificationStore(services.documents)
    record_id = notification_id(event.id, "order-paid", "email", "asha@example.com")
    delivered = StatusUpdate(record_id, "asha", "delivered", key="sg|m1|delivered|10")
    first = apply_status(store, delivered)
    assert first is not None and first["status"] == "delivered"
    again = apply_status(store, delivered)
    assert again is not None and again["_etag"] == first["_etag"]  # no write at all
    late = apply_status(store, StatusUpdate(record_id, "asha", "sent", key="sg|m1|processed|9"))
    assert late is not None and late["status"] == "delivered"


def test_operational_alerts_go_to_the_ops_address(services: Services, email: FakeEmail) -> None:
    shortfall = Event(
        type="ops.stock_shortfall",
        subject="SKU-1",
        data={
            "sku": "SKU-1",
            "productId": "p1",
            "onHand": 1,
            "reserved": 3,
            "shortfall": 2,
            "reason": "count",
            "reference": "cnt_1",
        },
    )
    service.handle_event(services, shortfall)
    assert [(m.to, m.template) for m in email.sent] == [("ops@shop.example", "ops-alert")]
    # A dead letter of the alert mails themselves is not mailed (it would loop).
    own = Event(
        type="ops.dead_lettered",
        subject="m1",
        data={
            "entity": "ops",
            "subscription": "notifications",
            "messageId": "m1",
            "subject": "ops.stock_shortfall",
            "reason": "MaxDeliveryCountExceeded",
            "description": "",
            "deliveryCount": 10,
        },
    )
    service.handle_event(services, own)
    assert len(email.sent) == 1


def test_marketing_waits_for_quiet_hours_to_end_in_the_customers_zone(
    services: Services, email: FakeEmail
) -> None:
    _customer(services, timeZone="Asia/Kolkata")
    _consent(services, "asha", {"email": {"marketing": True}})
    _customer(services, "ravi")  # no marketing consent: nothing at all
    # 22:30 in Kolkata (17:00 UTC): inside the default 21:00-08:00 window.
    late = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
    data = {"cartUrl": "https://shop.example/cart", "lines": [], "itemCount": 2}
    outcome = service.send_bulk(
        services,
        source_id="cart-reminder-1",
        template="abandoned-cart",
        customer_ids=["asha", "ravi"],
        data=data,
        now=late,
    )
    assert outcome.held == 1 and email.sent == []
    # 07:59 local: still quiet.
    assert service.resume_due(services, now=datetime(2030, 1, 2, 2, 29, tzinfo=UTC)).sent == 0
    # 08:00 local (02:30 UTC): sent by the timer.
    assert service.resume_due(services, now=datetime(2030, 1, 2, 2, 30, tzinfo=UTC)).sent == 1
    assert [m.to for m in email.sent] == ["asha@example.com"]


def test_transactional_messages_ignore_quiet_hours(services: Services, email: FakeEmail) -> None:
    _customer(services, timeZone="Asia/Kolkata")
    service.handle_event(services, _paid(), now=datetime(2030, 1, 1, 20, 0, tzinfo=UTC))
    assert len(email.sent) == 1


def test_bulk_emails_share_requests(services: Services, email: FakeEmail) -> None:
    for sub in ("a1", "a2", "a3"):
        _customer(services, sub)
    data = {
        "productId": "p1",
        "sku": "SKU-1",
        "name": "Oppo A92",
        "url": "https://shop.example/products/p1",
    }
    outcome = service.send_bulk(
        services,
        source_id="restock-1",
        template="back-in-stock",
        customer_ids=["a1", "a2", "a3", "a1"],
        data=data,
    )
    assert email.batches == [3]
    assert sorted(m.to for m in email.sent) == [
        "a1@example.com",
        "a2@example.com",
        "a3@example.com",
    ]
    assert outcome.sent == 6  # three emails, three in-app items
    again = service.send_bulk(
        services,
        source_id="restock-1",
        template="back-in-stock",
        customer_ids=["a1", "a2", "a3"],
        data=data,
    )
    assert (again.sent, again.skipped, len(email.sent)) == (0, 6, 3)


def test_quiet_until_spans_midnight_and_respects_the_zone() -> None:
    window = "21:00-08:00"
    assert service.quiet_until(datetime(2030, 1, 1, 12, 0, tzinfo=UTC), "UTC", window) is None
    ends = service.quiet_until(datetime(2030, 1, 1, 22, 0, tzinfo=UTC), "UTC", window)
    assert ends == datetime(2030, 1, 2, 8, 0, tzinfo=UTC)
    ends = service.quiet_until(datetime(2030, 1, 2, 3, 0, tzinfo=UTC), "UTC", window)
    assert ends == datetime(2030, 1, 2, 8, 0, tzinfo=UTC)
    # New York, 23:00 local on 1 Jan = 04:00 UTC on 2 Jan; quiet until 08:00 local (13:00 UTC).
    ends = service.quiet_until(datetime(2030, 1, 2, 4, 0, tzinfo=UTC), "America/New_York", window)
    assert ends == datetime(2030, 1, 2, 13, 0, tzinfo=UTC)
    assert service.quiet_until(datetime(2030, 1, 1, 10, 0, tzinfo=UTC), "UTC", "09:00-17:00")
