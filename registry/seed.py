"""The demo world of DESIGN.md "Demo data", registry part: facilities, practitioners, citizens and
family doctors. Idempotent: a re-run changes nothing. The packages above add their parts through
the seeders `app.py` registers (`registry.cli`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.db import db, utcnow
from registry.reference.health_id import make_health_id
from registry.reference.text import fold
from registry.services import (
    active_family_doctor,
    assign_family_doctor,
    create_facility,
    create_practitioner,
    find_citizen_by_health_id,
    get_facility_by_code,
    get_practitioner_by_certificate,
    register_citizen,
)

# A rural commune is the typical family-doctor setting: xã Liên Bão (09334), tỉnh Bắc Ninh (24),
# in the two-level units in force since 1 July 2025 (Decision 19/2025/QĐ-TTg codes; before, the
# commune of huyện Tiên Du, old tỉnh Bắc Ninh 27). The hospital is in xã Tiên Du (09319, the old
# thị trấn Lim). The facility codes are identifiers and keep their pre-2025 form.
STATION_COMMUNE = "09334"
FACILITIES = [
    {
        "code": "27260-TYT-LIENBAO",
        "kind": "commune-health-station",
        "name": "Trạm Y tế xã Liên Bão",
        "province_code": "24",
        "commune_code": STATION_COMMUNE,
    },
    {
        "code": "27260-BV-TIENDU",
        "kind": "hospital",
        "name": "Bệnh viện đa khoa huyện Tiên Du",
        "province_code": "24",
        "commune_code": "09319",
    },
]

PRACTITIONERS = [
    {
        "demo_role": "family-doctor",
        "full_name": "Nguyễn Thị Hương",
        "practising_certificate": "002145/BN-CCHN",
        "profession": "doctor",
        "facility": "27260-TYT-LIENBAO",
        "title": "Trưởng trạm",
    },
    {
        "demo_role": "other-doctor",
        "full_name": "Trần Văn Đức",
        "practising_certificate": "003871/BN-CCHN",
        "profession": "doctor",
        "facility": "27260-BV-TIENDU",
        "title": "Bác sĩ khoa Nội",
    },
    {
        "demo_role": "vaccinator",
        "full_name": "Lê Thị Mai",
        "practising_certificate": "004512/BN-CCHN",
        "profession": "nurse",
        "facility": "27260-TYT-LIENBAO",
        "title": "Điều dưỡng tiêm chủng",
    },
    {
        # A name that differs from the family doctor's only by its accents ("huong" finds both
        # in the directory); no login.
        "demo_role": "midwife",
        "full_name": "Lê Thị Hường",
        "practising_certificate": "005230/BN-CCHN",
        "profession": "midwife",
        "facility": "27260-BV-TIENDU",
        "title": "Nữ hộ sinh khoa Sản",
    },
]


def _citizens(today: dt.date) -> list[dict[str, Any]]:
    infant_dob = today - dt.timedelta(days=150)  # about five months old: doses due and overdue
    return [
        {
            "demo_role": "adult-chronic",
            "full_name": "Phạm Văn Thắng",
            "date_of_birth": dt.date(1961, 3, 14),
            "sex": "male",
            "birth_province": "027",
            "serial": 104528,
            "phone": "0912 345 678",
            "address": {"province_code": "24", "commune_code": STATION_COMMUNE,
                        "village": "Thôn Hoài Thượng", "line": "Số 18 đường làng"},
            "ethnicity": "Kinh",
            "social_insurance_code": "2712345678",
            "family_doctor": True,
        },
        {
            "demo_role": "parent",
            "full_name": "Đỗ Thị Lan Anh",
            "date_of_birth": dt.date(1994, 11, 2),
            "sex": "female",
            "birth_province": "027",
            "serial": 220871,
            "phone": "0987 654 321",
            "address": {"province_code": "24", "commune_code": STATION_COMMUNE,
                        "village": "Thôn Duệ Đông", "line": "Xóm Giữa"},
            "ethnicity": "Kinh",
            "family_doctor": True,
        },
        {
            "demo_role": "infant",
            "full_name": "Nguyễn Minh Khôi",
            "date_of_birth": infant_dob,
            "sex": "male",
            "birth_province": "027",
            "serial": 7305,
            "address": {"province_code": "24", "commune_code": STATION_COMMUNE,
                        "village": "Thôn Duệ Đông", "line": "Xóm Giữa"},
            "ethnicity": "Kinh",
            "family_doctor": True,
        },
        {
            "demo_role": "stranger",
            "full_name": "Hoàng Thị Thu Trang",
            "date_of_birth": dt.date(1988, 6, 25),
            "sex": "female",
            "birth_province": "001",
            "serial": 519034,
            "phone": "0978 112 233",
            # Phường Yên Hòa, Hà Nội (00175).
            "address": {"province_code": "01", "commune_code": "00175",
                        "line": "Số 12 ngõ 45 phố Trần Duy Hưng"},
            "ethnicity": "Tày",
            "family_doctor": False,
        },
    ]


def seed_demo(*, today: dt.date | None = None) -> tuple[dict[str, Any], int]:
    """Create what is missing of the demo world; return its identities and how many rows were new.

    The infant's date of birth is fixed at first seeding; a re-run finds the existing citizens by
    health ID (blind index) and reports them as they are stored.
    """
    session = db.session
    today = today or utcnow().date()
    created = 0
    facilities = {}
    for spec in FACILITIES:
        facility = get_facility_by_code(session=session, code=spec["code"])
        if facility is None:
            facility = create_facility(session=session, **spec)
            created += 1
        elif (facility.province_code, facility.commune_code) != (
                spec["province_code"], spec["commune_code"]):
            # A demo world seeded before the 2025 units: its catchment needs current codes.
            facility.province_code, facility.commune_code = (spec["province_code"],
                                                             spec["commune_code"])
        facilities[spec["code"]] = facility
    session.flush()

    practitioners = {}
    identities: dict[str, Any] = {"citizens": [], "practitioners": [], "stations": [],
                                  "clients": {}}
    for spec in PRACTITIONERS:
        practitioner = get_practitioner_by_certificate(
            session=session, certificate=spec["practising_certificate"]
        )
        if practitioner is None:
            practitioner = create_practitioner(
                session=session, full_name=spec["full_name"],
                practising_certificate=spec["practising_certificate"],
                profession=spec["profession"], facility=facilities[spec["facility"]],
                title=spec["title"],
            )
            created += 1
        elif practitioner.search_name is None:
            practitioner.search_name = fold(practitioner.full_name)  # seeded before the directory
        practitioners[spec["demo_role"]] = practitioner
        identities["practitioners"].append(
            {"id": str(practitioner.id), "full_name": practitioner.full_name,
             "demo_role": spec["demo_role"], "facility_code": spec["facility"]}
        )
    session.flush()

    family_doctor = practitioners["family-doctor"]
    station = facilities["27260-TYT-LIENBAO"]
    citizens = {}
    for spec in _citizens(today):
        existing_dob = spec["date_of_birth"]
        health_id = make_health_id(
            province_code=spec["birth_province"], date_of_birth=existing_dob,
            sex=spec["sex"], serial=spec["serial"],
        )
        citizen = None
        if spec["demo_role"] == "infant":
            citizen = _find_demo_infant(spec)
        else:
            citizen = find_citizen_by_health_id(session=session, health_id=health_id)
        if citizen is None:
            citizen = register_citizen(
                session=session, health_id=health_id, full_name=spec["full_name"],
                date_of_birth=existing_dob, sex=spec["sex"], phone=spec.get("phone"),
                address=spec.get("address"), ethnicity=spec.get("ethnicity"),
                social_insurance_code=spec.get("social_insurance_code"),
                registered_by_facility_id=station.id,
            )
            created += 1
            session.flush()
        if spec["family_doctor"] and active_family_doctor(
            session=session, citizen_id=citizen.id
        ) is None:
            assign_family_doctor(
                session=session, citizen_id=citizen.id, practitioner_id=family_doctor.id,
                facility_id=station.id, changed_by="seed",
            )
            created += 1
        citizens[spec["demo_role"]] = citizen
        identities["citizens"].append(
            {"id": str(citizen.id), "health_id": citizen.health_id,
             "full_name": citizen.full_name, "date_of_birth": citizen.date_of_birth.isoformat(),
             "demo_role": spec["demo_role"]}
        )
    identities["stations"].append({"facility_code": station.code, "facility_id": str(station.id)})
    session.commit()
    return identities, created


def _find_demo_infant(spec: dict[str, Any]) -> Any:
    """The infant's health ID depends on a birth date relative to the first seeding: try the
    serial under each birth year that could have produced it."""
    session = db.session
    for years_back in (0, 1):
        year = spec["date_of_birth"].year - years_back
        candidate = make_health_id(
            province_code=spec["birth_province"], date_of_birth=dt.date(year, 1, 1),
            sex=spec["sex"], serial=spec["serial"],
        )
        found = find_citizen_by_health_id(session=session, health_id=candidate)
        if found is not None:
            return found
    return None
