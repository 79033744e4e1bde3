"""The embedded SQLite broker honours the Service Bus semantics the app relies on."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from cloudcart.core.errors import NotFound, Unavailable
from cloudcart.core.messages.embedded import SqliteBroker, from_settings
from cloudcart.core.ports.messages import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    RESUBMITTED_FROM_PROPERTY,
    DeadLetter,
    DeadLetterAdmin,
    DeadLetterNotFound,
    LockLost,
    MessagePublisher,
    OutboundMessage,
    ReceivedMessage,
    UnknownEntity,
    resubmitted_message_id,
)
from cloudcart.core.settings import Settings
from tests.fakes.clock import ManualClock

from .conftest import TEST_TOPOLOGY


def event(
    message_id: str, subject: str = "order.placed", **props: str | int | bool
) -> OutboundMessage:
    return OutboundMessage(
        body={"id": message_id, "type": subject},
        message_id=message_id,
        subject=subject,
        application_properties=props,
    )


def ids(messages: Sequence[ReceivedMessage | DeadLetter]) -> list[str]:
    return [m.message_id for m in messages]


def test_broker_implements_both_port_protocols(broker: SqliteBroker) -> None:
    assert isinstance(broker, MessagePublisher)
    assert isinstance(broker, DeadLetterAdmin)


# --- publishing ------------------------------------------------------------------------


def test_topic_fans_out_a_copy_to_each_matching_subscription_only(broker: SqliteBroker) -> None:
    broker.publish(
        "events",
        [
            event("e1", "order.placed"),
            event("e2", "order.cancelled", tier="gold"),
            event("e3", "customer.created", tier="gold"),
            event("e4", "order.paid", tier="silver"),
        ],
    )
    assert ids(broker.receive("events", "billing", max_messages=10)) == ["e1", "e4"]
    assert ids(broker.receive("events", "vip", max_messages=10)) == ["e2"]
    assert ids(broker.receive("events", "audit", max_messages=10)) == ["e1", "e2", "e3", "e4"]


def test_received_message_carries_every_field(broker: SqliteBroker, clock: ManualClock) -> None:
    broker.publish(
        "events",
        [
            OutboundMessage(
                body={"orderId": "o1", "total": 12.5},
                message_id="m1",
                subject="order.placed",
                correlation_id="corr-1",
                application_properties={"tier": "gold", "lines": 3, "gift": True, "rate": 0.5},
                session_id="s1",
            )
        ],
    )
    [msg] = broker.receive("events", "billing")
    assert msg.entity == "events" and msg.subscription == "billing"
    assert msg.json() == {"orderId": "o1", "total": 12.5}
    assert msg.body == b'{"orderId":"o1","total":12.5}'
    assert (msg.subject, msg.correlation_id, msg.session_id) == ("order.placed", "corr-1", "s1")
    assert msg.content_type == "application/json"
    assert msg.application_properties == {"tier": "gold", "lines": 3, "gift": True, "rate": 0.5}
    assert isinstance(msg.application_properties["gift"], bool)
    assert msg.enqueued_time == clock.now
    assert msg.expires_at == clock.now + timedelta(days=1)
    assert msg.delivery_count == 1
    assert msg.locked_until == clock.now + timedelta(seconds=30)


def test_queue_stores_one_copy_for_one_consumer(broker: SqliteBroker) -> None:
    broker.publish(
        "emails", [OutboundMessage(body="hello", message_id="q1", content_type="text/plain")]
    )
    [msg] = broker.receive("emails")
    assert msg.body == b"hello" and msg.content_type == "text/plain" and msg.subscription is None
    broker.complete(msg.lock_token)
    assert broker.receive("emails") == []


def test_unknown_entities_are_refused(broker: SqliteBroker) -> None:
    with pytest.raises(UnknownEntity):
        broker.publish("nope", [event("x")])
    with pytest.raises(UnknownEntity):
        broker.receive("events")  # a topic needs a subscription
    with pytest.raises(UnknownEntity):
        broker.receive("events", "nope")
    with pytest.raises(UnknownEntity):
        broker.receive("emails", "billing")  # queues have no subscriptions


def test_publish_of_a_batch_is_all_or_nothing(broker: SqliteBroker) -> None:
    class Boom(OutboundMessage):
        def body_bytes(self) -> bytes:
            raise RuntimeError("encoding failed")

    with pytest.raises(RuntimeError):
        broker.publish(
            "events", [event("a1"), Boom(body="x", message_id="a2", subject="order.placed")]
        )
    assert broker.receive("events", "audit", max_messages=10) == []
    # The failed call did not record a1 as seen, so a retry is not dropped as a duplicate.
    broker.publish("events", [event("a1")])
    assert ids(broker.receive("events", "audit")) == ["a1"]


# --- duplicate detection ---------------------------------------------------------------


def test_duplicate_message_id_is_dropped_within_window_and_accepted_after(
    broker: SqliteBroker, clock: ManualClock
) -> None:
    broker.publish("events", [event("d1"), event("d1")])
    clock.advance(minutes=9)
    broker.publish("events", [event("d1")])
    [first] = broker.receive("events", "audit", max_messages=10)
    assert first.message_id == "d1"
    broker.complete(first.lock_token)
    clock.advance(minutes=2)  # 11 minutes after the first publish: outside the 10 min window
    broker.publish("events", [event("d1")])
    [second] = broker.receive("events", "audit", max_messages=10)
    assert second.message_id == "d1" and second.delivery_count == 1


def test_entity_without_duplicate_detection_keeps_repeats(broker: SqliteBroker) -> None:
    broker.publish("nodedup", [event("n1"), event("n1")])
    assert ids(broker.receive("nodedup", "all", max_messages=10)) == ["n1", "n1"]


# --- scheduling and expiry -------------------------------------------------------------


def test_scheduled_message_is_invisible_until_due(broker: SqliteBroker, clock: ManualClock) -> None:
    due = clock.now + timedelta(minutes=5)
    broker.publish(
        "emails",
        [
            OutboundMessage(body="later", message_id="s1", scheduled_enqueue_time=due),
            OutboundMessage(body="now", message_id="s2"),
        ],
    )
    [now] = broker.receive("emails", max_messages=10)
    assert now.message_id == "s2"
    broker.complete(now.lock_token)
    clock.advance(minutes=4, seconds=59)
    assert broker.receive("emails") == []
    clock.advance(seconds=1)
    assert ids(broker.receive("emails")) == ["s1"]


def test_naive_schedule_time_is_rejected() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        OutboundMessage(body="x", message_id="n", scheduled_enqueue_time=datetime(2030, 1, 1))


def test_message_past_its_ttl_is_not_delivered(broker: SqliteBroker, clock: ManualClock) -> None:
    broker.publish("events", [event("t1")])
    clock.advance(days=1, seconds=1)
    assert broker.receive("events", "audit") == []


# --- peek-lock -------------------------------------------------------------------------


def test_locked_message_is_not_given_to_a_second_receiver(broker: SqliteBroker) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="l1")])
    first = broker.receive("emails")
    assert ids(first) == ["l1"]
    assert broker.receive("emails") == []


def test_expired_lock_redelivers_with_higher_delivery_count(
    broker: SqliteBroker, clock: ManualClock
) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="l1")])
    [first] = broker.receive("emails", lock_duration=timedelta(seconds=5))
    clock.advance(seconds=5)
    [second] = broker.receive("emails")
    assert second.message_id == "l1"
    assert second.delivery_count == first.delivery_count + 1 == 2
    assert second.lock_token != first.lock_token
    with pytest.raises(LockLost):
        broker.complete(first.lock_token)  # the old lock is gone
    broker.complete(second.lock_token)
    assert broker.receive("emails") == []


def test_lock_misuse_after_expiry_raises_lock_lost(
    broker: SqliteBroker, clock: ManualClock
) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="l1")])
    [msg] = broker.receive("emails")
    clock.advance(seconds=31)
    for settle in (broker.complete, broker.abandon, broker.renew_lock):
        with pytest.raises(LockLost):
            settle(msg.lock_token)
    with pytest.raises(LockLost):
        broker.dead_letter(msg.lock_token, "x", "y")
    with pytest.raises(LockLost):
        broker.complete("not-a-token")


def test_renew_lock_extends_it(broker: SqliteBroker, clock: ManualClock) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="r1")])
    [msg] = broker.receive("emails")
    clock.advance(seconds=20)
    new_until = broker.renew_lock(msg.lock_token)
    assert new_until == clock.now + timedelta(seconds=30)
    clock.advance(seconds=20)  # 40 s after receive: the original lock would have expired
    assert broker.receive("emails") == []
    broker.complete(msg.lock_token)


def test_complete_removes_and_twice_is_lock_lost(broker: SqliteBroker) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="c1")])
    [msg] = broker.receive("emails")
    broker.complete(msg.lock_token)
    with pytest.raises(LockLost):
        broker.complete(msg.lock_token)
    assert broker.receive("emails") == []


def test_abandon_makes_the_message_available_again(broker: SqliteBroker) -> None:
    broker.publish("events", [event("a1")])
    [msg] = broker.receive("events", "billing")
    broker.abandon(msg.lock_token)
    [again] = broker.receive("events", "billing")
    assert again.message_id == "a1" and again.delivery_count == 2


def test_receive_returns_oldest_first_and_respects_max_messages(broker: SqliteBroker) -> None:
    broker.publish("events", [event(f"o{i}") for i in range(5)])
    assert ids(broker.receive("events", "audit", max_messages=3)) == ["o0", "o1", "o2"]
    assert ids(broker.receive("events", "audit", max_messages=3)) == ["o3", "o4"]


# --- dead letters ----------------------------------------------------------------------


def test_max_delivery_count_dead_letters_on_abandon(
    broker: SqliteBroker, clock: ManualClock
) -> None:
    broker.publish("events", [event("m1")])
    for expected in (1, 2, 3):
        [msg] = broker.receive("events", "billing")
        assert msg.delivery_count == expected
        broker.abandon(msg.lock_token)
    assert broker.receive("events", "billing") == []
    [letter] = broker.list_dead_letters("events", "billing")
    assert letter.message_id == "m1"
    assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert letter.delivery_count == 3
    assert letter.subject == "order.placed"
    assert letter.entity == "events" and letter.subscription == "billing"
    assert letter.dead_lettered_at == clock.now
    # Other subscriptions' copies are untouched.
    assert ids(broker.receive("events", "audit")) == ["m1"]


def test_max_delivery_count_dead_letters_after_lock_expiry(
    broker: SqliteBroker, clock: ManualClock
) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="e1")])
    for _ in range(2):  # the queue allows 2 deliveries
        assert ids(broker.receive("emails")) == ["e1"]
        clock.advance(seconds=31)
    assert broker.receive("emails") == []
    [letter] = broker.list_dead_letters("emails")
    assert (letter.reason, letter.delivery_count) == (MAX_DELIVERY_COUNT_EXCEEDED, 2)


def test_explicit_dead_letter_keeps_reason_and_description(broker: SqliteBroker) -> None:
    broker.publish(
        "events",
        [
            OutboundMessage(
                body={"bad": 1}, message_id="x1", subject="order.paid", correlation_id="c"
            )
        ],
    )
    [msg] = broker.receive("events", "billing")
    broker.dead_letter(msg.lock_token, "SchemaInvalid", "missing orderId")
    assert broker.receive("events", "billing") == []
    [letter] = broker.list_dead_letters("events", "billing")
    assert (letter.reason, letter.description, letter.delivery_count) == (
        "SchemaInvalid",
        "missing orderId",
        1,
    )
    assert letter.body == b'{"bad":1}' and letter.correlation_id == "c"
    assert broker.peek(letter.id) == letter
    assert broker.list_dead_letters("events", "audit") == []


def test_resubmit_puts_a_fresh_copy_on_the_same_subscription(broker: SqliteBroker) -> None:
    broker.publish("events", [event("r1", tier="gold")])
    [msg] = broker.receive("events", "billing")
    broker.dead_letter(msg.lock_token, "Bug", "handler crashed")
    [letter] = broker.list_dead_letters("events", "billing")

    # At once, inside the duplicate-detection window: the copy has a new message id.
    broker.resubmit(letter.id)
    with pytest.raises(DeadLetterNotFound):
        broker.peek(letter.id)
    [copy] = broker.receive("events", "billing")
    assert (copy.message_id, copy.delivery_count) == ("r1~r1", 1)
    assert copy.application_properties == {"tier": "gold", RESUBMITTED_FROM_PROPERTY: "r1"}
    assert copy.body == msg.body
    broker.complete(copy.lock_token)
    # Only billing got the copy; vip and audit still hold just their original copy.
    assert ids(broker.receive("events", "vip", max_messages=5)) == ["r1"]
    assert ids(broker.receive("events", "audit", max_messages=5)) == ["r1"]


def test_resubmitted_message_ids_count_up_and_stay_within_128_characters() -> None:
    assert resubmitted_message_id("evt_1") == "evt_1~r1"
    assert resubmitted_message_id("evt_1~r1", "evt_1") == "evt_1~r2"
    assert resubmitted_message_id("evt_1~r9", "evt_1") == "evt_1~r10"
    # Without the property the suffix is just part of the original id.
    assert resubmitted_message_id("odd~r4") == "odd~r4~r1"
    long = "x" * 128
    first = resubmitted_message_id(long)
    assert len(first) <= 128 and first.endswith("~r1") and first != long
    second = resubmitted_message_id(first, long)
    assert second == first.removesuffix("~r1") + "~r2"
    assert resubmitted_message_id("y" * 127) != first


def test_each_resubmit_of_a_message_gets_the_next_number(broker: SqliteBroker) -> None:
    broker.publish("events", [event("r2")])
    for expected in ("r2~r1", "r2~r2", "r2~r3"):
        [msg] = broker.receive("events", "billing")
        broker.dead_letter(msg.lock_token, "Bug")
        [letter] = broker.list_dead_letters("events", "billing")
        broker.resubmit(letter.id)
        [copy] = broker.receive("events", "billing", lock_duration=timedelta(seconds=1))
        assert copy.message_id == expected
        assert copy.application_properties[RESUBMITTED_FROM_PROPERTY] == "r2"
        broker.abandon(copy.lock_token)
    # A publish of an id a resubmit used is a duplicate like any other.
    broker.publish("events", [event("r2~r3")])
    [last] = broker.receive("events", "billing", max_messages=5)
    assert last.message_id == "r2~r3"


def test_purge_deletes_a_dead_letter(broker: SqliteBroker) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id="p1")])
    [msg] = broker.receive("emails")
    broker.dead_letter(msg.lock_token, "Poison", "")
    [letter] = broker.list_dead_letters("emails")
    broker.purge(letter.id)
    assert broker.list_dead_letters("emails") == []
    with pytest.raises(DeadLetterNotFound):
        broker.purge(letter.id)
    with pytest.raises(NotFound):  # the API layer maps NotFound to 404
        broker.resubmit(letter.id)


def test_list_dead_letters_is_oldest_first_and_limited(broker: SqliteBroker) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id=f"k{i}") for i in range(4)])
    for msg in broker.receive("emails", max_messages=4):
        broker.dead_letter(msg.lock_token, "Poison", msg.message_id)
    assert ids(broker.list_dead_letters("emails", limit=3)) == ["k0", "k1", "k2"]


# --- durability, threads, lifecycle ----------------------------------------------------


def test_messages_locks_and_dead_letters_survive_reopen(
    broker_path: Path, clock: ManualClock
) -> None:
    first = SqliteBroker(broker_path, TEST_TOPOLOGY, clock=clock)
    first.publish("events", [event("k1"), event("k2")])
    [locked] = first.receive("events", "audit")
    [doomed] = first.receive("events", "billing")
    first.dead_letter(doomed.lock_token, "Poison", "kept")
    first.close()
    with pytest.raises(Unavailable):
        first.publish("events", [event("k3")])

    second = SqliteBroker(broker_path, TEST_TOPOLOGY, clock=clock)
    try:
        second.complete(locked.lock_token)  # the lock survived the restart too
        assert ids(second.receive("events", "audit", max_messages=5)) == ["k2"]
        assert ids(second.receive("events", "billing", max_messages=5)) == ["k2"]
        assert [d.description for d in second.list_dead_letters("events", "billing")] == ["kept"]
        second.publish("events", [event("k1")])  # duplicate detection survived as well
        assert second.receive("events", "audit") == []
    finally:
        second.close()


def test_threads_sharing_one_broker_each_get_distinct_messages(broker: SqliteBroker) -> None:
    broker.publish("emails", [OutboundMessage(body="x", message_id=f"t{i}") for i in range(60)])
    got: list[str] = []
    guard = threading.Lock()

    def consume() -> None:
        while batch := broker.receive("emails", max_messages=2):
            for msg in batch:
                broker.complete(msg.lock_token)
                with guard:
                    got.append(msg.message_id)

    workers = [threading.Thread(target=consume) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(got) == sorted(f"t{i}" for i in range(60))


def test_check_passes_when_open_and_fails_when_closed(broker_path: Path) -> None:
    b = SqliteBroker(broker_path, TEST_TOPOLOGY)
    b.check()
    b.close()
    with pytest.raises(Unavailable):
        b.check()


def test_from_settings_uses_the_data_folder(tmp_path: Path) -> None:
    b = from_settings(Settings(data_dir=tmp_path / "data"))
    try:
        assert b.path == tmp_path / "data" / "messages.sqlite3"
        assert b.path.exists()
        b.publish("events", [event("f1")])  # the shipped topology has the events topic
    finally:
        b.close()


# --- waiting for messages ----------------------------------------------------------------


def test_a_publish_wakes_a_receiver_waiting_for_arrivals(broker: SqliteBroker) -> None:
    seen = broker.arrivals
    # Nothing arrives: the wait runs out and the count is unchanged.
    assert broker.wait_for_arrival(seen, 0.01) == seen
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(broker.wait_for_arrival(seen, 30)))
    waiter.start()
    broker.publish("events", [event("e1")])
    waiter.join(10)
    assert not waiter.is_alive() and woke and woke[0] != seen
    # An abandon makes a message available again: it wakes waiters too.
    (message,) = broker.receive("events", "billing")
    seen = broker.arrivals
    broker.abandon(message.lock_token)
    assert broker.wait_for_arrival(seen, 0) != seen
