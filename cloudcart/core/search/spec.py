"""The one specification of the product search index.

Everything an engine needs to know about product search lives here, as data: the fields
(types, and whether each is searchable, filterable, facetable, sortable), the text analysis
(character filters that normalise units, synonym groups, stop words, a light plural
stemmer), the field weights of the scoring profile, the suggester and the facets.

Both adapters derive from it: the embedded tantivy engine builds its schema and analyses
text with `analyze()`, and the Azure AI Search adapter turns the same data into an index
definition (`fields`, a custom analyzer with `PatternReplaceCharFilter`s and the plural
stemmer as `stemmer_override` and `pattern_replace` token filters, a Solr-format synonym
map, a scoring profile with `text.weights`, a suggester). Keep this module free of engine
imports so both can read it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

INDEX_NAME = "products"
"""Name of the index (Azure AI Search index name; the embedded index's folder)."""

FieldType = Literal["string", "strings", "int", "bool", "datetime"]
"""Portable field types: `strings` is a collection of strings (Azure `Collection(Edm.String)`)."""

ANALYZER = "cloudcart_product"
"""The custom analyzer every searchable field uses (see `ANALYZER_SPEC`)."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of the search document.

    `weight` is the field's text weight in the relevance scoring profile (searchable fields
    only); `suggest` puts the field in the typeahead suggester.
    """

    name: str
    type: FieldType
    key: bool = False
    searchable: bool = False
    filterable: bool = False
    facetable: bool = False
    sortable: bool = False
    retrievable: bool = True
    weight: float = 1.0
    suggest: bool = False
    description: str = ""


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", "string", key=True, filterable=True, description="The product id."),
    FieldSpec(
        "title", "string", searchable=True, weight=6.0, suggest=True, description="Product title."
    ),
    FieldSpec(
        "model",
        "string",
        searchable=True,
        weight=6.0,
        description="The model name: the title without the brand (`A92` of `OPPO A92`).",
    ),
    FieldSpec(
        "brand",
        "string",
        searchable=True,
        filterable=True,
        facetable=True,
        weight=3.0,
        suggest=True,
        description="Brand as written by the catalog (`OnePlus`).",
    ),
    FieldSpec("categoryId", "string", filterable=True, facetable=True, description="Category id."),
    FieldSpec(
        "categoryName",
        "string",
        searchable=True,
        weight=2.0,
        description="Category display name, so `phones` finds the Phones category.",
    ),
    FieldSpec(
        "attributes",
        "strings",
        searchable=True,
        weight=2.0,
        description="Product and variant attribute values (`Android`, `64 GB`, `Black`).",
    ),
    FieldSpec(
        "description", "string", searchable=True, weight=1.0, description="Long description."
    ),
    FieldSpec(
        "storage",
        "strings",
        filterable=True,
        facetable=True,
        description="Storage of the variants, normalised (`64 GB`).",
    ),
    FieldSpec("ram", "strings", filterable=True, facetable=True, description="RAM of variants."),
    FieldSpec("os", "string", filterable=True, facetable=True, description="Operating system."),
    FieldSpec(
        "kind",
        "string",
        filterable=True,
        description="`accessory` for accessories (cases, chargers), else `product`: ranking "
        "demotes accessories when a query names a device but no accessory.",
    ),
    FieldSpec(
        "price",
        "int",
        filterable=True,
        sortable=True,
        facetable=True,
        description="Lowest variant price in minor units.",
    ),
    FieldSpec("currency", "string", filterable=True, description="ISO 4217 currency of price."),
    FieldSpec(
        "inStock", "bool", filterable=True, facetable=True, description="Any variant stocked."
    ),
    FieldSpec("createdAt", "datetime", filterable=True, sortable=True, description="Created."),
    FieldSpec("slug", "string", description="URL slug."),
    FieldSpec("image", "string", description="Blob name of the first image, if any."),
    FieldSpec(
        "variants",
        "string",
        description="JSON list of `{sku, storage, ram, colour, price, inStock}` (not searched; "
        "used to pick the variant a query asks for).",
    ),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def field_weights() -> dict[str, float]:
    """Text weights of the searchable fields (Azure scoring profile `text.weights`)."""
    return {f.name: f.weight for f in FIELDS if f.searchable}


SCORING_PROFILE = "relevance"
"""Name of the Azure scoring profile built from `field_weights()` (the default profile)."""

SUGGESTER = "sg"
"""Name of the suggester; its source fields are the fields with `suggest=True`."""


def suggester_fields() -> list[str]:
    """Fields typeahead suggestions come from."""
    return [f.name for f in FIELDS if f.suggest]


# --- text analysis -------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternReplace:
    """A character filter: replace `pattern` (applied to lowercased text) with `replacement`.

    Written in the dialect both engines accept: the replacement uses `$1` group references
    (Azure `PatternReplaceCharFilter`); `python_replacement` converts it for `re.sub`.
    """

    name: str
    pattern: str
    replacement: str

    @property
    def python_replacement(self) -> str:
        """The replacement in `re.sub` syntax."""
        return re.sub(r"\$(\d)", r"\\g<\1>", self.replacement)


SEPARATOR_RULES: tuple[PatternReplace, ...] = (
    # Thousands separators go (5,000 mAh -> 5000 mAh), so the unit rule can join the number.
    PatternReplace("thousands", r"(\d),(?=\d{3}\b)", "$1"),
    # Azure's standard tokenizer keeps `oppo's`, `wi.fi` and `a_b` as one word where the
    # embedded tokenizer splits them: make them separate words before either tokenizes.
    PatternReplace("separators", r"['\u2019_]|(?<=[a-z])[.,]|[.,](?=[a-z])", " "),
)
"""Word separators both tokenizers agree on, applied first at index and query time."""

UNIT_RULES: tuple[PatternReplace, ...] = (
    # `inch`, `inches` and `"` all mean `in` (6.5 inch, 6.5" -> 6.5in).
    PatternReplace("inch", r"(\d)\s*(?:inches|inch|\")", "$1in"),
    # A number and its unit form one token: "64 GB", "64gb", "64 Gb" -> "64gb".
    PatternReplace(
        "units",
        r"\b(\d+(?:\.\d+)?)\s*(gb|tb|mb|mah|mp|hz|w|in|cm|mm|kg|g)\b",
        "$1$2",
    ),
)
"""Unit normalisation, applied at index and query time, before tokenisation."""

MULTIWORD_RULES: tuple[PatternReplace, ...] = (
    PatternReplace("oneplus", r"\bone\s*plus\b", "oneplus"),
    PatternReplace("iphone", r"\bi\s+phone\b", "iphone"),
    PatternReplace("tshirt", r"\bt\s*-?\s*shirts?\b", "tshirt"),
    PatternReplace("usbc", r"\busb\s*-?\s*c\b", "usbc"),
    PatternReplace("wifi", r"\bwi\s*-?\s*fi\b", "wifi"),
)
"""Names customers write as two words; joined before tokenisation (Azure: char filters)."""

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("phone", "mobile", "smartphone", "handset", "cellphone"),
    ("case", "cover"),
    ("charger", "adapter"),
    ("headphone", "headset"),
    ("earbud", "earphone"),
    ("laptop", "notebook"),
    ("tshirt", "tee"),
    ("colour", "color"),
)
"""Equivalent words; the first is canonical (Azure: one Solr rule per group)."""

