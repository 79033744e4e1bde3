"""The embedded documents adapter: one SQLite file in WAL mode.

It gives local runs and tests the same behaviour as Cosmos DB for NoSQL: ETags, `_ts`,
TTL, conditional patches, transactional batches and a change feed. Safe for many threads
and several processes sharing one file: every write runs in `BEGIN IMMEDIATE`, which takes
SQLite's single write lock up front, so a read-check-write sequence can never interleave
with another writer (the basis of oversell-free stock reservations).

Layout: one table per registered container (`c_<name>`) holding the JSON body with its
partition key, ETag, expiry time and the change sequence of its last write; a `meta` table
holds the database-wide change sequence.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cloudcart.core.cursors import decode_token, encode_token
from cloudcart.core.documents.registry import CONTAINERS
from cloudcart.core.documents.rules import (
    IDENTIFIER,
    SYSTEM_PROPERTIES,
    check_batch_bytes,
    check_batch_size,
    check_patch_size,
    check_size,
    clean_document,
    compact_json,
    container_spec_in,
    effective_ttl,
    field_path,
    partition_key_of,
    read_many_keys,
)
from cloudcart.core.errors import (
    BatchFailed,
    Conflict,
    DocumentError,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from cloudcart.core.ports.documents import (
    BatchOp,
    ChangeFeedPage,
    Container,
    ContainerSpec,
    Document,
    DocumentStore,
    Filter,
    Page,
    PatchOp,
    Query,
)

if TYPE_CHECKING:
    from cloudcart.core.settings import Settings

_BUSY_TIMEOUT_MS = 30_000
_CLOSE_WAIT_SECONDS = 30
# Expired rows are invisible at once; physically deleting them is housekeeping, done
# every so many writes so that no single request pays for a large purge.
_PURGE_EVERY_WRITES = 200


def from_settings(settings: Settings) -> DocumentStore:
    """The embedded store in `settings.data_dir / "documents.sqlite3"`, containers created.

    Locally nothing else creates the containers (Bicep does that in Azure), so this makes
    sure they exist; doing it at every start is cheap and idempotent.
    """
    store = SqliteDocumentStore(Path(settings.data_dir) / "documents.sqlite3")
    store.ensure_containers()
    return store


def _json_path(field: str) -> str:
    return "$" + "".join(f'."{p}"' for p in field_path(field))


def _extract(field: str) -> str:
    """`json_extract` of a field with its path written into the SQL, not bound: SQLite uses
    an index on an expression only for the very same expression, so a bound path could
    never use one. Safe to inline: `field_path` allows identifier segments only."""
    return f"json_extract(body, '{_json_path(field)}')"


def _index_name(container: str, fields: Sequence[str]) -> str:
    return f"ix_{container}_" + "_".join(f.replace(".", "_") for f in fields)


def _decode_token(token: str) -> dict[str, Any]:
    try:
        return decode_token(token)
    except ValueError as exc:
        raise ValueError("malformed continuation token") from exc


def _new_etag() -> str:
    return f'"{uuid.uuid4()}"'


# orjson: parsing every document read was much of what this store spent its time on.
def _parse(body: str) -> Document:
    document: Document = orjson.loads(body)
    return document


# --- JSON patch on dotted paths ---------------------------------------------------------


def _patch_segments(path: str) -> list[str]:
    parts = path.split(".")
    for p in parts:
        if not (IDENTIFIER.match(p) or p.isdigit() or p == "-"):
            raise ValueError(f"invalid patch path {path!r}")
    return parts


def _parent(doc: Document, parts: list[str], path: str) -> Any:
    node: Any = doc
    for p in parts[:-1]:
        if isinstance(node, dict) and p in node:
            node = node[p]
        elif isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        else:
            raise ValueError(f"patch path {path!r}: parent {p!r} does not exist")
    return node


def apply_patch(document: Document, operations: Sequence[PatchOp], spec: ContainerSpec) -> Document:
    """Apply Cosmos-style patch operations to a copy of `document`.

    Like Cosmos: `set`/`add` create the last segment (parents must exist; `add` inserts
    into arrays, `-` appends), `replace`/`remove` need the target to exist, `incr` adds to
    a number (creating it when missing). `id` and the partition key cannot be patched.
    """
    doc = copy.deepcopy(document)
    protected = {"id", spec.partition_key_field}
    for op in operations:
        if op.path in protected or op.path.split(".")[0] in SYSTEM_PROPERTIES:
            raise ValueError(f"patch cannot change {op.path!r}")
        parts = _patch_segments(op.path)
        parent = _parent(doc, parts, op.path)
        key = parts[-1]
        value = copy.deepcopy(op.value)
        if isinstance(parent, list):
            if key == "-" and op.op == "add":
                parent.append(value)
                continue
            if not key.isdigit():
                raise ValueError(f"patch path {op.path!r}: {key!r} is not an array index")
            index = int(key)
            if op.op == "add" and index <= len(parent):
                parent.insert(index, value)
                continue
            if index >= len(parent):
                raise ValueError(f"patch path {op.path!r}: index out of range")
            if op.op in ("set", "replace"):
                parent[index] = value
            elif op.op == "remove":
                del parent[index]
            elif op.op == "incr":
                parent[index] = _incremented(parent[index], value, op.path)
            continue
        if not isinstance(parent, dict):
            raise ValueError(f"patch path {op.path!r}: parent is not an object")
        if op.op in ("set", "add"):
            parent[key] = value
        elif op.op == "replace":
            if key not in parent:
                raise ValueError(f"patch replace: {op.path!r} does not exist")
            parent[key] = value
        elif op.op == "remove":
            if key not in parent:
                raise ValueError(f"patch remove: {op.path!r} does not exist")
            del parent[key]
        elif op.op == "incr":
            parent[key] = _incremented(parent.get(key, 0), value, op.path)
        else:
            raise ValueError(f"unknown patch operation {op.op!r}")
    return doc


def _incremented(current: Any, delta: Any, path: str) -> Any:
    for v in (current, delta):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"patch incr on {path!r} needs numbers, got {v!r}")
    return current + delta


# --- query translation --------------------------------------------------------------------


def _filter_sql(flt: Filter, params: list[Any]) -> str:
    """One filter as a parameterised SQLite condition on the `body` column."""
    path = _json_path(flt.field)
    value = flt.value
    if flt.field == "id" and flt.op in ("eq", "in") and _all_text(value):
        # The id column holds the body's id (a string): matching it uses the primary key
        # instead of parsing every document of the partition.
        ids = [value] if isinstance(value, str) else list(value)
        params.extend(ids)
        return f"id IN ({', '.join('?' for _ in ids)})" if ids else "0"
    if flt.op == "exists":
        params.append(path)
        return "json_type(body, ?) IS NOT NULL" if value else "json_type(body, ?) IS NULL"
    if flt.op == "contains":
        params.extend([path, path, _sql_value(value)])
        return (
            "(json_type(body, ?) = 'array' AND EXISTS "
            "(SELECT 1 FROM json_each(body, ?) AS e WHERE e.value = ?))"
        )
    if flt.op == "startswith":
        if not isinstance(value, str):
            raise ValueError("startswith needs a string value")
        params.extend([path, value, value])
        return f"(json_type(body, ?) = 'text' AND substr({_extract(flt.field)}, 1, length(?)) = ?)"
    if flt.op == "in":
        if not isinstance(value, list | tuple) or not value:
            # An empty IN matches nothing, like ARRAY_CONTAINS([], x) in Cosmos.
            if isinstance(value, list | tuple):
                return "0"
            raise ValueError("'in' needs a list value")
        params.extend(_sql_value(v) for v in value)
        return f"{_extract(flt.field)} IN ({', '.join('?' for _ in value)})"
    if value is None:
        if flt.op == "eq":
            params.append(path)
            return "json_type(body, ?) = 'null'"
        if flt.op == "ne":
            params.append(path)
            return "coalesce(json_type(body, ?) != 'null', 0)"
        raise ValueError(f"{flt.op!r} cannot compare with null")
    sql_ops = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    if flt.op not in sql_ops:
        raise ValueError(f"unknown filter op {flt.op!r}")
    if isinstance(value, dict | list):
        raise ValueError("filters compare scalar values only")
    if flt.op == "eq" and isinstance(value, str) and not value.startswith(("{", "[")):
        # No type guard needed (and one JSON parse per row saved): json_extract gives TEXT
        # only for a string, or for an object or array, whose text starts with { or [.
        params.append(value)
        return f"{_extract(flt.field)} = ?"
    # Type guard: like Cosmos, a number never equals/compares with a string (SQLite would
    # otherwise order every number before every string).
    params.extend([path, _sql_value(value)])
    types = _json_type_of(value)  # constant SQL literals, never caller data
    return f"(json_type(body, ?) IN ({types}) AND {_extract(flt.field)} {sql_ops[flt.op]} ?)"


def _all_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "'true', 'false'"
    if isinstance(value, int | float):
        return "'integer', 'real'"
    return "'text'"


def _sql_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ValueError("filters compare scalar values only")
    return value


def conditions_sql(filters: Sequence[Filter], params: list[Any]) -> str:
    """All filters ANDed as one SQL condition (`1` when there are none)."""
    if not filters:
        return "1"
    return " AND ".join(_filter_sql(f, params) for f in filters)


class SqliteContainer:
    """One container in the SQLite file; see `cloudcart.core.ports.documents.Container`."""

    def __init__(self, store: SqliteDocumentStore, spec: ContainerSpec) -> None:
        self.spec = spec
        self._store = store
        self._table = f'"c_{spec.name}"'

    # --- helpers -------------------------------------------------------------------------

    def _select_live(
        self, conn: sqlite3.Connection, id: str, partition_key: str
    ) -> Document | None:
        row = conn.execute(
            f"SELECT body FROM {self._table} WHERE pk = ? AND id = ? "  # noqa: S608
            "AND (expires_at IS NULL OR expires_at > ?)",
            (partition_key, id, time.time()),
        ).fetchone()
        return None if row is None else _parse(row[0])

    def _write(self, conn: sqlite3.Connection, doc: Document, pk: str, *, insert: bool) -> Document:
        """Stamp system properties and store `doc` (without system properties); `insert`
        False replaces the row. Returns the stored document as a read would: a copy that
        shares nothing with `doc`."""
        # Serialised once: the size check and the row use the same text, and parsing it back
        # is the copy the caller gets (cheaper than a deep copy of the input).
        body = compact_json(doc)
        size = len(body.encode("utf-8"))
        check_size(doc, size)
        self._store.count_batch_bytes(size)
        ttl = effective_ttl(self.spec, doc)
        now = time.time()
        etag = _new_etag()
        body = f'{body[:-1]},"_etag":{json.dumps(etag)},"_ts":{int(now)}}}'
        seq = self._store.next_sequence(conn)
        values = (
            body,
            etag,
            None if ttl is None else now + ttl,
            seq,
            pk,
            doc["id"],
        )
        if insert:
            conn.execute(
                f"INSERT INTO {self._table} (body, etag, expires_at, seq, pk, id) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
        else:
            conn.execute(
                f"UPDATE {self._table} SET body = ?, etag = ?, expires_at = ?, seq = ? "  # noqa: S608
                "WHERE pk = ? AND id = ?",
                values,
            )
        return _parse(body)

    def _drop_expired(self, conn: sqlite3.Connection, id: str, pk: str) -> None:
        # An expired row must not block a create of the same id.
        conn.execute(
            f"DELETE FROM {self._table} WHERE pk = ? AND id = ? AND expires_at <= ?",  # noqa: S608
            (pk, id, time.time()),
        )

    def _existing(
        self, conn: sqlite3.Connection, id: str, pk: str, if_match: str | None
    ) -> Document:
        current = self._select_live(conn, id, pk)
        if current is None:
            raise NotFound(f"{self.spec.name}/{pk}/{id} does not exist")
        if if_match is not None and current["_etag"] != if_match:
            raise PreconditionFailed(f"{self.spec.name}/{pk}/{id}: ETag does not match")
        return current

    # --- operations run inside a write transaction ----------------------------------------

    def _insert(self, conn: sqlite3.Connection, doc: Document, pk: str) -> Document:
        """Insert `doc`; an expired row of the same id is dropped first (it must not block a
        create), looked for only when the insert meets a row, which keeps the common case
        to one statement. IntegrityError when a live row holds the id."""
        try:
            return self._write(conn, doc, pk, insert=True)
        except sqlite3.IntegrityError:
            self._drop_expired(conn, doc["id"], pk)
            return self._write(conn, doc, pk, insert=True)

    def _create(self, conn: sqlite3.Connection, document: Document) -> Document:
        doc = clean_document(document, deep=False)
        pk = partition_key_of(self.spec, doc)
        try:
            return self._insert(conn, doc, pk)
        except sqlite3.IntegrityError:
            raise Conflict(f"{self.spec.name}/{pk}/{doc['id']} already exists") from None

    def _replace(
        self, conn: sqlite3.Connection, document: Document, if_match: str | None
    ) -> Document:
        doc = clean_document(document, deep=False)
        pk = partition_key_of(self.spec, doc)
        self._existing(conn, doc["id"], pk, if_match)
        return self._write(conn, doc, pk, insert=False)

    def _upsert(self, conn: sqlite3.Connection, document: Document) -> Document:
        doc = clean_document(document, deep=False)
        pk = partition_key_of(self.spec, doc)
        if self._select_live(conn, doc["id"], pk) is not None:
            return self._write(conn, doc, pk, insert=False)
        return self._insert(conn, doc, pk)

    def _delete(self, conn: sqlite3.Connection, id: str, pk: str, if_match: str | None) -> None:
        self._existing(conn, id, pk, if_match)
        conn.execute(f"DELETE FROM {self._table} WHERE pk = ? AND id = ?", (pk, id))  # noqa: S608

    def _patch(
        self,
        conn: sqlite3.Connection,
        id: str,
        pk: str,
        operations: Sequence[PatchOp],
        condition: Sequence[Filter],
        if_match: str | None,
    ) -> Document:
        check_patch_size(operations)
        current = self._existing(conn, id, pk, if_match)
        if condition:
            # The same translator as queries, so a condition means exactly what a query
            # filter means, evaluated on the stored row inside this transaction.
            params: list[Any] = [pk, id]
            where = conditions_sql(condition, params)
            held = conn.execute(
                f"SELECT 1 FROM {self._table} WHERE pk = ? AND id = ? AND {where}",  # noqa: S608
                params,
            ).fetchone()
            if held is None:
                raise PreconditionFailed(f"{self.spec.name}/{pk}/{id}: patch condition failed")
        patched = apply_patch(current, operations, self.spec)
        return self._write(conn, clean_document(patched, deep=False), pk, insert=False)

    # --- the port --------------------------------------------------------------------------

    def read(self, id: str, partition_key: str) -> Document:
        """Point read. Raises NotFound."""
        with self._store.reading() as conn:
            doc = self._select_live(conn, id, partition_key)
        if doc is None:
            raise NotFound(f"{self.spec.name}/{partition_key}/{id} does not exist")
        return doc

    def read_many(self, keys: Sequence[tuple[str, str]]) -> list[Document]:
        """Point reads of many keys in one SELECT; missing and expired ones left out."""
        wanted = read_many_keys(keys)
        if not wanted:
            return []
        params: list[Any] = [value for id, pk in wanted for value in (pk, id)]
        params.append(time.time())
        # A join with the keys, not `(pk, id) IN (VALUES ...)`: SQLite scans the whole
        # table for a row-value IN, while the join looks each key up in the primary key.
        values = ", ".join("(?, ?)" for _ in wanted)
        sql = (
            f"WITH k(pk, id) AS (VALUES {values}) "  # noqa: S608
            f"SELECT t.pk, t.id, t.body FROM k JOIN {self._table} AS t "
            "ON t.pk = k.pk AND t.id = k.id "
            "WHERE t.expires_at IS NULL OR t.expires_at > ?"
        )
        with self._store.reading() as conn:
            found = {(id, pk): body for pk, id, body in conn.execute(sql, params)}
        return [_parse(found[key]) for key in wanted if key in found]

    def create(self, document: Document) -> Document:
        """Insert; raises Conflict when the id exists in that partition."""
        with self._store.writing(savepoint=False) as conn:
            return self._create(conn, document)

    def replace(self, document: Document, *, if_match: str | None = None) -> Document:
        """Replace an existing document, optionally only if its `_etag` matches."""
        with self._store.writing(savepoint=False) as conn:
            return self._replace(conn, document, if_match)

    def upsert(self, document: Document) -> Document:
        """Create or replace."""
        with self._store.writing(savepoint=False) as conn:
            return self._upsert(conn, document)

    def delete(self, id: str, partition_key: str, *, if_match: str | None = None) -> None:
        """Delete. Raises NotFound, or PreconditionFailed on an ETag mismatch."""
        with self._store.writing(savepoint=False) as conn:
            self._delete(conn, id, partition_key, if_match)

    def patch(
        self,
        id: str,
        partition_key: str,
        operations: Sequence[PatchOp],
        *,
        condition: Sequence[Filter] = (),
        if_match: str | None = None,
    ) -> Document:
        """Apply operations atomically if every condition holds (else PreconditionFailed)."""
        with self._store.writing(savepoint=False) as conn:
            return self._patch(conn, id, partition_key, operations, condition, if_match)

    def query(
        self,
        query: Query,
        *,
        partition_key: str | None = None,
        continuation: str | None = None,
    ) -> Page:
        """Run a query in one partition or across all; pages by an opaque offset token."""
        if query.limit < 1:
            raise ValueError("query limit must be at least 1")
        offset = 0
        if continuation is not None:
            offset = int(_decode_token(continuation).get("o", 0))
        params: list[Any] = [time.time()]
        where = ["(expires_at IS NULL OR expires_at > ?)"]
        if partition_key is not None:
            where.append("pk = ?")
            params.append(partition_key)
        where.append(conditions_sql(query.filters, params))
        if len(query.order_by) > 1:
            # Like Cosmos, whose composite index has no entry for a document lacking one
            # of the fields (see `Query`).
            for order in query.order_by:
                where.append("json_type(body, ?) IS NOT NULL")
                params.append(_json_path(order.field))
        order_parts = []
        for order in query.order_by:
            order_parts.append(f"{_extract(order.field)} {'DESC' if order.descending else 'ASC'}")
        # Tie-breakers keep pages stable when sort keys repeat.
        order_parts.extend(["pk ASC", "id ASC"])
        params.extend([query.limit + 1, offset])
        sql = (
            f"SELECT body FROM {self._table} WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY {', '.join(order_parts)} LIMIT ? OFFSET ?"
        )
        with self._store.reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        items = [_parse(r[0]) for r in rows[: query.limit]]
        token = encode_token({"o": offset + query.limit}) if len(rows) > query.limit else None
        return Page(items=items, continuation=token)

    def batch(self, partition_key: str, operations: Sequence[BatchOp]) -> list[Document]:
        """Run operations in one partition as one SQLite transaction (all or nothing)."""
        # The documents are sized as they are serialised for writing (once), and the
        # transaction rolls back if they add up to too much.
        patch_bytes = check_batch_size(operations, documents=False)
        for op in operations:
            if op.document is not None and partition_key_of(self.spec, op.document) != (
                partition_key
            ):
                raise ValueError("every batch document must be in the batch's partition")
        results: list[Document] = []
        with self._store.writing() as conn, self._store.batch_bytes(patch_bytes):
            for index, op in enumerate(operations):
                try:
                    results.append(self._batch_op(conn, partition_key, op))
                except DocumentError as exc:
                    # Raising out of `writing()` rolls back every earlier operation.
                    raise BatchFailed(index, exc) from exc
        return results

    def _batch_op(self, conn: sqlite3.Connection, pk: str, op: BatchOp) -> Document:
        if op.kind in ("create", "upsert", "replace"):
            if op.document is None:
                raise ValueError(f"batch {op.kind} needs a document")
            if op.kind == "create":
                return self._create(conn, op.document)
            if op.kind == "upsert":
                return self._upsert(conn, op.document)
            return self._replace(conn, op.document, op.if_match)
        if op.id is None:
            raise ValueError(f"batch {op.kind} needs an id")
        if op.kind == "delete":
            self._delete(conn, op.id, pk, op.if_match)
            return {}
        if op.kind == "read":
            return self._existing(conn, op.id, pk, op.if_match)
        if op.kind == "patch":
            return self._patch(conn, op.id, pk, op.patch, op.condition, op.if_match)
        raise ValueError(f"unknown batch operation {op.kind!r}")

    def change_feed(self, checkpoint: str | None = None, *, max_items: int = 100) -> ChangeFeedPage:
        """Documents written after `checkpoint`, oldest first (latest version of each)."""
        after = 0 if checkpoint is None else int(_decode_token(checkpoint).get("s", 0))
        with self._store.reading() as conn:
            rows = conn.execute(
                f"SELECT body, seq FROM {self._table} WHERE seq > ? "  # noqa: S608
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?",
                (after, time.time(), max_items),
            ).fetchall()
        last = rows[-1][1] if rows else after
        return ChangeFeedPage(
            items=[_parse(r[0]) for r in rows], checkpoint=encode_token({"s": last})
        )


class SqliteDocumentStore:
    """The documents port on one SQLite file; see `cloudcart.core.ports.documents.DocumentStore`.

    Connections are per thread (SQLite connections must not be shared while in use) and
    re-opened after a fork, so one store object is safe in threads and in child processes.
    `containers` defaults to the registry; tests pass extra specs (e.g. a short TTL).
    """

    def __init__(self, path: Path, *, containers: Sequence[ContainerSpec] = CONTAINERS) -> None:
        self.path = Path(path)
        self.location = f"sqlite:{self.path.resolve()}"
        """Where the documents live: stores with the same location see the same data."""
        self.specs = {spec.name: spec for spec in containers}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._writes = 0
        self._containers: dict[str, SqliteContainer] = {}
        # Change-feed pollers in this process sleep on this instead of asking SQLite many
        # times a second; another process's writes are seen at their next poll.
        self._commit = threading.Condition()
        self._commits = 0
        self._use = threading.Condition()
        self._active = 0
        self._closing = False
        with self.writing() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('sequence', 0)")

    # --- connections and transactions ------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # Forked child: the parent's connections must not be used here (nor closed,
            # which could disturb the parent's locks); start afresh.
            self._pid = os.getpid()
            self._local = threading.local()
            self._lock = threading.Lock()
            self._connections = []
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=_BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,  # we issue BEGIN ourselves
                    check_same_thread=False,  # only so close() may run on another thread
                )
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise Unavailable(f"cannot open {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        """Mark a connection as in use, so `close` waits for it: closing a connection while
        another thread runs a statement on it crashes the interpreter, not just the call."""
        if os.getpid() != self._pid:
            # Forked child: the parent's threads and their uses did not come along.
            self._use, self._active, self._closing = threading.Condition(), 0, False
        with self._use:
            self._use.wait_for(lambda: not self._closing)
            self._active += 1
        try:
            yield
        finally:
            with self._use:
                self._active -= 1
                if not self._active:
                    self._use.notify_all()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (each statement sees one consistent WAL snapshot)."""
        with self._in_use():
            conn = self._connection()
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                raise _translate(exc) from exc

    @contextmanager
    def writing(self, *, savepoint: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

        Re-entrant: inside another `writing()` of the same thread (see `bulk`) it is a
        savepoint, so the inner block is still all or nothing on its own, and everything
        becomes visible to other connections at the outer commit. `savepoint` False skips
        the savepoint, for a block that changes nothing unless its last statement succeeds
        (a single-document write: it reads, checks, then writes once).
        """
        depth: int = getattr(self._local, "depth", 0)
        if depth:
            # Inside the outer block's use of this thread's connection.
            conn = self._connection()
            if savepoint:
                yield from self._savepoint(conn, depth)
            else:
                yield conn
            return
        with self._in_use():
            yield from self._transaction()

    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _translate(exc) from exc
        self._local.sequence = None
        self._local.depth = 1
        try:
            yield conn
            self._writes += 1
            if self._writes % _PURGE_EVERY_WRITES == 0:
                self._purge_expired(conn)
            if self._local.sequence is not None:
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'sequence'", (self._local.sequence,)
                )
            conn.execute("COMMIT")
            self.wake()
        except BaseException as exc:
            # The transaction may be gone already (e.g. the connection broke).
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _translate(exc) from exc
            raise
        finally:
            self._local.depth = 0

    @property
    def commits(self) -> int:
        """How many write transactions this store object has committed (plus `wake` calls);
        pass it to `wait_for_commit` before reading a change feed."""
        return self._commits

    def wait_for_commit(self, seen: int, timeout: float) -> int:
        """Block until this store object commits a write after `commits` was `seen`, `wake`
        is called, or `timeout` seconds pass; returns `commits`."""
        with self._commit:
            self._commit.wait_for(lambda: self._commits != seen, timeout)
            return self._commits

    def wake(self) -> None:
        """Wake every `wait_for_commit` (a write committed, or the pollers should stop)."""
        with self._commit:
            self._commits += 1
            self._commit.notify_all()

    def _savepoint(self, conn: sqlite3.Connection, depth: int) -> Iterator[sqlite3.Connection]:
        name = f"sp{depth}"
        conn.execute(f"SAVEPOINT {name}")
        self._local.depth = depth + 1
        try:
            yield conn
            conn.execute(f"RELEASE {name}")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        finally:
            self._local.depth = depth

    @contextmanager
    def batch_bytes(self, initial: int) -> Iterator[None]:
        """Count the bytes of the documents written in the block (`count_batch_bytes`) on top
        of `initial`, refusing the write that takes them over a batch's 2 MB."""
        self._local.batch_bytes = initial
        try:
            yield
        finally:
            self._local.batch_bytes = None

    def count_batch_bytes(self, size: int) -> None:
        """Add a written document's bytes to the current batch's, if one is counting."""
        counted: int | None = getattr(self._local, "batch_bytes", None)
        if counted is not None:
            self._local.batch_bytes = counted + size
            check_batch_bytes(counted + size)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Commit every write of the block at once (see `cloudcart.core.ports.documents.bulk`):
        each batch inside stays all or nothing, and the block costs one SQLite transaction
        instead of one per batch. Other writers wait for the block, so keep it short."""
        with self.writing():
            yield

    def next_sequence(self, conn: sqlite3.Connection) -> int:
        """The next database-wide change sequence number (call inside `writing()`).

        Read once per transaction and written back at its commit: BEGIN IMMEDIATE holds
        the database's write lock, so no other writer can take a number in between.
        """
        sequence: int | None = self._local.sequence
        if sequence is None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'sequence'").fetchone()
            sequence = int(row[0])
        self._local.sequence = sequence + 1
        return sequence + 1

    def _purge_expired(self, conn: sqlite3.Connection) -> None:
        now = time.time()
        for name in self._existing_tables(conn):
            conn.execute(f'DELETE FROM "c_{name}" WHERE expires_at <= ?', (now,))  # noqa: S608

    @staticmethod
    def _existing_tables(conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c\\_%' ESCAPE '\\'"
        ).fetchall()
        return [str(r[0])[2:] for r in rows]

    # --- the port --------------------------------------------------------------------------

    def container(self, name: str) -> Container:
        """The container of that name (it must be in the registry)."""
        found = self._containers.get(name)
        if found is None:
            found = self._containers.setdefault(
                name, SqliteContainer(self, container_spec_in(self.specs, name))
            )
        return found

    def ensure_containers(self) -> None:
        """Create a table (and its indexes) for every registered container, purge expired."""
        with self.writing() as conn:
            for spec in self.specs.values():
                if not IDENTIFIER.match(spec.name):
                    raise ValueError(f"container name {spec.name!r} is not an identifier")
                table = f'"c_{spec.name}"'
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} ("
                    "pk TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, etag TEXT NOT NULL, "
                    "expires_at REAL, seq INTEGER NOT NULL, PRIMARY KEY (pk, id)) WITHOUT ROWID"
                )
                conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{spec.name}_seq" ON {table} (seq)')
                conn.execute(
                    f'CREATE INDEX IF NOT EXISTS "ix_{spec.name}_expiry" ON {table} (expires_at) '
                    "WHERE expires_at IS NOT NULL"
                )
                for fields in spec.embedded_indexes:
                    columns = ", ".join(_extract(f) for f in fields)
                    conn.execute(
                        f'CREATE INDEX IF NOT EXISTS "{_index_name(spec.name, fields)}" '
                        f"ON {table} ({columns})"
                    )
            self._purge_expired(conn)

    def check(self) -> None:
        """Raise Unavailable if the file cannot be queried."""
        with self.reading() as conn:
            conn.execute("SELECT value FROM meta WHERE key = 'sequence'").fetchone()

    def close(self) -> None:
        """Close every connection this store opened (in this process), once the reads and
        writes running on them have finished (for up to 30 s); the store opens new ones if
        it is used again."""
        with self._use:
            self._closing = True
            try:
                self._use.wait_for(lambda: not self._active, _CLOSE_WAIT_SECONDS)
                with self._lock:
                    for conn in self._connections:
                        conn.close()
                    self._connections.clear()
                self._local = threading.local()
            finally:
                self._closing = False
                self._use.notify_all()


def _translate(exc: sqlite3.OperationalError) -> Exception:
    message = str(exc)
    if "no such table" in message:
        return NotFound(f"container does not exist (run ensure_containers): {message}")
    return Unavailable(f"SQLite: {message}")
