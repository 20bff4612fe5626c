"""Builders for consent tests: facilities, practitioners and citizens in the real database."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from consent.pdp import RequestContext
from consent.policy_types import Actor
from core.db import db
from registry.models import Citizen, Facility, Practitioner
from registry.reference.health_id import make_health_id
from registry.services import (
    assign_family_doctor,
    create_facility,
    create_practitioner,
    register_citizen,
)
from tests.support.sql_log import recorded

_serials = itertools.count(100001)
NOW = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)


def context(label: str = "test") -> RequestContext:
    return RequestContext(account_id=uuid.uuid4(), client_id="test-client",
                          request_id=uuid.uuid4().hex, actor_label=label)


def facility(session: Session, *, name: str = "Trạm Y tế xã Liên Bão",
             kind: str = "commune-health-station") -> Facility:
    return create_facility(
        session=session, code=f"F-{uuid.uuid4().hex[:10]}", kind=kind, name=name,
        province_code="27", district_code="260", commune_code="09334",
    )


def practitioner(session: Session, at: Facility, *, name: str = "Nguyễn Thị Hương",
                 profession: str = "doctor") -> Practitioner:
    item = create_practitioner(
        session=session, full_name=name, practising_certificate=f"{uuid.uuid4().hex[:8]}/BN",
        profession=profession, facility=at,
    )
    session.flush()
    return item


def citizen(session: Session, *, born: dt.date = dt.date(1980, 5, 17), name: str = "Phạm Văn A",
            sex: str = "male") -> Citizen:
    health_id = make_health_id(province_code="027", date_of_birth=born, sex=sex,
                               serial=next(_serials))
    item = register_citizen(session=session, health_id=health_id, full_name=name,
                            date_of_birth=born, sex=sex)
    session.flush()
    return item


def practitioner_actor(item: Practitioner, *facilities: Facility) -> Actor:
    ids = frozenset(f.id for f in facilities) or frozenset(
        m.facility_id for m in item.memberships
    )
    return Actor(role="practitioner", practitioner_id=item.id, facility_ids=ids)


def citizen_actor(item: Citizen, acting_for: Citizen | None = None) -> Actor:
    return Actor(role="citizen", citizen_id=item.id,
                 acting_for=acting_for.id if acting_for else item.id)


def station_actor(at: Facility) -> Actor:
    return Actor(role="station", facility_ids=frozenset({at.id}))


@dataclass
class World:
    """A commune station with a family doctor, a district hospital with another doctor,
    an adult registered with the family doctor, a parent and an infant."""

    station: Facility
    hospital: Facility
    family_doctor: Practitioner
    other_doctor: Practitioner
    adult: Citizen
    parent: Citizen
    infant: Citizen
    stranger: Citizen
    extra: dict[str, object] = field(default_factory=dict)


def build_world(session: Session, *, today: dt.date | None = None) -> World:
    today = today or dt.datetime.now(dt.UTC).date()
    station = facility(session)
    hospital = facility(session, name="Bệnh viện đa khoa huyện Tiên Du", kind="hospital")
    session.flush()
    family_doctor = practitioner(session, station)
    other_doctor = practitioner(session, hospital, name="Trần Văn Đức")
    adult = citizen(session, name="Phạm Văn Thắng", born=dt.date(1961, 3, 14))
    parent = citizen(session, name="Đỗ Thị Lan Anh", born=dt.date(1994, 11, 2), sex="female")
    infant = citizen(session, name="Nguyễn Minh Khôi", born=today - dt.timedelta(days=150))
    stranger = citizen(session, name="Hoàng Thị Thu Trang", born=dt.date(1988, 6, 25),
                       sex="female")
    assign_family_doctor(session=session, citizen_id=adult.id,
                         practitioner_id=family_doctor.id, facility_id=station.id,
                         changed_by="test")
    session.commit()
    return World(station, hospital, family_doctor, other_doctor, adult, parent, infant,
                 stranger)


def statements() -> AbstractContextManager[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    return recorded(db.engine)
