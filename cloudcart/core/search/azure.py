"""The Azure AI Search adapter of the search port (`azure-search-documents`).

Everything about the index is derived from `spec.py`: `build_index_definition()` turns the
spec's fields, analyzer, synonyms, weights and suggester into an Azure index definition, and
`AzureSearchIndex.search()` turns a `SearchQuery` into one search request (OData `$filter`,
facets, `searchFields`, the scoring profile, a Lucene query with fuzzy terms). The Azure
engine finds and scores the matches; the engine-independent `ranking.rerank` then orders the
best of them by what the query names (brand, model, storage, OS, accessory or device), the
same way the embedded engine does.

The app reads and writes through an index alias (`SEARCH_INDEX_NAME`, `products`), never a
concrete index. Each shape of the index lives in its own index, named after a hash of the
definition's shape (`products-v<10 hex digits>`, `versioned_index_name()`): the service
refuses to change an existing field's type or attributes and takes the index offline for an
analyzer change, so a new shape is built beside the live index, filled from the catalog and
then served by pointing the alias at it (`AzureSearchIndex.deploy()`, run by `cloudcart
search init` and the azd postprovision hook, never on a cold start). Scoring profiles and the
synonym map, which the service changes in place, are not part of the shape.

Two derived fields exist only in Azure (both hidden, both computed from the spec on upsert):
- `<field>Suggest` for every `suggest=True` field: Azure suggesters refuse fields with a
  custom analyzer, so the suggester reads standard-analyzed copies of them;
- `brandKey`: `documents.brand_key(brand)`, so a brand filter ignores case and spacing
  (`One Plus` finds `OnePlus`) exactly as the embedded engine's filter does.

The SDK is imported lazily (inside functions), so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cloudcart.core.errors import CloudcartError, Unavailable
from cloudcart.core.ports.search import (
    FacetValue,
    SearchDocument,
    SearchQuery,
    SearchResult,
)
from cloudcart.core.search.cursors import decode_cursor, encode_cursor, query_fingerprint
from cloudcart.core.search.documents import brand_key, public_item
from cloudcart.core.search.ranking import (
    Ranked,
    Vocabulary,
    detect_intent,
    max_typos,
    rerank,
)
from cloudcart.core.search.spec import (
    ANALYZER_SPEC,
    FACETS,
    FIELDS,
    INDEX_NAME,
    PRICE_BANDS,
    SCORING_PROFILE,
    SORTS,
    STEM_OVERRIDE_FILTER,
    STEM_OVERRIDES,
    STEM_RULES,
    STOPWORDS,
    SUGGESTER,
    SYNONYM_STEP,
    FieldType,
    analyze,
    facet_values_numeric,
    field_weights,
    price_band,
    solr_synonyms,
    suggester_fields,
)

if TYPE_CHECKING:
    from azure.core.credentials import AzureKeyCredential, TokenCredential
    from azure.search.documents import SearchClient
    from azure.search.documents.indexes import SearchIndexClient
    from azure.search.documents.indexes.models import SearchIndex as AzureIndexDefinition

    from cloudcart.core.ports.search import SearchIndex
    from cloudcart.core.settings import Settings

log = logging.getLogger(__name__)

SYNONYM_MAP = "cloudcart-synonyms"
"""Name of the Azure synonym map built from `spec.solr_synonyms()`."""

SUGGEST_SUFFIX = "Suggest"
"""Suffix of the standard-analyzed copies of the suggester's fields (`titleSuggest`)."""

BRAND_KEY_FIELD = "brandKey"
"""Hidden filter field holding `brand_key(brand)`."""

MAX_BATCH = 1000
"""Most documents in one indexing request (the service's limit)."""

RERANK_WINDOW = 200
"""Relevance pages inside this many top matches are reranked by intent; deeper pages keep
the engine's order (so every page of one query comes from one consistent ordering)."""

VOCABULARY_TTL = 300.0
"""Seconds the catalog vocabulary (for typo correction and intent) is cached per instance."""

