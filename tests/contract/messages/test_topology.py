"""The topology declaration: validation, filter semantics and their Service Bus rendering."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloudcart.core.messages.topology import (
    RESUBMIT_PROPERTY,
    TOPOLOGY,
    AllOf,
    PropertyEquals,
    Queue,
    SubjectIn,
    SubjectPrefix,
    Subscription,
    Topic,
    Topology,
    iso_duration,
)
from cloudcart.core.ports.messages import UnknownEntity


def test_shipped_topology_declares_events_and_ops_topics_with_explicit_windows() -> None:
    events = TOPOLOGY.entity("events")
    ops = TOPOLOGY.entity("ops")
    assert isinstance(events, Topic) and isinstance(ops, Topic)
    assert iso_duration(events.duplicate_detection_window or timedelta(0)) == "PT10M"
    assert ops.duplicate_detection_window is not None
    assert [q.name for q in TOPOLOGY.queues] == [
        "fulfilment-updates",
        "inventory-updates",
        "marketing-reminders",
    ]
    assert all(q.duplicate_detection_window is not None for q in TOPOLOGY.queues)
    assert TOPOLOGY.is_topic("events") and not TOPOLOGY.is_topic("fulfilment-updates")


def test_filters_render_to_service_bus_sql() -> None:
    assert (
        SubjectIn(("order.placed", "order.paid")).sql()
        == "sys.Label IN ('order.placed', 'order.paid')"
    )
    assert SubjectIn(("it's",)).sql() == "sys.Label IN ('it''s')"
    assert SubjectPrefix("ops.").sql() == "sys.Label LIKE 'ops.%'"
    assert PropertyEquals("tier", "gold").sql() == "user.tier = 'gold'"
    assert PropertyEquals("lines", 3).sql() == "user.lines = 3"
    assert PropertyEquals("gift", True).sql() == "user.gift = TRUE"
    both = AllOf((SubjectIn(("order.placed",)), PropertyEquals("tier", "gold")))
    assert both.sql() == "(sys.Label IN ('order.placed')) AND (user.tier = 'gold')"


def test_subscription_rule_includes_resubmit_routing() -> None:
    sub = Subscription("billing", SubjectIn(("order.placed",)))
    assert sub.sql_filter() == (
        f"((sys.Label IN ('order.placed')) AND user.{RESUBMIT_PROPERTY} IS NULL)"
        f" OR user.{RESUBMIT_PROPERTY} = 'billing'"
    )
    assert Subscription("audit").sql_filter().startswith("((1=1) AND")


def test_filter_semantics_match_their_sql() -> None:
    sub = Subscription("vip", AllOf((SubjectPrefix("order."), PropertyEquals("tier", "gold"))))
    assert sub.accepts("order.placed", {"tier": "gold"})
    assert not sub.accepts("order.placed", {"tier": "silver"})
    assert not sub.accepts("customer.created", {"tier": "gold"})
    assert not sub.accepts(None, {"tier": "gold"})
    assert not PropertyEquals("lines", 1).matches(None, {"lines": True})  # types must agree
    assert not PropertyEquals("lines", 1).matches(None, {"lines": "1"})
    # A resubmitted copy goes to the named subscription only, whatever its own filter says.
    assert sub.accepts("anything", {RESUBMIT_PROPERTY: "vip"})
    assert not sub.accepts("order.placed", {"tier": "gold", RESUBMIT_PROPERTY: "billing"})


def test_invalid_declarations_are_rejected() -> None:
    with pytest.raises(ValueError):
        Topology(topics=(Topic("a"),), queues=(Queue("a"),))
    with pytest.raises(ValueError):
        Topic("t", subscriptions=(Subscription("s"), Subscription("s")))
    with pytest.raises(ValueError):
        Subscription("s", max_delivery_count=0)
    with pytest.raises(ValueError):
        Queue("q", lock_duration=timedelta(minutes=6))
    with pytest.raises(ValueError):
        Queue("bad name")
    with pytest.raises(ValueError):
        PropertyEquals("not-an-identifier", 1)
    with pytest.raises(ValueError):
        SubjectPrefix("50%")
    with pytest.raises(ValueError):
        SubjectIn(())
    with pytest.raises(UnknownEntity):
        TOPOLOGY.entity("nope")
    with pytest.raises(UnknownEntity):
        Topic("t").subscription("nope")


def test_iso_durations() -> None:
    assert iso_duration(timedelta(minutes=10)) == "PT10M"
    assert iso_duration(timedelta(days=14)) == "P14D"
    assert iso_duration(timedelta(days=1, hours=2, seconds=5)) == "P1DT2H5S"
    with pytest.raises(ValueError):
        iso_duration(timedelta(milliseconds=500))
