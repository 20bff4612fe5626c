"""The shipped ICD-10 subset: lookup, sensitivity labels and search."""

import pytest

from registry.reference.icd10 import (
    SENSITIVITY_LABELS,
    default_sensitivity,
    icd10_codes,
    icd10_source,
    lookup_icd10,
    normalize_icd10_code,
    search_icd10,
)


@pytest.mark.parametrize(
    ("query", "code", "title_en"),
    [
        ("I10", "I10", "Essential (primary) hypertension"),
        ("i10", "I10", "Essential (primary) hypertension"),
        (" I10 ", "I10", "Essential (primary) hypertension"),
        ("E11.9", "E11.9", "Type 2 diabetes mellitus without complications"),
        ("e11.9", "E11.9", "Type 2 diabetes mellitus without complications"),
        ("E119", "E11.9", "Type 2 diabetes mellitus without complications"),
        ("E10.1", "E10.1", "Type 1 diabetes mellitus with ketoacidosis"),
        ("B181", "B18.1", "Chronic viral hepatitis B without delta-agent"),
        ("b08.4", "B08.4", "Enteroviral vesicular stomatitis with exanthem"),
        ("J45", "J45", "Asthma"),
        ("N18.5", "N18.5", "Chronic kidney disease, stage 5"),
        ("U07.1", "U07.1", "COVID-19, virus identified"),
    ],
)
def test_lookup_normalises_case_and_dot(query, code, title_en):
    entry = lookup_icd10(query)
    assert entry is not None
    assert entry.code == code
    assert entry.title_en == title_en
    assert entry.title("en") == title_en
    assert entry.title("vi") == entry.title_vi != ""


def test_vietnamese_titles():
    assert lookup_icd10("I10").title_vi == "Tăng huyết áp vô căn (nguyên phát)"
    assert lookup_icd10("E11.9").title_vi == "Đái tháo đường típ 2 không có biến chứng"
    assert lookup_icd10("J00").title_vi == "Viêm mũi họng cấp [cảm thường]"
    assert lookup_icd10("A90").title_vi == "Sốt Dengue [Dengue cổ điển]"


@pytest.mark.parametrize("query", ["", "I", "11E", "E1", "E11.999", "E11..9", "EE11", "I10-"])
def test_malformed_codes_are_not_found(query):
    assert normalize_icd10_code(query) is None
    assert lookup_icd10(query) is None


def test_well_formed_code_outside_the_subset_is_not_found():
    # The whole WHO ICD-10 is accepted now (A00.1 is a code); X99.99 is well formed, not a code.
    assert normalize_icd10_code("x9999") == "X99.99"
    assert lookup_icd10("X99.99") is None


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("I10", "normal"),
        ("E11.9", "normal"),
        ("J45.9", "normal"),
        ("F32.9", "mental-health"),
        ("f20", "mental-health"),
        ("F41.1", "mental-health"),
        ("F99", "mental-health"),
        ("F09", "mental-health"),
        ("X84", "mental-health"),
        ("X60", "mental-health"),
        ("X85", "normal"),  # assault, not self-harm
        ("Z91.5", "mental-health"),
        ("F10.2", "substance-use"),
        ("F17", "substance-use"),
        ("F19.9", "substance-use"),  # not shipped: the rule still applies
        ("Z71.5", "substance-use"),
        ("F20.0", "mental-health"),
        ("B20", "hiv-sti"),
        ("B24", "hiv-sti"),
        ("B25", "normal"),
        ("Z21", "hiv-sti"),
        ("A50", "hiv-sti"),
        ("A53.9", "hiv-sti"),
        ("A64", "hiv-sti"),
        ("A65", "normal"),
        ("R75", "hiv-sti"),
        ("Z11.4", "hiv-sti"),
        ("Z11.5", "normal"),
        ("O98.7", "hiv-sti"),  # HIV complicating pregnancy: the narrower label wins
        ("O80", "reproductive"),
        ("O14", "reproductive"),
        ("O99.0", "reproductive"),
        ("Z33", "reproductive"),
        ("Z34.0", "reproductive"),
        ("Z39.2", "reproductive"),
        ("Z30.0", "reproductive"),
        ("Z29", "normal"),
        ("Z40", "normal"),
        ("N97", "reproductive"),
        ("N46", "reproductive"),
        ("Q90.9", "genetic"),
        ("Q99.9", "genetic"),
        ("Q96", "genetic"),
        ("Q21.0", "normal"),  # a malformation, not a chromosomal finding
        ("Q89", "normal"),
    ],
)
def test_default_sensitivity(code, label):
    assert default_sensitivity(code) == label