STOPWORDS: frozenset[str] = frozenset(
    {"a", "an", "and", "the", "for", "with", "of", "in", "on", "to", "by", "from", "or"}
)
"""Dropped from queries (not from documents: `in` after a number is a unit)."""

ACCESSORY_WORDS: frozenset[str] = frozenset(
    {
        "case",
        "charger",
        "cable",
        "protector",
        "glass",
        "accessory",
        "strap",
        "mount",
        "holder",
        "stand",
        "skin",
        "pouch",
        "powerbank",
    }
)
"""Canonical words that name an accessory; a query with none of them wants the device."""

DEVICE_WORDS: frozenset[str] = frozenset({"phone", "iphone", "laptop", "tablet", "watch"})
"""Canonical words that name a device; a query with one and no accessory word wants it."""

INTENT_ATTRIBUTES: tuple[str, ...] = ("storage", "os", "ram")
"""Attributes a query can name by value (`64gb`, `android`) to rank products having it first."""


# --- stemming ------------------------------------------------------------------------------
#
# A light plural stemmer written as data, so that Azure runs exactly the rules `stem` runs:
# a `stemmer_override` token filter for irregular plurals, then one `pattern_replace` token
# filter per rule, in order. Lucene's `kstem` (Azure's `kstem` filter) cannot be matched by
# local rules: it is dictionary-driven, and on the demo catalog it leaves `glasses`,
# `watches`, `days` and `trousers` plural and cuts `oneplus` to `oneplu`; 85 of its 914
# words came out of it differently from the plural stemmer the embedded engine had.

