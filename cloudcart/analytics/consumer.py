"""The analytics consumer: events of the `analytics` subscription become roll-ups.

`record_events` is what the `analytics_facts` function runs for each delivery: the event
becomes its facts (`cloudcart.analytics.facts`), written to the journal
(`cloudcart.analytics.journal`), which the `analytics_fold` function folds into the
roll-ups. `handle_events` does both steps at once (tests, tools).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cloudcart.analytics import journal
from cloudcart.analytics.facts import EVENTS, Fact, Lookups, event_facts
from cloudcart.analytics.rollups import Outcome
from cloudcart.core.events import Event
from cloudcart.core.ports.documents import DocumentStore

_lookups: dict[int, Lookups] = {}
_lookups_lock = threading.Lock()


def lookups_for(store: DocumentStore) -> Lookups:
    """One `Lookups` (and its category cache) per document store."""
    with _lookups_lock:
        found = _lookups.get(id(store))
        if found is None or found.store is not store:
            if len(_lookups) > 8:
                _lookups.clear()
            found = _lookups[id(store)] = Lookups(store)
        return found


def facts_of(store: DocumentStore, events: Sequence[Event]) -> list[Fact]:
    """The facts the events announce (InvalidMessage when one cannot be read)."""
    lookups = lookups_for(store)
    facts: list[Fact] = []
    for event in events:
        if event.type in EVENTS:
            facts.extend(event_facts(event, lookups))
    return facts


def record_events(store: DocumentStore, events: Sequence[Event]) -> int:
    """Write the facts the events announce to the journal; returns how many. Raises
    InvalidMessage when an event cannot be read (nothing of it is written)."""
    return journal.record(store, facts_of(store, events))


def handle_events(store: DocumentStore, events: Sequence[Event]) -> Outcome:
    """Record the events' facts and fold them at once (each fact counted once, however
    often an event is delivered): the two steps of the functions, in one call."""
    facts = facts_of(store, events)
    journal.record(store, facts)
    return journal.fold(store, [journal.fact_document(fact) for fact in facts])
