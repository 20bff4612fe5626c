"""A small world for record API tests: a station with a family doctor, patients, tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from core.db import db
from registry.services import assign_family_doctor
from tests.ehr.samples import TODAY
from tests.support.auth import (
    Tokens,
    make_citizen,
    make_facility,
    make_practitioner,
    station_client,
    station_token,
    token_for,
)

# What a commune station's system holds: registry, lookups, immunizations (with corrections).
STATION = "system/Patient.crs system/Immunization.crus system/ImmunizationRecommendation.rs"


@dataclass
class World:
    station: uuid.UUID
    hospital: uuid.UUID
    doctor_id: uuid.UUID
    other_doctor_id: uuid.UUID
    patient: uuid.UUID  # registered with the family doctor
    stranger: uuid.UUID
    child: uuid.UUID
    patient_token: Tokens
    stranger_token: Tokens
    doctor_token: Tokens
    other_doctor_token: Tokens
    station_token: Tokens
    # Station staff logged in as a person (the demo's vaccinator dd.mai): fixture `vaccinator`.
    vaccinator_token: Tokens | None = None

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        token: Tokens | None = getattr(self, f"{who}_token")
        assert token is not None, f"no {who} token: ask for the `{who}` fixture"
        return {**token.headers, **extra}


@pytest.fixture
def world(app: Any, client: Any) -> World:
    station = make_facility(app)
    hospital = make_facility(app, kind="hospital")
    doctor_id = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    other_doctor_id = make_practitioner(app, facility=hospital, full_name="Trần Văn Đức")
    patient = make_citizen(app, full_name="Phạm Văn Thắng", date_of_birth=dt.date(1961, 3, 14))
    stranger = make_citizen(app, full_name="Hoàng Thị Thu Trang", sex="female",
                            date_of_birth=dt.date(1988, 6, 25))
    child = make_citizen(app, full_name="Nguyễn Minh Khôi",
                         date_of_birth=TODAY - dt.timedelta(days=150))
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=patient, practitioner_id=doctor_id,
                             facility_id=station, changed_by="test")
        db.session.commit()
    return World(
        station=station, hospital=hospital, doctor_id=doctor_id,
        other_doctor_id=other_doctor_id, patient=patient, stranger=stranger, child=child,
        patient_token=token_for(client, app, citizen=patient),
        stranger_token=token_for(client, app, citizen=stranger),
        doctor_token=token_for(client, app, role="practitioner", practitioner=doctor_id),
        other_doctor_token=token_for(client, app, role="practitioner",
                                     practitioner=other_doctor_id),
        station_token=station_token(
            client, app, oauth_client=station_client(app, facility=station, scopes=STATION)[0]),
    )


@pytest.fixture
def vaccinator(app: Any, client: Any, world: World) -> Tokens:
    """A station staff account (role station, like the demo's vaccinator dd.mai): a nurse of
    the world's station, logged in on the shared public client with `user/` scopes."""
    world.vaccinator_token = token_for(client, app, role="station", facility=world.station)
    return world.vaccinator_token


def count_entries(app: Any, citizen_id: uuid.UUID, section: str | None = None) -> int:
    from sqlalchemy import func, select

    from ehr.record_models import RecordEntry

    with app.app_context():
        query = select(func.count()).select_from(RecordEntry).where(
            RecordEntry.citizen_id == citizen_id)
        if section:
            query = query.where(RecordEntry.section == section)
        return int(db.session.scalar(query))
