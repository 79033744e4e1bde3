"""A loopback fake of the Azure AI Search REST API, enough for `azure-search-documents`.

It records every request (method, path, api-version, JSON body) so tests can check what
the adapter asked for, and answers simply but meaningfully: it stores the index definition,
the synonym map and the documents, evaluates the small OData subset the adapter emits
(`f eq 'x'`, `f ge n`, `f le n`, `f eq true` joined by `and`), matches the adapter's Lucene
query (`(word OR title:word~1 ...) AND ...`) against documents analysed with `spec.analyze`
(so synonyms, units and plurals behave as in the embedded engine), scores by the index's
scoring-profile text weights, facets (`count:` and `values:`), sorts, pages and suggests.

`fail_next` queues canned error responses (status, JSON body) for error-mapping tests.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudcart.catalog.search.ranking import edit_distance
from cloudcart.catalog.search.spec import analyze


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    api_version: str | None
    body: Any
    headers: dict[str, str]


@dataclass
class FakeSearchState:
    """What the fake service holds."""

    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    synonym_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


_INDEX_PATH = re.compile(r"^/indexes\('([^']+)'\)(/.*)?$")
_SYNONYM_PATH = re.compile(r"^/synonymmaps\('([^']+)'\)$")
_CLAUSE = re.compile(r"^(\w+) (eq|ge|le|ne|gt|lt) (.+)$")
_TERM = re.compile(r"(?:(\w+):)?([a-z0-9.]+)(?:~(\d))?")


def _literal(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    return float(raw) if "." in raw else int(raw)


def odata_matches(doc: dict[str, Any], expression: str | None) -> bool:
    """Evaluate the adapter's OData subset on a document."""
    if not expression:
        return True
    for clause in expression.split(" and "):
        match = _CLAUSE.match(clause.strip())
        if not match:
            raise ValueError(f"unsupported filter clause {clause!r}")
        name, op, raw = match.groups()
        value, actual = _literal(raw), doc.get(name)
        values = actual if isinstance(actual, list) else [actual]
        if op == "eq" and value not in values:
            return False
        if op == "ne" and value in values:
            return False
        if op in ("ge", "le", "gt", "lt"):
            if actual is None:
                return False
            ok = {
                "ge": actual >= value,
                "le": actual <= value,
                "gt": actual > value,
                "lt": actual < value,
            }[op]
            if not ok:
                return False
    return True


def _csv(value: Any) -> list[str] | None:
    """A list parameter: the SDK sends some as JSON lists, the REST docs as "a,b"."""
    if not value:
        return None
    return list(value) if isinstance(value, list) else str(value).split(",")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `requests`, not the log."""

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; odata.metadata=none")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        state = self.server.state
        with self.server.lock:
            state.requests.append(
                RecordedRequest(
                    method,
                    parts.path,
                    (parse_qs(parts.query).get("api-version") or [""])[0] or None,
                    body,
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
            if state.fail_next:
                status, error = state.fail_next.pop(0)
                self._reply(status, error)
                return
            try:
                status, answer = self._route(method, parts.path, body)
            except ValueError as exc:
                status, answer = 400, {"error": {"code": "InvalidRequest", "message": str(exc)}}
            except Exception as exc:  # a fake bug must fail the test, not hang the client
                status, answer = 500, {"error": {"code": "FakeBug", "message": repr(exc)}}
        self._reply(status, answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- routing --------------------------------------------------------------------------

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        state = self.server.state
        if path == "/servicestats" and method == "GET":
            return 200, {"counters": {}, "limits": {}}
        synonym = _SYNONYM_PATH.match(path)
        if synonym and method == "PUT":
            created = synonym.group(1) not in state.synonym_maps
            state.synonym_maps[synonym.group(1)] = body
            return (201 if created else 200), body
        index = _INDEX_PATH.match(path)
        if not index:
            return 404, {"error": {"code": "NotFound", "message": f"no route {path}"}}
        name, rest = index.group(1), index.group(2) or ""
        if rest == "" and method == "PUT":
            for field_def in body.get("fields", []):
                for map_name in field_def.get("synonymMaps") or []:
                    if map_name not in state.synonym_maps:
                        raise ValueError(f"synonym map {map_name} does not exist")
            created = name not in state.indexes
            state.indexes[name] = body
            state.documents.setdefault(name, {})
            return (201 if created else 200), body
        if name not in state.indexes:
            return 404, {"error": {"code": "ResourceNotFound", "message": f"index {name}"}}
        if rest == "" and method == "GET":
            return 200, state.indexes[name]
        docs = state.documents[name]
        if rest == "/docs/$count" and method == "GET":
            return 200, len(docs)
        if rest == "/docs/search.index" and method == "POST":
            return 200, {"value": [self._index_action(docs, a) for a in body["value"]]}
        if rest == "/docs/search.post.search" and method == "POST":
            return 200, self._search(name, body)
        if rest == "/docs/search.post.suggest" and method == "POST":
            return 200, self._suggest(docs, body)
        return 404, {"error": {"code": "NotFound", "message": f"no route {method} {path}"}}

    @staticmethod
    def _index_action(docs: dict[str, dict[str, Any]], action: dict[str, Any]) -> dict[str, Any]:
        action = dict(action)  # the recorded body keeps its `@search.action`
        kind = action.pop("@search.action", "upload")
        key = str(action["id"])
        if kind == "delete":
            existed = docs.pop(key, None) is not None
            return {"key": key, "status": True, "statusCode": 200 if existed else 404}
        if kind == "merge" and key not in docs:
            return {"key": key, "status": False, "statusCode": 404, "errorMessage": "missing"}
        created = key not in docs
        if kind in ("merge", "mergeOrUpload") and not created:
            docs[key] = {**docs[key], **action}
        else:
            docs[key] = dict(action)
        return {"key": key, "status": True, "statusCode": 201 if created else 200}

    # --- search ---------------------------------------------------------------------------

    def _weights(self, index_name: str, profile: str | None) -> dict[str, float]:
        definition = self.server.state.indexes[index_name]
        name = profile or definition.get("defaultScoringProfile")
        for candidate in definition.get("scoringProfiles") or []:
            if candidate["name"] == name:
                return dict(candidate.get("text", {}).get("weights", {}))
        return {}

    def _score(
        self, doc: dict[str, Any], text: str, fields: list[str], weights: dict[str, float]
    ) -> float | None:
        """Score of a document for the adapter's query shape, None when it does not match."""
        if text in ("", "*"):
            return 1.0
        score = 0.0
        for clause in text.split(" AND "):
            best = 0.0
            for field_name, token, fuzz in _TERM.findall(clause.strip("() ")):
                if token == "or":
                    continue
                names = [field_name] if field_name else fields
                for name in names:
                    tokens = analyze(_text(doc.get(name)))
                    if fuzz:
                        hit = any(edit_distance(token, t, int(fuzz)) <= int(fuzz) for t in tokens)
                        factor = 0.3
                    else:
                        hit = token in tokens
                        factor = 1.0
                    if hit:
                        best = max(best, weights.get(name, 1.0) * factor)
            if best == 0.0:
                return None
            score += best
        return score

    def _search(self, index_name: str, body: dict[str, Any]) -> dict[str, Any]:
        docs = list(self.server.state.documents[index_name].values())
        weights = self._weights(index_name, body.get("scoringProfile"))
        definition = self.server.state.indexes[index_name]
        searchable = [f["name"] for f in definition["fields"] if f.get("searchable")]
        fields = _csv(body.get("searchFields")) or searchable
        hits: list[tuple[float, dict[str, Any]]] = []
        for doc in docs:
            if not odata_matches(doc, body.get("filter")):
                continue
            score = self._score(doc, body.get("search") or "*", fields, weights)
            if score is not None:
                hits.append((score, doc))
        hits.sort(key=lambda h: (-h[0], str(h[1]["id"])))
        for clause in reversed(_csv(body.get("orderby")) or []):
            if clause.strip():
                name, _, direction = clause.strip().partition(" ")
                hits.sort(key=lambda h: h[1].get(name) or 0, reverse=direction == "desc")
        answer: dict[str, Any] = {}
        if body.get("count"):
            answer["@odata.count"] = len(hits)
        if body.get("facets"):
            answer["@search.facets"] = {
                spec.split(",")[0]: self._facet(spec, [d for _, d in hits])
                for spec in body["facets"]
            }
        skip, top = int(body.get("skip") or 0), int(body.get("top") or 50)
        select = _csv(body.get("select"))
        hidden = {f["name"] for f in definition["fields"] if f.get("retrievable") is False}
        answer["value"] = [
            {
                "@search.score": score,
                **{
                    k: v
                    for k, v in doc.items()
                    if k not in hidden and (select is None or k in select)
                },
            }
            for score, doc in hits[skip : skip + top]
        ]
        return answer

    @staticmethod
    def _facet(spec: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        name, *options = spec.split(",")
        params = dict(o.split(":", 1) for o in options)
        if "values" in params:
            bounds = [int(b) for b in params["values"].split("|")]
            edges: list[int | None] = [None, *bounds, None]
            buckets = []
            for low, high in itertools.pairwise(edges):
                count = sum(
                    1
                    for d in docs
                    if (low is None or d.get(name, 0) >= low)
                    and (high is None or d.get(name, 0) < high)
                )
                bucket: dict[str, Any] = {"count": count}
                if low is not None:
                    bucket["from"] = low
                if high is not None:
                    bucket["to"] = high
                buckets.append(bucket)
            return buckets
        counts: dict[Any, int] = {}
        for d in docs:
            raw = d.get(name)
            for value in raw if isinstance(raw, list) else [raw]:
                if value is not None:
                    counts[value] = counts.get(value, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [{"value": v, "count": c} for v, c in ordered[: int(params.get("count", 10))]]

    def _suggest(self, docs: dict[str, dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        prefix = body["search"].lower()
        definition = next(iter(self.server.state.indexes.values()))
        suggester = next(s for s in definition["suggesters"] if s["name"] == body["suggesterName"])
        out = []
        for doc in sorted(docs.values(), key=lambda d: str(d.get("title"))):
            text = " ".join(_text(doc.get(f)) for f in suggester["sourceFields"]).lower()
            if any(word.startswith(prefix) for word in text.split()) or text.startswith(prefix):
                select = _csv(body.get("select")) or ["id"]
                out.append({"@search.text": doc.get("title"), **{k: doc.get(k) for k in select}})
        return {"value": out[: int(body.get("top") or 5)]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = FakeSearchState()
        self.lock = threading.Lock()


class FakeSearchService:
    """The fake on a free loopback port; use as a context manager."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:<port>`."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def state(self) -> FakeSearchState:
        """Indexes, synonym maps, documents, recorded requests, queued failures."""
        return self._server.state

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        """Recorded requests whose path ends with `suffix`."""
        return [r for r in self.state.requests if r.path.endswith(suffix)]

    def start(self) -> FakeSearchService:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSearchService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