def test_default_sensitivity_refuses_malformed_codes():
    with pytest.raises(ValueError, match="not an ICD-10 code"):
        default_sensitivity("hypertension")


def test_shipped_labels_agree_with_the_rules():
    codes = icd10_codes()
    assert len(codes) >= 250
    for code, entry in codes.items():
        assert entry.sensitivity in SENSITIVITY_LABELS
        assert entry.sensitivity == default_sensitivity(code), code
        assert normalize_icd10_code(code) == code
        assert entry.title_en.strip() == entry.title_en != ""
        assert entry.title_vi is None or entry.title_vi.strip() == entry.title_vi != ""


def test_primary_care_codes_are_shipped():
    required = [
        *(f"I{n}" for n in (10, 11, 12, 13, 15, 20, 21, 22, 24, 25, 63, 64)),
        *(f"E1{n}" for n in range(5)),
        *(f"E1{n}.{d}" for n in range(5) for d in range(10)),
        *(f"A1{n}" for n in range(5, 10)),
        *(f"J1{n}" for n in (2, 3, 4, 5, 6, 8)),  # J17 is an asterisk category
        *(f"B2{n}" for n in range(5)),
        *(f"A5{n}" for n in range(4)),
        *(f"M1{n}" for n in (0, 5, 6, 7, 8, 9)),
        *(f"E4{n}" for n in range(7)),
        *("E03", "E04", "E05", "E66", "E78", "D50", "N18", "J44", "J45", "B16", "B18.1"),
        *("A90", "A91", "A09", "F32", "F33", "F41", "F20", "Z21", "Z33", "Z34", "B08.4", "B05"),
    ]
    missing = [code for code in required if lookup_icd10(code) is None]
    assert missing == []


def test_source_is_cited():
    source = icd10_source()
    assert "ICD-10" in source["source"]
    assert "4469/QĐ-BYT" in source["source"]
    assert source["version"]
    assert "subset" in source["note"]


def _codes(results):
    return [entry.code for entry in results]


def test_search_is_accent_and_case_insensitive():
    with_accents = _codes(search_icd10("tăng huyết áp", "vi", limit=100))
    without_accents = _codes(search_icd10("TANG HUYET AP", "vi", limit=100))
    assert with_accents == without_accents
    assert with_accents[0] == "I10"
    assert {"I10", "I11", "I15.9", "O10", "O13"} <= set(with_accents)
    assert "I95" not in with_accents  # "Huyết áp thấp" lacks the word "tăng"


def test_search_needs_every_word_and_ranks_phrases_first():
    results = _codes(search_icd10("dai thao duong tip 2 khong bien chung", "vi"))
    # Every word occurs in both titles ("có biến chứng không xác định" for E11.8).
    assert results == ["E11.8", "E11.9"]
    phrase_first = _codes(search_icd10("tip 2 khong co bien chung", "vi"))
    assert phrase_first == ["E11.9", "E11.8"]


def test_search_handles_d_with_stroke():
    assert "E11" in _codes(search_icd10("Đái tháo đường", "vi", limit=100))
    assert "E11" in _codes(search_icd10("dai thao duong", "vi", limit=100))


def test_search_in_english():
    results = _codes(search_icd10("type 2 diabetes", "en", limit=100))
    assert results[0] == "E11"
    assert len(results) == 11
    # No Vietnamese title matches; codes with only the WHO English title do, and say so.
    assert all(e.title_language("vi") == "en" for e in search_icd10("diabetes", "vi"))


def test_search_by_code_prefix_comes_first():
    assert _codes(search_icd10("E11.9", "vi")) == ["E11.9"]
    results = _codes(search_icd10("e11", "vi", limit=5))
    assert results == ["E11", "E11.0", "E11.1", "E11.2", "E11.3"]
    assert _codes(search_icd10("i1", "en", limit=100))[:2] == ["I10", "I11"]


def test_search_edge_cases():
    assert search_icd10("", "vi") == []
    assert search_icd10("   ", "vi") == []
    assert search_icd10("xyzzy", "vi") == []
    assert search_icd10("viêm", "vi", limit=0) == []
    assert len(search_icd10("viêm", "vi", limit=3)) == 3
    with pytest.raises(ValueError, match="lang"):
        search_icd10("asthma", "fr")
