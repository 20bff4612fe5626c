"""The outbox: written in the caller's transaction, once per fact, channels per preference."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from core.db import db
from core.events import ENTRY_CREATED, DomainEvent, emit
from notifications.models import Delivery, Notification
from notifications.outbox import NotificationRequest, enqueue
from notifications.preferences import replace_preferences
from notifications.recipients import Recipient
from tests.notifications.conftest import browser_subscription, fcm_token, make_person
from tests.notifications.helpers import add_device, deliveries, notify


def _count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)))


def test_one_notification_and_a_delivery_per_channel_and_device(app, providers):
    person = make_person(app)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    add_device(app, person.id, platform="webpush",
               token=browser_subscription(providers).token())

    created = notify(app, subject=person.id, trigger="break-glass",
                     params={"practitioner_id": None})

    assert len(created) == 1
    rows = deliveries(app)
    assert sorted(r.channel for r in rows) == ["email", "push", "push", "sms"]
    assert {r.status for r in rows} == {"pending"}
    assert len({r.dedup_key for r in rows}) == 4


def test_defaults_and_preferences_choose_the_channels(app):
    person = make_person(app)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    notify(app, subject=person.id, trigger="entry-created")  # default: push only
    assert [r.channel for r in deliveries(app)] == ["push"]

    with app.app_context():
        replace_preferences(
            db.session, Recipient.citizen(person.id),
            channels={"entry-created": {"push": False, "email": True}},
            quiet_mode="default", quiet_window=None, language=None, service_quiet_hours=None,
        )
        db.session.commit()
    notify(app, subject=person.id, trigger="entry-created")
    assert sorted(r.channel for r in deliveries(app)) == ["email", "push"]


def test_no_contact_no_delivery_but_the_inbox_still_has_it(app):
    person = make_person(app, phone=None, email=None)
    created = notify(app, subject=person.id, trigger="break-glass")
    assert len(created) == 1
    assert deliveries(app) == []


def test_the_same_fact_notifies_once(app):
    person = make_person(app)
    first = notify(app, subject=person.id, key="entry:42")
    second = notify(app, subject=person.id, key="entry:42")
    assert len(first) == 1
    assert second == []
    with app.app_context():
        assert _count(Notification) == 1


def test_duplicates_within_one_batch_collapse(app):
    person = make_person(app)
    request = NotificationRequest(
        trigger="entry-created", subject_citizen_id=person.id,
        recipient=Recipient.citizen(person.id), natural_key="entry:7", params={},
    )
    with app.app_context():
        assert len(enqueue(db.session, [request, request])) == 1
        db.session.commit()


def test_parameters_are_encrypted_under_the_subject(app):
    person = make_person(app)
    notify(app, subject=person.id, params={"section": "conditions", "secret": "Đái tháo đường"})
    with app.app_context():
        raw = db.session.execute(select(Notification.params_ct)).scalar_one()
        assert "Đái tháo đường".encode() not in raw
        assert b"conditions" not in raw
        notification = db.session.scalars(select(Notification)).one()
        assert notification.params["secret"] == "Đái tháo đường"


def test_event_handler_writes_in_the_emitting_transaction(app):
    person = make_person(app)
    event = DomainEvent(name=ENTRY_CREATED, citizen_id=person.id,
                        data={"section": "immunizations", "entry_id": str(uuid.uuid4()),
                              "sensitivity": "normal", "author_practitioner_id": ""})
    with app.app_context():
        emit(db.session, event)
        assert _count(Notification) == 1  # visible inside the transaction
        db.session.rollback()  # the change that caused it failed
        assert _count(Notification) == 0
        assert _count(Delivery) == 0

        emit(db.session, event)
        db.session.commit()
        assert _count(Notification) == 1
        emit(db.session, event)  # the same entry again: nothing new
        db.session.commit()
        assert _count(Notification) == 1


def test_a_crypto_shredded_subject_is_not_notified_about(app):
    from core.encryption import KEY_DESTROYED, DataKey

    person = make_person(app)
    with app.app_context():
        for key in db.session.scalars(select(DataKey).where(DataKey.citizen_id == person.id)):
            key.status = KEY_DESTROYED
            key.wrapped_key = None
        db.session.commit()
    assert notify(app, subject=person.id) == []


def test_commit_wakes_the_worker_and_rollback_does_not(app):
    person = make_person(app)
    state = app.extensions["phr.notifications"]
    add_device(app, person.id, platform="fcm", token=fcm_token())
    state.wake.clear()
    with app.app_context():
        enqueue(db.session, [NotificationRequest(
            trigger="entry-created", subject_citizen_id=person.id,
            recipient=Recipient.citizen(person.id), natural_key="x", params={})])
        db.session.rollback()
    assert not state.wake.is_set()
    notify(app, subject=person.id)
    assert state.wake.is_set()


def test_new_facts_are_not_looked_for_and_still_notify_once(app):
    """A large enqueue looks for facts already notified before encrypting their parameters;
    facts born in the transaction (`new_facts`, an entry created now) skip that look, which
    on PostgreSQL searched every partition of the notifications. The unique key still
    decides: a fact wrongly called new is not notified twice."""
    from sqlalchemy import event

    person = make_person(app)
    many = [NotificationRequest(
        trigger="entry-created", subject_citizen_id=person.id,
        recipient=Recipient.citizen(person.id), natural_key=f"entry:{n}", params={},
    ) for n in range(60)]
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append(" ".join(statement.split()))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert len(enqueue(db.session, many, new_facts=True)) == 60
            db.session.commit()
            looks_when_new = [s for s in seen if s.startswith("SELECT notifications.dedup_key")]
            assert enqueue(db.session, many, new_facts=True) == []
            db.session.commit()
            seen.clear()
            assert enqueue(db.session, many) == []
            db.session.commit()
            looks_otherwise = [s for s in seen if s.startswith("SELECT notifications.dedup_key")]
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert looks_when_new == []
        assert len(looks_otherwise) == 1
        assert _count(Notification) == 60
