"""The vaccination card (issue 15): every dose by antigen, verified or not, the schedule; the
same doses the caller's immunizations list shows, one audited read."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from consent.models import AuditEvent
from core.db import db
from tests.ehr.samples import TODAY
from tests.support.auth import token_for

BORN = TODAY - dt.timedelta(days=150)


def card_url(citizen: uuid.UUID) -> str:
    return f"/api/v1/citizens/{citizen}/vaccination-card"


def doses_url(citizen: uuid.UUID) -> str:
    return f"/api/v1/citizens/{citizen}/immunizations"


def _dose(code: str, day: dt.date, number: int = 1, **extra: Any) -> dict[str, Any]:
    return {"vaccine_code": code, "dose_number": number, "occurrence_date": day.isoformat(),
            "lot_number": f"{code}-L1", **extra}


@pytest.fixture
def child_card(app, client, world, vaccinator):
    """A five-month-old: the hepatitis B birth dose and BCG reported by the family, BCG then
    verified; a hexavalent dose and a retracted duplicate recorded by the station."""
    child = token_for(client, app, citizen=world.child)
    station = world.headers("station")
    hepb = client.post(doses_url(world.child), headers=child.headers, json={
        "vaccine_code": "HEPB", "dose_number": 1, "occurrence_date": BORN.isoformat(),
        "facility_name": "Bệnh viện Phụ sản Hà Nội"})
    bcg = client.post(doses_url(world.child), headers=child.headers, json={
        "vaccine_code": "BCG", "dose_number": 1, "occurrence_date": BORN.isoformat()})
    assert hepb.status_code == bcg.status_code == 201
    verified = client.post(f"{doses_url(world.child)}/{bcg.get_json()['id']}/verify",
                           headers=world.headers("vaccinator", **{"If-Match": bcg.headers["ETag"]}))
    assert verified.status_code == 200, verified.get_json()
    day = BORN + dt.timedelta(days=61)
    combo = client.post(doses_url(world.child), headers=station,
                        json=_dose("DTP-HEPB-HIB", day))
    duplicate = client.post(doses_url(world.child), headers=station,
                            json=_dose("DTP-HEPB-HIB", day))
    assert combo.status_code == duplicate.status_code == 201
    retracted = client.post(f"{doses_url(world.child)}/{duplicate.get_json()['id']}"
                            "/entered-in-error", json={"reason": "trùng"}, headers=station)
    assert retracted.status_code == 200
    return {"token": child, "hepb": hepb.get_json()["id"], "bcg": bcg.get_json()["id"],
            "combo": combo.get_json()["id"], "duplicate": duplicate.get_json()["id"]}


def _by_antigen(card: dict) -> dict[str, list[str]]:
    return {group["antigen"]: [d["entry_id"] for d in group["doses"]]
            for group in card["antigens"]}


def test_the_card_lists_every_dose_by_antigen(client, world, child_card):
    response = client.get(card_url(world.child), headers=child_card["token"].headers)
    assert response.status_code == 200, response.get_json()
    card = response.get_json()
    assert card["citizen"]["id"] == str(world.child)
    groups = _by_antigen(card)
    assert groups["hepb"] == [child_card["hepb"], child_card["combo"]]  # oldest first
    assert groups["bcg"] == [child_card["bcg"]]
    for antigen in ("diphtheria", "pertussis", "tetanus", "hib"):
        assert groups[antigen] == [child_card["combo"]]  # a combination under each antigen
    assert child_card["duplicate"] not in {i for ids in groups.values() for i in ids}

    doses = {d["entry_id"]: d for group in card["antigens"] for d in group["doses"]}
    hepb, bcg, combo = (doses[child_card[k]] for k in ("hepb", "bcg", "combo"))
    assert hepb["verification"] == {"status": "unverified", "verified_at": None,
                                    "verified_facility": None}
    assert hepb["facility"] == {"id": None, "code": None, "name": "Bệnh viện Phụ sản Hà Nội"}
    assert hepb["source"] == "citizen-reported"
    assert hepb["lot_number"] is None
    assert bcg["verification"]["status"] == "verified"
    assert bcg["verification"]["verified_at"] is not None
    assert bcg["verification"]["verified_facility"]["id"] == str(world.station)
    assert combo["source"] == "station"
    assert combo["verification"]["status"] == "verified"
    assert combo["facility"]["id"] == str(world.station)
    assert combo["facility"]["name"] == "Cơ sở thử nghiệm"
    assert combo["lot_number"] == "DTP-HEPB-HIB-L1"
    assert combo["dose_number"] == 1
    assert combo["vaccine_name"]

    schedule = {d["item_id"]: d for d in card["schedule"]["doses"]}
    assert schedule["bcg"]["status"] == "completed"
    assert schedule["hepb-birth"]["status"] != "completed"
    assert [n["reason"] for n in schedule["hepb-birth"]["not_counted"]] == ["unverified"]
    assert schedule["dtp-1"]["status"] == "completed"
    assert card["adult_schedule"] == []


def test_the_card_follows_the_language(client, world, child_card):
    headers = {**child_card["token"].headers, "Accept-Language": "en"}
    card = client.get(card_url(world.child), headers=headers).get_json()
    names = {group["antigen"]: group["name"] for group in card["antigens"]}
    assert names["hepb"] == "Hepatitis B"


def test_the_card_shows_the_doses_the_list_shows(client, world, child_card):
    for headers in (child_card["token"].headers, world.headers("station"),
                    world.headers("vaccinator")):
        listed = client.get(doses_url(world.child), headers=headers).get_json()
        card = client.get(card_url(world.child), headers=headers).get_json()
        shown = {i for ids in _by_antigen(card).values() for i in ids}
        assert shown == {item["id"] for item in listed["items"]}


def test_a_restricted_dose_stays_hidden_from_whoever_the_list_hides_it_from(client, world):
    doctor = world.headers("doctor")
    normal = client.post(doses_url(world.patient), headers=doctor,
                         json=_dose("TD", TODAY - dt.timedelta(days=3)))
    hidden = client.post(doses_url(world.patient), headers=world.headers("patient"),
                         json={"vaccine_code": "HPV", "dose_number": 1,
                               "occurrence_date": "2020-03-01", "sensitivity": "reproductive"})
    assert normal.status_code == hidden.status_code == 201, hidden.get_json()
    own = _by_antigen(client.get(card_url(world.patient),
                                 headers=world.headers("patient")).get_json())
    assert hidden.get_json()["id"] in {i for ids in own.values() for i in ids}
    seen = _by_antigen(client.get(card_url(world.patient), headers=doctor).get_json())
    assert {i for ids in seen.values() for i in ids} == {normal.get_json()["id"]}


def test_no_relationship_is_404_and_a_related_caller_without_the_section_403(client, world):
    assert client.get(card_url(world.patient),
                      headers=world.headers("stranger")).status_code == 404
    assert client.get(card_url(uuid.uuid4()),
                      headers=world.headers("patient")).status_code == 404
    assert client.get(card_url(world.patient),
                      headers=world.headers("other_doctor")).status_code == 404
    grant = client.post(f"/api/v1/citizens/{world.patient}/consents",
                        headers=world.headers("patient"),
                        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
                              "sections": ["allergies"], "access": "read"})
    assert grant.status_code == 201, grant.get_json()
    refused = client.get(card_url(world.patient), headers=world.headers("other_doctor"))
    assert refused.status_code == 403
    assert refused.get_json()["type"] == "urn:phr-vn:problem:section-forbidden"


def test_a_token_without_immunization_read_is_refused(client, app, world):
    token = token_for(client, app, login=world.patient_token.login,
                      scopes="openid patient/AllergyIntolerance.rs")
    response = client.get(card_url(world.patient), headers=token.headers)
    assert response.status_code == 403
    assert response.get_json()["type"] == "urn:phr-vn:problem:insufficient-scope"


def test_the_card_has_an_etag_and_is_audited(client, app, world, child_card):
    def events() -> int:
        with app.app_context():
            return int(db.session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.citizen_id == world.child, AuditEvent.section == "immunizations",
                AuditEvent.action == "read", AuditEvent.actor_role == "station")))

    before = events()
    first = client.get(card_url(world.child), headers=world.headers("station"))
    assert first.status_code == 200
    assert events() == before + 1
    again = client.get(card_url(world.child),
                       headers=world.headers("station", **{"If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304
    assert events() == before + 2  # a 304 is a read all the same


def test_an_adults_card_shows_a_reported_covid_dose_unverified(client, world):
    reported = client.post(doses_url(world.patient), headers=world.headers("patient"), json={
        "vaccine_code": "COVID-19", "dose_number": 1, "occurrence_date": "2021-08-10",
        "lot_number": "AZ-4120", "facility_name": "Điểm tiêm Trường THCS Liên Bảo"})
    assert reported.status_code == 201, reported.get_json()
    card = client.get(card_url(world.patient), headers=world.headers("patient")).get_json()
    [group] = card["antigens"]
    [dose] = group["doses"]
    assert dose["entry_id"] == reported.get_json()["id"]
    assert (dose["occurrence_date"], dose["dose_number"], dose["lot_number"]) == (
        "2021-08-10", 1, "AZ-4120")
    assert dose["verification"]["status"] == "unverified"
    assert dose["facility"]["name"] == "Điểm tiêm Trường THCS Liên Bảo"
    # A man of 60: the childhood schedule is history, the programme has no adult dose for him.
    assert card["schedule"]["doses"] == []
    assert card["adult_schedule"] == []
