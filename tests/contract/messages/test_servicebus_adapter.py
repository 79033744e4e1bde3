"""The Service Bus adapter against the recording SDK-level fake (real ServiceBusMessage objects)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import MessagingEntityNotFoundError, ServiceBusConnectionError
from pydantic import SecretStr

from cloudcart.core.errors import Unavailable
from cloudcart.core.messages.servicebus import ServiceBusPublisher, from_settings
from cloudcart.core.messages.topology import RESUBMIT_PROPERTY, TOPOLOGY
from cloudcart.core.ports.messages import (
    RESUBMITTED_FROM_PROPERTY,
    DeadLetterAdmin,
    DeadLetterNotFound,
    MessagePublisher,
    MessageTooLarge,
    OutboundMessage,
    UnknownEntity,
)
from cloudcart.core.settings import Adapter, Settings
from tests.fakes.servicebus import FakeServiceBusClient, encoded_size

from .conftest import TEST_TOPOLOGY


def adapter(client: FakeServiceBusClient, **kwargs) -> ServiceBusPublisher:
    return ServiceBusPublisher(client, TEST_TOPOLOGY, **kwargs)  # type: ignore[arg-type]


def body_of(message: ServiceBusMessage) -> bytes:
    return b"".join(message.body)


def test_adapter_implements_both_port_protocols() -> None:
    sb = adapter(FakeServiceBusClient())
    assert isinstance(sb, MessagePublisher)
    assert isinstance(sb, DeadLetterAdmin)


def test_every_field_is_mapped_to_the_sdk_message() -> None:
    client = FakeServiceBusClient()
    when = datetime(2030, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    adapter(client).publish(
        "events",
        [
            OutboundMessage(
                body={"orderId": "o1"},
                message_id="evt-1",
                subject="order.placed",
                correlation_id="corr-9",
                application_properties={"tier": "gold", "lines": 2, "gift": False, "rate": 0.25},
                session_id="cust-1",
                scheduled_enqueue_time=when,
            )
        ],
    )
    [sent] = client.sent
    assert (sent.entity, sent.kind) == ("events", "topic")
    [msg] = sent.messages
    assert isinstance(msg, ServiceBusMessage)
    assert json.loads(body_of(msg)) == {"orderId": "o1"}
    assert msg.message_id == "evt-1"
    assert msg.subject == "order.placed"
    assert msg.correlation_id == "corr-9"
    assert msg.session_id == "cust-1"
    assert msg.content_type == "application/json"
    assert msg.application_properties == {"tier": "gold", "lines": 2, "gift": False, "rate": 0.25}
    assert msg.scheduled_enqueue_time_utc == datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def test_queue_gets_a_queue_sender_and_senders_are_cached() -> None:
    client = FakeServiceBusClient()
    sb = adapter(client)
    sb.publish("emails", [OutboundMessage(body="hi", message_id="q1", content_type="text/plain")])
    sb.publish("emails", [OutboundMessage(body="again", message_id="q2")])
    sb.publish("events", [OutboundMessage(body="e", message_id="e1")])
    assert [(s.entity, s.kind) for s in client.senders] == [
        ("emails", "queue"),
        ("events", "topic"),
    ]
    [first] = client.sent[0].messages
    assert body_of(first) == b"hi" and first.content_type == "text/plain"
    assert first.application_properties is None and first.scheduled_enqueue_time_utc is None


def test_unknown_entity_is_refused_before_any_sender_is_built() -> None:
    client = FakeServiceBusClient()
    with pytest.raises(UnknownEntity):
        adapter(client).publish("nope", [OutboundMessage(body="x", message_id="1")])
    assert client.senders == []


def test_batches_split_at_the_size_limit_without_loss_or_duplication() -> None:
    client = FakeServiceBusClient()
    messages = [
        OutboundMessage(
            body={"n": i, "pad": "x" * (50 + 7 * i)}, message_id=f"m{i:03}", subject="s"
        )
        for i in range(60)
    ]
    adapter(client, max_batch_size_in_bytes=2_000).publish("events", messages)

    assert len(client.sent) > 5
    for batch in client.sent:
        assert batch.max_size_in_bytes == 2_000
        assert 0 < batch.size_in_bytes <= 2_000
        assert sum(encoded_size(m) for m in batch.messages) == batch.size_in_bytes
    sent_ids = [m.message_id for m in client.sent_messages("events")]
    assert sent_ids == [m.message_id for m in messages]  # all, once, in order
    # Batches are filled: the next message would not have fitted in the previous batch.
    for previous, current in zip(client.sent, client.sent[1:], strict=False):
        assert previous.size_in_bytes + encoded_size(current.messages[0]) > 2_000


def test_default_batch_limit_is_the_links() -> None:
    client = FakeServiceBusClient(max_batch_size_in_bytes=1_000)
    messages = [OutboundMessage(body="y" * 300, message_id=f"d{i}") for i in range(7)]
    adapter(client).publish("emails", messages)
    assert [len(b.messages) for b in client.sent] == [2, 2, 2, 1]


def test_one_message_larger_than_a_batch_is_too_large_and_nothing_after_is_lost() -> None:
    client = FakeServiceBusClient(max_batch_size_in_bytes=1_000)
    with pytest.raises(MessageTooLarge):
        adapter(client).publish("emails", [OutboundMessage(body="z" * 5_000, message_id="big")])
    assert client.sent == []
    with pytest.raises(MessageTooLarge):
        adapter(client).publish(
            "emails",
            [
                OutboundMessage(body="ok", message_id="a"),
                OutboundMessage(body="z" * 5_000, message_id="b"),
            ],
        )
    # The first batch went out; a retry is safe thanks to duplicate detection.
    assert [m.message_id for m in client.sent_messages()] == ["a"]


def test_sdk_errors_become_port_errors() -> None:
    client = FakeServiceBusClient()
    sb = adapter(client)
    client.fail_next_send = ServiceBusConnectionError(message="connection reset")
    with pytest.raises(Unavailable):
        sb.publish("events", [OutboundMessage(body="x", message_id="1")])
    client.fail_next_send = MessagingEntityNotFoundError(message="no such entity")
    with pytest.raises(UnknownEntity):
        sb.publish("events", [OutboundMessage(body="x", message_id="1")])
    sb.publish("events", [OutboundMessage(body="x", message_id="1")])
    assert [m.message_id for m in client.sent_messages()] == ["1"]


def test_publishing_nothing_opens_nothing() -> None:
    client = FakeServiceBusClient()
    adapter(client).publish("events", [])
    assert client.senders == [] and client.sent == []


def test_check_opens_a_link_per_entity_and_close_closes_everything() -> None:
    client = FakeServiceBusClient()
    sb = adapter(client)
    sb.check()
    assert sorted(s.entity for s in client.senders) == ["emails", "events", "nodedup"]
    assert all(s.batches_created == 1 for s in client.senders)
    sb.close()
    assert client.closed and all(s.closed for s in client.senders)


# --- dead letters ----------------------------------------------------------------------


def dead_letter_client() -> FakeServiceBusClient:
    client = FakeServiceBusClient()
    enqueued = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)
    for i in range(3):
        client.add_dead_letter(
            "events",
            "billing",
            message_id=f"dl{i}",
            body=json.dumps({"n": i}).encode(),
            subject="order.placed",
            correlation_id=f"c{i}",
            application_properties={b"tier": b"gold", b"lines": i},
            dead_letter_reason="MaxDeliveryCountExceeded",
            dead_letter_error_description="handler kept failing",
            delivery_count=10,
            enqueued_time_utc=enqueued,
        )
    client.add_dead_letter(
        "emails", None, message_id="q0", body=b"mail", enqueued_time_utc=enqueued
    )
    return client


def test_list_and_peek_dead_letters() -> None:
    client = dead_letter_client()
    sb = adapter(client)
    letters = sb.list_dead_letters("events", "billing", limit=2)
    assert [d.message_id for d in letters] == ["dl0", "dl1"]
    first = letters[0]
    assert first.reason == "MaxDeliveryCountExceeded"
    assert first.description == "handler kept failing"
    assert first.delivery_count == 10
    assert first.properties == {"tier": "gold", "lines": 0}
    assert json.loads(first.body) == {"n": 0}
    assert (first.entity, first.subscription) == ("events", "billing")
    assert sb.peek(letters[1].id) == letters[1]
    assert [d.message_id for d in sb.list_dead_letters("emails")] == ["q0"]
    with pytest.raises(DeadLetterNotFound):
        sb.peek("events|billing|999")
    with pytest.raises(DeadLetterNotFound):
        sb.peek("garbage")
    with pytest.raises(UnknownEntity):
        sb.list_dead_letters("events")


def test_resubmit_routes_the_copy_to_its_subscription_only() -> None:
    client = dead_letter_client()
    sb = adapter(client)
    target = sb.list_dead_letters("events", "billing")[1]
    sb.resubmit(target.id)

    [copy] = client.sent_messages("events")
    # A new id: the original is still inside the topic's duplicate-detection window.
    assert copy.message_id == "dl1~r1" and copy.subject == "order.placed"
    assert copy.correlation_id == "c1"
    assert copy.application_properties == {
        "tier": "gold",
        "lines": 1,
        RESUBMIT_PROPERTY: "billing",
        RESUBMITTED_FROM_PROPERTY: "dl1",
    }
    assert body_of(copy) == target.body
    assert [d.message_id for d in sb.list_dead_letters("events", "billing")] == ["dl0", "dl2"]
    # The others were given back, unlocked.
    assert all(r.closed for r in client.receivers)
    with pytest.raises(DeadLetterNotFound):
        sb.resubmit(target.id)


def test_resubmit_to_a_queue_has_no_routing_property() -> None:
    client = dead_letter_client()
    sb = adapter(client)
    [letter] = sb.list_dead_letters("emails")
    sb.resubmit(letter.id)
    [copy] = client.sent_messages("emails")
    assert copy.message_id == "q0~r1"
    assert copy.application_properties == {RESUBMITTED_FROM_PROPERTY: "q0"}
    assert sb.list_dead_letters("emails") == []


def test_a_copy_dead_lettered_again_is_resubmitted_with_the_next_number() -> None:
    client = FakeServiceBusClient()
    client.add_dead_letter(
        "events",
        "billing",
        message_id="evt1~r1",
        body=b"{}",
        subject="order.placed",
        application_properties={
            RESUBMIT_PROPERTY.encode(): b"billing",
            RESUBMITTED_FROM_PROPERTY.encode(): b"evt1",
        },
        enqueued_time_utc=datetime(2030, 1, 1, 11, 0, tzinfo=UTC),
    )
    sb = adapter(client)
    [letter] = sb.list_dead_letters("events", "billing")
    sb.resubmit(letter.id)
    [copy] = client.sent_messages("events")
    assert copy.message_id == "evt1~r2"
    assert copy.application_properties == {
        RESUBMIT_PROPERTY: "billing",
        RESUBMITTED_FROM_PROPERTY: "evt1",
    }


def test_purge_removes_only_that_dead_letter() -> None:
    client = dead_letter_client()
    sb = adapter(client)
    letters = sb.list_dead_letters("events", "billing")
    sb.purge(letters[2].id)
    assert [d.message_id for d in sb.list_dead_letters("events", "billing")] == ["dl0", "dl1"]
    assert client.sent == []


# --- dead letters under the service's lock expiry ---------------------------------------
# The app's own topology: `events/diagnostics` has the shortest lock (5 s).


def diagnostics_client(count: int) -> tuple[FakeServiceBusClient, ServiceBusPublisher]:
    client = FakeServiceBusClient(topology=TOPOLOGY)
    assert client.lock_duration("events", "diagnostics") == timedelta(seconds=5)
    for i in range(count):
        client.add_dead_letter(
            "events",
            "diagnostics",
            message_id=f"ping{i:03}",
            body=b"{}",
            subject="diagnostics.pinged",
            enqueued_time_utc=datetime(2030, 1, 1, 11, 0, tzinfo=UTC),
        )
    return client, ServiceBusPublisher(client, TOPOLOGY)  # type: ignore[arg-type]


def test_resubmit_succeeds_when_locks_on_the_letters_ahead_lapse_during_the_send() -> None:
    client, sb = diagnostics_client(120)
    letters = sb.list_dead_letters("events", "diagnostics", limit=200)
    target = letters[100]  # in the third batch the adapter receives
    # Each receive takes 1 s and the send 3.5 s: the first batch's 5 s locks lapse while
    # the copy goes out, but the target's own lock (taken at 3 s) still holds.
    client.receive_latency = timedelta(seconds=1)
    client.send_latency = timedelta(seconds=3.5)

    sb.resubmit(target.id)

    [copy] = client.sent_messages("events")
    assert copy.message_id == "ping100~r1"
    remaining = [d.message_id for d in sb.list_dead_letters("events", "diagnostics", limit=200)]
    assert remaining == [d.message_id for d in letters if d.id != target.id]
    assert client.locked("events", "diagnostics") == []


def test_purge_gives_up_cleanly_when_the_search_cannot_outrun_the_lock() -> None:
    client, sb = diagnostics_client(150)
    letters = sb.list_dead_letters("events", "diagnostics", limit=200)
    # 3 s per batch of 50 against a 5 s lock: the first batch comes back before the third
    # is reached, so the last letter can never be received while the others are held.
    client.receive_latency = timedelta(seconds=3)

    with pytest.raises(Unavailable, match="lapsed"):
        sb.purge(letters[-1].id)

    # It noticed at once that it was going round in circles.
    assert client.receivers[-1].receives <= 5
    assert client.sent == []
    remaining = sb.list_dead_letters("events", "diagnostics", limit=200)
    assert [d.id for d in remaining] == [d.id for d in letters]
    assert client.locked("events", "diagnostics") == []


def test_a_lapsed_lock_on_the_target_after_the_send_is_unavailable_and_a_retry_is_safe() -> None:
    client, sb = diagnostics_client(3)
    target = sb.list_dead_letters("events", "diagnostics")[1]
    client.send_latency = timedelta(seconds=6)  # longer than the 5 s lock

    with pytest.raises(Unavailable, match="sent"):
        sb.resubmit(target.id)
    # The copy went out but the dead letter stayed.
    assert [m.message_id for m in client.sent_messages()] == ["ping001~r1"]
    assert sb.peek(target.id).message_id == "ping001"

    client.send_latency = timedelta(0)
    sb.resubmit(target.id)
    # The same id again: the topic's duplicate detection drops the second copy.
    assert [m.message_id for m in client.sent_messages()] == ["ping001~r1", "ping001~r1"]
    with pytest.raises(DeadLetterNotFound):
        sb.peek(target.id)


# --- construction ----------------------------------------------------------------------


def test_from_settings_uses_the_emulator_connection_string_when_set() -> None:
    settings = Settings(
        messages_adapter=Adapter.azure,
        servicebus_connection_string=SecretStr(
            "Endpoint=sb://127.0.0.1;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        ),
    )
    sb = from_settings(settings)
    client = sb._client
    assert isinstance(client, ServiceBusClient)
    assert client.fully_qualified_namespace == "127.0.0.1"


def test_from_settings_uses_the_namespace_with_managed_identity() -> None:
    sb = from_settings(
        Settings(
            servicebus_namespace="shop.servicebus.windows.net", servicebus_connection_string=None
        )
    )
    client = sb._client
    assert isinstance(client, ServiceBusClient)
    assert client.fully_qualified_namespace == "shop.servicebus.windows.net"
    assert type(sb._credential).__name__ == "DefaultAzureCredential"
    sb.close()  # nothing was opened: no network


def test_from_settings_without_a_namespace_explains_what_to_set() -> None:
    with pytest.raises(ValueError, match="ServiceBus__fullyQualifiedNamespace"):
        from_settings(Settings(servicebus_namespace=None, servicebus_connection_string=None))
