"""The one declaration of Cloudcart's topics, subscriptions and queues.

The embedded broker builds its entities from a `Topology`, the Service Bus adapter uses it to
tell topics from queues, and the Bicep (later) is checked against it. Subscription filters
are a deliberately small portable model that both the embedded broker evaluates and
`sql()` renders to a Service Bus SQL filter.

Add a subscription with one line in `TOPOLOGY`, e.g.
`Subscription("notifications", SubjectIn(("order.placed", "order.paid"))),`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from cloudcart.core.ports.messages import PropertyValue, UnknownEntity

RESUBMIT_PROPERTY = "cloudcart_resubmit_to"
"""Application property that routes a resubmitted dead letter back to one subscription.

On Service Bus a copy can only be sent to the topic, so every subscription's rendered rule
accepts a message either because its own filter matches and the property is absent, or
because the property names that subscription; the other subscriptions ignore the copy.
"""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")


def _sql_literal(value: PropertyValue) -> str:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def iso_duration(value: timedelta) -> str:
    """An ISO 8601 duration as Bicep/ARM expect it (`PT10M`, `P14D`, `PT1M30S`)."""
    total = int(value.total_seconds())
    if total <= 0 or value != timedelta(seconds=total):
        raise ValueError("durations must be a positive whole number of seconds")
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (
        (f"{hours}H" if hours else "")
        + (f"{minutes}M" if minutes else "")
        + (f"{seconds}S" if seconds else "")
    )
    return out + ("T" + clock if clock else "")


@dataclass(frozen=True)
class SubjectIn:
    """The message's subject (event type) is one of `subjects`."""

    subjects: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.subjects:
            raise ValueError("SubjectIn needs at least one subject")

    def matches(self, subject: str | None, properties: Mapping[str, PropertyValue]) -> bool:
        """Whether a message with this subject and properties passes."""
        return subject in self.subjects

    def sql(self) -> str:
        """The Service Bus SQL filter expression."""
        return "sys.Label IN (" + ", ".join(_sql_literal(s) for s in self.subjects) + ")"


@dataclass(frozen=True)
class SubjectPrefix:
    """The message's subject starts with `prefix` (`order.` for every order event)."""

    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "%_[]'"):
            raise ValueError("prefix must be non-empty and free of SQL LIKE wildcards")

    def matches(self, subject: str | None, properties: Mapping[str, PropertyValue]) -> bool:
        """Whether a message with this subject and properties passes."""
        return subject is not None and subject.startswith(self.prefix)

    def sql(self) -> str:
        """The Service Bus SQL filter expression."""
        return f"sys.Label LIKE '{self.prefix}%'"


@dataclass(frozen=True)
class PropertyEquals:
    """An application property equals `value` (same type: `1` does not match `"1"`)."""

    name: str
    value: PropertyValue

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(f"property name {self.name!r} must be a plain identifier")

    def matches(self, subject: str | None, properties: Mapping[str, PropertyValue]) -> bool:
        """Whether a message with this subject and properties passes."""
        if self.name not in properties:
            return False
        actual = properties[self.name]
        return type(actual) is type(self.value) and actual == self.value

    def sql(self) -> str:
        """The Service Bus SQL filter expression."""
        return f"user.{self.name} = {_sql_literal(self.value)}"


@dataclass(frozen=True)
class AllOf:
    """Every one of `filters` passes."""

    filters: tuple[SubjectIn | SubjectPrefix | PropertyEquals, ...]

    def __post_init__(self) -> None:
        if not self.filters:
            raise ValueError("AllOf needs at least one filter")

    def matches(self, subject: str | None, properties: Mapping[str, PropertyValue]) -> bool:
        """Whether a message with this subject and properties passes."""
        return all(f.matches(subject, properties) for f in self.filters)

    def sql(self) -> str:
        """The Service Bus SQL filter expression."""
        return " AND ".join(f"({f.sql()})" for f in self.filters)


MessageFilter = SubjectIn | SubjectPrefix | PropertyEquals | AllOf
"""A subscription filter; `None` on a subscription means "every message"."""


@dataclass(frozen=True)
class Subscription:
    """A topic subscription: a copy of every matching message, its own dead-letter queue."""

    name: str
    filter: MessageFilter | None = None
    max_delivery_count: int = 10
    lock_duration: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        _check_entity(self.name, self.max_delivery_count, self.lock_duration)

    def accepts(self, subject: str | None, properties: Mapping[str, PropertyValue]) -> bool:
        """Whether a message published to the topic gets a copy here."""
        if RESUBMIT_PROPERTY in properties:
            return properties[RESUBMIT_PROPERTY] == self.name
        return self.filter is None or self.filter.matches(subject, properties)

    def sql_filter(self) -> str:
        """The subscription's Service Bus SQL rule, resubmit routing included."""
        own = "1=1" if self.filter is None else self.filter.sql()
        return (
            f"(({own}) AND user.{RESUBMIT_PROPERTY} IS NULL)"
            f" OR user.{RESUBMIT_PROPERTY} = {_sql_literal(self.name)}"
        )