# Fuzzy variants of a query word are searched in the name fields only, as in the embedded
# engine: a typo'd word in a long description matches far too much.
_FUZZY_FIELDS = ("title", "model", "brand")

# Parts of an index definition the service changes in place; everything else is the
# index's shape, which only a new index can change, so only it names the version.
_IN_PLACE_PARTS = frozenset(
    {"name", "scoringProfiles", "defaultScoringProfile", "corsOptions", "@odata.etag"}
)

_EDM: dict[FieldType, str] = {
    "string": "Edm.String",
    "strings": "Collection(Edm.String)",
    # Prices are minor units: Int64 so large currencies (IDR, VND) never overflow.
    "int": "Edm.Int64",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
}

_VOCABULARY_FIELDS = (
    "title",
    "model",
    "brand",
    "categoryId",
    "categoryName",
    "description",
    "attributes",
    "storage",
    "os",
)


class SearchError(CloudcartError):
    """Azure AI Search rejected a request (a bug or a schema mismatch, not an outage)."""


class SearchIndexMissing(Unavailable):
    """The index does not exist in the search service (run `cloudcart search init`)."""


# --- index definition ------------------------------------------------------------------------


def suggest_field(name: str) -> str:
    """The hidden, standard-analyzed copy of a suggester field (`title` -> `titleSuggest`)."""
    return f"{name}{SUGGEST_SUFFIX}"


def build_synonym_map() -> Any:
    """The Solr-format synonym map of `spec.SYNONYM_GROUPS`."""
    from azure.search.documents.indexes.models import SynonymMap

    return SynonymMap(name=SYNONYM_MAP, synonyms=solr_synonyms().splitlines())


def build_index_definition(index_name: str = INDEX_NAME) -> AzureIndexDefinition:
    """The Azure index definition of `spec.py`: fields and their flags, the custom analyzer
    with its pattern-replace char filters, the synonym map on every searchable field, the
    scoring profile of `field_weights()` (the default profile) and the suggester."""
    from azure.search.documents.indexes.models import (
        CustomAnalyzer,
        PatternReplaceCharFilter,
        PatternReplaceTokenFilter,
        ScoringProfile,
        SearchField,
        SearchIndex,
        SearchSuggester,
        StemmerOverrideTokenFilter,
        TextWeights,
        TokenFilter,
    )

    fields: list[SearchField] = []
    for spec in FIELDS:
        fields.append(
            SearchField(
                name=spec.name,
                type=_EDM[spec.type],
                key=spec.key,
                searchable=spec.searchable,
                filterable=spec.filterable,
                facetable=spec.facetable,
                sortable=spec.sortable,
                retrievable=spec.retrievable,
                analyzer_name=ANALYZER_SPEC.name if spec.searchable else None,
                synonym_map_names=[SYNONYM_MAP] if spec.searchable else None,
            )
        )
    for name in suggester_fields():
        fields.append(
            SearchField(
                name=suggest_field(name),
                type=_EDM[_field_type(name)],
                searchable=True,
                filterable=False,
                facetable=False,
                sortable=False,
                retrievable=False,
                analyzer_name="standard.lucene",
            )
        )
    fields.append(
        SearchField(
            name=BRAND_KEY_FIELD,
            type="Edm.String",
            searchable=False,
            filterable=True,
            facetable=False,
            sortable=False,
            retrievable=False,
        )
    )
    char_filters = [
        # The spec's patterns are written for lowercased text; in Azure char filters run
        # before the lowercase token filter, so they match case-insensitively instead.
        PatternReplaceCharFilter(
            name=rule.name, pattern=f"(?i){rule.pattern}", replacement=rule.replacement
        )
        for rule in ANALYZER_SPEC.char_filters
    ]
    # The spec's own stemmer, step for step: Lucene's `kstem` would stem differently from
    # the embedded engine (see `spec.STEM_RULES`).
    token_filters: list[TokenFilter] = [
        StemmerOverrideTokenFilter(
            name=STEM_OVERRIDE_FILTER,
            rules=[f"{word} => {stem}" for word, stem in STEM_OVERRIDES.items()],
        ),
        *(
            PatternReplaceTokenFilter(
                name=rule.name, pattern=rule.pattern, replacement=rule.replacement
            )
            for rule in STEM_RULES
        ),
    ]
    analyzer = CustomAnalyzer(
        name=ANALYZER_SPEC.name,
        tokenizer_name=ANALYZER_SPEC.tokenizer,
        # Azure applies synonyms through the synonym map on each searchable field instead.
        token_filters=[f for f in ANALYZER_SPEC.token_filters if f != SYNONYM_STEP],
        char_filters=[rule.name for rule in ANALYZER_SPEC.char_filters],
    )
    profile = ScoringProfile(
        name=SCORING_PROFILE, text_weights=TextWeights(weights=dict(field_weights()))
    )
    suggester = SearchSuggester(
        name=SUGGESTER,
        source_fields=[suggest_field(name) for name in suggester_fields()],
    )
    return SearchIndex(
        name=index_name,
        fields=fields,
        analyzers=[analyzer],
        char_filters=list(char_filters),
        token_filters=token_filters,
        scoring_profiles=[profile],
        default_scoring_profile=SCORING_PROFILE,
        suggesters=[suggester],
    )