STEM_KEEP: frozenset[str] = frozenset(
    {"macos", "chromeos", "series", "species", "news", "lens", "canvas"}
)
"""Words that look plural but are not; no stemming rule touches them."""

STEM_OVERRIDES: dict[str, str] = {
    "lenses": "lens",
    "knives": "knife",
    "shelves": "shelf",
    "hoodies": "hoodie",
    "beanies": "beanie",
    "onesies": "onesie",
    "cookies": "cookie",
    "brownies": "brownie",
    "smoothies": "smoothie",
    "movies": "movie",
    "selfies": "selfie",
}
"""Irregular plurals -> singular (Azure: a `stemmer_override` filter); each singular is left
alone by the rules below."""

_NOT_KEPT = "(?!(?:" + "|".join(sorted(STEM_KEEP)) + ")$)"

STEM_RULES: tuple[PatternReplace, ...] = (
    # batteries -> battery, accessories -> accessory (ties, pies: the `s` rule).
    PatternReplace("cloudcart_plural_ies", rf"^{_NOT_KEPT}([a-z]{{2,}})ies$", "$1y"),
    # glasses -> glass, watches -> watch, brushes -> brush, boxes -> box.
    PatternReplace("cloudcart_plural_es", rf"^{_NOT_KEPT}([a-z]+(?:ss|sh|ch|x))es$", "$1"),
    # phones -> phone, cases -> case; not glass, plus, tennis, nor short words or units.
    PatternReplace("cloudcart_plural_s", rf"^{_NOT_KEPT}(?=[a-z]{{4,}}$)([a-z]*[^siu])s$", "$1"),
)
"""Whole-token rewrites applied in order to each lowercased, ASCII-folded token (Azure: one
`pattern_replace` token filter each). Anchored, so replacing every match and replacing the
first agree; a token that one rule rewrites matches none of the later ones."""

STEM_OVERRIDE_FILTER = "cloudcart_plural_overrides"
"""Name of the `stemmer_override` token filter built from `STEM_OVERRIDES`."""

SYNONYM_STEP = "synonyms"
"""The analyzer step that makes synonyms canonical (Azure: the synonym map, at query time)."""


@dataclass(frozen=True)
class AnalyzerSpec:
    """A custom analyzer: character filters, then tokenizer, then token filters."""

    name: str
    char_filters: tuple[PatternReplace, ...]
    tokenizer: str
    token_filters: tuple[str, ...]


ANALYZER_SPEC = AnalyzerSpec(
    name=ANALYZER,
    char_filters=(*SEPARATOR_RULES, *UNIT_RULES, *MULTIWORD_RULES),
    tokenizer="standard_v2",
    # Azure token filter names, in order; `index_tokens` and `analyze` run the same steps.
    token_filters=(
        "lowercase",
        "asciifolding",
        STEM_OVERRIDE_FILTER,
        *(rule.name for rule in STEM_RULES),
        SYNONYM_STEP,
    ),
)


def solr_synonyms() -> str:
    """The synonym map in Solr format, one group per line (Azure synonym map body)."""
    return "\n".join(", ".join(group) for group in SYNONYM_GROUPS)


_CANONICAL: dict[str, str] = {w: g[0] for g in SYNONYM_GROUPS for w in g}
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+[a-z]*)?")
_STEPS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rule.pattern), rule.python_replacement) for rule in STEM_RULES
)
_CHAR_STEPS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rule.pattern), rule.python_replacement) for rule in ANALYZER_SPEC.char_filters
)


