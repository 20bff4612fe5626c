"""The current two-level administrative units, the old -> current conversion, and addresses."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Flask

from core.db import db
from core.schemas import load_or_problem
from registry.models import Facility
from registry.reference import admin_units
from registry.reference.health_id import make_health_id, province_codes
from registry.schemas import AddressSchema
from registry.services import create_facility, register_citizen


def test_the_current_units_are_34_provinces_and_3321_communes():
    assert len(admin_units.provinces()) == 34
    assert len(admin_units.communes()) == 3321
    lien_bao = admin_units.commune("09334")
    assert (lien_bao.name, lien_bao.folded, lien_bao.province_code, lien_bao.kind) == (
        "Xã Liên Bão", "xa lien bao", "24", "commune")
    assert admin_units.province("24").name == "Bắc Ninh"
    assert admin_units.province("27") is None  # an old code is not a current one


def test_every_old_province_became_one_current_province():
    # Resolution 202/2025/QH15: 63 into 34; e.g. Bắc Giang (24) and Bắc Ninh (27) -> Bắc Ninh
    # (24), Hà Giang (02) -> Tuyên Quang (08), Long An (80) -> Tây Ninh (80).
    for old in province_codes():
        assert admin_units.current_province(old[1:]) is not None, old
    assert admin_units.current_province("27").code == "24"
    assert admin_units.current_province("02").code == "08"
    assert admin_units.current_province("45").code == "44"
    assert admin_units.current_province("01").code == "01"
    assert admin_units.current_province("99") is None


def test_old_communes_map_only_when_they_became_one_current_commune():
    # Phường Tân Định (old 26734, Quận 1) merged whole into the current Phường Tân Định.
    resolution = admin_units.resolve_commune("26734")
    assert (resolution.status, resolution.commune.code) == ("mapped", "26737")
    # Xã Hoàn Sơn (09340, huyện Tiên Du) merged whole into xã Đại Đồng, which took its code.
    assert admin_units.current_commune("09340").name == "Xã Đại Đồng"
    # Phường Mai Dịch (00163) was divided: no guess, the candidates instead.
    split = admin_units.resolve_commune("00163")
    assert split.status == "split"
    assert split.commune is None
    assert {c.code for c in split.candidates} == {"00160", "00592", "00619"}
    assert admin_units.resolve_commune("99999").status == "unknown"


def test_a_district_marks_the_commune_code_as_an_old_one():
    # 00070 is today's Phường Hoàn Kiếm; in the old units it was Phường Hàng Trống, divided
    # between Hoàn Kiếm and Cửa Nam: with a district code it cannot be placed.
    assert admin_units.resolve_commune("00070").commune.name == "Phường Hoàn Kiếm"
    assert admin_units.resolve_commune("00070", legacy=True).status == "split"
    assert admin_units.current_codes(province_code="27", commune_code="09334",
                                     legacy=True) == ("24", "09334")


def test_the_conversion_table_cites_its_sources():
    source = admin_units.conversion_source()
    assert "202/2025/QH15" in source
    assert "chinhphu.vn" in source


def _load(address):
    return load_or_problem(AddressSchema(), address)


def test_an_address_is_stored_in_current_codes(app_context):
    assert _load({"province_code": "27", "district_code": "260", "commune_code": "09334",
                  "village": "Thôn Duệ Đông", "line": "Số 5"}) == {
        "province_code": "24", "commune_code": "09334", "village": "Thôn Duệ Đông",
        "line": "Số 5"}
    assert _load({"province_code": "79", "commune_code": "26734"})["commune_code"] == "26737"
    assert _load({"province_code": "01", "line": "Số 5 phố Huế"}) == {
        "province_code": "01", "line": "Số 5 phố Huế"}


@pytest.mark.parametrize(("address", "field", "en"), [
    ({"province_code": "01", "commune_code": "00163"}, "address.commune_code",
     "please give the current commune code of the address: 00160 (Phường Nghĩa Đô)"),
    ({"province_code": "01", "commune_code": "99999"}, "address.commune_code",
     "Unknown commune code"),
    ({"province_code": "01", "district_code": "001", "commune_code": "00070"},
     "address.commune_code", "divided between several current ones"),
    ({"province_code": "01", "commune_code": "09334"}, "address.province_code",
     "The commune is not in the province given."),
    ({"province_code": "66", "village": "x" * 101}, "address.village", "Length"),
])
def test_an_address_that_names_no_current_unit_is_refused(client, address, field, en):
    app: Flask = client.application
    with app.test_request_context(headers={"Accept-Language": "en"}):
        from core.errors import ValidationFailed

        with pytest.raises(ValidationFailed) as caught:
            load_or_problem(AddressSchema(), address)
        rendered = [m.render("en") for m in caught.value.errors[field.split(".", 1)[1]]]
        vi = [m.render("vi") for m in caught.value.errors[field.split(".", 1)[1]]]
    assert any(en in text for text in rendered), rendered
    assert vi != rendered


def test_registration_over_http_maps_an_old_address(app, client):
    from tests.support.auth import station_token

    station = station_token(client, app)
    born = dt.date(2024, 2, 1)
    body = {"health_id": make_health_id(province_code="027", date_of_birth=born, sex="female",
                                        serial=123457),
            "full_name": "Nguyễn Thị Bé", "date_of_birth": born.isoformat(), "sex": "female",
            "address": {"province_code": "27", "district_code": "260", "commune_code": "09340",
                        "village": "Thôn Đông Sơn"}}
    created = client.post("/api/v1/citizens", json=body, headers={
        "Authorization": f"Bearer {station.access_token}", "Idempotency-Key": "admin-units-1"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["address"] == {"province_code": "24", "commune_code": "09340",
                                             "village": "Thôn Đông Sơn"}
    body["address"]["commune_code"] = "00163"
    body["health_id"] = make_health_id(province_code="027", date_of_birth=born, sex="female",
                                       serial=123458)
    refused = client.post("/api/v1/citizens", json=body, headers={
        "Authorization": f"Bearer {station.access_token}", "Idempotency-Key": "admin-units-2"})
    assert refused.status_code == 422
    assert "address.commune_code" in refused.get_json()["errors"]


def test_facilities_and_citizens_are_written_in_current_codes(app_context):
    facility = create_facility(session=db.session, code="A-" + uuid.uuid4().hex[:8],
                               kind="commune-health-station", name="Trạm Y tế xã Đại Đồng",
                               province_code="27", district_code="260", commune_code="09340")
    citizen = register_citizen(
        session=db.session, full_name="Phạm Văn B", date_of_birth=dt.date(1980, 1, 1),
        sex="male", health_id=make_health_id(province_code="027",
                                             date_of_birth=dt.date(1980, 1, 1), sex="male",
                                             serial=424242),
        address={"province_code": "27", "district_code": "260", "commune_code": "09334"})
    db.session.flush()
    stored = db.session.get(Facility, facility.id)
    assert (stored.province_code, stored.district_code, stored.commune_code) == ("24", "", "09340")
    assert stored.search_name == "tram y te xa dai dong"
    assert citizen.address == {"province_code": "24", "commune_code": "09334"}
    with pytest.raises(admin_units.AdminUnitError, match="commune_code: split"):
        create_facility(session=db.session, code="A-" + uuid.uuid4().hex[:8], kind="hospital",
                        name="X", province_code="01", commune_code="00163")
    db.session.rollback()
