"""The embedded search engine: a tantivy index on disk under `data_dir/search/`.

Text is analysed by `spec.analyze` (units, multi-word names, plurals, synonyms) before it
reaches tantivy, at index and at query time alike, so both sides meet on the same tokens;
tantivy then only splits on whitespace and scores with BM25 and the spec's field weights.
Matching requires every known query word (exact, or within a typo or two of a catalog word);
the intent-aware ranking of `ranking.py` orders the matches; facets, totals and sorting are
computed over the matching set in Python (fine for catalogs of tens of thousands of
products; the Azure adapter does it server-side).

Concurrency: one writer at a time (tantivy's directory lock, taken per write and released
after the commit, so a CLI reindex and a running server can take turns), any number of
readers. Each write commits and reloads, so a change is searchable at once in this process
and within about half a second in others.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cloudcart.core.errors import Unavailable
from cloudcart.core.ports.search import (
    FacetValue,
    SearchDocument,
    SearchQuery,
    SearchResult,
)
from cloudcart.core.search.cursors import decode_cursor, encode_cursor, query_fingerprint
from cloudcart.core.search.documents import brand_key, public_item
from cloudcart.core.search.ranking import (
    Intent,
    Ranked,
    Vocabulary,
    detect_intent,
    max_typos,
    rerank,
)
from cloudcart.core.search.spec import (
    FACETS,
    FIELDS,
    PRICE_BANDS,
    SORTS,
    STOPWORDS,
    analyze,
    analyzed_text,
    field_weights,
    price_band,
)

if TYPE_CHECKING:
    import tantivy

    from cloudcart.core.settings import Settings

MAX_MATCHES = 10_000
"""Matches considered for ranking, totals and facets."""

_FUZZY_WEIGHT = 0.3
_WRITER_HEAP = 15_000_000
_FILTER_FIELDS = ("brand_key", "category", "kind")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


@dataclass
class _Ticket:
    """One writer's work waiting for a commit, and how that commit went for it."""

    work: Callable[[tantivy.IndexWriter], None]
    done: bool = False
    error: Exception | None = None


