"""Intent-aware ranking on top of BM25, engine independent.

A query is read against the catalog's own vocabulary (brands, model names, storage sizes,
operating systems, category names): `OnePlus 64GB` names a brand and a storage size,
`OPPO A92` a brand and a model, `Android phone` an OS and a device. Products that match
what the query names get a bonus over their normalised BM25 score, and accessories are
demoted when the query names a device or model but no accessory word, so `Android phone`
returns phones rather than cases that mention phones. Misspelt words are corrected to the
nearest catalog word first (`onplus` -> `oneplus`, `opo` -> `oppo`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudcart.core.search.spec import (
    ACCESSORY_WORDS,
    DEVICE_WORDS,
    STOPWORDS,
    analyze,
)

BRAND_BONUS = 2.0
MODEL_BONUS = 3.0
MODEL_PRECISION_BONUS = 1.0
ATTRIBUTE_BONUS = 1.5
CATEGORY_BONUS = 1.5
ACCESSORY_PENALTY = 3.0
NOT_ACCESSORY_PENALTY = 1.5


@dataclass(frozen=True)
class Vocabulary:
    """The words of the indexed catalog, by role."""

    terms: Mapping[str, int] = field(default_factory=dict)
    """Every searchable token -> number of documents containing it."""
    brands: frozenset[str] = frozenset()
    model_tokens: frozenset[str] = frozenset()
    storage: frozenset[str] = frozenset()
    os: frozenset[str] = frozenset()
    categories: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Category id -> the tokens of its name and id."""

    @classmethod
    def from_documents(cls, documents: Iterable[Mapping[str, Any]]) -> Vocabulary:
        """Build the vocabulary from search documents."""
        terms: dict[str, int] = {}
        brands: set[str] = set()
        models: set[str] = set()
        storage: set[str] = set()
        oses: set[str] = set()
        categories: dict[str, set[str]] = {}
        for doc in documents:
            tokens: set[str] = set()
            for name in ("title", "model", "brand", "categoryName", "description"):
                tokens.update(analyze(str(doc.get(name) or "")))
            for value in doc.get("attributes") or []:
                tokens.update(analyze(str(value)))
            for token in tokens:
                terms[token] = terms.get(token, 0) + 1
            brands.update(analyze(str(doc.get("brand") or "")))
            models.update(analyze(str(doc.get("model") or "")))
            for value in doc.get("storage") or []:
                storage.update(analyze(value))
            if doc.get("os"):
                oses.update(analyze(str(doc["os"])))
            category = str(doc.get("categoryId") or "")
            if category:
                words = categories.setdefault(category, set())
                words.update(analyze(str(doc.get("categoryName") or "")) or analyze(category))
        return cls(
            terms=terms,
            brands=frozenset(brands),
            model_tokens=frozenset(models - brands),
            storage=frozenset(storage),
            os=frozenset(oses),
            categories={k: frozenset(v) for k, v in categories.items()},
        )


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (transpositions count 1), or `limit + 1` when it
    is certainly above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def max_typos(token: str) -> int:
    """How many edits a query word may be away from a catalog word."""
    if len(token) < 3:
        return 0
    return 1 if len(token) < 7 else 2


def correct(token: str, vocabulary: Vocabulary) -> str | None:
    """The token itself when the catalog has it, else the nearest catalog word (fewest
    edits, then most documents), else None."""
    if token in vocabulary.terms:
        return token
    limit = max_typos(token)
    if limit == 0:
        return None
    best: tuple[int, int, str] | None = None
    for term, count in vocabulary.terms.items():
        distance = edit_distance(token, term, limit)
        if distance <= limit:
            candidate = (distance, -count, term)
            if best is None or candidate < best:
                best = candidate
    return best[2] if best else None


@dataclass(frozen=True)
class Intent:
    """What a query names, in catalog words."""

    tokens: tuple[str, ...]
    """Known (or corrected) query words, stop words dropped: every match must have them."""
    unknown: tuple[str, ...] = ()
    """Words the catalog does not have even after correction (they only add score)."""
    brands: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()
    storage: frozenset[str] = frozenset()
    os: frozenset[str] = frozenset()
    category: str | None = None
    accessory: bool = False
    device: bool = False