def _field_type(name: str) -> FieldType:
    return next(f.type for f in FIELDS if f.name == name)


def index_version() -> str:
    """Ten hex digits naming the shape of the spec's index definition: its fields and their
    attributes, analyzers and their parts, suggesters. Parts the service changes in place
    (scoring profiles, CORS) and the synonym map's content do not count."""
    definition: dict[str, Any] = build_index_definition(INDEX_NAME).as_dict()
    shape = {k: v for k, v in definition.items() if k not in _IN_PLACE_PARTS}
    encoded = json.dumps(shape, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:10]


def versioned_index_name(alias: str) -> str:
    """The index that holds this spec's shape for an alias (`products-v1a2b3c4d5e`)."""
    return f"{alias}-v{index_version()}"


def is_version_of(index_name: str, alias: str) -> bool:
    """Whether `index_name` is a versioned index of `alias` (of any spec)."""
    return re.fullmatch(re.escape(alias) + r"-v[0-9a-f]{10}", index_name) is not None


@dataclass(frozen=True)
class IndexDeployment:
    """What `AzureSearchIndex.deploy` did.

    `index` is the versioned index the alias serves now; `previous` the index it served
    before (None on a new service); `indexed` the products put into `index` from the catalog
    (None when nothing was reindexed); `deleted` the older versions removed.
    """

    alias: str
    index: str
    previous: str | None
    indexed: int | None
    deleted: tuple[str, ...] = ()

    def describe(self) -> str:
        """One sentence for the operator."""
        if self.previous == self.index and self.indexed is None:
            return (
                f"Azure AI Search alias {self.alias!r} already serves {self.index!r}, the index "
                "of this spec: up to date"
            )
        details: list[str] = []
        if self.indexed is not None:
            details.append(f"{self.indexed} products indexed from the catalog")
        if self.previous is not None and self.previous != self.index:
            if self.previous == self.alias:
                details.append(f"the index named {self.previous!r} was replaced by the alias")
            else:
                details.append(f"{self.previous!r} kept for a rollback")
        if self.deleted:
            details.append("deleted " + ", ".join(repr(d) for d in self.deleted))
        extra = f" ({'; '.join(details)})" if details else ""
        return f"Azure AI Search alias {self.alias!r} serves {self.index!r}{extra}: up to date"