class TantivySearchIndex:
    """A `SearchIndex` backed by tantivy files in `path`."""

    def __init__(self, path: Path) -> None:
        import tantivy

        self._tantivy = tantivy
        self.path = Path(path)
        self.location = f"tantivy:{self.path.resolve()}"
        """Where the index lives: indexes with the same location hold the same documents."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._schema = self._build_schema()
        self._index = tantivy.Index(self._schema, path=str(self.path), reuse=True)
        self._index.config_reader(reload_policy="commit")
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self._vocab_lock = threading.Lock()
        self._vocab_key: int | None = None
        self._vocab = Vocabulary()
        self._weights = field_weights()

    # --- schema and documents -------------------------------------------------------------

    def _build_schema(self) -> tantivy.Schema:
        builder = self._tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        for spec in FIELDS:
            if spec.searchable:
                builder.add_text_field(spec.name, tokenizer_name="whitespace")
        # Untouched text for the plain BM25 baseline of the relevance benchmark.
        builder.add_text_field("title_plain", tokenizer_name="default")
        builder.add_text_field("description_plain", tokenizer_name="default")
        for name in (*_FILTER_FIELDS, "storage", "os"):
            builder.add_text_field(name, tokenizer_name="raw")
        builder.add_integer_field("price", indexed=True, fast=True)
        builder.add_integer_field("in_stock", indexed=True, fast=True)
        builder.add_bytes_field("doc", stored=True)
        return builder.build()

    def _to_tantivy(self, doc: SearchDocument) -> tantivy.Document:
        out = self._tantivy.Document()
        out.add_text("id", str(doc["id"]))
        for spec in FIELDS:
            if spec.searchable:
                out.add_text(spec.name, analyzed_text(_text(doc.get(spec.name))))
        out.add_text("title_plain", _text(doc.get("title")))
        out.add_text("description_plain", _text(doc.get("description")))
        out.add_text("brand_key", brand_key(_text(doc.get("brand"))))
        out.add_text("category", _text(doc.get("categoryId")))
        out.add_text("kind", _text(doc.get("kind")))
        for value in doc.get("storage") or []:
            out.add_text("storage", str(value))
        if doc.get("os"):
            out.add_text("os", str(doc["os"]).lower())
        out.add_integer("price", int(doc.get("price") or 0))
        out.add_integer("in_stock", 1 if doc.get("inStock") else 0)
        out.add_bytes("doc", json.dumps(doc, separators=(",", ":")).encode())
        return out

    # --- writing --------------------------------------------------------------------------

    def _write(self, work: Callable[[tantivy.IndexWriter], None]) -> None:
        """Apply `work` and commit; returns once it is searchable.

        Writers that arrive while a commit runs are committed together by the next one
        (group commit): a commit, its merge wait and the reader reload cost far more than
        the documents, so a burst of catalog events costs a few commits, not one each.
        """
        ticket = _Ticket(work)
        with self._pending_lock:
            self._pending.append(ticket)
        with self._write_lock:
            if not ticket.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._commit(batch)
                except Unavailable as exc:
                    for each in batch:
                        each.error = exc
                except Exception:
                    # One bad piece of work must not fail the others: commit one by one.
                    for each in batch:
                        try:
                            self._commit([each])
                        except Exception as exc:
                            each.error = exc
                for each in batch:
                    each.done = True
        if ticket.error is not None:
            raise ticket.error

    def _commit(self, batch: Sequence[_Ticket]) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
                break
            except ValueError as exc:
                # Another process holds the directory lock (a reindex): wait our turn.
                if time.monotonic() > deadline:
                    raise Unavailable(f"search index is locked: {exc}") from exc
                time.sleep(0.05)
        try:
            for ticket in batch:
                ticket.work(writer)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
        self._index.reload()

    def upsert(self, documents: Iterable[SearchDocument]) -> None:
        """Add or replace documents by id; searchable on return."""
        docs = list(documents)
        if not docs:
            return

        def work(writer: tantivy.IndexWriter) -> None:
            for doc in docs:
                writer.delete_documents_by_term("id", str(doc["id"]))
                writer.add_document(self._to_tantivy(doc))

        self._write(work)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id."""
        if not ids:
            return

        def work(writer: tantivy.IndexWriter) -> None:
            for doc_id in ids:
                writer.delete_documents_by_term("id", str(doc_id))

        self._write(work)

    def replace_all(self, documents: Iterable[SearchDocument]) -> int:
        """Swap the whole index for these documents in one commit (readers never see it
        half built)."""
        docs = list(documents)

        def work(writer: tantivy.IndexWriter) -> None:
            writer.delete_all_documents()
            for doc in docs:
                writer.add_document(self._to_tantivy(doc))

        self._write(work)
        return len(docs)

    # --- reading --------------------------------------------------------------------------

    def _generation(self) -> int:
        try:
            return os.stat(self.path / "meta.json").st_mtime_ns
        except FileNotFoundError:
            return 0

    def _all_documents(self, searcher: tantivy.Searcher) -> list[SearchDocument]:
        if searcher.num_docs == 0:
            return []
        hits = searcher.search(self._tantivy.Query.all_query(), limit=MAX_MATCHES).hits
        return [self._load(searcher, address) for _, address in hits]

    def vocabulary(self) -> Vocabulary:
        """The catalog vocabulary, rebuilt when the index changed."""
        generation = self._generation()
        with self._vocab_lock:
            if generation != self._vocab_key:
                self._index.reload()
                self._vocab = Vocabulary.from_documents(self._all_documents(self._index.searcher()))
                self._vocab_key = generation
            return self._vocab

    def _load(self, searcher: tantivy.Searcher, address: tantivy.DocAddress) -> SearchDocument:
        stored = searcher.doc(address).get_first("doc")
        if stored is None:
            raise Unavailable("search document without its stored body")
        # orjson: every hit's stored body is parsed on every search.
        loaded: SearchDocument = orjson.loads(bytes(stored))
        return loaded

    def _term_clause(self, token: str) -> tantivy.Query:
        q = self._tantivy.Query
        occur = self._tantivy.Occur.Should
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = []
        typos = max_typos(token)
        for name, weight in self._weights.items():
            parts.append((occur, q.boost_query(q.term_query(self._schema, name, token), weight)))
            if typos and name in ("title", "model", "brand"):
                fuzzy = q.fuzzy_term_query(self._schema, name, token, distance=typos)
                parts.append((occur, q.boost_query(fuzzy, weight * _FUZZY_WEIGHT)))
        return q.boolean_query(parts)

    def _filters(self, query: SearchQuery) -> list[tantivy.Query]:
        q = self._tantivy.Query
        filters: list[tantivy.Query] = []
        if query.category:
            filters.append(q.term_query(self._schema, "category", query.category))
        if query.brand:
            filters.append(q.term_query(self._schema, "brand_key", brand_key(query.brand)))
        if query.min_price is not None or query.max_price is not None:
            filters.append(
                q.range_query(
                    self._schema,
                    "price",
                    self._tantivy.FieldType.Integer,
                    query.min_price if query.min_price is not None else 0,
                    query.max_price if query.max_price is not None else 2**62,
                )
            )
        if query.in_stock:
            filters.append(q.term_query(self._schema, "in_stock", 1))
        return filters

    def _match(
        self, searcher: tantivy.Searcher, intent: Intent, filters: list[tantivy.Query]
    ) -> list[tuple[float, SearchDocument]]:
        q = self._tantivy.Query
        must = self._tantivy.Occur.Must
        should = self._tantivy.Occur.Should
        words = [t for t in intent.tokens if t not in STOPWORDS]
        if not words and not intent.unknown:
            text_query: tantivy.Query | None = None
        elif words:
            # Every known word must match; unknown words only add score.
            text_query = q.boolean_query(
                [(must, self._term_clause(t)) for t in words]
                + [(should, self._term_clause(t)) for t in intent.unknown]
            )
        else:
            text_query = q.boolean_query([(should, self._term_clause(t)) for t in intent.unknown])
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = [(must, f) for f in filters]
        if text_query is not None:
            clauses.append((must, text_query))
        final = q.boolean_query(clauses) if clauses else q.all_query()
        hits = searcher.search(final, limit=MAX_MATCHES).hits
        return [(float(score), self._load(searcher, address)) for score, address in hits]

    def search(self, query: SearchQuery) -> SearchResult:
        """Run a search: match, rank (or sort), count, facet, page."""
        offset = decode_cursor(query.cursor, query_fingerprint(query))
        intent = detect_intent(query.text, self.vocabulary())
        searcher = self._index.searcher()
        matches = self._match(searcher, intent, self._filters(query))
        ranked = self._order(matches, intent, query)
        page = ranked[offset : offset + query.limit]
        next_offset = offset + query.limit
        return SearchResult(
            items=[public_item(r.document, r.sku) for r in page],
            total=len(ranked),
            facets=compute_facets([r.document for r in ranked]),
            next_cursor=(
                encode_cursor(next_offset, query_fingerprint(query))
                if next_offset < len(ranked)
                else None
            ),
        )

    def _order(
        self, matches: list[tuple[float, SearchDocument]], intent: Intent, query: SearchQuery
    ) -> list[Ranked]:
        sort = SORTS.get(query.sort)
        if sort is None and (intent.tokens or intent.unknown):
            return rerank(matches, intent)
        ranked = [Ranked(score, doc, None) for score, doc in matches]
        field, descending = sort or ("createdAt", True)
        # Ties broken by id so pages never shuffle between requests.
        ranked.sort(key=lambda r: str(r.document["id"]))
        ranked.sort(key=lambda r: r.document.get(field) or 0, reverse=descending)
        return ranked

    def search_baseline(self, text: str, limit: int = 10) -> list[str]:
        """Plain BM25 over the raw title and description (the benchmark's baseline): product
        ids, best first."""
        query, _errors = self._index.parse_query_lenient(
            text, default_field_names=["title_plain", "description_plain"]
        )
        searcher = self._index.searcher()
        hits = searcher.search(query, limit=limit).hits
        return [str(self._load(searcher, address)["id"]) for _, address in hits]

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Product titles whose words start with what was typed (`onep` -> `OnePlus 11R`),
        brands first when the prefix names one."""
        words: list[str | tuple[int, str]] = list(analyze(prefix))
        if not words or limit < 1:
            return []
        q = self._tantivy.Query
        searcher = self._index.searcher()
        clauses = [
            q.boost_query(q.phrase_prefix_query(self._schema, name, words), weight)
            for name, weight in (("title", 2.0), ("brand", 1.0))
        ]
        hits = searcher.search(
            q.boolean_query([(self._tantivy.Occur.Should, c) for c in clauses]), limit=limit * 5
        ).hits
        suggestions: list[str] = []
        prefix_key = "".join(str(w) for w in words)
        for brand in sorted(self.vocabulary().brands):
            if brand.startswith(prefix_key) and len(words) == 1:
                for _, address in hits:
                    doc = self._load(searcher, address)
                    if brand_key(str(doc["brand"])) == brand:
                        suggestions.append(str(doc["brand"]))
                        break
        for _, address in hits:
            title = str(self._load(searcher, address)["title"])
            if title not in suggestions:
                suggestions.append(title)
        return suggestions[:limit]

    def count(self) -> int:
        """Documents in the index."""
        return int(self._index.searcher().num_docs)

    def check(self) -> None:
        """Raise Unavailable when the index folder cannot be read."""
        try:
            self._index.searcher()
        except Exception as exc:
            raise Unavailable(f"search index unreadable: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: tantivy drops its files with the objects."""


def compute_facets(documents: Sequence[Mapping[str, Any]]) -> dict[str, list[FacetValue]]:
    """Facet counts over matching documents, in `spec.FACETS` order (price bands in band
    order, other facets by count then value)."""
    out: dict[str, list[FacetValue]] = {}
    for facet in FACETS:
        counts: dict[str, int] = {}
        for doc in documents:
            raw = doc.get(facet.field)
            if facet.name == "price":
                values = [price_band(int(raw or 0))]
            elif isinstance(raw, list):
                values = [str(v) for v in raw]
            else:
                values = [str(raw)] if raw not in (None, "") else []
            for value in dict.fromkeys(values):
                counts[value] = counts.get(value, 0) + 1
        if facet.name == "price":
            ordered = [
                FacetValue(b.label, counts[b.label]) for b in PRICE_BANDS if b.label in counts
            ]
        else:
            ordered = [
                FacetValue(v, c) for v, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
        out[facet.name] = ordered[: facet.count]
    return out


def from_settings(settings: Settings) -> TantivySearchIndex:
    """The embedded index of these settings, in `data_dir/search/products`."""
    return TantivySearchIndex(Path(settings.data_dir) / "search" / "products")