def detect_intent(text: str, vocabulary: Vocabulary) -> Intent:
    """Read a query against the catalog vocabulary."""
    known: list[str] = []
    unknown: list[str] = []
    for raw in analyze(text):
        if raw in STOPWORDS:
            continue
        fixed = correct(raw, vocabulary)
        if fixed is None:
            unknown.append(raw)
        elif fixed not in known:
            known.append(fixed)
    words = set(known)
    brands = frozenset(words & vocabulary.brands)
    storage = frozenset(words & vocabulary.storage)
    oses = frozenset(words & vocabulary.os)
    models = tuple(
        t
        for t in known
        if t in vocabulary.model_tokens
        and t not in brands
        and t not in storage
        and t not in ACCESSORY_WORDS
        and t not in DEVICE_WORDS
    )
    category: str | None = None
    best_size = 0
    for category_id, category_words in vocabulary.categories.items():
        if category_words and category_words <= words and len(category_words) > best_size:
            category, best_size = category_id, len(category_words)
    accessory = bool(words & ACCESSORY_WORDS)
    # A bare brand ("OnePlus") wants the brand's devices before its chargers.
    device = not accessory and bool(words & DEVICE_WORDS or models or (brands and words <= brands))
    return Intent(
        tokens=tuple(known),
        unknown=tuple(unknown),
        brands=brands,
        models=models,
        storage=storage,
        os=oses,
        category=category,
        accessory=accessory,
        device=device,
    )


def _variants(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = doc.get("variants") or "[]"
    parsed: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else list(raw)
    return parsed


def intent_bonus(doc: Mapping[str, Any], intent: Intent) -> tuple[float, str | None]:
    """The bonus (or penalty) of a document for an intent, and the SKU of the variant the
    query asked for (None when it named no variant attribute)."""
    bonus = 0.0
    sku: str | None = None
    if intent.brands and set(analyze(str(doc.get("brand") or ""))) & intent.brands:
        bonus += BRAND_BONUS
    if intent.models:
        model_words = set(analyze(str(doc.get("model") or "")))
        query_models = set(intent.models)
        covered = len(query_models & model_words)
        if covered:
            bonus += MODEL_BONUS * covered / len(query_models)
            bonus += MODEL_PRECISION_BONUS * covered / max(len(model_words - intent.brands), 1)
    if intent.storage:
        for variant in _variants(doc):
            if variant.get("storage") and set(analyze(variant["storage"])) & intent.storage:
                bonus += ATTRIBUTE_BONUS
                sku = variant["sku"]
                break
    if intent.os and set(analyze(str(doc.get("os") or ""))) & intent.os:
        bonus += ATTRIBUTE_BONUS
    if intent.category and doc.get("categoryId") == intent.category:
        bonus += CATEGORY_BONUS
    is_accessory = doc.get("kind") == "accessory"
    if intent.device and is_accessory:
        bonus -= ACCESSORY_PENALTY
    elif intent.accessory and not is_accessory:
        bonus -= NOT_ACCESSORY_PENALTY
    return bonus, sku


@dataclass(frozen=True)
class Ranked:
    """A ranked hit: final score, the document, the variant the query asked for."""

    score: float
    document: Mapping[str, Any]
    sku: str | None


def rerank(hits: Sequence[tuple[float, Mapping[str, Any]]], intent: Intent) -> list[Ranked]:
    """Order BM25 hits by normalised BM25 plus the intent bonus (stable for ties)."""
    top = max((score for score, _ in hits), default=0.0) or 1.0
    ranked: list[Ranked] = []
    for score, doc in hits:
        bonus, sku = intent_bonus(doc, intent)
        ranked.append(Ranked(score / top + bonus, doc, sku))
    ranked.sort(key=lambda r: -r.score)
    return ranked
