"""Relationship changes (consent/events.py) become notices to the audience the consent layer
named: citizens and practitioners' accounts, one per change; push, SMS and e-mail stay generic,
and a claimant who was refused never learns whose health ID they typed."""

from __future__ import annotations

import json
import re
import uuid

from sqlalchemy import select

from consent import events as relationship
from core.db import db
from core.events import ACCESS_REQUESTED, DomainEvent, emit
from core.i18n import translate
from notifications.inbox import render
from notifications.models import Notification
from notifications.preferences import replace_preferences
from notifications.recipients import Recipient
from notifications.triggers import TRIGGERS
from registry.services import create_facility, create_practitioner
from tests.notifications.conftest import fcm_token, make_person
from tests.notifications.helpers import add_device, process
from tests.notifications.test_privacy import _forbidden

RELATIONSHIP_TRIGGERS = {
    relationship.GUARDIAN_CLAIMED: "guardian-claimed",
    relationship.GUARDIAN_CLAIM_ANSWERED: "guardian-claim-answered",
    relationship.GUARDIANS_CHANGED: "guardians-changed",
    relationship.FAMILY_DOCTOR_CHANGED: "family-doctor-changed",
    relationship.CONSENT_GRANTED: "consent-granted",
    relationship.CONSENT_REVOKED: "consent-revoked",
    relationship.ACCESS_FLAG_REVIEWED: "access-flag-reviewed",
}


def _data(name: str) -> dict[str, str]:
    ids = {key: str(uuid.uuid4()) for key in ("claim_id", "guardianship_id", "consent_id",
                                               "flag_id", "event_id", "practitioner_id")}
    return {
        relationship.GUARDIAN_CLAIMED: {"claim_id": ids["claim_id"]},
        relationship.GUARDIAN_CLAIM_ANSWERED: {"claim_id": ids["claim_id"],
                                               "decision": "denied"},
        relationship.GUARDIANS_CHANGED: {"guardianship_id": ids["guardianship_id"],
                                         "change": "ended", "kind": "minor"},
        relationship.FAMILY_DOCTOR_CHANGED: {"practitioner_id": ids["practitioner_id"]},
        relationship.CONSENT_GRANTED: {"consent_id": ids["consent_id"]},
        relationship.CONSENT_REVOKED: {"consent_id": ids["consent_id"]},
        relationship.ACCESS_FLAG_REVIEWED: {"flag_id": ids["flag_id"], "event_id": ids["event_id"],
                                            "outcome": "justified"},
    }[name]


def test_every_relationship_event_has_a_trigger_with_texts_in_both_languages():
    assert set(RELATIONSHIP_TRIGGERS) == set(relationship.RELATIONSHIP_EVENTS)
    for trigger in RELATIONSHIP_TRIGGERS.values():
        assert trigger in TRIGGERS
        for lang in ("vi", "en"):
            for key in ("title", "body.self", "body.other"):
                assert translate(f"notification.{trigger}.{key}", lang, name="X")


def test_each_change_reaches_its_audience_and_nothing_personal_leaves(app, providers):
    parent = make_person(app, full_name="Đỗ Thị Lan Anh", phone="0987 654 321",
                         email="lananh@example.vn")
    child = make_person(app, full_name="Nguyễn Minh Khôi", phone=None, email=None)
    add_device(app, parent.id, platform="fcm", token=fcm_token())
    with app.app_context():
        everything_on = {code: {"push": True, "sms": True, "email": True} for code in TRIGGERS}
        replace_preferences(db.session, Recipient.citizen(parent.id), channels=everything_on,
                            quiet_mode="off", quiet_window=None, language=None,
                            service_quiet_hours=None)
        for name in RELATIONSHIP_TRIGGERS:
            emit(db.session, DomainEvent(name=name, citizen_id=child.id, data={
                **_data(name), "citizens": [str(parent.id)], "practitioners": []}))
            # Emitted twice (a retried transaction): still one notice.
            emit(db.session, DomainEvent(name=name, citizen_id=child.id, data={
                **_data(name), "citizens": [], "practitioners": []}))
        db.session.commit()
        rows = list(db.session.scalars(select(Notification)))
        assert sorted(n.trigger for n in rows) == sorted(RELATIONSHIP_TRIGGERS.values())
        assert {(n.recipient_id, n.subject_citizen_id) for n in rows} == {(parent.id, child.id)}
        items = render(db.session, Recipient.citizen(parent.id), rows, lang="vi")
        by_trigger = {item["trigger"]: item for item in items}
        # A refused claimant must not learn whose health ID they typed.
        assert "Khôi" not in by_trigger["guardian-claim-answered"]["body"]
        assert by_trigger["guardian-claim-answered"]["data"]["decision"] == "denied"
        assert "Nguyễn Minh Khôi" in by_trigger["guardians-changed"]["body"]
    result = process(app)
    assert result.sent == len(RELATIONSHIP_TRIGGERS) * 3  # push, SMS, e-mail
    outbound = [json.dumps(r.json()["message"]["notification"], ensure_ascii=False)
                for r in providers.fcm.received]
    outbound += [r.json()["text"] for r in providers.sms.received]
    outbound += [str(m.message["Subject"]) + m.message.get_content()
                 for m in providers.smtp.received]
    forbidden = _forbidden([parent, child], "-", "-") - {"-"}
    for text in outbound:
        leaks = [w for w in forbidden
                 if re.search(rf"(?<![\w]){re.escape(w.casefold())}(?![\w])", text.casefold())]
        assert leaks == [], f"{leaks} in {text!r}"


def test_practitioners_are_told_on_their_staff_accounts(app):
    from auth.accounts import create_account

    child = make_person(app, full_name="Nguyễn Minh Khôi")
    with app.app_context():
        facility = create_facility(session=db.session, code="T-FD", kind="commune-health-station",
                                   name="Trạm Y tế xã Liên Bão", province_code="27",
                                   district_code="260", commune_code="09334")
        doctor = create_practitioner(session=db.session, full_name="Nguyễn Thị Hương",
                                     practising_certificate="000999/BN-CCHN",
                                     profession="doctor", facility=facility)
        db.session.flush()
        account = create_account(session=db.session, role="practitioner", password="x" * 12,
                                 username="huong.nt", practitioner_id=doctor.id)
        db.session.flush()
        emit(db.session, DomainEvent(name=relationship.FAMILY_DOCTOR_CHANGED,
                                     citizen_id=child.id, data={
                                         "practitioner_id": str(doctor.id),
                                         "citizens": [str(child.id)],
                                         "practitioners": [str(doctor.id)]}))
        db.session.commit()
        told = {(n.recipient_kind, n.recipient_id)
                for n in db.session.scalars(select(Notification))}
        assert told == {("citizen", child.id), ("account", account.id)}


def test_an_access_request_is_told_to_the_audience_the_consent_layer_names(app):
    teen = make_person(app, full_name="Nguyễn Thu Hà")
    with app.app_context():
        emit(db.session, DomainEvent(name=ACCESS_REQUESTED, citizen_id=teen.id, data={
            "request_id": str(uuid.uuid4()), "practitioner_id": str(uuid.uuid4()),
            "citizens": [str(teen.id)]}))
        db.session.commit()
        assert [(n.trigger, n.recipient_id) for n in db.session.scalars(select(Notification))] \
            == [("access-requested", teen.id)]
