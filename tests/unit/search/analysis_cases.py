"""One table of analysis cases that both engines must agree on.

Each row is a word or phrase and the tokens the index holds for it (before synonyms): what
`spec.index_tokens` gives for the embedded engine, and what the Azure index's custom
analyzer gives for the same text (`tests/contract/search/test_analysis_parity.py` asks the
fake service, which runs the analyzer definition the adapter sent).

Several rows are exactly where Lucene's `kstem` filter and a plural stemmer part ways
(`kstem` leaves `glasses`, `watches` and `days` alone and cuts `oneplus` to `oneplu`), which
is why the spec defines its own stemming rules instead of naming `kstem`.
"""

from __future__ import annotations

ANALYSIS_CASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("glasses", ("glass",)),
    ("glass", ("glass",)),
    ("dresses", ("dress",)),
    ("phones", ("phone",)),
    ("batteries", ("battery",)),
    ("chargers", ("charger",)),
    ("earbuds", ("earbud",)),
    ("running", ("running",)),
    ("cases", ("case",)),
    ("boxes", ("box",)),
    ("watches", ("watch",)),
    ("smartwatches", ("smartwatch",)),
    ("classes", ("class",)),
    ("series", ("series",)),
    ("accessories", ("accessory",)),
    ("days", ("day",)),
    ("hoodies", ("hoodie",)),
    ("lenses", ("lens",)),
    ("lens", ("lens",)),
    ("knives", ("knife",)),
    ("OnePlus", ("oneplus",)),
    ("plus", ("plus",)),
    ("iOS", ("ios",)),
    ("macOS", ("macos",)),
    ("wireless", ("wireless",)),
    ("asus", ("asus",)),
    ("tennis", ("tennis",)),
    ("ties", ("tie",)),
    ("Écouteurs", ("ecouteur",)),
    ("64 GB", ("64gb",)),
    ("5,000 mAh", ("5000mah",)),
    ('6.5" display', ("6.5in", "display")),
    ("USB-C chargers", ("usbc", "charger")),
    ("Oppo's phones", ("oppo", "s", "phone")),
    ("wi.fi e.g. a_b", ("wifi", "e", "g", "a", "b")),
    ("Reading Glasses Cases", ("reading", "glass", "case")),
)
"""(text, tokens the index holds for it)."""
