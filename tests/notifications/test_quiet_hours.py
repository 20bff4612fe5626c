"""Quiet hours in Asia/Ho_Chi_Minh: messages wait for the window's end, urgent ones do not."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import db
from notifications.preferences import replace_preferences
from notifications.quiet_hours import VIETNAM, parse_quiet_hours
from notifications.recipients import Recipient
from tests.notifications.conftest import fcm_token, make_person
from tests.notifications.helpers import add_device, deliveries, notify, process

DAY = dt.date(2025, 3, 10)


def _vn(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=VIETNAM)


# The window itself (pure) -----------------------------------------------------------------------
def test_a_window_across_midnight():
    quiet = parse_quiet_hours("21:00-07:00")
    assert quiet is not None
    assert not quiet.contains(_vn(20, 59))
    assert quiet.contains(_vn(21, 0))
    assert quiet.contains(_vn(3, 0))
    assert not quiet.contains(_vn(7, 0))
    # 21:00 in Vietnam is 14:00 UTC: the window is about Vietnam, whatever the server's zone.
    assert quiet.contains(dt.datetime(2025, 3, 10, 14, 0, tzinfo=dt.UTC))


def test_release_is_the_end_of_the_window():
    quiet = parse_quiet_hours("21:00-07:00")
    assert quiet.release_at(_vn(22, 30)) == _vn(7, 0, DAY + dt.timedelta(days=1))
    assert quiet.release_at(_vn(2, 0)) == _vn(7, 0)
    assert quiet.release_at(_vn(12, 0)) == _vn(12, 0)
    assert quiet.release_at(_vn(22, 30)).tzinfo == dt.UTC


def test_a_daytime_window():
    quiet = parse_quiet_hours("12:00-13:30")
    assert quiet.contains(_vn(12, 45))
    assert not quiet.contains(_vn(13, 30))
    assert quiet.release_at(_vn(12, 45)) == _vn(13, 30)


@pytest.mark.parametrize("raw", ["21-07", "25:00-07:00", "21:00-21:00", "21:00/07:00", "abc"])
def test_malformed_windows_are_refused(raw):
    with pytest.raises(ValueError, match="quiet hours"):
        parse_quiet_hours(raw)


def test_empty_means_none():
    assert parse_quiet_hours("") is None
    assert parse_quiet_hours(None) is None


# Delivery ---------------------------------------------------------------------------------------
@pytest.fixture
def config_overrides():
    return {"QUIET_HOURS": "21:00-07:00"}


def _person_with_phone(app):
    person = make_person(app, email=None)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    return person


def test_a_message_at_night_waits_until_seven(app, providers, clock):
    person = _person_with_phone(app)
    clock.set_vietnam(DAY, 22, 30)
    notify(app, subject=person.id, trigger="vaccination-due",
           params={"doses": ["bcg"], "due_date": "2025-03-11"})
    assert {row.next_attempt_at for row in deliveries(app)} == {
        _vn(7, 0, DAY + dt.timedelta(days=1))}

    assert process(app).claimed == 0
    clock.set_vietnam(DAY + dt.timedelta(days=1), 6, 59)
    assert process(app).claimed == 0
    assert providers.fcm.received == []
    assert providers.sms.received == []

    clock.set_vietnam(DAY + dt.timedelta(days=1), 7, 0)
    assert process(app).sent == 2


def test_break_glass_goes_out_at_once_even_at_night(app, providers, clock):
    person = _person_with_phone(app)
    clock.set_vietnam(DAY, 23, 15)
    notify(app, subject=person.id, trigger="break-glass")
    assert process(app).sent == 2
    assert len(providers.fcm.delivered) == 1
    assert len(providers.sms.delivered) == 1


def test_a_retry_that_falls_into_the_night_waits_without_using_an_attempt(app, providers, clock):
    person = make_person(app, email=None, phone="0912 000 111")
    add_device(app, person.id, platform="fcm", token=fcm_token())
    clock.set_vietnam(DAY, 20, 59)
    notify(app, subject=person.id, trigger="vaccination-overdue",
           params={"doses": ["bcg"], "due_date": "2025-02-01"})
    providers.sms.down = True
    providers.fcm.down = True
    assert process(app).retried == 2
    providers.sms.down = False
    providers.fcm.down = False

    clock.set_vietnam(DAY, 21, 5)
    result = process(app)
    assert (result.claimed, result.deferred, result.sent) == (2, 2, 0)
    rows = deliveries(app)
    assert {row.attempts for row in rows} == {1}
    assert {row.next_attempt_at for row in rows} == {_vn(7, 0, DAY + dt.timedelta(days=1))}


def test_personal_quiet_hours_replace_the_service_default(app, providers, clock):
    owl = _person_with_phone(app)
    with app.app_context():
        replace_preferences(db.session, Recipient.citizen(owl.id), channels={},
                            quiet_mode="off", quiet_window=None, language=None,
                            service_quiet_hours=parse_quiet_hours("21:00-07:00"))
        db.session.commit()
    napper = _person_with_phone(app)
    with app.app_context():
        replace_preferences(db.session, Recipient.citizen(napper.id), channels={},
                            quiet_mode="custom", quiet_window="12:00-13:30", language=None,
                            service_quiet_hours=None)
        db.session.commit()

    clock.set_vietnam(DAY, 22, 0)
    notify(app, subject=owl.id, trigger="entry-created")
    assert process(app).sent == 1  # no quiet hours for the owl

    clock.set_vietnam(DAY, 12, 30)
    notify(app, subject=napper.id, trigger="entry-created")
    assert process(app).claimed == 0
    clock.set_vietnam(DAY, 13, 30)
    assert process(app).sent == 1