@dataclass(frozen=True)
class Topic:
    """A topic. `duplicate_detection_window` None turns duplicate detection off."""

    name: str
    subscriptions: tuple[Subscription, ...] = ()
    duplicate_detection_window: timedelta | None = timedelta(minutes=10)
    default_message_ttl: timedelta = timedelta(days=14)

    def __post_init__(self) -> None:
        _check_name(self.name)
        names = [s.name for s in self.subscriptions]
        if len(set(names)) != len(names):
            raise ValueError(f"topic {self.name!r} declares a subscription twice")

    def subscription(self, name: str) -> Subscription:
        """A subscription by name. Raises UnknownEntity."""
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise UnknownEntity(f"topic {self.name!r} has no subscription {name!r}")


@dataclass(frozen=True)
class Queue:
    """A queue: one consumer group, one copy of each message."""

    name: str
    max_delivery_count: int = 10
    lock_duration: timedelta = timedelta(seconds=60)
    duplicate_detection_window: timedelta | None = timedelta(minutes=10)
    default_message_ttl: timedelta = timedelta(days=14)

    def __post_init__(self) -> None:
        _check_entity(self.name, self.max_delivery_count, self.lock_duration)


def _check_name(name: str) -> None:
    if not _ENTITY_NAME.match(name):
        raise ValueError(f"entity name {name!r}: letters, digits, '.', '-', '_' (max 50)")


def _check_entity(name: str, max_delivery_count: int, lock_duration: timedelta) -> None:
    _check_name(name)
    if max_delivery_count < 1:
        raise ValueError("max_delivery_count must be at least 1")
    # Service Bus allows locks of 5 s to 5 min; the embedded broker accepts shorter ones so
    # tests can watch a lock expire quickly.
    if not timedelta(0) < lock_duration <= timedelta(minutes=5):
        raise ValueError("lock_duration must be positive and at most 5 minutes")


@dataclass(frozen=True)
class Topology:
    """Every topic and queue of the app."""

    topics: tuple[Topic, ...] = ()
    queues: tuple[Queue, ...] = ()
    _by_name: dict[str, Topic | Queue] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Topic | Queue] = {}
        for entity in self.entities():
            if entity.name in by_name:
                raise ValueError(f"entity {entity.name!r} is declared twice")
            by_name[entity.name] = entity
        object.__setattr__(self, "_by_name", by_name)

    def entities(self) -> tuple[Topic | Queue, ...]:
        """Every topic, then every queue."""
        return (*self.topics, *self.queues)

    def entity(self, name: str) -> Topic | Queue:
        """A topic or queue by name. Raises UnknownEntity."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownEntity(f"no topic or queue named {name!r}") from None

    def is_topic(self, name: str) -> bool:
        """Whether `name` is a declared topic (False for a queue). Raises UnknownEntity."""
        return isinstance(self.entity(name), Topic)


PARTNER_LOCK = timedelta(seconds=15)
"""Lock duration of the partner connectors' subscriptions and inbound queues."""

NOTIFICATIONS_LOCK = timedelta(seconds=30)
"""Lock duration of the notifications subscriptions (equal to a send's lease)."""

