"""Demo records (DESIGN.md "Demo data"): a chronic patient, an infant with doses due, a stranger.

Written straight through the record models by the seeding command (not an API actor), with the
demo family doctor or vaccinator as author; idempotent: a citizen who has entries is skipped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import utcnow
from ehr.record_models import STATUS_CURRENT, RecordEntry
from ehr.records import validate_content
from ehr.section_schemas import CLINICAL_DATE_FIELD
from registry.reference.icd10 import default_sensitivity


def _entry(session: Session, *, citizen_id: uuid.UUID, section: str, content: dict[str, Any],
           author: uuid.UUID, facility: uuid.UUID, sensitivity: str | None = None,
           source: str = "clinician") -> RecordEntry:
    stored = validate_content(section, content)
    name = CLINICAL_DATE_FIELD[section]
    raw = stored.get(name) if name else None
    clinical = dt.date.fromisoformat(raw[:10]) if raw else None
    label = sensitivity or (default_sensitivity(stored["icd10_code"])
                            if stored.get("icd10_code") else "normal")
    now = utcnow()
    entry = RecordEntry(
        id=uuid.uuid4(), citizen_id=citizen_id, section=section, clinical_date=clinical,
        status=STATUS_CURRENT, sensitivity=label, source=source, version=1,
        author_practitioner_id=author, facility_id=facility, created_at=now, updated_at=now,
    )
    entry.content = stored
    session.add(entry)
    return entry


def _has_entries(session: Session, citizen_id: uuid.UUID) -> bool:
    return bool(session.scalar(
        select(func.count()).select_from(RecordEntry).where(RecordEntry.citizen_id == citizen_id)
    ))


def seed_demo_records(identities: dict[str, Any]) -> int:
    """The record part of `seed demo`: the demo citizens' entries (0 on a re-run)."""
    from core.db import db
    from registry.models import Citizen, Practitioner
    from registry.services import get_facility_by_code

    session = db.session
    citizens = {c["demo_role"]: session.get(Citizen, uuid.UUID(c["id"]))
                for c in identities["citizens"]}
    practitioners = {p["demo_role"]: session.get(Practitioner, uuid.UUID(p["id"]))
                     for p in identities["practitioners"]}
    station_id = uuid.UUID(identities["stations"][0]["facility_id"])
    hospital = get_facility_by_code(session=session, code="27260-BV-TIENDU")
    if hospital is None:
        raise RuntimeError("the registry seed creates the district hospital first")
    created = seed_records(session, citizens=citizens, practitioners=practitioners,
                           station_id=station_id, hospital_id=hospital.id,
                           today=utcnow().date())
    session.commit()
    return created


