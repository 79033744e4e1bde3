"""A loopback fake of the Azure AI Search REST API, enough for `azure-search-documents`.

It records every request (method, path, api-version, JSON body) so tests can check what
the adapter asked for, and answers simply but meaningfully: it stores the index definitions,
the aliases, the synonym maps and the documents, evaluates the small OData subset the adapter
emits (`f eq 'x'`, `f ge n`, `f le n`, `f eq true` joined by `and`), matches the adapter's
Lucene query (`(word OR title:word~1 ...) AND ...`), scores by the index's scoring-profile
text weights, facets (`count:` and `values:`), sorts, pages and suggests.

Text is analysed as the service would from the index definition the adapter sent, never
with `spec.analyze`: the custom analyzer's pattern-replace char filters, an approximation of
the `standard_v2` tokenizer (UAX#29 word breaks), then its token filters (`lowercase`,
`asciifolding`, `stemmer_override`, `pattern_replace`); query terms are analysed the same
way and expanded through the field's synonym maps, fuzzy terms are not analysed. A filter
the fake cannot emulate (`kstem`) fails the request instead of being guessed. So the
contract tests prove that the definition the adapter sends analyses text as the spec says.
`POST /indexes('x')/search.analyze` answers with those tokens.

Like the service it refuses what Azure refuses: changing an existing field's type, its key,
searchable, filterable, sortable or facetable flag or its analyzer, deleting a field, or
changing a suggester's fields (400 `OperationNotAllowed`); changing the analysis components
without `allowIndexDowntime=true`; an alias that maps to no or several indexes or shares an
index's name; deleting an index an alias maps to, or deleting one through an alias.

`fail_next` queues canned error responses (status, JSON body) for error-mapping tests.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudcart.core.search.ranking import edit_distance


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    api_version: str | None
    body: Any
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeSearchState:
    """What the fake service holds."""

    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    synonym_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


_INDEX_PATH = re.compile(r"^/indexes\('([^']+)'\)(/.*)?$")
_SYNONYM_PATH = re.compile(r"^/synonymmaps\('([^']+)'\)$")
_ALIAS_PATH = re.compile(r"^/aliases\('([^']+)'\)$")
_CLAUSE = re.compile(r"^(\w+) (eq|ge|le|ne|gt|lt) (.+)$")
_TERM = re.compile(r"(?:(\w+):)?([a-z0-9.]+)(?:~(\d))?")


def _not_found(what: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"code": "ResourceNotFound", "message": f"{what} was not found"}}


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


# --- analysis, as the service runs it from an index definition ------------------------------

# UAX#29 word breaks, roughly: runs of letters and digits, joined across `_`, across `.` or
# `,` between digits (`6.5`, `1,000`), and across `'` or `.` between letters (`oppo's`,
# `wi.fi`). Close enough that a char filter the analyzer needs but lacks shows up.
_STANDARD_TOKEN = re.compile(
    r"[^\W_]+(?:(?:_+|(?<=\d)[.,](?=\d)|(?<=[^\W\d_])['\u2019.](?=[^\W\d_]))[^\W_]+)*"
)
_AZURE_GROUP = re.compile(r"\$(\d)")


def _python_replacement(replacement: str) -> str:
    """A Java `$1` replacement in `re.sub` syntax."""
    return _AZURE_GROUP.sub(r"\\g<\1>", replacement)


def _fold(token: str) -> str:
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _standard(text: str) -> list[str]:
    return [t.lower() for t in _STANDARD_TOKEN.findall(text)]


TokenStep = Callable[[str], str]


def _token_step(name: str, custom: dict[str, dict[str, Any]]) -> TokenStep:
    """One token filter of a custom analyzer (built-in or defined in the index)."""
    if name == "lowercase":
        return str.lower
    if name == "asciifolding":
        return _fold
    definition = custom.get(name)
    if definition is None:
        raise ValueError(f"the fake cannot emulate token filter {name!r}")
    kind = definition["@odata.type"].rsplit(".", 1)[-1]
    if kind == "PatternReplaceTokenFilter":
        pattern = re.compile(definition["pattern"])
        replacement = _python_replacement(definition["replacement"])
        return lambda token: pattern.sub(replacement, token)
    if kind == "StemmerOverrideTokenFilter":
        rules: dict[str, str] = {}
        for rule in definition["rules"]:
            word, _, stem = rule.partition("=>")
            rules[word.strip()] = stem.strip()
        return lambda token: rules.get(token, token)
    raise ValueError(f"the fake cannot emulate token filter type {kind!r}")


def build_analyzer(definition: dict[str, Any], name: str | None) -> Callable[[str], list[str]]:
    """The analyzer `name` of an index definition as a function text -> tokens (the default
    `standard.lucene` when `name` is None)."""
    if name in (None, "standard.lucene", "standard"):
        return _standard
    analyzer = next((a for a in definition.get("analyzers") or [] if a["name"] == name), None)
    if analyzer is None:
        raise ValueError(f"the fake cannot emulate analyzer {name!r}")
    if analyzer.get("tokenizer") not in ("standard_v2", "standard"):
        raise ValueError(f"the fake cannot emulate tokenizer {analyzer.get('tokenizer')!r}")
    char_defs = {c["name"]: c for c in definition.get("charFilters") or []}
    char_steps: list[tuple[re.Pattern[str], str]] = []
    for char_name in analyzer.get("charFilters") or []:
        char_def = char_defs.get(char_name)
        if char_def is None or not char_def["@odata.type"].endswith("PatternReplaceCharFilter"):
            raise ValueError(f"the fake cannot emulate char filter {char_name!r}")
        char_steps.append(
            (re.compile(char_def["pattern"]), _python_replacement(char_def["replacement"]))
        )
    custom = {t["name"]: t for t in definition.get("tokenFilters") or []}
    token_steps = [_token_step(n, custom) for n in analyzer.get("tokenFilters") or []]

    @lru_cache(maxsize=8192)
    def analyse(text: str) -> tuple[str, ...]:
        for pattern, replacement in char_steps:
            text = pattern.sub(replacement, text)
        out: list[str] = []
        for token in _STANDARD_TOKEN.findall(text):
            for step in token_steps:
                token = step(token)
            if token:
                out.append(token)
        return tuple(out)

    return lambda text: list(analyse(text))


def solr_expansions(maps: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Query-time expansions of Solr-format synonym maps: `a, b, c` makes each mean all
    three; `a, b => c` rewrites `a` and `b` to `c`."""
    out: dict[str, set[str]] = {}
    for synonym_map in maps:
        body = synonym_map.get("synonyms") or ""
        lines = body.splitlines() if isinstance(body, str) else list(body)
        for line in lines:
            if "=>" in line:
                left, right = line.split("=>", 1)
                targets = {w.strip() for w in right.split(",") if w.strip()}
                for word in (w.strip() for w in left.split(",") if w.strip()):
                    out.setdefault(word, set()).update(targets)
                continue
            group = {w.strip() for w in line.split(",") if w.strip()}
            for word in group:
                out.setdefault(word, set()).update(group)
    return out


