"""The 12-digit personal identification number and the 10-digit social-insurance code."""

from datetime import date

import pytest

from registry.reference._data import load_json
from registry.reference.health_id import (
    HEALTH_ID_MESSAGES,
    SOCIAL_INSURANCE_MESSAGES,
    HealthIdError,
    HealthIdParts,
    SocialInsuranceCodeError,
    health_id_message,
    make_health_id,
    normalize_health_id,
    parse_health_id,
    province_codes,
    social_insurance_message,
    validate_health_id,
    validate_social_insurance_code,
)

MALE_1990 = {"date_of_birth": date(1990, 5, 10), "sex": "male"}


@pytest.mark.parametrize(
    ("province", "born", "sex", "serial", "expected"),
    [
        ("001", date(1990, 5, 10), "male", 123, "001090000123"),
        ("001", date(1990, 5, 10), "female", 123, "001190000123"),
        ("079", date(2005, 12, 31), "female", 999_999, "079305999999"),
        ("096", date(2000, 1, 1), "male", 0, "096200000000"),
        ("048", date(1900, 1, 1), "female", 42, "048100000042"),
        ("031", date(2101, 6, 1), "male", 7, "031401000007"),
        ("092", date(2399, 12, 31), "female", 1, "092999000001"),
    ],
)
def test_make_health_id_encodes_each_part(province, born, sex, serial, expected):
    value = make_health_id(province_code=province, date_of_birth=born, sex=sex, serial=serial)
    assert value == expected
    assert validate_health_id(value, date_of_birth=born, sex=sex) == []


@pytest.mark.parametrize(
    ("value", "context", "expected"),
    [
        ("001090000123", MALE_1990, []),
        ("", MALE_1990, ["length"]),
        ("00109000012", MALE_1990, ["length"]),
        ("0010900001234", MALE_1990, ["length"]),
        ("001O90000123", MALE_1990, ["non-digit"]),
        ("0010900001a", MALE_1990, ["length", "non-digit"]),
        ("00109000012\u0663", MALE_1990, ["non-digit"]),  # an Arabic-Indic digit three
        ("001 90000123", MALE_1990, ["non-digit"]),
        ("003090000123", MALE_1990, ["province"]),
        ("000090000123", MALE_1990, ["province"]),
        ("097090000123", MALE_1990, ["province"]),
        ("001290000123", MALE_1990, ["century-sex"]),
        ("001091000123", MALE_1990, ["birth-year"]),
        ("001190000123", MALE_1990, ["sex-mismatch"]),
        ("001390000123", MALE_1990, ["century-sex", "sex-mismatch"]),
        ("003391000123", MALE_1990, ["province", "century-sex", "birth-year", "sex-mismatch"]),
        # "other"/"unknown"/None skip the sex parity, never the century and year.
        ("001190000123", {"date_of_birth": date(1990, 5, 10), "sex": "other"}, []),
        ("001190000123", {"date_of_birth": date(1990, 5, 10), "sex": "unknown"}, []),
        ("001290000123", {"date_of_birth": date(1990, 5, 10), "sex": None}, ["century-sex"]),
        # Without a date of birth only the shape, the province and the sex can be checked.
        ("001990000123", {"date_of_birth": None, "sex": None}, []),
        ("001990000123", {"date_of_birth": None, "sex": "male"}, ["sex-mismatch"]),
        # The century boundary: 31 Dec 1999 is 0/1, 1 Jan 2000 is 2/3.
        ("079300000001", {"date_of_birth": date(2000, 1, 1), "sex": "female"}, []),
        (
            "079300000001",
            {"date_of_birth": date(1999, 12, 31), "sex": "female"},
            ["century-sex", "birth-year"],
        ),
        ("079199000001", {"date_of_birth": date(1999, 12, 31), "sex": "female"}, []),
    ],
)
def test_validate_health_id(value, context, expected):
    assert validate_health_id(value, **context) == expected


def test_errors_are_machine_codes_equal_to_their_strings():
    errors = validate_health_id("001290000123", **MALE_1990)
    assert errors == [HealthIdError.CENTURY_SEX]
    assert errors[0] == "century-sex"


