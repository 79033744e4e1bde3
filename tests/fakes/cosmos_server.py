"""A small Cosmos DB for NoSQL REST fake that the real `azure-cosmos` SDK talks to.

It runs a threaded HTTP server on 127.0.0.1 (free port) and implements only what
`cloudcart.core.documents.cosmos` uses: the account, databases, collections, one partition
key range, document CRUD, upsert, If-Match, queries in the SQL subset the adapter and the
SDK's read many (`read_items`) generate (with parameters and continuation), transactional
batch, patch with a filter predicate, the change feed and TTL. It adds the system
properties (`_rid`, `_self`, `_etag`, `_ts`) like Cosmos does.

Like the service, it answers a cross-partition query one physical partition at a time
(`physical_partitions`, 3 by default; a partition key's is a stable hash of it): without
ORDER BY a page never spans two physical partitions, so pages come short, or empty for a
partition with no match, with a continuation; with ORDER BY the pages are merged across the
partitions from at most ceil(page size / partitions) items of each per round, so they come
short too. A multi-field ORDER BY leaves out documents lacking one of its fields (the
composite index has no entry for them). It enforces the service's limits: 2 MB per
document and per batch request (413), at most 10 operations per patch and 100 per batch
(400), and no '/', '\\', '?' or '#' in an id (400).

Faults: `server.throttle(kind, times, retry_after_ms=10)` answers the next `times` requests
of that kind ("create", "upsert", "replace", "read", "delete", "patch", "query", "batch",
"feed") with 429 and `x-ms-retry-after-ms`, so retry behaviour can be tested.

Usage::

    with CosmosFakeServer() as server:
        client = CosmosClient(server.url, credential=server.key)
"""

from __future__ import annotations

import base64
import copy
import json
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

KEY = base64.b64encode(b"cosmos-fake-key-for-tests-only!!").decode()

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
"""The service's limit on one document, and on the body of one batch request."""
MAX_PATCH_OPERATIONS = 10
FORBIDDEN_ID_CHARACTERS = "/\\?#"

_UNDEFINED = object()  # Cosmos's `undefined`: a missing property or a type-mismatched compare


class CosmosError(Exception):
    """Raised inside the fake to answer with an HTTP error status."""

    def __init__(self, status: int, message: str, sub_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.sub_status = sub_status


# --- the SQL subset ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<param>@\w+)|(?P<op>!=|<=|>=|=|<|>)|(?P<punct>[(),*])"
    r"|(?P<path>c(?:\.[A-Za-z_]\w*)+)|(?P<word>[A-Za-z_]\w*))"
)