TOPOLOGY = Topology(
    topics=(
        # Every domain event (`order.placed`, `order.paid`, ...), relayed from the outbox.
        Topic(
            "events",
            subscriptions=(
                # Keeps the product search index in step with the catalog and stock.
                Subscription(
                    "search-indexer",
                    SubjectIn(
                        (
                            "product.created",
                            "product.updated",
                            "product.archived",
                            "inventory.changed",
                        )
                    ),
                ),
                # The fulfilment connector: a paid order (or one released from hold) goes
                # to the fulfilment partner; a cancelled one is withdrawn there.
                # Partner calls can be slow, and the host renews the lock while one runs;
                # a short lock brings a crashed connector's message back within seconds.
                Subscription(
                    "fulfilment",
                    SubjectIn(("order.paid", "order.status_changed", "order.cancelled")),
                    lock_duration=PARTNER_LOCK,
                ),
                # The inventory connector tells the warehouse (WMS) about every stock move.
                Subscription(
                    "inventory-sync", SubjectIn(("inventory.changed",)), lock_duration=PARTNER_LOCK
                ),
                # The journal: captures and refunds become entries (cloudcart/ledger).
                Subscription("ledger", SubjectIn(("order.paid", "refund.issued"))),
                # The accounting connector imports every journal entry.
                Subscription(
                    "accounting", SubjectIn(("ledger.posted",)), lock_duration=PARTNER_LOCK
                ),
                # The CRM connector: contacts, their consent, their orders, their erasure.
                Subscription(
                    "crm",
                    SubjectIn(
                        (
                            "customer.created",
                            "customer.updated",
                            "customer.erased",
                            "order.paid",
                            "order.status_changed",
                            "refund.issued",
                        )
                    ),
                    lock_duration=PARTNER_LOCK,
                ),
                # Notifications (cloudcart/notifications): the customer events that email,
                # text or show an in-app message. The lock matches a send's lease, so a
                # crashed send is retaken when its message comes back.
                Subscription(
                    "notifications",
                    SubjectIn(
                        (
                            "customer.created",
                            "order.placed",
                            "order.paid",
                            "order.payment_failed",
                            "shipment.dispatched",
                            "shipment.delivered",
                            "shipment.delivery_failed",
                            "order.cancelled",
                            "return.received",
                            "refund.issued",
                        )
                    ),
                    lock_duration=NOTIFICATIONS_LOCK,
                ),
                # Insights (cloudcart/insights): storefront events become browsing history.
                Subscription("insights-history", SubjectIn(("storefront.events_recorded",))),
                # Insights: paid and imported orders keep co-purchase neighbours, purchase
                # history and popularity; signed-in customers' views seed for-you; catalog
                # and stock changes keep unavailable products out of recommendations.
                Subscription(
                    "insights-recommendations",
                    SubjectIn(
                        (
                            "order.paid",
                            "order.imported",
                            "product.created",
                            "product.updated",
                            "product.archived",
                            "inventory.changed",
                            "storefront.events_recorded",
                        )
                    ),
                ),
                # Marketing triggers (cloudcart/marketing): carts and orders schedule and
                # cancel abandoned-cart reminders, restocks notify back-in-stock
                # subscribers, views and price changes drive price-drop messages.
                Subscription(
                    "marketing",
                    SubjectIn(
                        (
                            "cart.updated",
                            "order.placed",
                            "inventory.changed",
                            "product.updated",
                            "storefront.events_recorded",
                        )
                    ),
                ),
                # Analytics (cloudcart/analytics): hourly and daily roll-ups of storefront,
                # order, fulfilment and stock events.
                Subscription(
                    "analytics",
                    SubjectIn(
                        (
                            "storefront.events_recorded",
                            "order.placed",
                            "order.paid",
                            "order.cancelled",
                            "order.imported",
                            "refund.issued",
                            "return.received",
                            "shipment.dispatched",
                            "shipment.delivered",
                            "inventory.changed",
                            "notification.status_changed",
                        )
                    ),
                ),
                # Makes image thumbnails after an upload completes.
                Subscription("media-thumbnails", SubjectIn(("media.uploaded",))),
                # The pipeline canary (cloudcart/ops/diagnostics.py): few deliveries and a
                # short lock, so a poison ping dead-letters and a crashed one returns fast.
                Subscription(
                    "diagnostics",
                    SubjectIn(("diagnostics.pinged",)),
                    max_delivery_count=3,
                    lock_duration=timedelta(seconds=5),
                ),
            ),
            duplicate_detection_window=timedelta(minutes=10),
            default_message_ttl=timedelta(days=14),
        ),
        # Operational events (`ops.*`): alerts such as dead letters, job results.
        Topic(
            "ops",
            subscriptions=(
                # Every operational event becomes an alert (cloudcart/ops/alerts.py).
                Subscription("alerts", SubjectPrefix("ops.")),
                # Alerts mailed to the operators (NOTIFICATIONS_OPS_EMAIL).
                Subscription(
                    "notifications",
                    SubjectIn(("ops.dead_lettered", "ops.stock_shortfall")),
                    lock_duration=NOTIFICATIONS_LOCK,
                ),
            ),
            duplicate_detection_window=timedelta(minutes=10),
            default_message_ttl=timedelta(days=7),
        ),
    ),
    queues=(
        # Partners' inbound messages (docs/partners/): one queue per partner, so each can be
        # given send rights on its own queue only.
        Queue("fulfilment-updates", lock_duration=PARTNER_LOCK),
        Queue("inventory-updates", lock_duration=PARTNER_LOCK),
        # Abandoned-cart reminders, scheduled for when a cart has been left alone long
        # enough (cloudcart/marketing/abandoned_cart.py).
        Queue("marketing-reminders"),
    ),
)
"""The app's topology. Bicep and the trigger decorators are checked against it."""
