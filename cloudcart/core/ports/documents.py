"""The documents port: what business code may ask of a document database.

The shape follows Cosmos DB for NoSQL (partitioned JSON documents with `id`, `_etag`,
`_ts`, per-document `ttl`) because that is production; the embedded SQLite adapter gives
the same behaviour locally. Documents are plain JSON dicts.

Errors: `NotFound`, `Conflict`, `PreconditionFailed`, `BatchFailed`, `Unavailable` from
`cloudcart.core.errors`.

Limits, Cosmos DB's, which both adapters refuse alike with `ValueError` before anything is
written: a document (its JSON without system properties) and a batch (its documents and
patch values together) of at most 2 MB, at most 10 operations per patch and 100 per batch,
and no '/', '\\', '?' or '#' in an id. `Container.read_many` takes at most
`MAX_READ_MANY_KEYS` keys, so one call stays one bounded request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

Document = dict[str, Any]
"""A JSON document. Adapters add the system properties `_etag` (str) and `_ts` (int)."""

MAX_READ_MANY_KEYS = 1000
"""The most (id, partition key) pairs one `Container.read_many` call takes: Cosmos DB
reads at most this many items per query, so a call stays one query per physical
partition, and no caller can turn a page view into an unbounded request."""

CompositeOrder = Literal["ascending", "descending"]
"""Direction of one path in a Cosmos composite index."""

FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "startswith", "exists"]


@dataclass(frozen=True)
class Filter:
    """`field <op> value`. `field` is a dotted path (`address.country`).

    `in` takes a list; `contains` means "array field holds value"; `startswith` is for
    strings; `exists` takes a bool (whether the field is defined).
    """

    field: str
    op: FilterOp
    value: Any = None


@dataclass(frozen=True)
class Order:
    """Sort by one field."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """A small portable query: all filters must hold (AND), then order, then a page size.

    Adapters translate it (parameterised SQL for Cosmos, JSON functions for SQLite); there is
    deliberately no free-form SQL, so both adapters agree on what every query means.

    Ordering by one field returns every match, those lacking the field first when
    ascending. Ordering by two or more fields leaves out documents lacking any of them:
    Cosmos serves such a sort from a composite index, which has no entry for them.
    """

    filters: Sequence[Filter] = ()
    order_by: Sequence[Order] = ()
    limit: int = 100


@dataclass(frozen=True)
class Page:
    """One page of query results; `continuation` is opaque and None on the last page.

    A page holds at most the query's `limit` items but may hold fewer, even none, while a
    continuation remains: Cosmos serves a cross-partition query a physical partition at a
    time and may end any page early. Code that wants "the first n" uses `fill_page` or
    `first`, never one page.
    """

    items: list[Document]
    continuation: str | None = None


PatchKind = Literal["set", "add", "replace", "remove", "incr"]


@dataclass(frozen=True)
class PatchOp:
    """One partial-update operation on a JSON path written with dots (`stock.available`)."""

    op: PatchKind
    path: str
    value: Any = None


@dataclass(frozen=True)
class BatchOp:
    """One operation of a transactional batch.

    kind `create`|`upsert`: `document`; `replace`: `document` and optional `if_match`;
    `delete`: `id` and optional `if_match`; `read`: `id`; `patch`: `id`, `patch` ops and
    optional `condition`/`if_match`.
    """

    kind: Literal["create", "upsert", "replace", "delete", "read", "patch"]
    document: Document | None = None
    id: str | None = None
    if_match: str | None = None
    patch: Sequence[PatchOp] = ()
    condition: Sequence[Filter] = ()


@dataclass(frozen=True)
class ChangeFeedPage:
    """Documents created or changed after a checkpoint, oldest first.

    Pass `checkpoint` back to get what changed since. Deletes do not appear (Cosmos's
    latest-version mode), so services announce removals with events, not deletes.
    """

    items: list[Document]
    checkpoint: str


@dataclass(frozen=True)
class ContainerSpec:
    """A container of the registry: its name, partition key path and default TTL.

    `outbox`: the container carries transactional-outbox events (`kind == "outbox"`
    documents) that a change-feed function relays to the events topic.

    `embedded_only`: only the embedded adapters use it; Bicep does not deploy it.

    `default_ttl`: None means documents never expire, -1 means TTL is on but only documents
    with their own `ttl` expire, n > 0 means documents expire n seconds after their last
    write unless they say otherwise (Cosmos semantics).

    `composite_indexes`: Cosmos needs one for every ORDER BY on two or more fields, in the
    same field order and directions (or all reversed). Each index is a tuple of
    (path, order) pairs such as `(("/createdAt", "descending"), ("/id", "ascending"))`.
    The Cosmos adapter and infra/bicep/modules/cosmos.bicep create them; tests/infra checks
    that both agree and that every multi-field sort in the code has one.

    `embedded_indexes`: dotted fields (`("type", "status", "createdAt")`) the embedded store
    keeps a SQLite index over, for hot queries that filter on the leading fields by equality
    and sort by the next one: without one SQLite parses every document of the container.
    Cosmos indexes every path already and ignores them.
    """

    name: str
    partition_key_path: str
    default_ttl: int | None = None
    description: str = ""
    unique_keys: Sequence[str] = field(default_factory=tuple)
    outbox: bool = False
    # Embedded-only containers (the test gateway's payments) exist only in the SQLite store;
    # Azure never uses them, so the Bicep check skips them instead of demanding a container.
    embedded_only: bool = False
    composite_indexes: tuple[tuple[tuple[str, CompositeOrder], ...], ...] = ()
    embedded_indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def partition_key_field(self) -> str:
        """The partition key path as a dotted field name (`/customerId` -> `customerId`)."""
        return self.partition_key_path.lstrip("/").replace("/", ".")


@runtime_checkable
class Container(Protocol):
    """One container: documents of one kind family, partitioned by `spec.partition_key_path`."""

    spec: ContainerSpec

    def read(self, id: str, partition_key: str) -> Document:
        """Point read. Raises NotFound."""
        ...

    def read_many(self, keys: Sequence[tuple[str, str]]) -> list[Document]:
        """Point reads of many (id, partition key) pairs, one round trip from the caller's
        view (Cosmos: one query per physical partition, run in parallel).

        Documents that do not exist (or have expired) are left out, never raised as
        NotFound. Results come in the order of `keys`; a key given twice returns its
        document once. Each document is what `read` returns for its key. An empty `keys`
        makes no call and returns []. More than `MAX_READ_MANY_KEYS` keys raise ValueError
        (one call is one bounded request: split larger sets).
        """
        ...

    def create(self, document: Document) -> Document:
        """Insert; raises Conflict when the id exists in that partition."""
        ...

    def replace(self, document: Document, *, if_match: str | None = None) -> Document:
        """Replace an existing document; with `if_match`, only if its `_etag` still matches
        (else PreconditionFailed). Raises NotFound."""
        ...

    def upsert(self, document: Document) -> Document:
        """Create or replace."""
        ...

    def delete(self, id: str, partition_key: str, *, if_match: str | None = None) -> None:
        """Delete. Raises NotFound, or PreconditionFailed on an ETag mismatch."""
        ...

    def patch(
        self,
        id: str,
        partition_key: str,
        operations: Sequence[PatchOp],
        *,
        condition: Sequence[Filter] = (),
        if_match: str | None = None,
    ) -> Document:
        """Apply operations atomically, only if every `condition` filter holds on the stored
        document (else PreconditionFailed, nothing written). Example: reserve stock with
        `[PatchOp("incr", "available", -2)]` and condition `[Filter("available", "ge", 2)]`."""
        ...

    def query(
        self,
        query: Query,
        *,
        partition_key: str | None = None,
        continuation: str | None = None,
    ) -> Page:
        """One page of a query in one partition (`partition_key`) or across all of them;
        it may be short or empty while `continuation` is set (see `Page`)."""
        ...

    def batch(self, partition_key: str, operations: Sequence[BatchOp]) -> list[Document]:
        """Run operations in one partition as one transaction: all apply or none
        (BatchFailed). Returns one result per operation (`{}` for a delete)."""
        ...

    def change_feed(self, checkpoint: str | None = None, *, max_items: int = 100) -> ChangeFeedPage:
        """Documents changed after `checkpoint` (None: from the beginning)."""
        ...


@runtime_checkable
class DocumentStore(Protocol):
    """A database: containers by name, as declared in the registry."""

    def container(self, name: str) -> Container:
        """The container of that name (it must be in the registry)."""
        ...

    def ensure_containers(self) -> None:
        """Create the database and every registered container if missing (local/dev only;
        Bicep creates them in Azure)."""
        ...

    def check(self) -> None:
        """Raise if the store cannot be reached (readiness probe)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def fill_page(
    container: Container,
    query: Query,
    *,
    partition_key: str | None = None,
    continuation: str | None = None,
) -> Page:
    """Up to `query.limit` items, following continuations past short and empty pages.

    Each further page asks only for the items still missing, so the continuation returned
    resumes right after the last item returned (an API cursor stays exact). It is None
    once the query has nothing more.
    """
    items: list[Document] = []
    while True:
        page = container.query(
            replace(query, limit=query.limit - len(items)),
            partition_key=partition_key,
            continuation=continuation,
        )
        items.extend(page.items)
        continuation = page.continuation
        if continuation is None or len(items) >= query.limit:
            return Page(items=items, continuation=continuation)