@pytest.mark.parametrize(
    ("value", "today", "expected"),
    [
        ("001490000123", date(2025, 6, 1), ["future-birth-year"]),  # born 2190
        ("001226000123", date(2025, 6, 1), ["future-birth-year"]),  # born 2026
        ("001225000123", date(2025, 6, 1), []),  # born this year
        ("001490000123", None, []),  # no clock given, no future check
    ],
)
def test_future_birth_year_needs_today(value, today, expected):
    assert validate_health_id(value, date_of_birth=None, sex=None, today=today) == expected


def test_invalid_sex_argument_is_a_programming_error():
    with pytest.raises(ValueError, match="sex must be"):
        validate_health_id("001090000123", date_of_birth=None, sex="M")


def test_every_province_century_and_sex_round_trips():
    years = [1900, 1999, 2000, 2024, 2099, 2100, 2250, 2399]
    for code in province_codes():
        for year in years:
            for sex in ("male", "female"):
                born = date(year, 2, 28)
                value = make_health_id(province_code=code, date_of_birth=born, sex=sex, serial=5)
                assert validate_health_id(value, date_of_birth=born, sex=sex) == []
                assert parse_health_id(value) == HealthIdParts(code, sex, year, "000005")


def test_province_list_is_the_63_codes_of_the_circular():
    codes = province_codes()
    assert len(codes) == 63
    assert codes["001"].name == "Hà Nội"
    assert codes["002"].name == "Hà Giang"
    assert codes["004"].name == "Cao Bằng"
    assert codes["079"].name == "Hồ Chí Minh"
    assert codes["096"].name == "Cà Mau"
    assert {code for code, province in codes.items() if province.kind == "city"} == {
        "001",
        "031",
        "048",
        "079",
        "092",
    }
    assert "003" not in codes
    assert all(len(code) == 3 and code.isdigit() for code in codes)
    assert "07/2016/TT-BCA" in load_json("province_codes.json")["source"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"province_code": "003"}, "unknown province"),
        ({"sex": "other"}, "male' or 'female"),
        ({"date_of_birth": date(1899, 12, 31)}, "year of birth"),
        ({"date_of_birth": date(2400, 1, 1)}, "year of birth"),
        ({"serial": -1}, "serial"),
        ({"serial": 1_000_000}, "serial"),
    ],
)
def test_make_health_id_refuses_what_cannot_be_encoded(kwargs, message):
    arguments = {
        "province_code": "001",
        "date_of_birth": date(1990, 1, 1),
        "sex": "male",
        "serial": 1,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        make_health_id(**arguments)


def test_parse_rejects_malformed_numbers():
    assert parse_health_id("00109000012") is None
    assert parse_health_id("00109000012x") is None


def test_normalize_removes_typed_spaces():
    assert normalize_health_id(" 001 090 000 123 ") == "001090000123"
    assert normalize_health_id("001\u00a0090000123") == "001090000123"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0123456789", []),
        ("7912345678", []),
        ("", ["length"]),
        ("012345678", ["length"]),
        ("01234567890", ["length"]),
        ("01234a6789", ["non-digit"]),
        ("01234-678", ["length", "non-digit"]),
    ],
)
def test_validate_social_insurance_code(value, expected):
    assert validate_social_insurance_code(value) == expected


def test_every_error_code_has_both_languages():
    for code in HealthIdError:
        assert HEALTH_ID_MESSAGES[code]["vi"]
        assert HEALTH_ID_MESSAGES[code]["en"]
    for code in SocialInsuranceCodeError:
        assert SOCIAL_INSURANCE_MESSAGES[code]["vi"]
        assert SOCIAL_INSURANCE_MESSAGES[code]["en"]
    assert health_id_message("length", "en").endswith("exactly 12 digits.")
    assert health_id_message("province") == HEALTH_ID_MESSAGES["province"]["vi"]
    assert health_id_message("province", "fr") == HEALTH_ID_MESSAGES["province"]["vi"]
    assert "10" in social_insurance_message("length", "en")