def seed_records(session: Session, *, citizens: dict[str, Any], practitioners: dict[str, Any],
                 station_id: uuid.UUID, hospital_id: uuid.UUID, today: dt.date) -> int:
    """Add the demo records that are missing; return how many entries were created."""
    created = 0
    doctor = practitioners["family-doctor"].id
    vaccinator = practitioners["vaccinator"].id
    other = practitioners["other-doctor"].id

    adult = citizens["adult-chronic"]
    if not _has_entries(session, adult.id):
        add = lambda section, content, **kw: _entry(  # noqa: E731
            session, citizen_id=adult.id, section=section, content=content,
            author=kw.pop("author", doctor), facility=kw.pop("facility", station_id), **kw)
        add("conditions", {"icd10_code": "I10", "clinical_status": "active",
                           "onset_date": "2015-04-02", "note": "Tăng huyết áp độ 1"})
        add("conditions", {"icd10_code": "E11.9", "clinical_status": "active",
                           "onset_date": "2019-09-17"})
        add("allergies", {"substance": "Penicillin", "category": "medication",
                          "criticality": "high", "reaction": "Nổi mề đay, khó thở",
                          "severity": "severe", "onset_date": "1998-06-01"})
        add("medications", {"name": "Amlodipin 5 mg", "atc_code": "C08CA01", "dose": "1 viên",
                            "route": "oral", "frequency": "1 lần/ngày buổi sáng",
                            "start_date": "2015-04-02", "reason_code": "I10"})
        add("medications", {"name": "Metformin 850 mg", "atc_code": "A10BA02", "dose": "1 viên",
                            "route": "oral", "frequency": "2 lần/ngày sau ăn",
                            "start_date": "2019-09-17", "reason_code": "E11.9"})
        for days_ago, systolic, diastolic, glucose in ((60, 152, 94, 8.4), (30, 144, 90, 7.6),
                                                       (3, 138, 86, 7.1)):
            moment = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(1, 30),
                                         tzinfo=dt.UTC).isoformat()
            add("observations", {"kind": "blood-pressure", "systolic": systolic,
                                 "diastolic": diastolic, "unit": "mm[Hg]",
                                 "effective_at": moment, "method": "clinic"})
            add("observations", {"kind": "blood-glucose", "value": glucose, "unit": "mmol/L",
                                 "effective_at": moment, "method": "clinic"})
        add("observations", {"kind": "body-weight", "value": 71.5, "unit": "kg",
                             "effective_at": dt.datetime.combine(
                                 today - dt.timedelta(days=3), dt.time(1, 30),
                                 tzinfo=dt.UTC).isoformat()})
        add("conditions", {"icd10_code": "F32.0", "clinical_status": "active",
                           "onset_date": "2023-02-10", "note": "Theo dõi tại tuyến huyện"},
            author=other, facility=hospital_id)
        add("history", {"category": "smoking", "description": "Hút thuốc lá 10 điếu/ngày",
                        "status": "former", "start_date": "1981-01-01",
                        "end_date": "2015-04-02"})
        add("family-history", {"relationship": "father", "icd10_code": "I64", "onset_age": 68,
                               "deceased": True})
        add("lab-results", {"test_name": "HbA1c", "loinc_code": "4548-4", "value": "7.2",
                            "unit": "%", "reference_range": "4.0-6.0",
                            "interpretation": "high",
                            "issued_on": (today - dt.timedelta(days=30)).isoformat()})
        add("examinations", {"exam_type": "periodic",
                             "examined_on": (today - dt.timedelta(days=30)).isoformat(),
                             "physical_exam": "Tim đều, phổi không ran",
                             "diagnosis_codes": ["I10", "E11.9"],
                             "conclusion": "Kiểm soát huyết áp và đường huyết chưa tối ưu",
                             "counselling": "Giảm muối, tăng vận động 30 phút/ngày",
                             "next_exam_due": (today + dt.timedelta(days=60)).isoformat()})
        created += 17

    infant = citizens["infant"]
    if not _has_entries(session, infant.id):
        birth = infant.date_of_birth
        # Birth doses on time, the 2-month doses given, the 3-month doses not yet: overdue.
        for code, dose, days in (("HEPB", 1, 0), ("BCG", 1, 7), ("DTP-HEPB-HIB", 1, 61),
                                 ("BOPV", 1, 61), ("ROTAVIN-M1", 1, 61)):
            given = birth + dt.timedelta(days=days)
            if given > today:
                continue
            _entry(session, citizen_id=infant.id, section="immunizations",
                   author=vaccinator, facility=station_id, source="station",
                   content={"vaccine_code": code, "dose_number": dose,
                            "occurrence_date": given.isoformat(),
                            "lot_number": f"VN-{code}-{given:%y%m}", "site": "left-thigh"
                            if code not in ("BOPV", "ROTAVIN-M1") else "oral",
                            "facility_code": "27260-TYT-LIENBAO"})
            created += 1
        _entry(session, citizen_id=infant.id, section="history", author=doctor,
               facility=station_id,
               content={"category": "birth-condition",
                        "description": "Sinh thường, đủ tháng, cân nặng 3,1 kg",
                        "start_date": birth.isoformat()})
        created += 1

    stranger = citizens["stranger"]
    if not _has_entries(session, stranger.id):
        _entry(session, citizen_id=stranger.id, section="allergies", author=other,
               facility=hospital_id,
               content={"substance": "Tôm", "category": "food", "criticality": "low",
                        "reaction": "Ngứa", "severity": "mild"})
        _entry(session, citizen_id=stranger.id, section="conditions", author=other,
               facility=hospital_id,
               content={"icd10_code": "J45.9", "clinical_status": "active",
                        "onset_date": "2004-05-20"})
        created += 2
    return created
