"""Vaccination reminders from the schedule: once per stage, to the guardians of a child."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import func, select

from core.db import db
from notifications.models import Notification
from notifications.reminders import (
    DOSES,
    EXAMS,
    STAGE_DUE,
    STAGE_OVERDUE,
    STAGE_SOON,
    reminders_for,
    run_reminders,
    shard_bounds,
)
from registry.reference.schedule import GivenDose, compute_schedule
from tests.notifications.conftest import fcm_token, make_person, use_recipients
from tests.notifications.helpers import add_device, deliveries, process

TODAY = dt.date(2025, 3, 10)
# Two months old on 17 March: DTP-HepB-Hib 1, oral polio 1 and rotavirus 1 fall due that day.
BORN = dt.date(2025, 1, 17)
AT_BIRTH = [GivenDose("HEPB", BORN, "e1"), GivenDose("BCG", BORN, "e2")]


def _reminders(today: dt.date, doses=()):
    statuses = compute_schedule(date_of_birth=BORN, doses=doses, today=today)
    return reminders_for(statuses, today)


# The rules (pure) -------------------------------------------------------------------------------
def test_doses_due_together_make_one_reminder_in_the_due_soon_window():
    (reminder,) = _reminders(TODAY, AT_BIRTH)
    assert reminder.stage == STAGE_SOON
    assert reminder.due_date == dt.date(2025, 3, 17)
    assert sorted(reminder.item_ids) == ["dtp-1", "opv-1", "rota-1"]
    assert reminder.trigger == "vaccination-due"


def test_on_the_day_a_second_reminder():
    (reminder,) = _reminders(dt.date(2025, 3, 17), AT_BIRTH)
    assert (reminder.stage, reminder.due_date) == (STAGE_DUE, dt.date(2025, 3, 17))


def test_nothing_far_ahead():
    assert _reminders(dt.date(2025, 2, 20), AT_BIRTH) == []


def test_overdue_reminders_repeat_monthly_three_times():
    overdue_from = dt.date(2025, 4, 18)  # a month of grace after 17 March
    rounds = []
    for offset in range(0, 120):
        for reminder in _reminders(overdue_from + dt.timedelta(days=offset), AT_BIRTH):
            if reminder.stage == STAGE_OVERDUE and reminder.due_date == dt.date(2025, 3, 17):
                rounds.append(reminder.overdue_round)
    assert sorted(set(rounds)) == [0, 1, 2]
    assert {r.trigger for r in _reminders(overdue_from, AT_BIRTH)} >= {"vaccination-overdue"}


def test_a_given_dose_is_not_reminded():
    without = {item for r in _reminders(TODAY) for item in r.item_ids}
    assert "bcg" in without  # BCG is overdue when nobody recorded it
    with_birth_doses = {item for r in _reminders(TODAY, AT_BIRTH) for item in r.item_ids}
    assert "bcg" not in with_birth_doses


# Runs against the database ----------------------------------------------------------------------
def _inbox(app, recipient_id):
    with app.app_context():
        return list(db.session.scalars(
            select(Notification).where(Notification.recipient_id == recipient_id)
        ))


def _doses_hook(given: dict):
    return lambda session, citizen_ids: {c: given[c] for c in citizen_ids if c in given}


def test_the_guardian_gets_the_childs_reminders(app, providers, clock):
    parent = make_person(app, full_name="Đỗ Thị Lan Anh", email=None, phone="0987 654 321")
    child = make_person(app, full_name="Nguyễn Minh Khôi", date_of_birth=BORN, sex="male",
                        phone=None, email=None)
    add_device(app, parent.id, platform="fcm", token=fcm_token())
    use_recipients(app, lambda session, cid: [parent.id] if cid == child.id else [cid])
    DOSES.install(app, _doses_hook({child.id: AT_BIRTH}))

    with app.app_context():
        run = run_reminders(db.session, today=TODAY)

    assert (run.citizens, run.children, run.notifications) == (2, 1, 1)
    (reminder,) = _inbox(app, parent.id)
    assert _inbox(app, child.id) == []
    assert reminder.subject_citizen_id == child.id
    assert reminder.trigger == "vaccination-due"
    with app.app_context():
        assert db.session.get(Notification, reminder.id).params == {
            "schedule": "vn-epi-children-2024", "stage": "soon", "due_date": "2025-03-17",
            "doses": ["dtp-1", "opv-1", "rota-1"],
        }
    assert sorted(row.channel for row in deliveries(app)) == ["push", "sms"]
    assert process(app).sent == 2
    assert providers.sms.received[0].json()["to"] == "+84987654321"


def test_computing_reminders_twice_notifies_once(app):
    # With the contact phone the station registered: a child nobody can open an inbox for and
    # without a phone has nobody to remind (issue 15).
    child = make_person(app, date_of_birth=BORN, email=None)
    with app.app_context():
        first = run_reminders(db.session, today=TODAY)
        second = run_reminders(db.session, today=TODAY)
        third = run_reminders(db.session, today=TODAY + dt.timedelta(days=1))
        count = db.session.scalar(select(func.count()).select_from(Notification))
    assert first.notifications == 2  # BCG overdue, and the two-month doses coming
    assert second.notifications == 0
    assert third.notifications == 0  # nothing new the next day either
    assert count == 2
    assert {n.trigger for n in _inbox(app, child.id)} == {"vaccination-due",
                                                          "vaccination-overdue"}


def test_adults_get_no_vaccination_reminders_and_chunks_cover_everyone(app):
    for index in range(3):
        make_person(app, full_name=f"Người lớn {index}", phone=None, email=None)
    # The babies have the contact phone their station registered: a child with no guardian,
    # no account and no phone has nobody to remind (issue 15).
    babies = [make_person(app, date_of_birth=BORN, email=None) for _ in range(2)]
    DOSES.install(app, _doses_hook({b.id: AT_BIRTH for b in babies}))
    with app.app_context():
        run = run_reminders(db.session, today=TODAY, chunk_size=2)
    assert (run.citizens, run.children, run.notifications) == (5, 2, 2)
    assert dict(run.by_trigger) == {"vaccination-due": 2}


def test_periodic_exam_reminders_come_from_their_hook(app):
    adult = make_person(app, phone=None, email=None)
    due = dt.date(2025, 3, 20)
    EXAMS.install(app, lambda session, ids, today: {adult.id: due} if adult.id in ids else {})
    with app.app_context():
        run_reminders(db.session, today=TODAY)
        run_reminders(db.session, today=TODAY)
    (exam,) = _inbox(app, adult.id)
    assert exam.trigger == "periodic-exam-due"


def test_periodic_exam_reminders_come_from_the_latest_examination_in_the_record(app):
    from ehr.seed_records import _entry
    from tests.support.auth import make_facility, make_practitioner

    adult = make_person(app, phone=None, email=None)
    later = make_person(app, full_name="Lý Văn Tư", phone=None, email=None)
    station = make_facility(app)
    doctor = make_practitioner(app, facility=station)
    with app.app_context():
        for citizen, examined, due in ((adult.id, "2023-03-02", "2024-03-02"),
                                       (adult.id, "2024-03-01", "2025-03-20"),
                                       (later.id, "2024-05-01", "2025-05-01")):
            _entry(db.session, citizen_id=citizen, section="examinations", author=doctor,
                   facility=station, content={"exam_type": "periodic", "examined_on": examined,
                                              "next_exam_due": due})
        db.session.commit()
        run_reminders(db.session, today=TODAY)  # 2025-03-10: ten days before the 20th
        run_reminders(db.session, today=TODAY)
        (exam,) = _inbox(app, adult.id)
        assert exam.trigger == "periodic-exam-due"
        assert db.session.get(Notification, exam.id).params == {"due_date": "2025-03-20"}
    assert _inbox(app, later.id) == []  # due in May: not yet


def test_run_reminders_command(app, clock):
    make_person(app, date_of_birth=BORN, email=None)  # with a contact phone (issue 15)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["notifications", "run-reminders", "--today", "2025-03-10"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["today"] == "2025-03-10"
    assert summary["children"] == 1
    assert summary["notifications"] == 2

    again = runner.invoke(args=["notifications", "run-reminders"])  # today by the clock
    assert json.loads(again.output) | {"today": None} == {
        "today": None, "citizens": 1, "children": 1, "notifications": 0,
        "skipped_unreadable": 0, "by_trigger": {}}


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_shards_cover_every_id_once(shards):
    bounds = [shard_bounds(k, shards) for k in range(1, shards + 1)]
    assert bounds[0][0] is None
    assert bounds[-1][1] is None
    for (_, up_to), (start_after, _) in zip(bounds, bounds[1:], strict=False):
        assert up_to == start_after
    for _ in range(200):
        value = uuid.uuid4()
        owners = [k for k, (low, high) in enumerate(bounds)
                  if (low is None or value > low) and (high is None or value <= high)]
        assert len(owners) == 1
    with pytest.raises(ValueError, match="shard"):
        shard_bounds(0, 3)


def test_shards_together_do_what_one_run_does(app):
    for _ in range(6):
        make_person(app, date_of_birth=BORN, email=None)  # with a contact phone (issue 15)
    runner = app.test_cli_runner()
    outputs = [
        json.loads(runner.invoke(args=["notifications", "run-reminders", "--today",
                                       "2025-03-10", "--shard", f"{k}/3"]).output)
        for k in (1, 2, 3)
    ]
    assert sum(o["citizens"] for o in outputs) == 6
    assert sum(o["notifications"] for o in outputs) == 12
    with app.app_context():
        assert run_reminders(db.session, today=TODAY).notifications == 0
    refused = runner.invoke(args=["notifications", "run-reminders", "--shard", "4/3"])
    assert refused.exit_code != 0
    assert "K/N" in refused.output
    no_broker = runner.invoke(args=["notifications", "run-reminders", "--fan-out", "2"])
    assert no_broker.exit_code != 0
    assert "NOTIFICATIONS_WORKER=celery" in no_broker.output
