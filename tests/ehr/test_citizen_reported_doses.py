"""Past doses a person reports from their vaccination book (issue 15): what a report needs,
that it stays unverified and uncounted, and its verification by a station."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from consent.models import AuditEvent
from core.db import db
from tests.ehr.samples import SAMPLES, TODAY
from tests.support.auth import make_facility, station_token, token_for

COVID_2021 = {"vaccine_code": "COVID-19", "dose_number": 2, "occurrence_date": "2021-09-14"}


def url(citizen: uuid.UUID, *tail: str) -> str:
    return "/".join([f"/api/v1/citizens/{citizen}/immunizations", *tail])


def report(client: Any, world: Any, body: dict, who: str = "patient",
           citizen: uuid.UUID | None = None) -> Any:
    return client.post(url(citizen or world.patient), json=body, headers=world.headers(who))


def verify(client: Any, headers: dict, citizen: uuid.UUID, entry: dict | Any,
           **kwargs: Any) -> Any:
    body = entry.get_json() if hasattr(entry, "get_json") else entry
    return client.post(url(citizen, body["id"], "verify"), headers=headers, **kwargs)


def test_a_person_reports_a_2021_covid_dose_with_what_their_book_shows(client, world):
    created = report(client, world, COVID_2021)
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()
    assert entry["source"] == "citizen-reported"
    assert entry["data"] == COVID_2021
    assert entry["facility"] is None  # no facility recorded it
    assert entry["clinical_date"] == "2021-09-14"

    fuller = report(client, world, {**COVID_2021, "dose_number": 1,
                                    "occurrence_date": "2021-08-10", "lot_number": "AZ-4120",
                                    "facility_name": "Điểm tiêm Trường THCS Liên Bảo",
                                    "site": "left-arm", "reaction": "Sốt nhẹ một ngày"})
    assert fuller.status_code == 201, fuller.get_json()
    assert fuller.get_json()["data"]["facility_name"] == "Điểm tiêm Trường THCS Liên Bảo"

    listed = client.get(url(world.patient), headers=world.headers("patient")).get_json()
    assert {item["id"] for item in listed["items"]} == {entry["id"], fuller.get_json()["id"]}


def test_a_known_facility_code_is_kept_but_does_not_make_it_the_recorder(client, app, world):
    with app.app_context():
        from registry.models import Facility
        code = db.session.get(Facility, world.station).code
    created = report(client, world, {**COVID_2021, "facility_code": code})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["facility"] is None
    # ... so the station cannot correct or retract it as one of its own doses.
    entry = created.get_json()
    patched = client.patch(url(world.patient, entry["id"]), json={"lot_number": "X"},
                           headers=world.headers("station",
                                                 **{"If-Match": created.headers["ETag"]}))
    assert patched.status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({**COVID_2021, "performer_id": str(uuid.uuid4())}, "performer_id"),
    ({**COVID_2021, "site": "forehead"}, "site"),
    ({**COVID_2021, "facility_code": "NO-SUCH"}, "facility_code"),
    ({**COVID_2021, "vaccine_code": "NOPE"}, "vaccine_code"),
    ({"vaccine_code": "COVID-19", "occurrence_date": "2021-09-14"}, "dose_number"),
    ({**COVID_2021, "occurrence_date": "1950-01-01"}, "occurrence_date"),
    ({**COVID_2021, "source": "station"}, "source"),
])
def test_a_report_is_refused_whole_with_the_field_named(client, app, world, body, field):
    response = report(client, world, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    english = client.post(url(world.patient), json=body,
                          headers=world.headers("patient", **{"Accept-Language": "en"}))
    assert english.status_code == 422
    from tests.ehr.conftest import count_entries
    assert count_entries(app, world.patient, "immunizations") == 0


def test_clinicians_and_stations_still_give_the_full_dose(client, world):
    body = dict(SAMPLES["immunizations"][0])
    body.pop("lot_number")
    refused = client.post(url(world.patient), json=body, headers=world.headers("station"))
    assert refused.status_code == 422
    assert "lot_number" in refused.get_json()["errors"]


def _schedule_row(client: Any, citizen: uuid.UUID, headers: dict, item_id: str) -> dict:
    response = client.get(f"/api/v1/citizens/{citizen}/immunization-schedule", headers=headers)
    assert response.status_code == 200, response.get_json()
    return next(d for d in response.get_json()["doses"] if d["item_id"] == item_id)


def test_an_unverified_dose_does_not_count_until_a_station_verifies_it(client, app, world,
                                                                        vaccinator):
    child = token_for(client, app, citizen=world.child)
    born = (TODAY - dt.timedelta(days=150)).isoformat()
    created = client.post(url(world.child), headers=child.headers, json={
        "vaccine_code": "BCG", "dose_number": 1, "occurrence_date": born,
        "facility_name": "Bệnh viện Phụ sản Hà Nội"})
    assert created.status_code == 201, created.get_json()
    entry_id = created.get_json()["id"]

    row = _schedule_row(client, world.child, child.headers, "bcg")
    assert row["status"] != "completed"
    assert row["completed_entry_ids"] == []
    assert row["not_counted"] == [{"entry_id": entry_id, "vaccine_code": "BCG",
                                   "occurrence_date": born, "reason": "unverified"}]

    staff = world.headers("vaccinator")
    verified = verify(client, {**staff, "If-Match": created.headers["ETag"]}, world.child,
                      created)
    assert verified.status_code == 200, verified.get_json()
    assert verified.get_json()["version"] == 2
    assert verified.get_json()["source"] == "citizen-reported"

    row = _schedule_row(client, world.child, child.headers, "bcg")
    assert row["status"] == "completed"
    assert row["completed_entry_ids"] == [entry_id]
    assert row["not_counted"] == []


def test_verification_needs_if_match_makes_a_version_and_is_audited(client, app, world,
                                                                    vaccinator):
    created = report(client, world, COVID_2021)
    staff = world.headers("vaccinator")
    assert verify(client, staff, world.patient, created).status_code == 428
    assert verify(client, {**staff, "If-Match": '"stale"'}, world.patient,
                  created).status_code == 412
    refused = verify(client, {**staff, "If-Match": created.headers["ETag"]}, world.patient,
                     created, json={"note": "đã xem sổ"})
    assert refused.status_code == 422
    assert "note" in refused.get_json()["errors"]

    verified = verify(client, {**staff, "If-Match": created.headers["ETag"]}, world.patient,
                      created, json={})
    assert verified.status_code == 200, verified.get_json()
    assert verified.headers["ETag"] != created.headers["ETag"]
    assert verified.get_json()["data"] == COVID_2021  # the person's content, unchanged

    versions = client.get(url(world.patient, created.get_json()["id"], "versions"),
                          headers=world.headers("patient")).get_json()
    assert [v["version"] for v in versions["versions"]] == [1]
    assert versions["current"]["version"] == 2

    with app.app_context():
        from ehr.record_models import RecordEntry, RecordEntryVersion
        stored = db.session.get(RecordEntry, uuid.UUID(created.get_json()["id"]))
        assert stored.verified_at is not None
        assert stored.verified_facility_id == world.station
        assert stored.verified_by_practitioner_id == vaccinator.login.practitioner_id
        kept = db.session.scalars(select(RecordEntryVersion).where(
            RecordEntryVersion.entry_id == stored.id)).one()
        assert kept.verified_at is None
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.entry_id == stored.id, AuditEvent.action == "verify")).all()
        assert [(e.decision, e.rule) for e in events] == [("permit", "station-verify")]

    again = verify(client, {**staff, "If-Match": verified.headers["ETag"]}, world.patient,
                   created)
    assert again.status_code == 409
    assert again.get_json()["type"] == "urn:phr-vn:problem:already-verified"


def test_a_station_system_verifies_for_its_facility(client, world):
    created = report(client, world, COVID_2021)
    verified = verify(client, world.headers("station", **{"If-Match": created.headers["ETag"]}),
                      world.patient, created)
    assert verified.status_code == 200, verified.get_json()


@pytest.mark.parametrize("who", ["patient", "doctor", "other_doctor", "stranger"])
def test_no_one_but_a_station_verifies(client, world, who):
    created = report(client, world, COVID_2021)
    response = verify(client, world.headers(who, **{"If-Match": created.headers["ETag"]}),
                      world.patient, created)
    assert response.status_code == 404


def test_a_dose_a_clinician_or_station_recorded_cannot_be_verified(client, world, vaccinator):
    for who in ("station", "doctor"):
        created = client.post(url(world.patient), json=SAMPLES["immunizations"][0],
                              headers=world.headers(who))
        assert created.status_code == 201
        response = verify(client, world.headers("vaccinator",
                                                **{"If-Match": created.headers["ETag"]}),
                          world.patient, created)
        assert response.status_code == 404


def test_a_retracted_report_cannot_be_verified(client, world, vaccinator):
    created = report(client, world, COVID_2021)
    retracted = client.post(url(world.patient, created.get_json()["id"], "entered-in-error"),
                            json={"reason": "nhập nhầm"}, headers=world.headers("patient"))
    assert retracted.status_code == 200, retracted.get_json()
    response = verify(client, world.headers("vaccinator",
                                            **{"If-Match": retracted.headers["ETag"]}),
                      world.patient, created)
    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:phr-vn:problem:entered-in-error"


def test_a_token_without_immunization_update_cannot_verify(client, app, world):
    created = report(client, world, COVID_2021)
    reader = station_token(client, app, facility=make_facility(app),
                           scopes="system/Immunization.rs")
    response = verify(client, {**reader.headers, "If-Match": created.headers["ETag"]},
                      world.patient, created)
    assert response.status_code == 403


def test_a_corrected_verified_dose_is_unverified_again(client, world, vaccinator):
    created = report(client, world, COVID_2021)
    verified = verify(client, world.headers("vaccinator",
                                            **{"If-Match": created.headers["ETag"]}),
                      world.patient, created)
    assert verified.status_code == 200
    corrected = client.patch(url(world.patient, created.get_json()["id"]),
                             json={"occurrence_date": "2021-09-15"},
                             headers=world.headers("patient",
                                                   **{"If-Match": verified.headers["ETag"]}))
    assert corrected.status_code == 200, corrected.get_json()
    again = verify(client, world.headers("vaccinator",
                                         **{"If-Match": corrected.headers["ETag"]}),
                   world.patient, created)
    assert again.status_code == 200, again.get_json()
