"""The analytics consumer: events of the `analytics` subscription become roll-ups.

`handle_events` takes one delivery or a batch of them: every event becomes its facts
(`cloudcart.analytics.facts`), and the facts of all of them are folded into the roll-ups
together, one transactional batch per bucket (`cloudcart.analytics.rollups.apply_facts`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cloudcart.analytics.facts import EVENTS, Fact, Lookups, event_facts
from cloudcart.analytics.rollups import Outcome, apply_facts
from cloudcart.core.documents.port import DocumentStore
from cloudcart.core.events import Event

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


def handle_events(store: DocumentStore, events: Sequence[Event]) -> Outcome:
    """Count the events (each fact once, however often an event is delivered).

    Raises InvalidMessage when an event cannot be read; nothing of the batch is counted
    then, and its valid events count when they come back.
    """
    lookups = lookups_for(store)
    facts: list[Fact] = []
    for event in events:
        if event.type in EVENTS:
            facts.extend(event_facts(event, lookups))
    return apply_facts(store, facts)