class _Parser:
    """Parses `SELECT * FROM c [WHERE ...] [ORDER BY ...]` and `FROM c WHERE ...`.

    Conditions: `<value> <op> <value>`, `<value> IN (<value>, ...)`, `IS_DEFINED(<path>)`,
    `NOT <condition>`, `ARRAY_CONTAINS(<value>, <value>)`, `STARTSWITH(<value>, <value>)`
    and `( <conditions> )`, joined by AND and OR (AND binds tighter, as in Cosmos SQL).
    Values: `c.a.b` paths, `@params` and JSON literals.
    """

    def __init__(self, text: str, parameters: dict[str, Any]) -> None:
        self.text = text
        self.pos = 0
        self.parameters = parameters

    def fail(self, what: str) -> CosmosError:
        return CosmosError(400, f"syntax error at {self.pos} ({what}) in {self.text!r}")

    def peek_word(self) -> str | None:
        m = _TOKEN.match(self.text, self.pos)
        return m.group("word").upper() if m and m.group("word") else None

    def expect(self, token: str) -> None:
        m = _TOKEN.match(self.text, self.pos)
        got = m.group(0).strip() if m else None
        if got is None or got.upper() != token:
            raise self.fail(f"expected {token}")
        self.pos = m.end() if m else self.pos

    def value(self) -> Callable[[dict[str, Any]], Any]:
        rest = self.text[self.pos :].lstrip()
        self.pos = len(self.text) - len(rest)
        m = _TOKEN.match(self.text, self.pos)
        if m and m.group("param"):
            self.pos = m.end()
            name = m.group("param")
            if name not in self.parameters:
                raise self.fail(f"unknown parameter {name}")
            constant = self.parameters[name]
            return lambda doc: constant
        if m and m.group("path"):
            self.pos = m.end()
            parts = m.group("path").split(".")[1:]
            return lambda doc: _get(doc, parts)
        try:
            literal, end = json.JSONDecoder().raw_decode(self.text, self.pos)
        except ValueError:
            raise self.fail("expected a value") from None
        self.pos = end
        return lambda doc: literal

    def peek_punct(self) -> str | None:
        m = _TOKEN.match(self.text, self.pos)
        return m.group("punct") if m and m.group("punct") else None

    def condition(self) -> Callable[[dict[str, Any]], bool]:
        if self.peek_punct() == "(":
            self.expect("(")
            grouped = self.where()
            self.expect(")")
            return grouped
        word = self.peek_word()
        if word == "NOT":
            self.expect("NOT")
            inner = self.condition()
            return lambda doc: not inner(doc)
        if word in ("IS_DEFINED", "ARRAY_CONTAINS", "STARTSWITH"):
            self.expect(word)
            self.expect("(")
            first = self.value()
            if word == "IS_DEFINED":
                self.expect(")")
                return lambda doc: first(doc) is not _UNDEFINED
            self.expect(",")
            second = self.value()
            self.expect(")")
            if word == "ARRAY_CONTAINS":
                return lambda doc: _array_contains(first(doc), second(doc))
            return lambda doc: _startswith(first(doc), second(doc))
        left = self.value()
        if self.peek_word() == "IN":
            # `x IN (a, b)` is `x = a OR x = b`: the same typed equality as `=`.
            self.expect("IN")
            self.expect("(")
            candidates = [self.value()]
            while self.peek_punct() == ",":
                self.expect(",")
                candidates.append(self.value())
            self.expect(")")
            return lambda doc: any(_compare(left(doc), "=", c(doc)) for c in candidates)
        m = _TOKEN.match(self.text, self.pos)
        if not m or not m.group("op"):
            raise self.fail("expected a comparison operator")
        self.pos = m.end()
        op = m.group("op")
        right = self.value()
        return lambda doc: _compare(left(doc), op, right(doc))

    def where(self) -> Callable[[dict[str, Any]], bool]:
        alternatives = [self.conjunction()]
        while self.peek_word() == "OR":
            self.expect("OR")
            alternatives.append(self.conjunction())
        if len(alternatives) == 1:
            return alternatives[0]
        return lambda doc: any(a(doc) for a in alternatives)

    def conjunction(self) -> Callable[[dict[str, Any]], bool]:
        conditions = [self.condition()]
        while self.peek_word() == "AND":
            self.expect("AND")
            conditions.append(self.condition())
        return lambda doc: all(c(doc) for c in conditions)

    def order_by(self) -> list[tuple[list[str], bool]]:
        orders = []
        while True:
            m = _TOKEN.match(self.text, self.pos)
            if not m or not m.group("path"):
                raise self.fail("expected a path to order by")
            self.pos = m.end()
            descending = False
            if self.peek_word() in ("ASC", "DESC"):
                descending = self.peek_word() == "DESC"
                self.expect("DESC" if descending else "ASC")
            orders.append((m.group("path").split(".")[1:], descending))
            m = _TOKEN.match(self.text, self.pos)
            if not m or m.group(0).strip() != ",":
                return orders
            self.pos = m.end()

    def at_end(self) -> None:
        if self.text[self.pos :].strip():
            raise self.fail("unexpected trailing text")


@dataclass
class ParsedQuery:
    where: Callable[[dict[str, Any]], bool]
    order_by: list[tuple[list[str], bool]]


def parse_query(text: str, parameters: dict[str, Any]) -> ParsedQuery:
    """Parse `SELECT * FROM c [WHERE ...] [ORDER BY ...]`."""
    p = _Parser(text, parameters)
    for token in ("SELECT", "*", "FROM", "C"):
        p.expect(token)
    where: Callable[[dict[str, Any]], bool] = lambda doc: True  # noqa: E731
    if p.peek_word() == "WHERE":
        p.expect("WHERE")
        where = p.where()
    order: list[tuple[list[str], bool]] = []
    if p.peek_word() == "ORDER":
        p.expect("ORDER")
        p.expect("BY")
        order = p.order_by()
    p.at_end()
    return ParsedQuery(where, order)


