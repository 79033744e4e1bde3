"""A documents store that counts the calls its containers answer: store round trips."""

from __future__ import annotations

from collections import Counter
from typing import Any


class CountingContainer:
    """Wraps a Container and counts calls by (container, method)."""

    def __init__(self, inner: Any, counts: Counter[str]) -> None:
        self._inner = inner
        self._counts = counts
        self.spec = inner.spec

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._counts[f"{self.spec.name}.{name}"] += 1
            return attr(*args, **kwargs)

        return counted


class CountingStore:
    """Wraps a DocumentStore so every container it hands out is counted."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.counts: Counter[str] = Counter()

    def container(self, name: str) -> Any:
        return CountingContainer(self._inner.container(name), self.counts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
