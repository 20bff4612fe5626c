"""Reminders that reach people (issue 15): what a new user sees, through the real CLI
(`notifications run-reminders`, `notifications process`), the inbox over HTTP with real tokens,
and the local fake SMS gateway and FCM server.

1. a periodic examination past its date is reminded, once;
2. consents about to expire are told once, a teen's restricted one to the teen alone;
3. a vaccination SMS says when, where and what to bring, and names nobody and no vaccine;
4. a child with no guardian and no account is reminded at its registration phone, once per due
   date, instead of piling notices into an inbox nobody opens;
5. a family doctor hears in her inbox that someone registered with her.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import uuid
from typing import Any

from sqlalchemy import func, select

from consent.models import Guardianship
from core.db import db, utcnow
from notifications.content import _GSM7
from notifications.models import Notification
from notifications.quiet_hours import VIETNAM
from notifications.reminders import reminders_for
from registry.reference.health_id import make_health_id
from registry.reference.schedule import compute_schedule
from registry.services import assign_family_doctor, create_facility
from tests.notifications.conftest import fcm_token, make_person
from tests.notifications.helpers import add_device
from tests.notifications.test_privacy import _forbidden
from tests.support.auth import (
    facility_code,
    health_id_of,
    make_citizen,
    make_practitioner,
    token_for,
)

BORN = dt.date(2025, 1, 17)  # two months old on 17 March 2025
GENERIC_SMS = ("So suc khoe dien tu: Ban co thong bao suc khoe moi. "
               "Mo ung dung de xem chi tiet.")


def _cli(app: Any, *args: str) -> dict[str, Any]:
    result = app.test_cli_runner().invoke(args=["notifications", *args])
    assert result.exit_code == 0, result.output
    return json.loads([line for line in result.output.splitlines() if line.startswith("{")][-1])


def _remind(app: Any, day: dt.date) -> dict[str, Any]:
    return _cli(app, "run-reminders", "--today", day.isoformat())


def _inbox(client: Any, token: Any, lang: str = "vi") -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/notifications?limit=100",
                          headers={**token.headers, "Accept-Language": lang})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def _station(app: Any) -> uuid.UUID:
    with app.app_context():
        station = create_facility(
            session=db.session, code=facility_code(),
            kind="commune-health-station", name="Trạm Y tế xã Liên Bão", province_code="27",
            district_code="260", commune_code="09334")
        db.session.commit()
        return station.id


def _register_newborn(client: Any, staff: Any, *, name: str, phone: str | None = None,
                      parent: Any = None) -> str:
    body: dict[str, Any] = {
        "health_id": make_health_id(province_code="027", date_of_birth=BORN, sex="male",
                                    serial=secrets.randbelow(1_000_000)),
        "full_name": name, "date_of_birth": BORN.isoformat(), "sex": "male",
    }
    if phone:
        body["phone"] = phone
    if parent is not None:
        body["guardians"] = [{"health_id": parent.health_id, "date_of_birth": "1990-05-17",
                              "relationship": "mother"}]
    registered = client.post("/api/v1/citizens", headers=staff.headers, json=body)
    assert registered.status_code == 201, registered.get_json()
    return str(registered.get_json()["id"])


def _vietnam_today() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(VIETNAM).date()


# 1. Periodic examinations ----------------------------------------------------------------------
def test_a_periodic_exam_past_its_date_is_reminded_once(app, client):
    station = _station(app)
    doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    adult = make_citizen(app, full_name="Phạm Văn Thắng", date_of_birth=dt.date(1961, 3, 14))
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=adult, practitioner_id=doctor,
                             facility_id=station, changed_by="test")
        db.session.commit()
    doctor_token = token_for(client, app, role="practitioner", practitioner=doctor)
    created = client.post(
        f"/api/v1/citizens/{adult}/examinations",
        headers={**doctor_token.headers, "Idempotency-Key": "exam-" + uuid.uuid4().hex},
        json={"exam_type": "periodic", "examined_on": "2024-03-01",
              "next_exam_due": "2025-03-01"})
    assert created.status_code == 201, created.get_json()

    first = _remind(app, dt.date(2025, 3, 10))  # nine days past the date
    second = _remind(app, dt.date(2025, 3, 10))

    assert first["by_trigger"] == {"periodic-exam-due": 1}
    assert second["notifications"] == 0
    patient = token_for(client, app, citizen=adult)
    [exam] = [n for n in _inbox(client, patient) if n["trigger"] == "periodic-exam-due"]
    assert exam["data"] == {"due_date": "2025-03-01"}
    assert exam["body"] == "Bạn đến hạn khám sức khỏe định kỳ vào ngày 01/03/2025."


# 2. Consents about to expire -------------------------------------------------------------------
def _grant(client: Any, token: Any, citizen: uuid.UUID, doctor: uuid.UUID, *,
           categories: list[str], days: int) -> str:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(microsecond=0)
    granted = client.post(f"/api/v1/citizens/{citizen}/consents", headers=token.headers, json={
        "grantee": {"type": "practitioner", "id": str(doctor)}, "sections": ["conditions"],
        "categories": categories, "access": "read", "expires_at": expires.isoformat()})
    assert granted.status_code == 201, granted.get_json()
    return str(granted.get_json()["id"])


def _guardian_of(app: Any, guardian: uuid.UUID, child: uuid.UUID) -> None:
    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=guardian, dependant_citizen_id=child,
            kind="minor", relationship="mother", categories=[],
            valid_from=utcnow() - dt.timedelta(days=30), created_via="station"))
        db.session.commit()


def test_a_consent_about_to_expire_is_told_once_within_the_window(app, client):
    doctor = make_practitioner(app, full_name="Trần Văn Đức")
    adult = make_citizen(app, full_name="Hoàng Thị Thu Trang", sex="female",
                         date_of_birth=dt.date(1988, 6, 25))
    adult_token = token_for(client, app, citizen=adult)
    consent = _grant(client, adult_token, adult, doctor, categories=[], days=5)
    today = _vietnam_today()

    early = _remind(app, today - dt.timedelta(days=10))  # 15 days ahead: not yet
    assert early["notifications"] == 0
    first = _remind(app, today)
    again = _remind(app, today + dt.timedelta(days=1))

    assert first["by_trigger"] == {"consent-expiring": 1}
    assert again["notifications"] == 0
    [notice] = [n for n in _inbox(client, adult_token) if n["trigger"] == "consent-expiring"]
    assert notice["data"]["consent_id"] == consent
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).astimezone(VIETNAM).date()
    assert notice["body"] == ("Một quyền xem hồ sơ bạn đã cấp sẽ hết hạn vào ngày "
                              f"{expires:%d/%m/%Y}.")


def test_a_teens_restricted_consent_expiring_is_told_to_the_teen_alone(app, client):
    doctor = make_practitioner(app, full_name="Trần Văn Đức")
    today = _vietnam_today()
    teen = make_citizen(app, full_name="Nguyễn Thu Hà", sex="female",
                        date_of_birth=today.replace(year=today.year - 13) - dt.timedelta(days=30))
    mother = make_citizen(app, full_name="Đỗ Thị Lan Anh", sex="female",
                          date_of_birth=dt.date(1985, 11, 2))
    _guardian_of(app, mother, teen)
    teen_token = token_for(client, app, citizen=teen)
    mother_token = token_for(client, app, citizen=mother)
    private = _grant(client, teen_token, teen, doctor, categories=["mental-health"], days=3)
    ordinary = _grant(client, teen_token, teen, doctor, categories=[], days=4)

    run = _remind(app, today)

    assert run["by_trigger"] == {"consent-expiring": 3}
    to_teen = {n["data"]["consent_id"] for n in _inbox(client, teen_token)
               if n["trigger"] == "consent-expiring"}
    to_mother = {n["data"]["consent_id"] for n in _inbox(client, mother_token)
                 if n["trigger"] == "consent-expiring"}
    assert to_teen == {private, ordinary}
    assert to_mother == {ordinary}  # the restricted one is the teen's alone


# 3. What a vaccination SMS says ----------------------------------------------------------------
def test_a_vaccination_sms_says_when_where_and_what_to_bring(app, client, providers):
    station = _station(app)
    staff = token_for(client, app, role="station", facility=station)
    mother = make_person(app, full_name="Đỗ Thị Lan Anh", phone="0987 654 321", email=None)
    english = make_person(app, full_name="Lê Thị Mai", phone="0987 000 222", email=None,
                          language="en")
    _register_newborn(client, staff, name="Nguyễn Minh Khôi", parent=mother)
    _register_newborn(client, staff, name="Lê Minh Quân", parent=english)

    run = _remind(app, dt.date(2025, 3, 10))
    assert run["by_trigger"]["vaccination-due"] == 2  # 17 March, for each child
    sent = _cli(app, "process", "--until-idle")
    assert sent["dead"] == 0

    texts: dict[str, list[str]] = {}
    for request in providers.sms.received:
        texts.setdefault(request.json()["to"], []).append(request.json()["text"])
    vi, en = texts["+84987654321"], texts["+84987000222"]
    # The newborn's registration told the mothers: that notice keeps the generic words.
    assert vi.count(GENERIC_SMS) == 1
    visits_vi = [t for t in vi if t != GENERIC_SMS]
    visits_en = [t for t in en if not t.startswith("Health record: You have")]
    assert ("So suc khoe dien tu: Tre co lich tiem chung ngay 17/03/2025 tai Tram Y te xa "
            "Lien Bao. Vui long dua tre den va mang theo so tiem chung.") in visits_vi
    assert ("Health record: A child is due for vaccination on 17 Mar 2025 at Tram Y te xa "
            "Lien Bao. Please bring the child and the vaccination book.") in visits_en
    overdue = [t for t in visits_vi if "qua lich" in t]  # the birth doses nobody recorded
    assert overdue
    assert all("tiem bu tai Tram Y te xa Lien Bao" in t for t in overdue)
    forbidden = _forbidden([mother, english], "-", "-") - {"-"}
    forbidden |= {"Nguyễn Minh Khôi", "Khôi", "Lê Minh Quân", "Quân", "Minh"}
    for text in visits_vi + visits_en:
        assert set(text) <= _GSM7, text
        leaks = [w for w in forbidden
                 if re.search(rf"(?<![\w]){re.escape(w.casefold())}(?![\w])", text.casefold())]
        assert leaks == [], f"{leaks} in {text!r}"


# 4. A child nobody can open an inbox for ------------------------------------------------------
def test_a_child_without_guardian_is_reminded_at_its_registration_phone_once_per_date(
    app, client, providers,
):
    station = _station(app)
    staff = token_for(client, app, role="station", facility=station)
    child = uuid.UUID(_register_newborn(client, staff, name="Nguyễn Minh Khôi",
                                        phone="0912 000 111"))
    unreachable = uuid.UUID(_register_newborn(client, staff, name="Lê Minh Quân"))

    days = [BORN + dt.timedelta(days=7 * week) for week in range(105)]  # weekly, two years
    for day in days:
        _remind(app, day)

    with app.app_context():
        rows = list(db.session.scalars(select(Notification).where(
            Notification.subject_citizen_id.in_([child, unreachable]))))
        doses = [dose for n in rows
                 for dose in db.session.get(Notification, n.id).params["doses"]]
    assert {n.recipient_id for n in rows} == {child}  # nobody to tell about the other one
    assert len(doses) == len(set(doses))  # one reminder per dose at most
    would_have = [r for day in days
                  for r in reminders_for(compute_schedule(date_of_birth=BORN, doses=(),
                                                          today=day), day)]
    # Before: every stage of every due date (24 on these weekly runs, more on daily ones), in
    # an inbox no one opens. Now each dose once: birth, 2, 5, 9 and 12 months (JE dose 2 waits
    # for a JE dose 1 that is never given here: its projected date is never "soon").
    assert len({(r.stage, r.due_date, r.overdue_round) for r in would_have}) > 3 * len(rows)
    assert sorted(doses) == sorted({item for r in would_have for item in r.item_ids})
    assert len(rows) == 5

    _cli(app, "process", "--until-idle")
    texts = [r.json()["text"] for r in providers.sms.received]
    assert {r.json()["to"] for r in providers.sms.received} == {"+84912000111"}
    assert len(texts) == len(rows)
    assert all("Tram Y te xa Lien Bao" in t and "so tiem chung" in t for t in texts)


# 5. The family doctor hears of a new registration ----------------------------------------------
def test_a_new_family_doctor_is_told_in_her_inbox(app, client, providers):
    station = _station(app)
    huong = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    duc = make_practitioner(app, facility=station, full_name="Trần Văn Đức")
    patient = make_citizen(app, full_name="Phạm Văn Thắng", date_of_birth=dt.date(1961, 3, 14))
    huong_token = token_for(client, app, role="practitioner", practitioner=huong)
    duc_token = token_for(client, app, role="practitioner", practitioner=duc)
    add_device(app, huong_token.login.account_id, platform="fcm", token=fcm_token(),
               kind="account")
    patient_token = token_for(client, app, citizen=patient)

    registered = client.put(f"/api/v1/citizens/{patient}/family-doctor",
                            headers=patient_token.headers,
                            json={"practitioner_id": str(huong), "facility_id": str(station)})
    assert registered.status_code == 200, registered.get_json()

    [notice] = _inbox(client, huong_token)
    assert notice["trigger"] == "family-doctor-changed"
    assert notice["subject_citizen_id"] == str(patient)
    assert notice["title"] == "Người dân mới đăng ký bác sĩ gia đình"
    assert notice["body"] == ("Phạm Văn Thắng đã đăng ký bạn làm bác sĩ gia đình tại Trạm Y tế "
                              "xã Liên Bão. Bạn có thể xem hồ sơ sức khỏe của người này.")
    [in_english] = _inbox(client, huong_token, lang="en")
    assert in_english["body"].startswith("Phạm Văn Thắng registered with you as their family "
                                         "doctor at Trạm Y tế xã Liên Bão.")
    _cli(app, "process", "--until-idle")
    [push] = providers.fcm.received
    assert "Thắng" not in json.dumps(push.json(), ensure_ascii=False)

    moved = client.put(f"/api/v1/citizens/{patient}/family-doctor",
                       headers=patient_token.headers,
                       json={"practitioner_id": str(duc), "facility_id": str(station)})
    assert moved.status_code == 200, moved.get_json()
    assert [n["title"] for n in _inbox(client, duc_token)] == [
        "Người dân mới đăng ký bác sĩ gia đình"]
    # The service clock stands still in these tests: find the notice by its words, not order.
    [left] = [n for n in _inbox(client, huong_token)
              if n["title"] == "Người dân chuyển bác sĩ gia đình"]
    assert left["body"] == "Phạm Văn Thắng không còn đăng ký bạn làm bác sĩ gia đình."
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.trigger == "family-doctor-changed",
            Notification.recipient_kind == "account")) == 3
    assert health_id_of(app, patient) not in json.dumps(left)
