"""Citizen registration bodies: the health ID is checked against birth and sex, in vi and en."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Blueprint

from core.errors import Message
from core.http import json_body
from core.schemas import load_or_problem
from registry.reference.health_id import HEALTH_ID_MESSAGES, make_health_id
from registry.schemas import (
    CitizenCreateSchema,
    CitizenUpdateSchema,
    health_id_problems,
    vietnam_today,
)


@pytest.fixture(scope="module")
def client(database_url, log_stream):
    """One app for the module: these requests never touch the database."""
    from tests.conftest import make_app

    app = make_app(database_url, log_stream)
    bp = Blueprint("citizen_schema_probe", __name__)

    @bp.post("/_probe/citizens")
    def create():
        loaded = load_or_problem(CitizenCreateSchema(), json_body())
        return {key: value if isinstance(value, dict) else str(value)
                for key, value in loaded.items()}

    @bp.patch("/_probe/citizens")
    def update():
        loaded = load_or_problem(CitizenUpdateSchema(), json_body())
        return {key: str(value) for key, value in loaded.items()}

    app.register_blueprint(bp)
    return app.test_client()


def body(**changes) -> dict:
    base = {
        "health_id": "001190012345",  # Hà Nội, 1900s female, born (19)90
        "full_name": "Nguyễn Thị Bích Ngọc",
        "date_of_birth": "1990-04-17",
        "sex": "female",
    }
    base.update(changes)
    return base


def rejected(client, payload: dict, lang: str, method: str = "post") -> dict[str, list[str]]:
    response = client.open("/_probe/citizens", method=method.upper(), json=payload,
                           headers={"Accept-Language": lang})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json(force=True)
    assert problem["type"] == "urn:phr-vn:problem:validation-error"
    return problem["errors"]


@pytest.mark.parametrize(("province", "born", "sex"), [
    ("001", dt.date(1990, 4, 17), "female"),
    ("079", dt.date(1961, 3, 14), "male"),
    ("096", dt.date(2003, 12, 31), "male"),
    ("027", dt.date(2024, 6, 1), "female"),
    ("048", dt.date(1900, 1, 1), "female"),
])
def test_valid_health_ids_are_accepted(client, province, born, sex):
    health_id = make_health_id(province_code=province, date_of_birth=born, sex=sex, serial=4512)
    response = client.post("/_probe/citizens", json=body(
        health_id=health_id, date_of_birth=born.isoformat(), sex=sex))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["health_id"] == health_id


def test_spaces_between_digit_groups_are_dropped_and_values_normalised(client):
    response = client.post("/_probe/citizens", json=body(
        health_id="001 190 012345", full_name="  Nguyễn Thị Bích Ngọc ",
        phone="0912.345.678", address={"province_code": "01", "line": "Số 5 phố Huế"},
        social_insurance_code="0112345678", email="ngoc@example.vn"))
    assert response.status_code == 200, response.get_data(as_text=True)
    loaded = response.get_json()
    assert loaded["health_id"] == "001190012345"
    assert loaded["full_name"] == "Nguyễn Thị Bích Ngọc"
    assert loaded["phone"] == "+84912345678"
    assert loaded["preferred_language"] == "vi"
    assert loaded["address"] == {"province_code": "01", "line": "Số 5 phố Huế"}


REJECTIONS = [
    # (what is wrong, health ID for a woman born 1990-04-17, expected error code)
    ("wrong province", "099190012345", "province"),
    ("wrong century digit", "001390012345", "century-sex"),
    ("birth-year mismatch", "001191012345", "birth-year"),
    ("too short", "00119001234", "length"),
    ("too long", "0011900123456", "length"),
    ("letters", "00119001234X", "non-digit"),
    ("non-ASCII digits", "٠٠١١٩٠٠١٢٣٤٥", "non-digit"),
]


@pytest.mark.parametrize(("case", "health_id", "code"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_health_id_rejections_are_field_level_in_vietnamese_and_english(
        client, case, health_id, code):
    vi = rejected(client, body(health_id=health_id), "vi")
    en = rejected(client, body(health_id=health_id), "en")
    assert vi == {"health_id": [HEALTH_ID_MESSAGES[code]["vi"]]}
    assert en == {"health_id": [HEALTH_ID_MESSAGES[code]["en"]]}


def test_a_sex_digit_that_contradicts_the_sex_is_rejected(client):
    errors = rejected(client, body(health_id="001090012345"), "en")  # 0 = 1900s male
    assert errors == {"health_id": [HEALTH_ID_MESSAGES["sex-mismatch"]["en"]]}


def test_sex_other_checks_only_the_century(client):
    response = client.post("/_probe/citizens", json=body(health_id="001090012345", sex="other"))
    assert response.status_code == 200


def test_health_id_is_still_checked_when_the_date_of_birth_is_invalid(client):
    errors = rejected(client, body(health_id="099190012345", date_of_birth="17/04/1990"), "en")
    assert errors == {
        "date_of_birth": ["Must be a date in YYYY-MM-DD format."],
        "health_id": [HEALTH_ID_MESSAGES["province"]["en"]],
    }


def test_missing_fields_are_each_reported(client):
    errors = rejected(client, {}, "vi")
    assert set(errors) == {"health_id", "full_name", "date_of_birth", "sex"}
    assert errors["sex"] == ["Trường này là bắt buộc."]


@pytest.mark.parametrize(("changes", "field", "en"), [
    # Two days ahead: collected before and run after midnight in Vietnam, it stays future.
    ({"date_of_birth": (vietnam_today() + dt.timedelta(days=2)).isoformat()}, "date_of_birth",
     "The date of birth must not be in the future."),
    ({"date_of_birth": "1899-12-31", "health_id": "001099012345"}, "date_of_birth",
     "The date of birth must not be before 1 January 1900."),
    ({"sex": "f"}, "sex", "Must be one of: male, female, other."),
    ({"full_name": "   "}, "full_name", "Length must be between 1 and 200."),
    ({"phone": "0123"}, "phone", "Not a valid phone number."),
    ({"email": "ngoc.example.vn"}, "email", "Not a valid email address."),
    ({"preferred_language": "fr"}, "preferred_language", "Must be one of: vi, en."),
    ({"address": {"province_code": "99"}}, "address.province_code",
     "Unknown province code (two digits, e.g. 01 for Hà Nội)."),
    ({"address": {"province_code": "01", "commune_code": "12"}}, "address.commune_code",
     "The value does not have the expected format."),
    ({"address": {"line": "Số 5"}}, "address.province_code", "This field is required."),
    ({"social_insurance_code": "01123X"}, "social_insurance_code",
     "The social-insurance code must have exactly 10 digits."),
    ({"nationality": "VN"}, "nationality", "Unknown field."),
])
def test_other_fields_are_validated(client, changes, field, en):
    errors = rejected(client, body(**changes), "en")
    assert en in errors[field]
    assert rejected(client, body(**changes), "vi")[field] != errors[field]


def test_update_is_partial_and_cannot_change_the_health_id(client):
    response = client.patch("/_probe/citizens", json={"phone": "+84 912 345 678"})
    assert response.status_code == 200
    assert response.get_json() == {"phone": "+84912345678"}
    assert rejected(client, {"health_id": "001190012345"}, "en", "patch") == {
        "health_id": ["The personal identification number cannot be changed."]}
    assert rejected(client, {"full_name": None}, "en", "patch") == {
        "full_name": ["This field may not be null."]}


def test_health_id_problems_helps_the_update_service():
    assert health_id_problems("001190012345", date_of_birth=dt.date(1990, 4, 17),
                              sex="female") == []
    assert health_id_problems("001190012345", date_of_birth=dt.date(1991, 4, 17),
                              sex="male") == [Message("citizen.health_id.birth-year"),
                                              Message("citizen.health_id.sex-mismatch")]
