"""The vaccine catalogue, the duration arithmetic of the schedule, and loading of the data files."""

import json
from datetime import date
from importlib import resources

import pytest

from registry.reference import _data
from registry.reference.durations import Duration
from registry.reference.health_id import province_codes
from registry.reference.vaccines import (
    antigens,
    get_vaccine,
    vaccine_catalogue,
    vaccine_catalogue_source,
    vaccines_containing,
)

PROGRAMME_VACCINES = {
    "HEPB": {"hepb"},
    "BCG": {"bcg"},
    "DTP-HEPB-HIB": {"diphtheria", "pertussis", "tetanus", "hepb", "hib"},
    "DTP": {"diphtheria", "pertussis", "tetanus"},
    "TD": {"diphtheria", "tetanus"},
    "TT": {"tetanus"},
    "BOPV": {"polio"},
    "IPV": {"polio"},
    "MEASLES": {"measles"},
    "MR": {"measles", "rubella"},
    "JE-INACT": {"je"},
    "ROTAVIN-M1": {"rotavirus"},
}


def test_programme_vaccines_and_their_antigens():
    catalogue = vaccine_catalogue()
    for code, expected in PROGRAMME_VACCINES.items():
        assert set(catalogue[code].antigens) == expected, code
        assert catalogue[code].is_epi is True
    assert {code for code, vaccine in catalogue.items() if vaccine.is_epi} == set(
        PROGRAMME_VACCINES
    )
    hexavalent = catalogue["DTP-HEPB-HIB-IPV"]
    assert set(hexavalent.antigens) == PROGRAMME_VACCINES["DTP-HEPB-HIB"] | {"polio"}
    assert hexavalent.is_epi is False


def test_common_vaccines_outside_the_programme_are_listed():
    for code in (
        "INFLUENZA",
        "HPV",
        "VARICELLA",
        "HEPA",
        "PCV",
        "MMR",
        "MENACWY",
        "TYPHOID",
        "RABIES",
        "COVID-19",
    ):
        assert code in vaccine_catalogue(), code
    assert set(vaccine_catalogue()["MMR"].antigens) == {"measles", "mumps", "rubella"}


@pytest.mark.parametrize(
    ("code", "doses", "max_age"),
    [("ROTAVIN-M1", 2, "P6M"), ("ROTARIX", 2, "P24W"), ("ROTATEQ", 3, "P32W")],
)
def test_rotavirus_products_carry_their_dose_counts(code, doses, max_age):
    vaccine = get_vaccine(code)
    assert vaccine.series_doses == doses
    assert vaccine.max_age == Duration.parse(max_age)
    assert vaccine.route == "oral"


def test_catalogue_is_consistent():
    known = antigens()
    assert {"hepb", "bcg", "polio", "je", "rotavirus", "mumps"} <= set(known)
    for vaccine in vaccine_catalogue().values():
        assert set(vaccine.antigens) <= set(known)
        assert vaccine.combination == (len(vaccine.antigens) > 1), vaccine.code
        assert vaccine.route in ("intramuscular", "subcutaneous", "intradermal", "oral")
        assert vaccine.name("vi")
        assert vaccine.name("en")
        assert vaccine.code == vaccine.code.upper()
    assert known["measles"].name("vi") == "Sởi"
    assert "10/2024/TT-BYT" in vaccine_catalogue_source()["source"]


def test_lookup_helpers():
    assert get_vaccine(" dtp-hepb-hib ").code == "DTP-HEPB-HIB"
    assert get_vaccine("NOPE") is None
    containing_measles = {vaccine.code for vaccine in vaccines_containing("measles")}
    assert containing_measles == {"MEASLES", "MR", "MMR"}


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("P0D", date(2024, 1, 31), date(2024, 1, 31)),
        ("P2M", date(2024, 1, 15), date(2024, 3, 15)),
        ("P1M", date(2024, 1, 31), date(2024, 2, 29)),  # clamped to the end of the month
        ("P1M", date(2023, 1, 31), date(2023, 2, 28)),
        ("P1Y", date(2024, 2, 29), date(2025, 2, 28)),
        ("P18M", date(2024, 1, 15), date(2025, 7, 15)),
        ("P6W", date(2024, 1, 15), date(2024, 2, 26)),
        ("P28D", date(2024, 12, 20), date(2025, 1, 17)),
        ("P1Y6M2W3D", date(2024, 1, 1), date(2025, 7, 18)),
    ],
)
def test_duration_after(text, start, expected):
    assert Duration.parse(text).after(start) == expected


@pytest.mark.parametrize("text", ["", "P", "2M", "P2", "P1D2M", "P-1M", "PT1H", "p2m"])
def test_duration_rejects_what_is_not_a_date_duration(text):
    with pytest.raises(ValueError, match="not a date duration"):
        Duration.parse(text)


def test_duration_text_round_trips():
    for text in ("P2M", "P6W", "P1Y6M", "P28D"):
        assert str(Duration.parse(text)) == text
    assert str(Duration()) == "P0D"


def test_data_files_load_from_the_package_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _data.load_json.cache_clear()
    document = _data.load_json("province_codes.json")
    assert len(document["codes"]) == 63
    assert _data.load_json("province_codes.json") is document  # cached


def test_every_data_file_is_valid_json_with_a_source():
    folder = resources.files("registry.reference") / "data"
    names = sorted(item.name for item in folder.iterdir() if item.name.endswith(".json"))
    assert names == [
        "admin_units_2025.json",
        "care_intervals.json",
        "epi_adults.json",
        "epi_schedule_2024.json",
        "icd10.json",
        "observation_kinds.json",
        "province_codes.json",
        "vaccines.json",
    ]
    for name in names:
        document = json.loads((folder / name).read_text(encoding="utf-8"))
        assert document["source"], name
        assert document["version"], name
    assert province_codes()["079"].name == "Hồ Chí Minh"