def to_azure_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A port search document as Azure stores it: the spec's fields plus the derived hidden
    fields; an empty `createdAt` becomes null (Edm.DateTimeOffset rejects "")."""
    out: dict[str, Any] = {spec.name: doc.get(spec.name) for spec in FIELDS}
    if not out.get("createdAt"):
        out["createdAt"] = None
    for name in suggester_fields():
        out[suggest_field(name)] = doc.get(name)
    out[BRAND_KEY_FIELD] = brand_key(str(doc.get("brand") or ""))
    return out


# --- query building ---------------------------------------------------------------------------


def odata_literal(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def build_filter(query: SearchQuery) -> str | None:
    """The OData `$filter` of a query's filters (None when it has none)."""
    clauses: list[str] = []
    if query.category:
        clauses.append(f"categoryId eq {odata_literal(query.category)}")
    if query.brand:
        clauses.append(f"{BRAND_KEY_FIELD} eq {odata_literal(brand_key(query.brand))}")
    if query.min_price is not None:
        clauses.append(f"price ge {int(query.min_price)}")
    if query.max_price is not None:
        clauses.append(f"price le {int(query.max_price)}")
    if query.in_stock:
        # As in the embedded engine, `inStock=false` means "don't filter", not "only sold out".
        clauses.append("inStock eq true")
    return " and ".join(clauses) or None


def build_facets() -> list[str]:
    """Facet expressions of `spec.FACETS` (price as the spec's bands)."""
    out: list[str] = []
    for facet in FACETS:
        if facet.name == "price":
            out.append(facet_values_numeric())
        else:
            out.append(f"{facet.field},count:{facet.count}")
    return out


def build_search_text(text: str) -> str | None:
    """A Lucene (`queryType=full`) query: every analysed query word must match, exactly or
    (in the name fields) within the spec's typo budget; None when no word is left.

    Words come from `spec.analyze` (units joined, plurals stemmed, synonyms canonical) so the
    client sends the same tokens the embedded engine searches; Azure expands synonyms of the
    exact term through the synonym map (fuzzy terms skip analysis, hence the exact twin).
    """
    clauses: list[str] = []
    for token in dict.fromkeys(analyze(text)):
        if token in STOPWORDS:
            continue
        typos = max_typos(token)
        parts = [token]
        if typos:
            parts.extend(f"{name}:{token}~{typos}" for name in _FUZZY_FIELDS)
        clauses.append("(" + " OR ".join(parts) + ")")
    return " AND ".join(clauses) or None


def build_order_by(query: SearchQuery, has_text: bool) -> list[str] | None:
    """`$orderby` for a sort (None: by relevance score)."""
    sort = SORTS.get(query.sort)
    if sort is None and has_text:
        return None
    field, descending = sort or ("createdAt", True)
    return [f"{field} {'desc' if descending else 'asc'}"]


def map_facets(
    raw: Mapping[str, Sequence[Mapping[str, Any]]] | None,
) -> dict[str, list[FacetValue]]:
    """Azure facet results in the port's shape and order (as the embedded engine gives them:
    price bands in band order, other values by count then value, zero counts dropped)."""
    raw = raw or {}
    out: dict[str, list[FacetValue]] = {}
    for facet in FACETS:
        buckets = raw.get(facet.field) or []
        if facet.name == "price":
            counts: dict[str, int] = {}
            for bucket in buckets:
                low = bucket.get("from")
                label = price_band(int(low)) if low is not None else PRICE_BANDS[0].label
                counts[label] = counts.get(label, 0) + int(bucket.get("count") or 0)
            values = [
                FacetValue(b.label, counts[b.label]) for b in PRICE_BANDS if counts.get(b.label)
            ]
        else:
            pairs = [
                (_facet_text(b.get("value")), int(b.get("count") or 0))
                for b in buckets
                if b.get("value") not in (None, "") and b.get("count")
            ]
            values = [FacetValue(v, c) for v, c in sorted(pairs, key=lambda p: (-p[1], p[0]))]
        out[facet.name] = values[: facet.count]
    return out


def _facet_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the adapter ------------------------------------------------------------------------------


