"""The citizen's access log in plain words, newest first, paginated, guardians included,
and "I don't recognise this" flags."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from consent import services
from consent.models import AccessLogFlag, Consent, Guardianship
from consent.pdp import authorize
from consent.policy_types import Target
from core.db import db, utcnow
from core.errors import Forbidden, NotFound
from tests.consent import world as w


@pytest.fixture
def world(app_context):
    return w.build_world(db.session)


def _access(actor, citizen, section, *, action="read", sensitivity="normal", now=None):
    decision = authorize(db.session, actor=actor, target=Target(
        citizen_id=citizen.id, section=section, sensitivity=sensitivity, entry_id=uuid.uuid4()),
        action=action, purpose=None, context=w.context(), now=now)
    db.session.commit()
    return decision


def _log(actor, citizen, *, lang="vi", **kwargs):
    page = services.read_access_log(db.session, actor=actor, citizen_id=citizen.id,
                                    context=w.context(), lang=lang, **kwargs)
    db.session.commit()
    return page


def _guard(world, dependant, guardian):
    db.session.add(Guardianship(
        guardian_citizen_id=guardian.id, dependant_citizen_id=dependant.id, kind="minor",
        relationship="mother", categories=[], valid_from=utcnow() - dt.timedelta(days=1),
        created_via="station"))
    db.session.commit()


def test_the_log_names_the_reader_in_plain_words(world):
    _access(w.practitioner_actor(world.family_doctor), world.adult, "immunizations")
    [item] = _log(w.citizen_actor(world.adult), world.adult).items
    assert item["text"] == (
        "Bác sĩ Nguyễn Thị Hương tại Trạm Y tế xã Liên Bão đã xem tiêm chủng của bạn")
    [item] = _log(w.citizen_actor(world.adult), world.adult, lang="en").items
    assert item["text"] == (
        "Dr. Nguyễn Thị Hương at Trạm Y tế xã Liên Bão read your vaccinations")
    assert item["actor"] == {
        "kind": "practitioner", "name": "Nguyễn Thị Hương",
        "practitioner_id": str(world.family_doctor.id),
        "facility": {"id": str(world.station.id), "name": "Trạm Y tế xã Liên Bão"},
    }
    assert (item["action"], item["section"], item["decision"], item["purpose"]) == (
        "read", "immunizations", "permit", "treatment")


def test_refusals_stations_and_writes_are_in_the_log_too(world):
    _access(w.practitioner_actor(world.other_doctor), world.adult, "conditions")
    _access(w.station_actor(world.station), world.adult, "immunizations", action="create")
    _access(w.practitioner_actor(world.family_doctor), world.adult, "observations",
            action="update")
    texts = [i["text"] for i in _log(w.citizen_actor(world.adult), world.adult,
                                     lang="en").items]
    assert texts == [
        "Dr. Nguyễn Thị Hương at Trạm Y tế xã Liên Bão updated your measurements",
        "Trạm Y tế xã Liên Bão added to your vaccinations",
        "Dr. Trần Văn Đức at Bệnh viện đa khoa huyện Tiên Du was refused when trying to read "
        "your conditions",
    ]


def test_newest_first_in_pages(world):
    doctor = w.practitioner_actor(world.family_doctor)
    for section in ("allergies", "conditions", "medications", "observations", "encounters"):
        _access(doctor, world.adult, section)
    viewer = w.citizen_actor(world.adult)
    first = _log(viewer, world.adult, limit=2)
    second = _log(viewer, world.adult, limit=2, before=first.next_before)
    third = _log(viewer, world.adult, limit=2, before=second.next_before)
    sections = [i["section"] for page in (first, second, third) for i in page.items]
    assert sections == ["encounters", "observations", "medications", "conditions", "allergies"]
    assert third.next_before is None


def test_own_actions_are_left_out_unless_asked_for(world):
    viewer = w.citizen_actor(world.adult)
    _access(viewer, world.adult, "allergies")
    assert _log(viewer, world.adult).items == []
    texts = [i["text"] for i in _log(viewer, world.adult, include_own=True).items]
    assert "Bạn đã xem dị ứng của bạn" in texts


def test_a_guardian_reads_the_childs_log_by_name(world):
    _guard(world, world.infant, world.parent)
    _access(w.station_actor(world.station), world.infant, "immunizations")
    _access(w.practitioner_actor(world.family_doctor), world.infant, "conditions")
    items = _log(w.citizen_actor(world.parent, acting_for=world.infant), world.infant,
                 lang="en").items
    assert [i["text"] for i in items] == [
        "Dr. Nguyễn Thị Hương at Trạm Y tế xã Liên Bão was refused when trying to read "
        "Nguyễn Minh Khôi's conditions",
        "Trạm Y tế xã Liên Bão read Nguyễn Minh Khôi's vaccinations",
    ]


def test_a_teens_restricted_entries_stay_out_of_the_guardians_log(world):
    teen = w.citizen(db.session, name="Lê Minh Anh", born=utcnow().date() - dt.timedelta(
        days=13 * 366))
    db.session.commit()
    _guard(world, teen, world.parent)
    db.session.add(Consent(citizen_id=teen.id, grantee_type="practitioner",
                           grantee_id=world.other_doctor.id, sections=["conditions"],
                           categories=["mental-health"], access="read", purpose="treatment",
                           created_at=utcnow() - dt.timedelta(minutes=1)))
    db.session.commit()
    doctor = w.practitioner_actor(world.other_doctor)
    assert _access(doctor, teen, "conditions", sensitivity="mental-health").permit
    assert _access(doctor, teen, "conditions").permit
    guardian_view = _log(w.citizen_actor(world.parent, acting_for=teen), teen).items
    assert [i["section"] for i in guardian_view] == ["conditions"]
    own_view = _log(w.citizen_actor(teen), teen).items
    assert len(own_view) == 3  # both reads, and the guardian reading the log


def test_only_the_citizen_and_guardians_read_the_log(world):
    # The family doctor is related to the adult (403); the others are no one to them (404).
    for actor, refusal in ((w.practitioner_actor(world.family_doctor), Forbidden),
                           (w.station_actor(world.station), NotFound),
                           (w.citizen_actor(world.stranger), NotFound)):
        with pytest.raises(refusal):
            _log(actor, world.adult)
        db.session.rollback()


def test_i_dont_recognise_this_marks_an_entry_for_review(world):
    _access(w.practitioner_actor(world.other_doctor), world.adult, "conditions")
    viewer = w.citizen_actor(world.adult)
    [item] = _log(viewer, world.adult).items
    event_id = uuid.UUID(item["id"])
    flag, created = services.flag_event(db.session, actor=viewer, citizen_id=world.adult.id,
                                        event_id=event_id, note="Tôi không khám ở đây",
                                        context=w.context())
    db.session.commit()
    again, created_again = services.flag_event(db.session, actor=viewer,
                                               citizen_id=world.adult.id, event_id=event_id,
                                               context=w.context())
    db.session.commit()
    assert created
    assert not created_again
    assert again.id == flag.id
    stored = db.session.get(AccessLogFlag, flag.id)
    assert (stored.status, stored.note) == ("open", "Tôi không khám ở đây")
    [item] = _log(viewer, world.adult).items
    assert item["flag"]["id"] == str(flag.id)
    assert item["flag"]["status"] == "open"
    with pytest.raises(NotFound):
        services.flag_event(db.session, actor=w.citizen_actor(world.stranger),
                            citizen_id=world.stranger.id, event_id=event_id,
                            context=w.context())
    db.session.rollback()
