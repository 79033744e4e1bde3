"""A documents store that pages its queries as stingily as Cosmos DB may.

Cosmos answers a query a physical partition at a time and may end a page early for time
or size, so a page can hold fewer items than asked for, even none, while a continuation
remains (the port allows exactly that). `ShortPagesStore` wraps any store and makes every
query do it: an empty page first, then pages of at most one item, each followed by
another empty one. Code that reads one page and takes it for "the first n" breaks on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cloudcart.core.ports.documents import Container, Document, DocumentStore, Page, Query


def _token(inner: str | None, *, empty_next: bool) -> str:
    return json.dumps({"inner": inner, "emptyNext": empty_next})


class ShortPagesContainer:
    """A container whose queries answer an empty page, then one item, then an empty page..."""

    def __init__(self, inner: Container) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.queries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_many(self, keys: Sequence[tuple[str, str]]) -> list[Document]:
        """The inner container's read many: point reads, not pages, so nothing to shorten."""
        return self.inner.read_many(keys)

    def query(
        self,
        query: Query,
        *,
        partition_key: str | None = None,
        continuation: str | None = None,
    ) -> Page:
        """The next page: empty, or at most one item; a continuation unless the end."""
        self.queries += 1
        if continuation is None:
            return Page(items=[], continuation=_token(None, empty_next=False))
        state = json.loads(continuation)
        if state["emptyNext"]:
            return Page(items=[], continuation=_token(state["inner"], empty_next=False))
        page = self.inner.query(
            replace(query, limit=1), partition_key=partition_key, continuation=state["inner"]
        )
        if page.continuation is None:
            return Page(items=page.items, continuation=None)
        return Page(items=page.items, continuation=_token(page.continuation, empty_next=True))


class ShortPagesStore:
    """Wraps a store; every container it hands out pages like `ShortPagesContainer`."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner
        self._containers: dict[str, ShortPagesContainer] = {}

    def container(self, name: str) -> ShortPagesContainer:
        """The wrapped container of that name."""
        if name not in self._containers:
            self._containers[name] = ShortPagesContainer(self.inner.container(name))
        return self._containers[name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