def fold(text: str) -> str:
    """Lowercase and strip accents (`Écouteurs` -> `ecouteurs`)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise(text: str) -> str:
    """Folded text with the separator, unit and multi-word rules applied (still one string)."""
    out = fold(text)
    for pattern, replacement in _CHAR_STEPS:
        out = pattern.sub(replacement, out)
    return out


def stem(token: str) -> str:
    """The light plural stemmer of `STEM_OVERRIDES` and `STEM_RULES`: `phones` -> `phone`,
    `glasses` -> `glass`, `batteries` -> `battery`, `lenses` -> `lens`; leaves units
    (`64gb`), short words, `plus`, `tennis` and `STEM_KEEP` alone."""
    out = STEM_OVERRIDES.get(token, token)
    for pattern, replacement in _STEPS:
        out = pattern.sub(replacement, out)
    return out


def canonical(token: str) -> str:
    """The canonical member of the token's synonym group (itself when in none)."""
    return _CANONICAL.get(token, token)


@lru_cache(maxsize=4096)
def index_tokens(text: str) -> tuple[str, ...]:
    """Tokens of `text` before synonyms: normalised and stemmed. What the Azure index's
    custom analyzer emits for the same text (Azure applies synonyms at query time)."""
    return tuple(stem(t) for t in _TOKEN.findall(normalise(text)))


@lru_cache(maxsize=4096)
def analyze(text: str) -> tuple[str, ...]:
    """Tokens of `text` as the index sees them: normalised, stemmed, synonyms canonical.

    The same function runs at index and query time, so `64 GB` in a document and `64gb` in
    a query meet as one token, and `mobile` finds `phone`.
    """
    return tuple(canonical(t) for t in index_tokens(text))


def analyzed_text(text: str) -> str:
    """`analyze(text)` joined by spaces: what the embedded engine stores in its text fields."""
    return " ".join(analyze(text))


# --- facets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceBand:
    """A price facet bucket: `low <= price < high` in minor units (`high` None: no limit)."""

    label: str
    low: int
    high: int | None


PRICE_BANDS: tuple[PriceBand, ...] = (
    PriceBand("under-5000", 0, 5_000),
    PriceBand("5000-15000", 5_000, 15_000),
    PriceBand("15000-30000", 15_000, 30_000),
    PriceBand("30000-60000", 30_000, 60_000),
    PriceBand("60000-100000", 60_000, 100_000),
    PriceBand("100000-and-above", 100_000, None),
)
"""Price bands in minor units (Azure: `facet=price,values:5000|15000|...`)."""


@dataclass(frozen=True)
class FacetSpec:
    """A facet of the search response: its public name, its field and how many values."""

    name: str
    field: str
    count: int = 10


FACETS: tuple[FacetSpec, ...] = (
    FacetSpec("brand", "brand", 20),
    FacetSpec("category", "categoryId", 20),
    FacetSpec("price", "price", len(PRICE_BANDS)),
    FacetSpec("storage", "storage", 10),
    FacetSpec("os", "os", 10),
)
"""Facets every search returns, in response order."""

SORTS: dict[str, tuple[str, bool] | None] = {
    "relevance": None,
    "price_asc": ("price", False),
    "price_desc": ("price", True),
    "newest": ("createdAt", True),
}
"""Public sort names -> (field, descending); relevance is the engine's ranking."""


def price_band(amount: int) -> str:
    """The label of the band `amount` falls in."""
    for band in PRICE_BANDS:
        if amount >= band.low and (band.high is None or amount < band.high):
            return band.label
    return PRICE_BANDS[0].label


def facet_values_numeric() -> str:
    """The price band boundaries as Azure's facet expression (`price,values:5000|15000|...`)."""
    return "price,values:" + "|".join(str(b.low) for b in PRICE_BANDS[1:])


def normalise_unit_value(value: str) -> str:
    """An attribute value such as `64gb` or `64 Gb` in display form (`64 GB`)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", value)
    if not match:
        return value.strip()
    return f"{match.group(1)} {match.group(2).upper()}"
