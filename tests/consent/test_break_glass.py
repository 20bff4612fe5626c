"""Break-glass: a reason, non-restricted sections only, a window, the citizen told at once,
the facility's review list, and the access log showing the reason."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from consent import services
from consent.models import AuditEvent, BreakGlassSession
from consent.pdp import authorize
from consent.policy_types import Target
from core.db import db, utcnow
from core.errors import Forbidden, NotFound, ValidationFailed
from core.events import BREAK_GLASS_OPENED, bus
from tests.consent import world as w

REASON = "Bệnh nhân hôn mê sau tai nạn giao thông, cần biết dị ứng thuốc"


@pytest.fixture
def world(app_context):
    return w.build_world(db.session)


@pytest.fixture
def opened(app_context):
    seen = []
    bus().subscribe(BREAK_GLASS_OPENED, lambda session, event: seen.append(event))
    return seen


def _open(world, *, reason=REASON, now=None, **kwargs):
    row = services.open_break_glass(
        db.session, actor=w.practitioner_actor(world.other_doctor), citizen_id=world.adult.id,
        reason=reason, context=w.context(), now=now, **kwargs,
    )
    db.session.commit()
    return row


def _read(world, *, now, sensitivity="normal", section="allergies", action="read"):
    decision = authorize(
        db.session, actor=w.practitioner_actor(world.other_doctor),
        target=Target(citizen_id=world.adult.id, section=section, sensitivity=sensitivity,
                      entry_id=uuid.uuid4()),
        action=action, purpose=None, context=w.context(), now=now,
    )
    db.session.commit()
    return decision


def test_break_glass_opens_non_restricted_reading_for_four_hours(world, opened):
    now = utcnow()
    assert not _read(world, now=now).permit
    row = _open(world, now=now)
    assert row.expires_at - row.opened_at == dt.timedelta(hours=4)
    assert row.facility_id == world.hospital.id
    assert row.reason == REASON
    during = _read(world, now=now + dt.timedelta(hours=3, minutes=59))
    assert during.permit
    assert during.rule == "break-glass"
    assert during.break_glass_id == row.id
    assert not _read(world, now=now + dt.timedelta(minutes=1), sensitivity="mental-health").permit
    assert not _read(world, now=now + dt.timedelta(minutes=1), action="update").permit
    assert not _read(world, now=now + dt.timedelta(hours=4)).permit

    [event] = opened
    assert event.citizen_id == world.adult.id
    assert event.data["break_glass_id"] == str(row.id)
    assert event.data["practitioner_id"] == str(world.other_doctor.id)
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "break-glass")).one()
    assert (audit.decision, audit.break_glass_id, audit.purpose) == ("permit", row.id, "emergency")


def test_the_window_follows_configuration(app_context, world):
    app_context.config["BREAK_GLASS_HOURS"] = 1
    row = _open(world)
    assert row.expires_at - row.opened_at == dt.timedelta(hours=1)


def test_a_reason_is_required(world, opened):
    with pytest.raises(ValidationFailed) as refused:
        _open(world, reason="  ")
    assert list(refused.value.errors) == ["reason"]
    db.session.rollback()
    assert opened == []
    assert db.session.scalars(select(BreakGlassSession)).all() == []


def test_only_practitioners_break_glass(world):
    # Neither is related to the adult: refused as if the adult did not exist (and audited).
    for actor in (w.station_actor(world.station), w.citizen_actor(world.stranger)):
        with pytest.raises(NotFound):
            services.open_break_glass(db.session, actor=actor, citizen_id=world.adult.id,
                                      reason=REASON, context=w.context())
        db.session.rollback()
    denials = db.session.scalars(select(AuditEvent.decision)).all()
    assert denials == ["deny", "deny"]


def test_the_facility_reviews_its_openings(world):
    first = _open(world, now=utcnow() - dt.timedelta(days=1))
    second = _open(world)
    station = w.station_actor(world.hospital)
    rows = services.list_for_review(db.session, actor=station, facility_id=world.hospital.id,
                                    context=w.context())
    assert [r.id for r in rows] == [second.id, first.id]
    assert rows[0].reason == REASON
    services.mark_reviewed(db.session, actor=station, facility_id=world.hospital.id,
                           break_glass_id=first.id, account_id=None, context=w.context())
    db.session.commit()
    pending = services.list_for_review(db.session, actor=station, context=w.context(),
                                       facility_id=world.hospital.id, unreviewed_only=True)
    assert [r.id for r in pending] == [second.id]
    page = services.list_for_review(db.session, actor=station, facility_id=world.hospital.id,
                                    limit=1, before=(second.opened_at, second.id),
                                    context=w.context())
    assert [r.id for r in page] == [first.id]
    db.session.commit()
    log = services.read_access_log(db.session, actor=w.citizen_actor(world.adult),
                                   citizen_id=world.adult.id, context=w.context(), lang="vi")
    assert log.items[0]["text"] == (
        "Bệnh viện đa khoa huyện Tiên Du đã xem nhật ký truy cập của bạn")


def test_other_facilities_and_practitioners_cannot_review(world):
    _open(world)
    for actor in (w.station_actor(world.station), w.practitioner_actor(world.other_doctor)):
        with pytest.raises(Forbidden):
            services.list_for_review(db.session, actor=actor, facility_id=world.hospital.id,
                                     context=w.context())


def test_the_access_log_shows_break_glass_with_its_reason(world):
    row = _open(world)
    _read(world, now=utcnow())
    page = services.read_access_log(db.session, actor=w.citizen_actor(world.adult),
                                    citizen_id=world.adult.id, context=w.context(), lang="vi")
    read, opening = page.items
    assert opening["text"] == (
        "Bác sĩ Trần Văn Đức tại Bệnh viện đa khoa huyện Tiên Du đã mở truy cập khẩn cấp vào "
        f"hồ sơ của bạn. Lý do: {REASON}"
    )
    assert opening["break_glass"] == {"id": str(row.id), "reason": REASON}
    assert read["emergency"] is True
    assert read["text"].endswith("đã xem dị ứng của bạn (truy cập khẩn cấp)")
