"""The search port: what business code may ask of a product search engine.

Adapters: `cloudcart.core.search.embedded` (tantivy on disk, local and tests) and
`cloudcart.core.search.azure` (Azure AI Search). Both build their index from
`cloudcart.core.search.spec` and index the documents made by
`cloudcart.core.search.documents.to_search_document`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

SearchDocument = dict[str, Any]
"""A search document: the fields of `spec.FIELDS` (camelCase), `id` being the product id."""

Sort = Literal["relevance", "price_asc", "price_desc", "newest"]


class InvalidCursor(ValueError):
    """The cursor is malformed or belongs to another query."""


@dataclass(frozen=True)
class SearchQuery:
    """A product search. `text` may be empty (browse by filters). Prices in minor units;
    `cursor` is the `next_cursor` of the previous page of the same query."""

    text: str = ""
    category: str | None = None
    brand: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    sort: Sort = "relevance"
    limit: int = 20
    cursor: str | None = None


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet and how many matching products have it."""

    value: str
    count: int


@dataclass(frozen=True)
class SearchResult:
    """One page of results: `items` are search documents (best first, each with the
    `variant` the query asked for when it named one), `total` counts every match, `facets`
    are computed over every match, `next_cursor` is None on the last page."""

    items: list[SearchDocument]
    total: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    next_cursor: str | None = None


@runtime_checkable
class SearchIndex(Protocol):
    """A product search index."""

    def upsert(self, documents: Iterable[SearchDocument]) -> None:
        """Add or replace documents by id; searchable within seconds."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (unknown ids are ignored)."""
        ...

    def replace_all(self, documents: Iterable[SearchDocument]) -> int:
        """Make the index hold exactly these documents (a full rebuild); returns the count."""
        ...

    def search(self, query: SearchQuery) -> SearchResult:
        """Run a search. Raises InvalidCursor for a cursor of another query."""
        ...

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Typeahead: product titles (and brands) matching what the customer typed so far."""
        ...

    def check(self) -> None:
        """Raise if the index cannot be reached (readiness probe)."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...