def parse_predicate(text: str) -> Callable[[dict[str, Any]], bool]:
    """Parse a patch filter predicate `FROM c WHERE ...` (literals only, no parameters)."""
    p = _Parser(text, {})
    for token in ("FROM", "C", "WHERE"):
        p.expect(token)
    where = p.where()
    p.at_end()
    return where


def _get(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(doc, dict) or part not in doc:
            return _UNDEFINED
        doc = doc[part]
    return doc


def _type_rank(value: Any) -> int:
    # Cosmos's cross-type order: undefined < null < bool < number < string < array < object.
    if value is _UNDEFINED:
        return 0
    if value is None:
        return 1
    if isinstance(value, bool):
        return 2
    if isinstance(value, int | float):
        return 3
    if isinstance(value, str):
        return 4
    return 5 if isinstance(value, list) else 6


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is _UNDEFINED or right is _UNDEFINED:
        return False
    if _type_rank(left) != _type_rank(right) or _type_rank(left) >= 5:
        # Different types (or arrays/objects) compare as undefined, which filters out.
        return False
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None:
        return op in ("<=", ">=")
    return bool(
        {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    )


def _array_contains(array: Any, value: Any) -> bool:
    if not isinstance(array, list) or value is _UNDEFINED:
        return False
    return any(_type_rank(v) == _type_rank(value) and v == value for v in array)


def _startswith(text: Any, prefix: Any) -> bool:
    return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)


def _sort_key(value: Any) -> tuple[int, Any]:
    rank = _type_rank(value)
    return (rank, value if 2 <= rank <= 4 else 0)


# --- storage -----------------------------------------------------------------------------


def _rid(raw: bytes) -> str:
    return base64.b64encode(raw).decode().replace("/", "-")


@dataclass
class _Entry:
    doc: dict[str, Any]
    written_at: float
    lsn: int


@dataclass
class Collection:
    """One container: its metadata and documents keyed by (partition key JSON, id)."""

    id: str
    rid_bytes: bytes
    partition_key_path: str
    default_ttl: int | None
    db_rid: str
    created: int = field(default_factory=lambda: int(time.time()))
    docs: dict[tuple[str, str], _Entry] = field(default_factory=dict)
    next_doc: int = 1

    @property
    def rid(self) -> str:
        return _rid(self.rid_bytes)

    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "id": self.id,
            "_rid": self.rid,
            "_self": f"dbs/{self.db_rid}/colls/{self.rid}/",
            "_etag": f'"{self.rid}"',
            "_ts": self.created,
            "_docs": "docs/",
            "partitionKey": {"paths": [self.partition_key_path], "kind": "Hash", "version": 2},
            "indexingPolicy": {"indexingMode": "consistent", "automatic": True},
            "conflictResolutionPolicy": {"mode": "LastWriterWins"},
        }
        if self.default_ttl is not None:
            props["defaultTtl"] = self.default_ttl
        return props

    def expired(self, entry: _Entry, now: float) -> bool:
        if self.default_ttl is None:
            return False
        ttl = entry.doc.get("ttl", self.default_ttl)
        if ttl is None or ttl == -1:
            return False
        return bool(entry.written_at + ttl <= now)

    def live(self, key: tuple[str, str]) -> _Entry | None:
        entry = self.docs.get(key)
        if entry is not None and self.expired(entry, time.time()):
            del self.docs[key]
            return None
        return entry

    def partition_key_json(self, doc: dict[str, Any]) -> str:
        value = _get(doc, self.partition_key_path.strip("/").split("/"))
        if value is _UNDEFINED:
            raise CosmosError(400, "document lacks the partition key")
        return json.dumps([value])