# --- what the service refuses to change on an existing index -------------------------------

_FIXED_FIELD_ATTRIBUTES = (
    "type",
    "key",
    "searchable",
    "filterable",
    "sortable",
    "facetable",
    "analyzer",
    "indexAnalyzer",
)
_ANALYSIS_PARTS = ("analyzers", "tokenizers", "tokenFilters", "charFilters")
# Defaults the service fills in, so an omitted attribute compares equal to its default.
_FIELD_DEFAULTS: dict[str, Any] = {
    "key": False,
    "searchable": False,
    "filterable": False,
    "sortable": False,
    "facetable": False,
    "analyzer": None,
    "indexAnalyzer": None,
}


def refused_update(old: dict[str, Any], new: dict[str, Any], allow_downtime: bool) -> str | None:
    """Why the service would refuse to update index `old` to `new` (None: it would not)."""
    old_fields = {f["name"]: f for f in old.get("fields") or []}
    new_fields = {f["name"]: f for f in new.get("fields") or []}
    for name, before in old_fields.items():
        after = new_fields.get(name)
        if after is None:
            return f"Existing field '{name}' cannot be deleted from index '{old['name']}'."
        for attribute in _FIXED_FIELD_ATTRIBUTES:
            was = before.get(attribute, _FIELD_DEFAULTS.get(attribute))
            now = after.get(attribute, _FIELD_DEFAULTS.get(attribute))
            if was != now:
                return (
                    f"Existing field '{name}' cannot be changed: its '{attribute}' would go "
                    f"from {was!r} to {now!r}. Create a new index instead."
                )
    old_suggesters = {s["name"]: s for s in old.get("suggesters") or []}
    for suggester in new.get("suggesters") or []:
        before_sources = set((old_suggesters.get(suggester["name"]) or {}).get("sourceFields", []))
        added = set(suggester.get("sourceFields") or []) - before_sources
        if suggester["name"] in old_suggesters and added & set(old_fields):
            return (
                f"Suggester '{suggester['name']}' cannot take existing fields "
                f"{sorted(added & set(old_fields))}; only new fields can be added."
            )
    for part in _ANALYSIS_PARTS:
        before_parts = {c["name"]: c for c in old.get(part) or []}
        after_parts = {c["name"]: c for c in new.get(part) or []}
        if before_parts != after_parts and not allow_downtime:
            return (
                f"Index update not allowed because it would cause downtime: '{part}' changed. "
                "Set the 'allowIndexDowntime' query parameter to 'true' to take the index "
                "offline while it is updated."
            )
    return None


@dataclass(frozen=True)
class _FieldAnalysis:
    """How one searchable field analyses document text and query terms."""

    analyse: Callable[[str], list[str]]
    expansions: dict[str, set[str]]

    def query_terms(self, term: str) -> set[str]:
        """An exact query term as the service matches it: analysed by the field's analyzer,
        then expanded through the field's synonym maps."""
        out: set[str] = set()
        for token in self.analyse(term):
            out.add(token)
            out.update(self.expansions.get(token, ()))
        return out


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
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.server.lock:
            state.requests.append(
                RecordedRequest(
                    method,
                    parts.path,
                    params.get("api-version") or None,
                    body,
                    {k.lower(): v for k, v in self.headers.items()},
                    params,
                )
            )
            if state.fail_next:
                status, error = state.fail_next.pop(0)
                self._reply(status, error)
                return
            try:
                status, answer = self._route(method, parts.path, body, params)
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

    def _route(self, method: str, path: str, body: Any, params: dict[str, str]) -> tuple[int, Any]:
        state = self.server.state
        if path == "/servicestats" and method == "GET":
            return 200, {"counters": {}, "limits": {}}
        synonym = _SYNONYM_PATH.match(path)
        if synonym and method == "PUT":
            created = synonym.group(1) not in state.synonym_maps
            state.synonym_maps[synonym.group(1)] = body
            return (201 if created else 200), body
        if synonym and method == "DELETE":
            if state.synonym_maps.pop(synonym.group(1), None) is None:
                return _not_found(f"synonym map {synonym.group(1)}")
            return 204, None
        if path == "/indexes" and method == "GET":
            return 200, {"value": [state.indexes[n] for n in sorted(state.indexes)]}
        if path == "/aliases" or _ALIAS_PATH.match(path):
            return self._alias_route(method, path, body)
        index = _INDEX_PATH.match(path)
        if not index:
            return 404, {"error": {"code": "NotFound", "message": f"no route {path}"}}
        requested, rest = index.group(1), index.group(2) or ""
        if rest == "" and method == "DELETE":
            return self._delete_index(requested)
        if rest == "/search.analyze" and method == "POST":
            # Like the service: the Analyze API takes an index, not an alias.
            if requested not in state.indexes:
                return _not_found(f"index {requested}")
            analyse = build_analyzer(state.indexes[requested], body["analyzer"])
            return 200, {"tokens": [{"token": t} for t in analyse(body["text"])]}
        # Document operations and reading or updating the definition go through an alias.
        name = self.server.resolve(requested)
        if rest == "" and method == "PUT":
            return self._put_index(name, body, params)
        if name not in state.indexes:
            return _not_found(f"index {requested}")
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
            return 200, self._suggest(name, body)
        return 404, {"error": {"code": "NotFound", "message": f"no route {method} {path}"}}

    def _put_index(self, name: str, body: Any, params: dict[str, str]) -> tuple[int, Any]:
        state = self.server.state
        if body.get("name") != name and body.get("name") not in state.aliases:
            raise ValueError(f"index name {body.get('name')!r} does not match the URL ({name!r})")
        for field_def in body.get("fields", []):
            for map_name in field_def.get("synonymMaps") or []:
                if map_name not in state.synonym_maps:
                    raise ValueError(f"synonym map {map_name} does not exist")
        existing = state.indexes.get(name)
        if existing is not None:
            allow_downtime = params.get("allowIndexDowntime", "").lower() == "true"
            reason = refused_update(existing, body, allow_downtime)
            if reason:
                return 400, {"error": {"code": "OperationNotAllowed", "message": reason}}
        definition = {**body, "name": name}
        state.indexes[name] = definition
        state.documents.setdefault(name, {})
        self.server.analyzers.clear()
        return (201 if existing is None else 200), definition

    def _delete_index(self, name: str) -> tuple[int, Any]:
        state = self.server.state
        if name not in state.indexes:
            # Aliases cannot be used to delete an index: the service answers 404 for them.
            return _not_found(f"index {name}")
        mapped = sorted(a for a, targets in state.aliases.items() if name in targets)
        if mapped:
            return 400, {
                "error": {
                    "code": "OperationNotAllowed",
                    "message": f"Index '{name}' cannot be deleted: alias(es) {mapped} map to "
                    "it. Delete them or map them to another index first.",
                }
            }
        del state.indexes[name]
        state.documents.pop(name, None)
        self.server.analyzers.clear()
        return 204, None

    def _alias_route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        state = self.server.state
        if path == "/aliases" and method == "GET":
            return 200, {
                "value": [{"name": n, "indexes": state.aliases[n]} for n in sorted(state.aliases)]
            }
        match = _ALIAS_PATH.match(path)
        name = match.group(1) if match else str((body or {}).get("name"))
        if method == "GET":
            if name not in state.aliases:
                return _not_found(f"alias {name}")
            return 200, {"name": name, "indexes": state.aliases[name]}
        if method == "DELETE":
            if state.aliases.pop(name, None) is None:
                return _not_found(f"alias {name}")
            return 204, None
        if method not in ("PUT", "POST"):
            return 404, {"error": {"code": "NotFound", "message": f"no route {method} {path}"}}
        targets = list(body.get("indexes") or [])
        if len(targets) != 1:
            raise ValueError(f"alias {name!r} must map to exactly one index, not {targets}")
        if targets[0] not in state.indexes:
            return _not_found(f"index {targets[0]} (the alias target)")
        if name in state.indexes:
            raise ValueError(f"alias name {name!r} is already the name of an index")
        created = name not in state.aliases
        if method == "POST" and not created:
            return 409, {"error": {"code": "Conflict", "message": f"alias {name} exists"}}
        state.aliases[name] = targets
        return (201 if created else 200), {"name": name, "indexes": targets}

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

    def _field_analysis(self, index_name: str, field_name: str) -> _FieldAnalysis:
        key = (index_name, field_name)
        cached = self.server.analyzers.get(key)
        if cached is None:
            state = self.server.state
            definition = state.indexes[index_name]
            spec: dict[str, Any] = next(
                (f for f in definition["fields"] if f["name"] == field_name), {}
            )
            analyse = build_analyzer(definition, spec.get("analyzer"))
            maps = [state.synonym_maps[m] for m in spec.get("synonymMaps") or []]
            cached = _FieldAnalysis(analyse, solr_expansions(maps))
            self.server.analyzers[key] = cached
        return cached

    def _score(
        self,
        index_name: str,
        doc: dict[str, Any],
        text: str,
        fields: list[str],
        weights: dict[str, float],
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
                    analysis = self._field_analysis(index_name, name)
                    tokens = analysis.analyse(_text(doc.get(name)))
                    if fuzz:
                        # Fuzzy terms skip analysis, as in Lucene.
                        hit = any(edit_distance(token, t, int(fuzz)) <= int(fuzz) for t in tokens)
                        factor = 0.3
                    else:
                        wanted = analysis.query_terms(token)
                        hit = bool(wanted) and bool(wanted & set(tokens))
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
            score = self._score(index_name, doc, body.get("search") or "*", fields, weights)
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

    def _suggest(self, index_name: str, body: dict[str, Any]) -> dict[str, Any]:
        prefix = body["search"].lower()
        docs = self.server.state.documents[index_name]
        definition = self.server.state.indexes[index_name]
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
        # (index, field) -> its analysis; cleared whenever a definition changes.
        self.analyzers: dict[tuple[str, str], _FieldAnalysis] = {}

    def resolve(self, name: str) -> str:
        """The index an alias maps to (a name that is no alias is returned as it is)."""
        targets = self.state.aliases.get(name)
        return targets[0] if targets else name


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

    def resolve(self, name: str) -> str:
        """The index an alias serves (any other name as it is)."""
        return self._server.resolve(name)

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
