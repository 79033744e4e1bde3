"""Fixtures of the messages contract suite: a test topology, a movable clock, a broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloudcart.core.messages.embedded import SqliteBroker
from cloudcart.core.messages.topology import (
    AllOf,
    PropertyEquals,
    Queue,
    SubjectIn,
    SubjectPrefix,
    Subscription,
    Topic,
    Topology,
)
from tests.fakes.clock import ManualClock

TEST_TOPOLOGY = Topology(
    topics=(
        Topic(
            "events",
            subscriptions=(
                Subscription(
                    "billing",
                    SubjectIn(("order.placed", "order.paid")),
                    max_delivery_count=3,
                    lock_duration=timedelta(seconds=30),
                ),
                Subscription(
                    "vip", AllOf((SubjectPrefix("order."), PropertyEquals("tier", "gold")))
                ),
                Subscription("audit"),
            ),
            duplicate_detection_window=timedelta(minutes=10),
            default_message_ttl=timedelta(days=1),
        ),
        Topic("nodedup", subscriptions=(Subscription("all"),), duplicate_detection_window=None),
    ),
    queues=(Queue("emails", max_delivery_count=2, lock_duration=timedelta(seconds=30)),),
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def broker_path(tmp_path: Path) -> Path:
    return tmp_path / "messages.sqlite3"


@pytest.fixture
def broker(broker_path: Path, clock: ManualClock) -> Iterator[SqliteBroker]:
    b = SqliteBroker(broker_path, TEST_TOPOLOGY, clock=clock)
    yield b
    b.close()
