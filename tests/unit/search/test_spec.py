"""The index specification is consistent and its analysis does what the issue asks."""

from __future__ import annotations

import itertools
import re

import pytest

from cloudcart.core.search import spec
from tests.unit.search.analysis_cases import ANALYSIS_CASES


def test_every_field_name_is_unique_and_there_is_one_key():
    names = [f.name for f in spec.FIELDS]
    assert len(names) == len(set(names))
    assert [f.name for f in spec.FIELDS if f.key] == ["id"]


def test_weights_put_title_and_model_above_brand_above_attributes_above_description():
    w = spec.field_weights()
    assert w["title"] == w["model"] > w["brand"] > w["attributes"] > w["description"]


def test_facets_sorts_and_suggester_name_fields_that_allow_them():
    for facet in spec.FACETS:
        assert spec.FIELDS_BY_NAME[facet.field].facetable, facet
    for sort in spec.SORTS.values():
        if sort is not None:
            assert spec.FIELDS_BY_NAME[sort[0]].sortable, sort
    assert spec.suggester_fields() == ["title", "brand"]
    assert all(spec.FIELDS_BY_NAME[f].searchable for f in spec.suggester_fields())
    assert [f.name for f in spec.FACETS] == ["brand", "category", "price", "storage", "os"]


def test_price_bands_are_contiguous():
    bands = spec.PRICE_BANDS
    assert bands[0].low == 0 and bands[-1].high is None
    for a, b in itertools.pairwise(bands):
        assert a.high == b.low
    assert spec.price_band(4_999) == "under-5000"
    assert spec.price_band(5_000) == "5000-15000"
    assert spec.price_band(10**9) == "100000-and-above"
    assert spec.facet_values_numeric() == "price,values:5000|15000|30000|60000|100000"


def test_unit_normalisation_makes_one_token():
    assert spec.analyze("64GB") == spec.analyze("64 gb") == spec.analyze("64 GB") == ("64gb",)
    assert spec.analyze("6.5 inch") == spec.analyze('6.5"') == spec.analyze("6.5 in") == ("6.5in",)
    assert spec.analyze("5000 mAh") == ("5000mah",)


def test_synonyms_and_multiword_names_meet_on_one_token():
    assert spec.analyze("mobile") == spec.analyze("smartphone") == spec.analyze("Phones")
    assert spec.analyze("One Plus") == spec.analyze("OnePlus") == ("oneplus",)
    assert spec.analyze("covers") == spec.analyze("case")
    assert spec.analyze("iOS") == ("ios",)  # not mistaken for a plural


def test_solr_synonyms_and_char_filters_are_in_azure_syntax():
    lines = spec.solr_synonyms().splitlines()
    assert "phone, mobile, smartphone, handset, cellphone" in lines
    for rule in spec.ANALYZER_SPEC.char_filters:
        re.compile(rule.pattern)
        assert "\\g<" not in rule.replacement  # Azure wants $1, Python gets \g<1>
    assert spec.UNIT_RULES[1].python_replacement == r"\g<1>\g<2>"


@pytest.mark.parametrize(("text", "tokens"), ANALYSIS_CASES)
def test_the_shared_analysis_table(text: str, tokens: tuple[str, ...]) -> None:
    # The same rows are checked against the Azure analyzer definition in
    # tests/contract/search/test_analysis_parity.py.
    assert spec.analyze(text) == tokens


def test_stem_overrides_and_synonyms_are_already_stemmed() -> None:
    # Azure's stemmer_override filter does not stop the pattern filters after it, and Azure
    # expands synonyms of analysed query terms: both only agree with `spec.analyze` when
    # their words are fixed points of the stemmer.
    for stemmed in spec.STEM_OVERRIDES.values():
        assert spec.stem(stemmed) == stemmed
    for group in spec.SYNONYM_GROUPS:
        for word in group:
            assert spec.stem(word) == word, word
    for word in spec.STEM_KEEP:
        assert spec.stem(word) == word


def test_stem_rules_are_anchored_so_replace_all_and_replace_first_agree() -> None:
    for rule in spec.STEM_RULES:
        assert rule.pattern.startswith("^") and rule.pattern.endswith("$"), rule.name