class AzureSearchIndex:
    """A `SearchIndex` on an Azure AI Search index.

    `credential` is a `TokenCredential` in production (`DefaultAzureCredential`: the app's
    managed identity with Search Index Data Contributor and Search Service Contributor) or an
    `AzureKeyCredential` (tests, admin tooling). `client_options` go to the SDK clients
    (`retry_total`, `transport`, `api_version` ...).
    """

    def __init__(
        self,
        endpoint: str,
        index_name: str,
        credential: AzureKeyCredential | TokenCredential,
        *,
        rerank_window: int = RERANK_WINDOW,
        vocabulary_ttl: float = VOCABULARY_TTL,
        **client_options: Any,
    ) -> None:
        from azure.search.documents import SearchClient
        from azure.search.documents.indexes import SearchIndexClient

        self.endpoint = endpoint
        self.index_name = index_name
        self.location = f"{endpoint.rstrip('/')}/indexes/{index_name}"
        """Where the index lives: indexes with the same location hold the same documents."""
        self.rerank_window = rerank_window
        self.vocabulary_ttl = vocabulary_ttl
        self._credential = credential
        self._client_options = client_options
        self._client: SearchClient = SearchClient(
            endpoint, index_name, credential, **client_options
        )
        self._index_client: SearchIndexClient = SearchIndexClient(
            endpoint, credential, **client_options
        )
        self._vocab_lock = threading.Lock()
        self._vocab = Vocabulary()
        self._vocab_at: float | None = None

    # --- schema ---------------------------------------------------------------------------

    def ensure_index(self) -> None:
        """Make the alias serve this spec's versioned index without filling it: for a new
        service, or when the alias serves it already. Raises SearchError when the alias
        serves another version (that needs `deploy` with a reindex, `cloudcart search init`).
        """
        self.deploy(None)

    def deploy(
        self, reindex: Callable[[SearchIndex], int] | None, *, force_reindex: bool = False
    ) -> IndexDeployment:
        """Make the alias (`index_name`) serve this spec's versioned index; idempotent.

        When the alias already serves it, the index is updated in place (only what the
        service allows in place differs: same shape) and nothing is reindexed unless
        `force_reindex`. Otherwise the versioned index is created (or finished, after an
        interrupted run) beside the live one, `reindex(new_index)` fills it from the
        catalog, the alias switches to it, `reindex` runs once more through the alias to
        catch the writes the app made to the old index meanwhile, and versions older than
        the one just replaced are deleted (that one stays, for a rollback). A plain index
        named like the alias (made before versioning) is deleted just before the alias is
        created, since they share the name: readers see 404s for that moment only.
        Refuses to switch when `reindex` found no products but the live index has some.
        """
        from azure.search.documents.indexes.models import SearchAlias

        alias = self.index_name
        target = versioned_index_name(alias)
        with _mapped_errors(alias):
            self._index_client.create_or_update_synonym_map(build_synonym_map())
            live, plain = self._served_index()
            self._index_client.create_or_update_index(build_index_definition(target))
        if live == target:
            if not force_reindex or reindex is None:
                return IndexDeployment(alias, target, live, None)
            return IndexDeployment(alias, target, live, reindex(self))
        if reindex is None:
            if live is not None:
                raise SearchError(
                    f"alias {alias!r} serves {live!r}, not {target!r}: run `cloudcart search "
                    "init` to fill the new index from the catalog and switch to it"
                )
            indexed = None
        else:
            building = self.for_index(target)
            try:
                indexed = reindex(building)
            finally:
                building.close()
            if live is not None and indexed == 0:
                live_count = self.count()
                if live_count:
                    raise SearchError(
                        f"refusing to switch alias {alias!r} to {target!r}: the catalog gave "
                        f"0 products while {live!r} holds {live_count} (is the catalog the "
                        "deployment's Cosmos DB?)"
                    )
        with _mapped_errors(alias):
            if plain:
                self._index_client.delete_index(alias)
            self._index_client.create_or_update_alias(SearchAlias(name=alias, indexes=[target]))
        if reindex is not None and live is not None:
            indexed = reindex(self)
        deleted = self._delete_old_versions(keep={target, live or target})
        log.info("search alias %s switched from %s to %s", alias, live, target)
        return IndexDeployment(alias, target, live, indexed, deleted)

    def _served_index(self) -> tuple[str | None, bool]:
        """The index the alias name serves now, and whether it is a plain index of that
        name (None, False: nothing serves it)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._index_client.get_alias(self.index_name).indexes[0], False
        except ResourceNotFoundError:
            pass
        try:
            self._index_client.get_index(self.index_name)
        except ResourceNotFoundError:
            return None, False
        return self.index_name, True

    def _delete_old_versions(self, keep: set[str]) -> tuple[str, ...]:
        from azure.core.exceptions import HttpResponseError

        deleted: list[str] = []
        with _mapped_errors(self.index_name):
            names = list(self._index_client.list_index_names())
        for name in sorted(names):
            if name in keep or not is_version_of(name, self.index_name):
                continue
            try:
                self._index_client.delete_index(name)
            except HttpResponseError as exc:
                # Cleanup only: another alias may still serve it; the switch is done.
                log.warning("old search index %s not deleted: %s", name, exc.message)
                continue
            deleted.append(name)
        return tuple(deleted)

    def for_index(self, index_name: str) -> AzureSearchIndex:
        """An adapter on another index (or alias) of the same service, same credential."""
        return AzureSearchIndex(
            self.endpoint,
            index_name,
            self._credential,
            rerank_window=self.rerank_window,
            vocabulary_ttl=self.vocabulary_ttl,
            **self._client_options,
        )

    def count(self) -> int:
        """Documents in the index."""
        with _mapped_errors(self.index_name):
            return int(self._client.get_document_count())

    # --- writing --------------------------------------------------------------------------

    def upsert(self, documents: Iterable[SearchDocument]) -> None:
        """Merge-or-upload documents in batches of at most `MAX_BATCH`."""
        for batch in _batches((to_azure_document(d) for d in documents), MAX_BATCH):
            with _mapped_errors(self.index_name):
                results = self._client.merge_or_upload_documents(batch)
            _raise_failed(results)
        self._vocab_at = None

    def delete(self, ids: Sequence[str]) -> None:
        """Delete documents by id (unknown ids are ignored by the service)."""
        keys = ({"id": str(i)} for i in ids)
        for batch in _batches(keys, MAX_BATCH):
            with _mapped_errors(self.index_name):
                results = self._client.delete_documents(batch)
            _raise_failed(results, ignore_missing=True)
        self._vocab_at = None

    def replace_all(self, documents: Iterable[SearchDocument]) -> int:
        """Upload every document, then delete those no longer present (readers see old and
        new documents side by side for a moment, never an empty index)."""
        docs = list(documents)
        keep = {str(d["id"]) for d in docs}
        self.upsert(docs)
        stale = [doc_id for doc_id in self._all_ids() if doc_id not in keep]
        self.delete(stale)
        return len(docs)

    def _scan(self, select: list[str]) -> Iterator[dict[str, Any]]:
        skip = 0
        while True:
            with _mapped_errors(self.index_name):
                page = list(
                    self._client.search(search_text="*", select=select, top=1000, skip=skip)
                )
            yield from page
            if len(page) < 1000:
                return
            skip += len(page)

    def _all_ids(self) -> list[str]:
        return [str(d["id"]) for d in self._scan(["id"])]

    # --- reading --------------------------------------------------------------------------

    def vocabulary(self) -> Vocabulary:
        """The catalog vocabulary (typo correction, intent), cached for `vocabulary_ttl`
        seconds and dropped by this instance's own writes."""
        with self._vocab_lock:
            now = time.monotonic()
            if self._vocab_at is None or now - self._vocab_at > self.vocabulary_ttl:
                self._vocab = Vocabulary.from_documents(self._scan(list(_VOCABULARY_FIELDS)))
                self._vocab_at = now
            return self._vocab

    def search(self, query: SearchQuery) -> SearchResult:
        """Search, facet and count on the service; rerank the top window by intent."""
        fingerprint = query_fingerprint(query)
        offset = decode_cursor(query.cursor, fingerprint)
        text = build_search_text(query.text)
        order_by = build_order_by(query, text is not None)
        intent = detect_intent(query.text, self.vocabulary()) if text and order_by is None else None
        reranking = intent is not None and offset < self.rerank_window
        top, skip = (self.rerank_window, 0) if reranking else (query.limit, offset)
        with _mapped_errors(self.index_name):
            paged = self._client.search(
                search_text=text or "*",
                query_type="full",
                search_mode="all",
                search_fields=list(field_weights()) if text else None,
                scoring_profile=SCORING_PROFILE,
                filter=build_filter(query),
                facets=build_facets(),
                order_by=order_by,
                select=[f.name for f in FIELDS if f.retrievable],
                include_total_count=True,
                top=top,
                skip=skip,
            )
            # Iterate first: count and facets then come from the same (only) response.
            hits = [(float(d.get("@search.score") or 0.0), d) for d in paged]
            total = int(paged.get_count() or 0)
            facets = map_facets(paged.get_facets())
        if reranking and intent is not None:
            ranked = rerank(hits, intent)[offset : offset + query.limit]
        else:
            ranked = [Ranked(score, doc, None) for score, doc in hits]
        next_offset = offset + query.limit
        return SearchResult(
            items=[public_item(r.document, r.sku) for r in ranked],
            total=total,
            facets=facets,
            next_cursor=encode_cursor(next_offset, fingerprint) if next_offset < total else None,
        )

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Titles of products matching a typed prefix (fuzzy), through the spec's suggester."""
        text = prefix.strip()[:100]
        if not text or limit < 1:
            return []
        with _mapped_errors(self.index_name):
            results = self._client.suggest(
                text,
                SUGGESTER,
                top=min(limit * 2, 100),
                use_fuzzy_matching=True,
                select=["title", "brand"],
            )
        suggestions: list[str] = []
        words = analyze(text)
        prefix_key = "".join(words)
        if len(words) == 1:
            # As in the embedded engine: a prefix of a brand suggests the brand first.
            for result in results:
                brand = str(result.get("brand") or "")
                if brand and brand_key(brand).startswith(prefix_key) and brand not in suggestions:
                    suggestions.append(brand)
        for result in results:
            title = str(result.get("title") or "")
            if title and title not in suggestions:
                suggestions.append(title)
        return suggestions[:limit]

    def check(self) -> None:
        """Raise Unavailable when the service cannot be reached (SearchIndexMissing when the
        index does not exist)."""
        with _mapped_errors(self.index_name):
            self._client.get_document_count()

    def close(self) -> None:
        """Close the HTTP pipelines."""
        self._client.close()
        self._index_client.close()


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _raise_failed(results: Iterable[Any], *, ignore_missing: bool = False) -> None:
    failed = [
        f"{r.key}: {r.status_code} {r.error_message or ''}".strip()
        for r in results
        if not r.succeeded and not (ignore_missing and r.status_code == 404)
    ]
    if failed:
        raise SearchError("documents not indexed: " + "; ".join(failed[:10]))


class _mapped_errors:
    """Turns the SDK's exceptions into the port's errors."""

    def __init__(self, index_name: str) -> None:
        self.index_name = index_name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None:
            return False
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if isinstance(exc, ResourceNotFoundError):
            raise SearchIndexMissing(
                f"Azure AI Search index {self.index_name!r} (or its synonym map) does not "
                "exist: run `cloudcart search init`"
            ) from exc
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            raise Unavailable(f"Azure AI Search unreachable: {exc}") from exc
        if isinstance(exc, ClientAuthenticationError):
            raise Unavailable(f"Azure AI Search refused our identity: {exc.message}") from exc
        if isinstance(exc, HttpResponseError):
            if exc.status_code in (429, 502, 503, 504):
                raise Unavailable(
                    f"Azure AI Search busy or unavailable ({exc.status_code})"
                ) from exc
            raise SearchError(f"Azure AI Search error {exc.status_code}: {exc.message}") from exc
        return False


# --- wiring -----------------------------------------------------------------------------------


def from_settings(settings: Settings) -> AzureSearchIndex:
    """The Azure adapter of these settings, reached with `DefaultAzureCredential`."""
    from azure.identity import DefaultAzureCredential

    if not settings.search_endpoint:
        raise CloudcartError("SEARCH_ENDPOINT must be set for CLOUDCART_SEARCH_ADAPTER=azure")
    return AzureSearchIndex(
        settings.search_endpoint, settings.search_index_name, DefaultAzureCredential()
    )
