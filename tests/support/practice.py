"""A family doctor's small practice with real tokens: the data the vault drills run over.

    practice = small_practice(app, client, people=3)
    client.post(f"/api/v1/citizens/{practice.people[0]}/allergies", json=...,
                headers=practice.doctor.headers)

Every person is registered with the doctor (so the doctor may write their records) and has a
citizen token of their own (so they may read their record and summary).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from core.db import db
from registry.services import assign_family_doctor
from tests.support.auth import Tokens, make_citizen, make_facility, make_practitioner, token_for

NAMES = ("Phạm Văn Thắng", "Lê Thị Hồng Nhung", "Trịnh Quốc Bảo", "Vũ Thị Thanh Mai",
         "Đặng Minh Tuấn", "Hồ Thị Kim Ngân")


@dataclass(frozen=True)
class Practice:
    station: uuid.UUID
    doctor_id: uuid.UUID
    doctor: Tokens
    people: tuple[uuid.UUID, ...]
    names: dict[uuid.UUID, str]
    tokens: dict[uuid.UUID, Tokens]


def small_practice(app: Any, client: Any, *, people: int = 3) -> Practice:
    """A commune station, its family doctor and `people` registered persons, all logged in."""
    station = make_facility(app)
    doctor_id = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    ids, names = [], {}
    for index in range(people):
        name = NAMES[index % len(NAMES)]
        citizen = make_citizen(app, full_name=name,
                               date_of_birth=dt.date(1950 + 7 * index, 1 + index % 12, 9))
        ids.append(citizen)
        names[citizen] = name
    with app.app_context():
        for citizen in ids:
            assign_family_doctor(session=db.session, citizen_id=citizen,
                                 practitioner_id=doctor_id, facility_id=station,
                                 changed_by="test")
        db.session.commit()
    return Practice(
        station=station, doctor_id=doctor_id,
        doctor=token_for(client, app, role="practitioner", practitioner=doctor_id),
        people=tuple(ids), names=names,
        tokens={citizen: token_for(client, app, citizen=citizen) for citizen in ids},
    )
