"""The facts journal: what the analytics consumer has learnt, waiting to be folded.

Counting straight into shared roll-up documents from every Service Bus delivery makes the
concurrent handlers fight over the same documents (the day's totals), each losing round
read again: the busier the shop, the worse. So counting has two steps:

1. `record`: the `analytics_facts` function turns each event into its facts and writes
   them to the `analyticsfacts` container, one document per fact, its id the fact's key.
   Writes go to different documents, so concurrent handlers never conflict, and a
   redelivery rewrites the same documents.
2. `fold`: the `analytics_fold` function reads the journal's change feed (one reader per
   lease, pages of up to 100 facts) and folds each page into the roll-ups with
   `rollups.apply_facts`: one transactional batch per day, processed markers included,
   so a page read twice counts nothing twice.

The journal keeps a fact for `JOURNAL_TTL_DAYS`, time enough to replay the change feed,
and a storefront fact for `STOREFRONT_DAYS`: no other store keeps every storefront batch
(the insights history drops those a customer clears or withholds), so these facts are
what `cloudcart analytics verify` recounts the storefront figures of recent days from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from cloudcart.analytics.facts import Fact, parse_time
from cloudcart.analytics.rollups import Outcome, apply_facts, day_key
from cloudcart.core.errors import BatchFailed, Conflict
from cloudcart.core.ports.documents import (
    BatchOp,
    Container,
    Document,
    DocumentStore,
    Filter,
    Query,
    every,
)

JOURNAL = "analyticsfacts"
JOURNAL_TTL_DAYS = 7
STOREFRONT_DAYS = 35
"""Days a storefront fact is kept (the container's default keeps others 7 days)."""
FACT_KIND = "fact"
STOREFRONT = "storefront"
"""The fact kind of a storefront batch."""
MAX_BATCH_OPERATIONS = 100


def _container(store: DocumentStore) -> Container:
    return store.container(JOURNAL)


def fact_document(fact: Fact) -> Document:
    """The journal document of a fact (partition: the UTC day of its time)."""
    document: Document = {
        "id": fact.key,
        "bucket": day_key(fact.at),
        "kind": FACT_KIND,
        "fact": fact.kind,
        "at": fact.at.isoformat(),
        "data": dict(fact.data),
    }
    if fact.kind == STOREFRONT:
        document["ttl"] = STOREFRONT_DAYS * 86_400
    return document


def fact_of(document: Mapping[str, Any]) -> Fact | None:
    """The fact a journal document holds (None for anything else)."""
    if document.get("kind") != FACT_KIND:
        return None
    at = parse_time(document.get("at"))
    if at is None:
        return None
    return Fact(str(document["id"]), str(document["fact"]), at, dict(document.get("data") or {}))


def record(store: DocumentStore, facts: Sequence[Fact]) -> int:
    """Write facts to the journal (one batch per day and 100 facts); returns how many were
    written. Writing a fact again only rewrites its document (a fold counts it once)."""
    by_day: dict[str, list[Document]] = {}
    for fact in facts:
        document = fact_document(fact)
        by_day.setdefault(document["bucket"], []).append(document)
    journal = _container(store)
    for day, documents in by_day.items():
        for start in range(0, len(documents), MAX_BATCH_OPERATIONS):
            chunk = documents[start : start + MAX_BATCH_OPERATIONS]
            try:
                # Creates: a first delivery (the common case) needs no read, and a
                # redelivery leaves the journal, and so its change feed, untouched.
                journal.batch(day, [BatchOp("create", document=d) for d in chunk])
            except BatchFailed as exc:
                if not isinstance(exc.cause, Conflict):
                    raise
                journal.batch(day, [BatchOp("upsert", document=d) for d in chunk])
    return len(facts)


def storefront_facts(store: DocumentStore) -> Iterator[Fact]:
    """Every storefront fact the journal keeps (a cross-partition query, page by page: for
    verify and rebuild, never for a request)."""
    query = Query(
        filters=(Filter("kind", "eq", FACT_KIND), Filter("fact", "eq", STOREFRONT)), limit=500
    )
    for document in every(_container(store), query):
        fact = fact_of(document)
        if fact is not None:
            yield fact


def fold(store: DocumentStore, documents: Iterable[Mapping[str, Any]]) -> Outcome:
    """Fold a change-feed page of the journal into the roll-ups (each fact once)."""
    facts = [fact for document in documents if (fact := fact_of(document)) is not None]
    return apply_facts(store, facts)