def pages(
    container: Container, query: Query, *, partition_key: str | None = None
) -> Iterator[Page]:
    """The pages of `query`, lazily, from the first to the one without a continuation
    (`query.limit` is the page size; a page may be short or empty, see `Page`).

    The next page is asked for only when the caller comes back for it, so a caller may stop
    early, or act on each page before the next is read.
    """
    continuation: str | None = None
    while True:
        page = container.query(query, partition_key=partition_key, continuation=continuation)
        yield page
        continuation = page.continuation
        if continuation is None:
            return


def each(
    container: Container, query: Query, *, partition_key: str | None = None
) -> Iterator[Document]:
    """Every match of `query`, lazily, page after page (`query.limit` is the page size):
    for scans too large to hold at once."""
    for page in pages(container, query, partition_key=partition_key):
        yield from page.items


def every(
    container: Container, query: Query, *, partition_key: str | None = None
) -> list[Document]:
    """Every match of `query`, page after page (`query.limit` is the page size)."""
    return list(each(container, query, partition_key=partition_key))


def set_field(document: Document, field: str, value: Any) -> None:
    """Set a dotted `field` (`address.country`, as in `Filter` and partition key fields) of
    `document` to `value`, creating the objects on its way that are missing."""
    parts = field.split(".")
    target = document
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def strip_system(document: Mapping[str, Any]) -> Document:
    """A shallow copy of a stored `document` without its system properties (`_etag`,
    `_ts`, `_rid`, ...): every property whose name starts with `_`, a prefix the database
    reserves, so the copy is fit to write back, export or compare."""
    return {k: v for k, v in document.items() if not k.startswith("_")}


def first(
    container: Container, query: Query, *, partition_key: str | None = None
) -> Document | None:
    """The query's first match, or None when it has none (however its pages come)."""
    found = fill_page(container, replace(query, limit=1), partition_key=partition_key)
    return found.items[0] if found.items else None


@contextmanager
def bulk(store: DocumentStore) -> Iterator[None]:
    """Let the store commit the block's writes together, where it can.

    Each batch keeps its own all-or-nothing; what changes is what it costs. The embedded
    store runs the block in one SQLite transaction (one commit instead of one per batch;
    a crash loses the whole block, which bulk work such as an import simply redoes).
    Cosmos DB has no transaction across partitions, so there every batch commits on its
    own as before. Optional on purpose: a store (or a wrapper used in tests) without a
    `bulk()` of its own writes as usual.
    """
    begin = getattr(store, "bulk", None)
    if begin is None:
        yield
        return
    with begin():
        yield
