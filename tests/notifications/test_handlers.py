"""Domain events become notifications for the right people."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from core.db import db
from core.events import (
    ACCESS_REQUEST_ANSWERED,
    ACCESS_REQUESTED,
    BREAK_GLASS_OPENED,
    CONSENT_EXPIRING,
    ENTRY_CREATED,
    RECORD_ACCESSED,
    DomainEvent,
    emit,
)
from notifications.models import Notification
from tests.notifications.conftest import make_person, use_recipients
from tests.support.auth import make_login, make_practitioner


def _emit(app, name: str, citizen_id: uuid.UUID, data: dict, *, at: dt.datetime | None = None):
    with app.app_context():
        event = DomainEvent(name=name, citizen_id=citizen_id, data=data,
                            **({"occurred_at": at} if at else {}))
        emit(db.session, event)
        db.session.commit()


def _all(app) -> list[Notification]:
    with app.app_context():
        rows = list(db.session.scalars(select(Notification).order_by(Notification.created_at)))
        for row in rows:
            row.params  # noqa: B018 - decrypt while the session is open
            db.session.expunge(row)
        return rows


def _entry(section: str = "immunizations", sensitivity: str = "normal", **extra) -> dict:
    return {"section": section, "entry_id": str(uuid.uuid4()), "sensitivity": sensitivity,
            "author_practitioner_id": "", **extra}


def test_a_minors_new_entry_reaches_the_guardians(app):
    mother, father = make_person(app), make_person(app)
    child = make_person(app, date_of_birth=dt.date(2020, 1, 1), phone=None, email=None)
    use_recipients(app, lambda s, cid: [cid, mother.id, father.id])
    _emit(app, ENTRY_CREATED, child.id, _entry())
    rows = _all(app)
    assert sorted(str(r.recipient_id) for r in rows) == sorted(
        str(p) for p in (child.id, mother.id, father.id))
    assert {r.subject_citizen_id for r in rows} == {child.id}
    assert {r.params["section"] for r in rows} == {"immunizations"}


def test_a_restricted_entry_is_told_to_the_citizen_alone_without_its_section(app):
    teen, parent = make_person(app), make_person(app)
    use_recipients(app, lambda s, cid: [cid, parent.id])
    _emit(app, ENTRY_CREATED, teen.id, _entry("conditions", sensitivity="mental-health"))
    (row,) = _all(app)
    assert row.recipient_id == teen.id
    assert row.params["restricted"] is True
    assert row.params["section"] is None


def test_what_citizens_write_themselves_is_not_notified(app):
    person = make_person(app)
    _emit(app, ENTRY_CREATED, person.id, _entry("observations", source="citizen-reported"))
    assert _all(app) == []


def test_record_access_is_a_daily_digest_per_reader(app):
    person = make_person(app)
    doctor, other = str(uuid.uuid4()), str(uuid.uuid4())
    morning = dt.datetime(2025, 3, 10, 1, 0, tzinfo=dt.UTC)  # 08:00 in Vietnam
    for minutes in (0, 5, 300):
        _emit(app, RECORD_ACCESSED, person.id,
              {"actor_kind": "practitioner", "practitioner_id": doctor, "section": "allergies"},
              at=morning + dt.timedelta(minutes=minutes))
    _emit(app, RECORD_ACCESSED, person.id, {"actor_kind": "practitioner",
                                            "practitioner_id": other}, at=morning)
    _emit(app, RECORD_ACCESSED, person.id, {"actor_kind": "practitioner",
                                            "practitioner_id": doctor},
          at=morning + dt.timedelta(days=1))
    _emit(app, RECORD_ACCESSED, person.id, {"actor_kind": "citizen"}, at=morning)
    rows = _all(app)
    assert len(rows) == 3
    assert sorted(r.params["date"] for r in rows) == ["2025-03-10", "2025-03-10", "2025-03-11"]


def test_break_glass_is_urgent(app):
    person = make_person(app)
    _emit(app, BREAK_GLASS_OPENED, person.id,
          {"break_glass_id": str(uuid.uuid4()), "practitioner_id": str(uuid.uuid4())})
    (row,) = _all(app)
    assert (row.trigger, row.urgent) == ("break-glass", True)


def test_access_requests_and_expiring_consents(app):
    person = make_person(app)
    request_id = str(uuid.uuid4())
    _emit(app, ACCESS_REQUESTED, person.id,
          {"request_id": request_id, "practitioner_id": str(uuid.uuid4())})
    _emit(app, ACCESS_REQUESTED, person.id, {"request_id": request_id})  # replayed event
    _emit(app, CONSENT_EXPIRING, person.id,
          {"consent_id": str(uuid.uuid4()), "expires_at": "2025-03-20T00:00:00+00:00"})
    assert sorted(r.trigger for r in _all(app)) == ["access-requested", "consent-expiring"]


def test_an_answered_request_reaches_the_practitioners_account(app):
    person = make_person(app)
    practitioner = make_practitioner(app)
    login = make_login(app, role="practitioner", practitioner=practitioner)
    _emit(app, ACCESS_REQUEST_ANSWERED, person.id,
          {"request_id": str(uuid.uuid4()), "decision": "approved",
           "practitioner_id": str(practitioner)})
    (row,) = _all(app)
    assert (row.recipient_kind, row.recipient_id) == ("account", login.account_id)
    assert row.subject_citizen_id == person.id
    assert row.params["decision"] == "approved"


def test_an_answer_without_the_practitioner_is_not_notified(app):
    person = make_person(app)
    _emit(app, ACCESS_REQUEST_ANSWERED, person.id,
          {"request_id": str(uuid.uuid4()), "decision": "denied"})
    assert _all(app) == []


def _guardian(app, guardian: uuid.UUID, dependant: uuid.UUID, *, kind: str = "minor",
              categories: tuple[str, ...] = ()) -> None:
    from consent.models import Guardianship
    from core.db import utcnow

    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=guardian, dependant_citizen_id=dependant,
            kind=kind, relationship="mother" if kind == "minor" else "relative",
            categories=list(categories), valid_from=utcnow() - dt.timedelta(days=30),
            created_via="station"))
        db.session.commit()


def test_who_hears_of_a_restricted_entry_is_the_policys_answer(app):
    """Not a copy of teen privacy in the notification code: the policy decides, for each person
    acting for the citizen, whether they may read such an entry (DESIGN.md §5)."""
    today = dt.date.today()  # noqa: DTZ011
    mother = make_person(app, full_name="Mẹ")
    child = make_person(app, date_of_birth=dt.date(today.year - 8, 1, 1), phone=None)
    teen = make_person(app, date_of_birth=dt.date(today.year - 13, 1, 1), phone=None)
    adult, trusted, plain = make_person(app), make_person(app), make_person(app)
    _guardian(app, mother.id, child.id)
    _guardian(app, mother.id, teen.id)
    _guardian(app, trusted.id, adult.id, kind="proxy", categories=("mental-health",))
    _guardian(app, plain.id, adult.id, kind="proxy")
    for person in (child, teen, adult):
        _emit(app, ENTRY_CREATED, person.id, _entry("conditions", sensitivity="mental-health"))
    told = {(row.subject_citizen_id, row.recipient_id) for row in _all(app)}
    assert told == {
        (child.id, child.id), (child.id, mother.id),  # under 12: the guardian reads it all
        (teen.id, teen.id),  # from 12: hers alone
        (adult.id, adult.id), (adult.id, trusted.id),  # the proxy named for the category
    }
