"""Issue 15: a commune station's vaccination worklist, over HTTP with real tokens.

A commune (the station's) with children due and overdue, a child the station registered from
another commune, a child of another commune and adults: who is listed, with which doses, which
contact, which audit events; the printable CSV says the same as the JSON; a batch item from the
list uploads once, takes its dose off the list and replays.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.db import db
from registry.reference.health_id import make_health_id
from registry.schemas import vietnam_today
from registry.services import create_facility, register_citizen
from tests.ehr.samples import TODAY
from tests.support.auth import (
    Tokens,
    bearer,
    facility_code,
    station_client,
    station_token,
    token_for,
)

COMMUNE = "09334"  # Xã Liên Bão (Bắc Ninh)
OTHER_COMMUNE = "07627"  # Xã Đại Sơn (Bắc Ninh)
URL = "/api/v1/facilities/{}/immunization-worklist"
JSON = {"Content-Type": "application/json"}


def _facility(app: Any, commune: str) -> uuid.UUID:
    with app.app_context():
        facility = create_facility(
            session=db.session, code=facility_code(),
            kind="commune-health-station", name=f"Trạm Y tế xã {commune}",
            province_code="24", commune_code=commune)
        db.session.commit()
        return facility.id


def _person(app: Any, *, name: str, born: dt.date, sex: str = "female",
            commune: str | None = COMMUNE, village: str | None = None, phone: str | None = None,
            registered_by: uuid.UUID | None = None) -> uuid.UUID:
    address = None
    if commune is not None:
        address = {"province_code": "24", "commune_code": commune, "line": "Số 1"}
        if village is not None:
            address["village"] = village
    with app.app_context():
        citizen = register_citizen(
            session=db.session, full_name=name, date_of_birth=born, sex=sex, phone=phone,
            health_id=make_health_id(province_code="027", date_of_birth=born, sex=sex,
                                     serial=secrets.randbelow(1_000_000)),
            address=address, registered_by_facility_id=registered_by)
        db.session.commit()
        return citizen.id


@dataclass
class Commune:
    station: uuid.UUID
    other_station: uuid.UUID
    system: Tokens
    staff: Tokens
    other_staff: Tokens
    due: uuid.UUID  # 65 days old, birth doses given: the 2-month doses are due
    overdue: uuid.UUID  # 150 days old, nothing given, a mother linked
    mother: uuid.UUID
    registered: uuid.UUID  # of another commune, registered by the station
    young: uuid.UUID  # 20 days old, birth doses given: nothing due within 30 days
    elsewhere: uuid.UUID  # a child of another commune
    adult: uuid.UUID
    teen: uuid.UUID  # 17: past the childhood schedule


def _upload(client: Any, token: Tokens, items: list[dict[str, Any]]) -> Any:
    response = client.post("/api/v1/immunizations/batch", headers={**bearer(token), **JSON},
                           json={"items": items})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _given(citizen: uuid.UUID, code: str, day: dt.date, key: str) -> dict[str, Any]:
    return {"client_item_id": key, "citizen_id": str(citizen), "vaccine_code": code,
            "dose_number": 1, "occurrence_date": day.isoformat(), "lot_number": "L-" + key[-6:]}


@pytest.fixture
def commune(app: Any, client: Any) -> Commune:
    station = _facility(app, COMMUNE)
    other_station = _facility(app, OTHER_COMMUNE)
    born_due = TODAY - dt.timedelta(days=65)
    born_young = TODAY - dt.timedelta(days=20)
    world = Commune(
        station=station, other_station=other_station,
        system=station_token(client, app,
                             oauth_client=station_client(app, facility=station)[0]),
        staff=token_for(client, app, role="station", facility=station),
        other_staff=token_for(client, app, role="station", facility=other_station),
        due=_person(app, name="Trần Minh Anh", born=born_due, sex="male",
                    village="Thôn Đông", phone="0912345678"),
        overdue=_person(app, name="Lê Thị Bình", born=TODAY - dt.timedelta(days=150)),
        mother=_person(app, name="Phạm Thị Hoa", born=dt.date(1994, 4, 2),
                       village="Thôn Tây", phone="0987654321"),
        registered=_person(app, name="Đỗ Văn Cường", born=TODAY - dt.timedelta(days=40),
                           sex="male", commune=OTHER_COMMUNE, village="Xóm Chợ",
                           registered_by=station),
        young=_person(app, name="Vũ Thị Duyên", born=born_young, village="Thôn Đông"),
        elsewhere=_person(app, name="Hà Văn Em", born=TODAY - dt.timedelta(days=150),
                          sex="male", commune=OTHER_COMMUNE),
        adult=_person(app, name="Nguyễn Văn Giang", born=dt.date(1980, 1, 9), sex="male"),
        teen=_person(app, name="Bùi Thị Hạnh", born=TODAY - dt.timedelta(days=17 * 366)),
    )
    # Birth doses, uploaded by the station as after a session.
    _upload(client, world.system, [
        _given(world.due, "HEPB", born_due, "hist-due-hepb"),
        _given(world.due, "BCG", born_due + dt.timedelta(days=3), "hist-due-bcg"),
        _given(world.young, "HEPB", born_young, "hist-young-hepb"),
        _given(world.young, "BCG", born_young + dt.timedelta(days=2), "hist-young-bcg"),
    ])
    linked = client.post(f"/api/v1/citizens/{world.overdue}/guardians",
                         headers={**bearer(world.staff), **JSON},
                         json={"guardian": {"citizen_id": str(world.mother)},
                               "relationship": "mother"})
    assert linked.status_code == 201, linked.get_json()
    return world


def _worklist(client: Any, world: Commune, token: Tokens | None = None, *,
              facility: uuid.UUID | None = None, lang: str = "vi", **query: str) -> Any:
    return client.get(URL.format(facility or world.station), query_string=query,
                      headers={**bearer(token or world.system), "Accept-Language": lang})


def _rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["child"]["id"]: row for group in body["villages"] for row in group["children"]}


def _worklist_events(app: Any) -> list[Any]:
    from consent.models import AuditEvent

    with app.app_context():
        return list(db.session.execute(
            select(AuditEvent.citizen_id, AuditEvent.decision, AuditEvent.rule,
                   AuditEvent.actor_facility_id, AuditEvent.action)
            .where(AuditEvent.section == "immunization-worklist")).all())


# --- who is listed, with what -----------------------------------------------------------------


def test_the_commune_children_due_or_overdue_are_listed_by_village(app, client, commune):
    response = _worklist(client, commune)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    rows = _rows(body)
    assert set(rows) == {str(commune.due), str(commune.overdue), str(commune.registered)}
    today = vietnam_today()  # the route's default: today when asked (a run may cross midnight)
    assert body["from"] == today.isoformat()
    assert body["to"] == (today + dt.timedelta(days=30)).isoformat()
    # Villages by name, the children without one last under "unknown".
    assert [(g["village"], g["label"]) for g in body["villages"]] == [
        ("Thôn Đông", "Thôn Đông"), ("Xóm Chợ", "Xóm Chợ"), (None, "Chưa rõ thôn/xóm")]

    due = rows[str(commune.due)]
    assert due["child"] == {"id": str(commune.due), "full_name": "Trần Minh Anh",
                            "date_of_birth": (TODAY - dt.timedelta(days=65)).isoformat(),
                            "sex": "male"}
    doses = {d["item_id"]: d for d in due["doses"]}
    assert set(doses) == {"dtp-1", "opv-1", "rota-1"}
    assert {d["status"] for d in doses.values()} == {"due"}
    assert {k: d["vaccine_code"] for k, d in doses.items()} == {
        "dtp-1": "DTP-HEPB-HIB", "opv-1": "BOPV", "rota-1": "ROTAVIN-M1"}
    assert doses["dtp-1"]["name"] == "Bạch hầu - ho gà - uốn ván - viêm gan B - Hib mũi 1"
    assert due["last_dose"]["vaccine_code"] == "BCG"
    assert due["last_dose"]["date"] == (TODAY - dt.timedelta(days=62)).isoformat()
    assert due["last_dose"]["facility"]["id"] == str(commune.station)

    overdue = {d["item_id"]: d["status"] for d in rows[str(commune.overdue)]["doses"]}
    # Past the birth dose's week it is missed, never listed; the later doses of a series wait.
    assert "hepb-birth" not in overdue
    assert "dtp-2" not in overdue
    assert {k for k, s in overdue.items() if s == "overdue"} == {"bcg", "dtp-1", "opv-1",
                                                                 "rota-1"}
    assert rows[str(commune.overdue)]["last_dose"] is None
    # Registered here, living elsewhere: on the list, with its own village.
    assert "bcg" in {d["item_id"] for d in rows[str(commune.registered)]["doses"]}

    summary = body["summary"]
    assert summary["children"] == 3
    assert summary["doses"] == sum(len(r["doses"]) for r in rows.values())
    counted = {v["vaccine_code"]: v["doses"] for v in summary["vaccines"]}
    assert counted == Counter(d["vaccine_code"] for r in rows.values() for d in r["doses"])
    # The 40-day-old's 2-month doses fall due within the 30 days: three of each to order.
    assert (counted["DTP-HEPB-HIB"], counted["BOPV"], counted["BCG"]) == (3, 3, 2)


def test_a_later_end_date_brings_the_doses_falling_due_by_then(app, client, commune):
    rows = _rows(_worklist(client, commune,
                           to=(TODAY + dt.timedelta(days=50)).isoformat()).get_json())
    young = {d["item_id"]: d for d in rows[str(commune.young)]["doses"]}
    assert {"dtp-1", "opv-1", "rota-1"} <= set(young)
    assert {d["status"] for d in young.values()} == {"due"}
    assert all(TODAY <= dt.date.fromisoformat(d["due_date"]) <= TODAY + dt.timedelta(days=50)
               for d in young.values())


def test_names_follow_the_callers_language(app, client, commune):
    body = _worklist(client, commune, lang="en").get_json()
    assert body["villages"][-1]["label"] == "Village not known"
    doses = {d["item_id"]: d for d in _rows(body)[str(commune.due)]["doses"]}
    assert doses["dtp-1"]["name"] == "DTP-HepB-Hib dose 1"
    assert doses["opv-1"]["vaccine_name"] == "Bivalent oral poliovirus vaccine (bOPV)"


def test_the_guardians_in_force_or_the_registration_phone_are_the_contact(app, client,
                                                                          commune):
    rows = _rows(_worklist(client, commune).get_json())
    assert rows[str(commune.overdue)]["contact"] == {
        "guardians": [{"name": "Phạm Thị Hoa", "relationship": "mother",
                       "phone": "+84987654321"}],
        "registration_phone": None}
    assert rows[str(commune.due)]["contact"] == {"guardians": [],
                                                 "registration_phone": "+84912345678"}


def test_each_child_considered_is_one_audited_decision(app, client, commune):
    assert _worklist_events(app) == []
    assert _worklist(client, commune, token=commune.staff).status_code == 200
    events = _worklist_events(app)
    by_child = {e.citizen_id: e for e in events}
    # The children of the catchment, listed or with nothing due yet; no adult, no teen past
    # the schedule, no child of another commune.
    assert len(events) == len(by_child) == 4
    assert set(by_child) == {commune.due, commune.overdue, commune.registered, commune.young}
    assert {(e.decision, e.rule, e.action, e.actor_facility_id) for e in events} == {
        ("permit", "station-immunizations", "read", commune.station)}


# --- the printable list -------------------------------------------------------------------------


def _csv(response: Any) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_the_csv_session_list_says_what_the_json_says(app, client, commune):
    body = _worklist(client, commune).get_json()
    response = client.get(URL.format(commune.station),
                          headers={**bearer(commune.system), "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    header, *rows = _csv(response)
    assert header[:5] == ["Thôn/xóm", "Họ và tên trẻ", "Ngày sinh", "Giới tính", "Mũi tiêm"]
    expected = [
        [group["label"], row["child"]["full_name"], row["child"]["date_of_birth"], dose["name"],
         str(dose["dose_number"]), dose["due_date"], dose["vaccine_code"]]
        for group in body["villages"] for row in group["children"] for dose in row["doses"]
    ]
    assert [[r[0], r[1], r[2], r[4], r[5], r[7], r[8]] for r in rows] == expected
    mother_rows = [r for r in rows if r[1] == "Lê Thị Bình"]
    assert mother_rows
    assert {(r[11], r[12]) for r in mother_rows} == {("Phạm Thị Hoa (mẹ)", "0987 654 321")}
    statuses = {r[6] for r in rows}
    assert statuses <= {"Đến lịch tiêm", "Quá hạn"}


def test_the_csv_header_follows_the_callers_language(app, client, commune):
    response = client.get(URL.format(commune.station),
                          headers={**bearer(commune.system), "Accept": "text/csv",
                                   "Accept-Language": "en"})
    header = _csv(response)[0]
    assert header[:3] == ["Village", "Child's name", "Date of birth"]


# --- from the list to the record ----------------------------------------------------------------


def test_a_batch_item_from_the_list_uploads_once_and_leaves_the_list(app, client, commune):
    rows = _rows(_worklist(client, commune).get_json())
    [dose] = [d for d in rows[str(commune.due)]["doses"] if d["item_id"] == "dtp-1"]
    item = {**dose["batch_item"], "lot_number": "QV2611A", "site": "left-thigh"}
    assert item["occurrence_date"] == vietnam_today().isoformat()
    # The same session listed again gives the same item.
    again = _rows(_worklist(client, commune).get_json())
    assert [d["batch_item"] for d in again[str(commune.due)]["doses"]
            if d["item_id"] == "dtp-1"] == [dose["batch_item"]]

    first = _upload(client, commune.system, [item])
    assert [r["status"] for r in first["results"]] == [201]
    after = _rows(_worklist(client, commune).get_json())
    left = {d["item_id"] for d in after[str(commune.due)]["doses"]}
    assert "dtp-1" not in left
    assert {"opv-1", "rota-1"} <= left
    assert after[str(commune.due)]["last_dose"]["vaccine_code"] == "DTP-HEPB-HIB"

    replay = _upload(client, commune.system, [item])
    assert [r["status"] for r in replay["results"]] == [200]
    assert replay["results"][0]["entry"]["id"] == first["results"][0]["entry"]["id"]


# --- who may ask ------------------------------------------------------------------------------


def test_only_the_facilitys_own_station_gets_its_list(app, client, commune):
    refused = _worklist(client, commune, token=commune.other_staff)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert "Trần Minh Anh" not in refused.get_data(as_text=True)
    doctor = token_for(client, app, role="practitioner")
    assert _worklist(client, commune, token=doctor).status_code == 403
    parent = token_for(client, app, citizen=commune.mother)
    assert _worklist(client, commune, token=parent).status_code == 403
    missing = _worklist(client, commune, facility=uuid.uuid4())
    assert missing.status_code == 404
    # Refusals list no one, so they audit no one.
    assert _worklist_events(app) == []


def test_a_token_without_an_immunization_scope_is_refused(app, client, commune):
    registry_only = station_token(client, app, oauth_client=station_client(
        app, facility=commune.station, scopes="system/Patient.crs")[0])
    refused = _worklist(client, commune, token=registry_only)
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith(":insufficient-scope")


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "06/12/2026"}, "from"),
    ({"to": "tomorrow"}, "to"),
    ({"from": "2026-03-10", "to": "2026-03-09"}, "to"),
    ({"from": "2026-01-01", "to": "2026-04-30"}, "to"),
])
def test_bad_dates_are_refused_with_a_problem(app, client, commune, query, field):
    refused = _worklist(client, commune, **query)
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["type"].endswith(":validation-error")
    assert set(problem["errors"]) == {field}
    english = _worklist(client, commune, lang="en", **query).get_json()
    assert english["errors"][field] != problem["errors"][field]
    assert _worklist_events(app) == []


# --- the cohort index ---------------------------------------------------------------------


def test_moving_to_another_commune_moves_the_child_off_the_list(app, client, commune):
    from registry.models import Citizen

    with app.app_context():
        child = db.session.get(Citizen, commune.due)
        child.address = {"province_code": "24", "commune_code": OTHER_COMMUNE}
        db.session.commit()
    rows = _rows(_worklist(client, commune).get_json())
    assert str(commune.due) not in rows
    assert str(commune.overdue) in rows
    other = _rows(_worklist(client, commune, token=commune.other_staff,
                            facility=commune.other_station).get_json())
    assert str(commune.due) in other


def test_reindex_cohorts_fills_rows_written_before_the_index(app, client, commune):
    from registry.models import Citizen

    with app.app_context():
        db.session.execute(update(Citizen).values(cohort_bidx=None))
        db.session.commit()
    assert set(_rows(_worklist(client, commune).get_json())) == {str(commune.registered)}

    result = app.test_cli_runner().invoke(args=["registry", "reindex-cohorts",
                                                "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    with app.app_context():
        people = db.session.scalar(select(func.count()).select_from(Citizen))
    assert counts["checked"] == people
    assert counts["failed"] == 0
    assert counts["indexed"] == 8  # everyone with a commune
    assert counts["without_commune"] == people - 8
    assert set(_rows(_worklist(client, commune).get_json())) == {
        str(commune.due), str(commune.overdue), str(commune.registered)}
    # Resumable: a second run finds only the people without a commune left to look at.
    again = app.test_cli_runner().invoke(args=["registry", "reindex-cohorts"])
    assert json.loads(again.output.strip().splitlines()[-1])["indexed"] == 0