@dataclass
class _Request:
    method: str
    path: str
    kind: str
    headers: dict[str, str]
    body: Any
    size: int = 0


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class CosmosFakeServer:
    """The fake account. Thread-safe: one lock serialises every request's effect."""

    def __init__(self, *, physical_partitions: int = 3) -> None:
        self.key = KEY
        self.physical_partitions = physical_partitions
        self._lock = threading.RLock()
        self._databases: dict[str, str] = {}  # id -> rid
        self._collections: dict[tuple[str, str], Collection] = {}
        self._lsn = 0
        self._throttles: dict[str, list[int]] = {}
        self.log: list[tuple[str, str, int]] = []
        """(kind, path, status) of every request, for tests that count round trips."""
        self.applied_writes: dict[str, int] = {}
        """How many times each write kind actually changed data."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def start(self) -> CosmosFakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> CosmosFakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def throttle(self, kind: str, times: int = 1, *, retry_after_ms: int = 10) -> None:
        """Answer the next `times` requests of `kind` with 429, asking for `retry_after_ms`."""
        with self._lock:
            self._throttles.setdefault(kind, []).extend([retry_after_ms] * times)

    def count(self, kind: str, status: int | None = None) -> int:
        """How many requests of `kind` (answered with `status`, if given) were seen."""
        with self._lock:
            return sum(1 for k, _, s in self.log if k == kind and status in (None, s))

    # --- dispatch ----------------------------------------------------------------------

    def handle(self, req: _Request) -> _Response:
        with self._lock:
            if self._throttles.get(req.kind):
                retry_after_ms = self._throttles[req.kind].pop(0)
                response = _Response(
                    429,
                    {"code": "TooManyRequests", "message": "throttled by the fake"},
                    {"x-ms-retry-after-ms": str(retry_after_ms), "x-ms-substatus": "3200"},
                )
            else:
                try:
                    response = self._route(req)
                except CosmosError as exc:
                    headers = (
                        {} if exc.sub_status is None else {"x-ms-substatus": str(exc.sub_status)}
                    )
                    response = _Response(
                        exc.status, {"code": str(exc.status), "message": str(exc)}, headers
                    )
            self.log.append((req.kind, req.path, response.status))
            return response

    def _route(self, req: _Request) -> _Response:
        parts = [unquote(p) for p in req.path.strip("/").split("/") if p]
        if not parts:
            return _Response(200, self._account())
        if parts[0] != "dbs":
            raise CosmosError(404, f"no route {req.path}")
        if len(parts) == 1 and req.method == "POST":
            return self._create_database(req.body)
        db = parts[1] if len(parts) > 1 else ""
        if db not in self._databases:
            raise CosmosError(404, f"database {db} not found")
        db_rid = self._databases[db]
        if len(parts) == 2:
            return _Response(
                200,
                {
                    "id": db,
                    "_rid": db_rid,
                    "_self": f"dbs/{db_rid}/",
                    "_etag": '"1"',
                    "_colls": "colls/",
                    "_ts": 0,
                },
            )
        if len(parts) == 3 and req.method == "POST":
            return self._create_collection(db, req.body)
        coll = self._collections.get((db, parts[3] if len(parts) > 3 else ""))
        if coll is None:
            raise CosmosError(404, f"collection {parts[3:4]} not found")
        if len(parts) == 4:
            return _Response(200, coll.properties())
        if parts[4] == "pkranges":
            return self._pkranges(coll, req)
        if parts[4] != "docs":
            raise CosmosError(404, f"no route {req.path}")
        if len(parts) == 5:
            if req.kind == "feed":
                return self._change_feed(coll, req)
            if req.kind == "query":
                return self._query(coll, req)
            if req.kind == "batch":
                return self._batch(coll, req)
            if req.kind in ("create", "upsert"):
                return self._write(coll, req.body, upsert=req.kind == "upsert")
            raise CosmosError(400, f"unsupported {req.method} on docs")
        doc_id = parts[5]
        pk = req.headers.get("x-ms-documentdb-partitionkey", "")
        pk = json.dumps(json.loads(pk)) if pk else ""
        if_match = req.headers.get("if-match")
        if req.kind == "read":
            return _Response(200, self._existing(coll, pk, doc_id, None).doc)
        if req.kind == "replace":
            if req.body.get("id") != doc_id:
                raise CosmosError(400, "id in body and URL differ")
            self._existing(coll, pk, doc_id, if_match)
            return self._write(coll, req.body, upsert=True, status=200)
        if req.kind == "delete":
            self._existing(coll, pk, doc_id, if_match)
            del coll.docs[(pk, doc_id)]
            self._applied("delete")
            return _Response(204)
        if req.kind == "patch":
            return self._patch(coll, pk, doc_id, req.body, if_match)
        raise CosmosError(400, f"unsupported {req.method} on a document")

    # --- resources ---------------------------------------------------------------------

    def _account(self) -> dict[str, Any]:
        location = {"name": "Local", "databaseAccountEndpoint": self.url}
        return {
            "id": "fake",
            "_rid": f"127.0.0.1:{self.port}",
            "_self": "",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/",
            "writableLocations": [location],
            "readableLocations": [location],
            "enableMultipleWriteLocations": False,
            "userReplicationPolicy": {
                "asyncReplication": False,
                "minReplicaSetSize": 1,
                "maxReplicasetSize": 4,
            },
            "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "systemReplicationPolicy": {"minReplicaSetSize": 1, "maxReplicasetSize": 4},
            "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
            "queryEngineConfiguration": json.dumps({"maxSqlQueryInputLength": 262144}),
        }

    def _create_database(self, body: dict[str, Any]) -> _Response:
        name = body["id"]
        if name in self._databases:
            raise CosmosError(409, f"database {name} exists")
        rid = _rid(len(self._databases).to_bytes(4, "big"))
        self._databases[name] = rid
        return _Response(
            201,
            {
                "id": name,
                "_rid": rid,
                "_self": f"dbs/{rid}/",
                "_etag": '"1"',
                "_ts": int(time.time()),
            },
        )

    def _create_collection(self, db: str, body: dict[str, Any]) -> _Response:
        name = body["id"]
        if (db, name) in self._collections:
            raise CosmosError(409, f"collection {name} exists")
        db_rid = self._databases[db]
        rid_bytes = base64.b64decode(db_rid.replace("-", "/")) + len(self._collections).to_bytes(
            4, "big"
        )
        coll = Collection(
            id=name,
            rid_bytes=rid_bytes,
            partition_key_path=body["partitionKey"]["paths"][0],
            default_ttl=body.get("defaultTtl"),
            db_rid=db_rid,
        )
        self._collections[(db, name)] = coll
        return _Response(201, coll.properties())

    def _pkranges(self, coll: Collection, req: _Request) -> _Response:
        etag = '"pkranges-1"'
        if req.headers.get("if-none-match") == etag:
            return _Response(304, None, {"etag": etag})
        ranges = [
            {
                "id": "0",
                "_rid": coll.rid,
                "minInclusive": "",
                "maxExclusive": "FF",
                "ridPrefix": 0,
                "throughputFraction": 1.0,
                "status": "online",
                "parents": [],
                "_etag": etag,
                "_ts": coll.created,
            }
        ]
        return _Response(
            200, {"_rid": coll.rid, "PartitionKeyRanges": ranges, "_count": 1}, {"etag": etag}
        )

    # --- documents -----------------------------------------------------------------------

    def _applied(self, kind: str) -> None:
        self.applied_writes[kind] = self.applied_writes.get(kind, 0) + 1

    def _existing(self, coll: Collection, pk: str, doc_id: str, if_match: str | None) -> _Entry:
        entry = coll.live((pk, doc_id))
        if entry is None:
            raise CosmosError(404, f"document {doc_id} not found")
        if if_match is not None and if_match != "*" and entry.doc["_etag"] != if_match:
            raise CosmosError(412, "etag mismatch")
        return entry

    def _store(
        self, coll: Collection, body: dict[str, Any], pk: str, rid: str | None = None
    ) -> dict[str, Any]:
        self._lsn += 1
        doc = {k: v for k, v in copy.deepcopy(body).items() if not k.startswith("_")}
        if rid is None:
            rid = _rid(coll.rid_bytes + coll.next_doc.to_bytes(8, "big"))
            coll.next_doc += 1
        doc.update(
            {
                "_rid": rid,
                "_self": f"dbs/{coll.db_rid}/colls/{coll.rid}/docs/{rid}/",
                "_etag": f'"{uuid.uuid4()}"',
                "_attachments": "attachments/",
                "_ts": int(time.time()),
                "_lsn": self._lsn,
            }
        )
        coll.docs[(pk, doc["id"])] = _Entry(doc, time.time(), self._lsn)
        return doc

    def _write(
        self, coll: Collection, body: dict[str, Any], *, upsert: bool, status: int = 201
    ) -> _Response:
        doc, status = self._write_doc(coll, body, upsert=upsert, status=status)
        return _Response(status, doc, {"etag": doc["_etag"]})

    def _write_doc(
        self, coll: Collection, body: dict[str, Any], *, upsert: bool, status: int = 201
    ) -> tuple[dict[str, Any], int]:
        if not isinstance(body.get("id"), str) or not body["id"]:
            raise CosmosError(400, "document needs an id")
        if any(ch in body["id"] for ch in FORBIDDEN_ID_CHARACTERS):
            raise CosmosError(400, "The input name contains an invalid character")
        _check_size(body)
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or ttl == 0 or ttl < -1):
            raise CosmosError(400, "invalid ttl")
        pk = coll.partition_key_json(body)
        existing = coll.live((pk, body["id"]))
        if existing is not None and not upsert:
            raise CosmosError(409, f"document {body['id']} exists")
        doc = self._store(coll, body, pk, existing.doc["_rid"] if existing else None)
        self._applied("create" if existing is None else "replace")
        return doc, (200 if existing is not None else status)

    def _patch(
        self, coll: Collection, pk: str, doc_id: str, body: dict[str, Any], if_match: str | None
    ) -> _Response:
        doc = self._patch_doc(coll, pk, doc_id, body, if_match)
        return _Response(200, doc, {"etag": doc["_etag"]})

    def _patch_doc(
        self, coll: Collection, pk: str, doc_id: str, body: dict[str, Any], if_match: str | None
    ) -> dict[str, Any]:
        entry = self._existing(coll, pk, doc_id, if_match)
        condition = body.get("condition")
        if condition and not parse_predicate(condition)(entry.doc):
            raise CosmosError(412, "patch condition not met")
        if len(body["operations"]) > MAX_PATCH_OPERATIONS:
            raise CosmosError(400, f"a patch holds at most {MAX_PATCH_OPERATIONS} operations")
        patched = copy.deepcopy(entry.doc)
        for op in body["operations"]:
            _apply_patch_op(patched, op)
        _check_size({k: v for k, v in patched.items() if not k.startswith("_")})
        self._applied("patch")
        return self._store(coll, patched, pk, entry.doc["_rid"])

    def _query(self, coll: Collection, req: _Request) -> _Response:
        params = {p["name"]: p["value"] for p in req.body.get("parameters", [])}
        parsed = parse_query(req.body["query"], params)
        pk = req.headers.get("x-ms-documentdb-partitionkey")
        pk = json.dumps(json.loads(pk)) if pk else None
        now = time.time()
        rows = [
            (self._physical_partition(doc_pk), e.doc)
            for (doc_pk, _), e in sorted(coll.docs.items())
            if (pk is None or doc_pk == pk) and not coll.expired(e, now) and parsed.where(e.doc)
        ]
        if len(parsed.order_by) > 1:
            # Served from a composite index, which has no entry for a document lacking one
            # of the fields: the service leaves such documents out.
            rows = [
                row
                for row in rows
                if all(_get(row[1], path) is not _UNDEFINED for path, _ in parsed.order_by)
            ]
        # Stable sorts applied last key first give a multi-key ORDER BY.
        for path, descending in reversed(parsed.order_by):
            rows.sort(key=_sort_row_by(path), reverse=descending)
        page_size = int(req.headers.get("x-ms-max-item-count", "100") or 100)
        if page_size <= 0:
            page_size = 100
        token = req.headers.get("x-ms-continuation") or None
        if pk is not None:
            offset = int(token or 0)
            page = [doc for _, doc in rows[offset : offset + page_size]]
            following = str(offset + page_size) if offset + page_size < len(rows) else None
        elif parsed.order_by:
            page, following = self._merged_page(rows, page_size, token)
        else:
            page, following = self._partition_page(rows, page_size, token)
        headers = {"x-ms-item-count": str(len(page))}
        if following is not None:
            headers["x-ms-continuation"] = following
        return _Response(200, {"_rid": coll.rid, "Documents": page, "_count": len(page)}, headers)

    def _physical_partition(self, pk_json: str) -> int:
        return zlib.crc32(pk_json.encode()) % self.physical_partitions

    def _partition_page(
        self, rows: list[tuple[int, dict[str, Any]]], page_size: int, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One physical partition's next items: short at its end, empty if it has none."""
        state = json.loads(token) if token else {"range": 0, "offset": 0}
        partition, offset = int(state["range"]), int(state["offset"])
        mine = [doc for p, doc in rows if p == partition]
        page = mine[offset : offset + page_size]
        if offset + len(page) < len(mine):
            return page, json.dumps({"range": partition, "offset": offset + len(page)})
        if partition + 1 < self.physical_partitions:
            return page, json.dumps({"range": partition + 1, "offset": 0})
        return page, None

    def _merged_page(
        self, rows: list[tuple[int, dict[str, Any]]], page_size: int, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The next items in order, merged from a bounded read of each partition.

        Each round reads at most ceil(page size / partitions) items per partition; the
        merge stops where a partition that has more ran out of what was read, because the
        next item in order cannot be known without reading it.
        """
        offset = int(token or 0)
        per_partition = -(-page_size // self.physical_partitions)
        taken: dict[int, int] = {}
        page: list[dict[str, Any]] = []
        for partition, doc in rows[offset:]:
            if len(page) == page_size or taken.get(partition, 0) == per_partition:
                break
            taken[partition] = taken.get(partition, 0) + 1
            page.append(doc)
        end = offset + len(page)
        return page, (str(end) if end < len(rows) else None)

    def _batch(self, coll: Collection, req: _Request) -> _Response:
        pk = json.dumps(json.loads(req.headers["x-ms-documentdb-partitionkey"]))
        if len(req.body) > 100:
            raise CosmosError(400, "a batch holds at most 100 operations")
        if req.size > MAX_DOCUMENT_BYTES:
            raise CosmosError(413, "Request size is too large")
        snapshot = {
            k: _Entry(copy.deepcopy(e.doc), e.written_at, e.lsn) for k, e in coll.docs.items()
        }
        lsn, applied = self._lsn, dict(self.applied_writes)
        results: list[dict[str, Any]] = []
        failed: int | None = None
        for index, op in enumerate(req.body):
            try:
                results.append(self._batch_op(coll, pk, op))
            except CosmosError as exc:
                failed = index
                results.append({"statusCode": exc.status})
                break
        if failed is None:
            return _Response(200, results)
        # All or nothing: roll back, and mark the other operations "failed dependency".
        coll.docs, self._lsn, self.applied_writes = snapshot, lsn, applied
        final = [{"statusCode": 424} for _ in req.body]
        final[failed] = results[failed]
        return _Response(207, final)

    def _batch_op(self, coll: Collection, pk: str, op: dict[str, Any]) -> dict[str, Any]:
        kind = op["operationType"]
        if_match = op.get("ifMatch")
        body: dict[str, Any] = op.get("resourceBody") or {}
        if kind in ("Create", "Upsert", "Replace") and coll.partition_key_json(body) != pk:
            raise CosmosError(400, "document is not in the batch's partition")
        if kind in ("Create", "Upsert"):
            doc, status = self._write_doc(coll, body, upsert=kind == "Upsert")
        elif kind == "Replace":
            self._existing(coll, pk, op["id"], if_match)
            doc, status = self._write_doc(coll, body, upsert=True)
        elif kind == "Delete":
            self._existing(coll, pk, op["id"], if_match)
            del coll.docs[(pk, op["id"])]
            return {"statusCode": 204}
        elif kind == "Read":
            doc, status = self._existing(coll, pk, op["id"], if_match).doc, 200
        elif kind == "Patch":
            doc, status = self._patch_doc(coll, pk, op["id"], body, if_match), 200
        else:
            raise CosmosError(400, f"unknown batch operation {kind}")
        return {"statusCode": status, "resourceBody": doc, "eTag": doc["_etag"]}

    def _change_feed(self, coll: Collection, req: _Request) -> _Response:
        since_header = req.headers.get("if-none-match")
        since = (
            int(since_header.strip('"'))
            if since_header and since_header.strip('"').isdigit()
            else 0
        )
        if since_header == "*":
            since = self._lsn  # start "now"
        limit = int(req.headers.get("x-ms-max-item-count", "100") or 100)
        if limit <= 0:
            limit = 100
        now = time.time()
        changed = sorted(
            (e for e in coll.docs.values() if e.lsn > since and not coll.expired(e, now)),
            key=lambda e: e.lsn,
        )[:limit]
        if not changed:
            return _Response(304, None, {"etag": f'"{max(since, self._lsn_of(coll))}"'})
        etag = f'"{changed[-1].lsn}"'
        return _Response(
            200,
            {"_rid": coll.rid, "Documents": [e.doc for e in changed], "_count": len(changed)},
            {"etag": etag},
        )

    def _lsn_of(self, coll: Collection) -> int:
        return max((e.lsn for e in coll.docs.values()), default=0)


def _sort_row_by(
    path: list[str],
) -> Callable[[tuple[int, dict[str, Any]]], tuple[int, Any]]:
    return lambda row: _sort_key(_get(row[1], path))


def _check_size(document: dict[str, Any]) -> None:
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DOCUMENT_BYTES:
        raise CosmosError(413, f"Request size is too large ({size} bytes)")


def _apply_patch_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    parts = op["path"].strip("/").split("/")
    parent: Any = doc
    for part in parts[:-1]:
        if isinstance(parent, dict) and part in parent:
            parent = parent[part]
        elif isinstance(parent, list) and part.isdigit() and int(part) < len(parent):
            parent = parent[int(part)]
        else:
            raise CosmosError(400, f"patch path {op['path']} has no parent")
    key = parts[-1]
    kind, value = op["op"], op.get("value")
    if isinstance(parent, list):
        if key == "-" and kind == "add":
            parent.append(value)
        elif not key.isdigit():
            raise CosmosError(400, "array index expected")
        elif kind == "add" and int(key) <= len(parent):
            parent.insert(int(key), value)
        elif int(key) >= len(parent):
            raise CosmosError(400, "index out of range")
        elif kind in ("set", "replace"):
            parent[int(key)] = value
        elif kind == "remove":
            del parent[int(key)]
        elif kind == "incr":
            parent[int(key)] += value
        return
    if kind in ("set", "add"):
        parent[key] = value
    elif kind in ("replace", "remove"):
        if key not in parent:
            raise CosmosError(400, f"patch {kind}: {op['path']} does not exist")
        if kind == "replace":
            parent[key] = value
        else:
            del parent[key]
    elif kind == "incr":
        current = parent.get(key, 0)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise CosmosError(400, "incr needs a number")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CosmosError(400, "incr needs a number")
        parent[key] = current + value
    else:
        raise CosmosError(400, f"unknown patch op {kind}")


def _kind(method: str, path: str, headers: dict[str, str]) -> str:
    """Name the operation a request performs, for routing and fault injection."""
    on_document = bool(re.search(r"/docs/[^/]+/?$", path))
    if method == "GET" and headers.get("a-im", "").lower() == "incremental feed":
        return "pkranges" if path.rstrip("/").endswith("pkranges") else "feed"
    if method == "POST" and headers.get("x-ms-cosmos-is-batch-request", "").lower() == "true":
        return "batch"
    if method == "POST" and headers.get("x-ms-documentdb-isquery", "").lower() == "true":
        return "query"
    if method == "POST" and path.rstrip("/").endswith("/docs"):
        upsert = headers.get("x-ms-documentdb-is-upsert", "").lower() == "true"
        return "upsert" if upsert else "create"
    if on_document:
        return {"GET": "read", "PUT": "replace", "DELETE": "delete", "PATCH": "patch"}.get(
            method, method
        )
    return f"{method.lower()}-meta"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: CosmosFakeServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm
        # and delayed ACKs add ~40 ms to every keep-alive round trip.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?")[0]
        body = json.loads(raw) if raw else None
        req = _Request(
            self.command, path, _kind(self.command, path, headers), headers, body, len(raw)
        )
        response = self.fake.handle(req)
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-charge", "1")
        self.send_header("x-ms-activity-id", str(uuid.uuid4()))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve
