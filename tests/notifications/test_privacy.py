"""What leaves the machine (push, SMS, e-mail) carries no name, id, vaccine or diagnosis."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from core.db import db
from core.events import (
    ACCESS_REQUESTED,
    BREAK_GLASS_OPENED,
    CONSENT_EXPIRING,
    ENTRY_CREATED,
    RECORD_ACCESSED,
    DomainEvent,
    emit,
)
from notifications.messages import SECTIONS
from notifications.preferences import replace_preferences
from notifications.recipients import Recipient
from notifications.reminders import run_reminders
from notifications.triggers import TRIGGERS
from registry.reference.schedule import load_schedule
from registry.reference.vaccines import antigens, vaccine_catalogue
from registry.services import create_facility, create_practitioner
from tests.notifications.conftest import (
    browser_subscription,
    fcm_token,
    make_person,
    use_recipients,
)
from tests.notifications.helpers import add_device, process

BORN = dt.date(2025, 1, 17)
DIAGNOSIS = ("E11", "Đái tháo đường type 2", "Type 2 diabetes mellitus")


def _forbidden(people, practitioner_name: str, facility_name: str) -> set[str]:
    words: set[str] = {practitioner_name, facility_name, *DIAGNOSIS}
    for person in people:
        words |= {person.full_name, person.health_id, str(person.id)}
        words |= {part for part in person.full_name.split() if len(part) >= 4}
    schedule = load_schedule()
    for row in schedule.rows:
        words |= {row.name_vi, row.name_en, row.id}
    for vaccine in vaccine_catalogue().values():
        words |= {vaccine.name_vi, vaccine.name_en, vaccine.code}
    for antigen in antigens().values():
        words |= {name for name in (antigen.name_vi, antigen.name_en) if len(name) >= 4}
    for vi, en in SECTIONS.values():
        words |= {vi, en}
    return {word for word in words if word}


def test_no_push_sms_or_email_reveals_anything(app, providers):
    parent = make_person(app, full_name="Đỗ Thị Lan Anh", phone="0987 654 321",
                         email="lananh@example.vn")
    child = make_person(app, full_name="Nguyễn Minh Khôi", date_of_birth=BORN, sex="male",
                        phone=None, email=None)
    add_device(app, parent.id, platform="fcm", token=fcm_token())
    browser = browser_subscription(providers)
    add_device(app, parent.id, platform="webpush", token=browser.token())
    use_recipients(app, lambda session, cid: [parent.id])
    with app.app_context():
        facility = create_facility(session=db.session, code="T-LB", kind="hospital",
                                   name="Bệnh viện Đa khoa Tiên Du", province_code="27",
                                   district_code="260")
        doctor = create_practitioner(session=db.session, full_name="Phạm Quang Huy",
                                     practising_certificate="000123/BN-CCHN",
                                     profession="doctor", facility=facility)
        db.session.flush()
        everything_on = {code: {"push": True, "sms": True, "email": True} for code in TRIGGERS}
        replace_preferences(db.session, Recipient.citizen(parent.id), channels=everything_on,
                            quiet_mode="off", quiet_window=None, language=None,
                            service_quiet_hours=None)
        doctor_id, facility_id = str(doctor.id), str(facility.id)
        for name, data in (
            (ENTRY_CREATED, {"section": "conditions", "entry_id": str(uuid.uuid4()),
                             "sensitivity": "normal", "author_practitioner_id": doctor_id}),
            (RECORD_ACCESSED, {"actor_kind": "practitioner", "practitioner_id": doctor_id,
                               "facility_id": facility_id, "section": "conditions"}),
            (BREAK_GLASS_OPENED, {"break_glass_id": str(uuid.uuid4()),
                                  "practitioner_id": doctor_id}),
            (ACCESS_REQUESTED, {"request_id": str(uuid.uuid4()), "practitioner_id": doctor_id}),
            (CONSENT_EXPIRING, {"consent_id": str(uuid.uuid4()), "expires_at": "2025-03-20"}),
        ):
            emit(db.session, DomainEvent(name=name, citizen_id=child.id, data=data))
        db.session.commit()
        run_reminders(db.session, today=dt.date(2025, 3, 10))

    result = process(app)

    # Seven notifications (five events, two reminders) on four channels each.
    assert result.sent == 7 * 4
    outbound: list[str] = []
    for request in providers.fcm.received:
        message = request.json()["message"]
        message.pop("token")
        _opaque(message["data"], "notification_id", "dedup_key")
        _opaque(message["android"], "collapse_key")
        _opaque(message["android"]["notification"], "tag")
        _opaque(message["apns"]["headers"], "apns-collapse-id")
        _opaque(message["webpush"]["headers"], "Topic")
        outbound.append(json.dumps(message, ensure_ascii=False))
    for request in providers.sms.received:
        outbound.append(request.json()["text"])
    for request in providers.push.received:
        payload = browser.decrypt(request.body)
        _opaque(payload, "notification_id", "tag")
        outbound.append(json.dumps(payload, ensure_ascii=False))
    for mail in providers.smtp.received:
        outbound.append(str(mail.message["Subject"]) + "\n" + mail.message.get_content())
    assert len(outbound) == 28

    forbidden = _forbidden([parent, child], "Phạm Quang Huy", "Bệnh viện Đa khoa Tiên Du")
    for text in outbound:
        lowered = text.casefold()
        leaks = sorted(
            word for word in forbidden
            if re.search(rf"(?<![\w]){re.escape(word.casefold())}(?![\w])", lowered)
        )
        assert leaks == [], f"{leaks} in {text!r}"


_OPAQUE = re.compile(r"^([0-9a-f]{64}|[0-9a-f-]{36}|[A-Za-z0-9_-]{32})$")


def _opaque(mapping: dict, *keys: str) -> None:
    """Keys and ids are random or hashed: check their shape, then leave them out of the scan
    (a vaccine code such as "TT" can occur inside random base64 by chance)."""
    for key in keys:
        assert _OPAQUE.fullmatch(mapping[key]), (key, mapping[key])
        mapping[key] = "<opaque>"
