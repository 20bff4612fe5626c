"""The canary: personal values written through the service never appear in the raw database (the
SQLite file and its WAL, or a pg_dump) nor in any log line of the run, in NFC or NFD form.

Each *producer* below pushes fresh canary values through real code paths (HTTP routes, services,
CLI commands). Later issues extend the test by appending a producer to PRODUCERS for their tables
(idempotency cache, outbox, audit log...): take values from the Canary object, which records
them for the final scan. A producer only writes; the scan and the checks are shared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask
from sqlalchemy import func, select

from core.db import db
from core.encryption import VaultSettings
from core.http import json_body
from core.schemas import load_or_problem
from core.vault.kek import LocalKeyFileKekProvider
from core.vault_admin import encrypted_models
from registry.models import Citizen
from registry.reference.health_id import make_health_id
from registry.schemas import CitizenCreateSchema
from registry.services import find_citizen_by_health_id, register_citizen
from tests.conftest import LOG_FILE

# Encrypted fields of tables whose issue has not added its producer yet ("table.field"). A new
# encrypted field fails the test until a producer fills it or it is listed here with a reason.
AWAITING_PRODUCER: set[str] = set()

_GIVEN = ("Ánh", "Thuỳ", "Dũng", "Phượng", "Khuê", "Hưng")
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Vũ", "Đặng")
_STREETS = ("Nguyễn Thị Minh Khai", "Lý Thường Kiệt", "Điện Biên Phủ", "Hàng Bạc")
_ETHNIC_GROUPS = ("Ê Đê", "Hà Nhì", "Mường", "Thái", "Khơ Mú")


@dataclass
class Canary:
    """Distinctive personal values for one run; every value handed out is scanned for at the end."""

    tracked: list[str] = field(default_factory=list)

    def track(self, *values: str) -> None:
        self.tracked.extend(v for v in values if v)

    def _suffix(self) -> str:
        return secrets.token_hex(4)

    def name(self) -> str:
        value = (f"{secrets.choice(_FAMILY)} Thị {secrets.choice(_GIVEN)} "
                 f"Canary{self._suffix()}")
        self.track(value)
        return value

    def date_of_birth(self) -> dt.date:
        # Years no clear column of the test suite uses, so a match can only be a leak.
        value = dt.date(1921 + secrets.randbelow(19), 1 + secrets.randbelow(12),
                        1 + secrets.randbelow(28))
        self.track(value.isoformat())
        return value

    def health_id(self, *, date_of_birth: dt.date, sex: str) -> str:
        value = make_health_id(province_code="079", date_of_birth=date_of_birth, sex=sex,
                               serial=secrets.randbelow(1_000_000))
        self.track(value)
        return value

    def phone(self) -> str:
        subscriber = f"{secrets.randbelow(10**7):07d}"
        self.track("+8491" + subscriber, "091" + subscriber)
        return f"091 {subscriber[:3]} {subscriber[3:]}"  # as typed; stored as E.164

    def email(self) -> str:
        value = f"canary.{self._suffix()}@benhnhan.example.vn"
        self.track(value)
        return value

    def address(self) -> dict[str, str]:
        line = f"Số {secrets.randbelow(300) + 1} đường {secrets.choice(_STREETS)} {self._suffix()}"
        self.track(line)
        village = f"Ấp {secrets.choice(_STREETS)} {self._suffix()}"
        self.track(village)
        return {"province_code": "79", "district_code": "760", "commune_code": "26734",
                "line": line, "village": village}

    def ethnicity(self) -> str:
        value = f"{secrets.choice(_ETHNIC_GROUPS)} {self._suffix()}"
        self.track(value)
        return value

    def social_insurance_code(self) -> str:
        value = f"79{secrets.randbelow(10**8):08d}"
        self.track(value)
        return value

    def citizen(self) -> dict[str, Any]:
        """A registration body (JSON form) with a canary value in every personal field."""
        born = self.date_of_birth()
        # Sex cannot be a canary ("female" is everywhere); ciphertext padding hides its length.
        return {
            "health_id": self.health_id(date_of_birth=born, sex="female"),
            "full_name": self.name(),
            "date_of_birth": born.isoformat(),
            "sex": "female",
            "phone": self.phone(),
            "email": self.email(),
            "address": self.address(),
            "ethnicity": self.ethnicity(),
            "social_insurance_code": self.social_insurance_code(),
        }


Producer = Callable[[Flask, Canary], None]


def canary_routes() -> Blueprint:
    """Stand-ins for the citizen API until it exists: register and read through HTTP."""
    bp = Blueprint("canary", __name__)

    @bp.post("/_canary/citizens")
    def create():
        data = load_or_problem(CitizenCreateSchema(), json_body())
        citizen = register_citizen(session=db.session, **data)
        db.session.commit()
        return {"id": str(citizen.id)}, 201

    @bp.get("/_canary/citizens/<uuid:citizen_id>")
    def read(citizen_id: uuid.UUID):
        citizen = db.session.get(Citizen, citizen_id)
        return {"full_name": str(citizen.full_name), "phone": str(citizen.phone),
                "address": citizen.address, "ethnicity": str(citizen.ethnicity)}

    @bp.patch("/_canary/citizens/<uuid:citizen_id>")
    def update(citizen_id: uuid.UUID):
        citizen = db.session.get(Citizen, citizen_id)
        for name, value in json_body().items():
            setattr(citizen, name, value)
        db.session.commit()
        return {"ok": True}

    return bp


def _register(client: Any, body: dict[str, Any]) -> str:
    response = client.post("/_canary/citizens", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def produce_registry(app: Flask, canary: Canary) -> None:
    """Citizens registered, read, corrected and looked up; a rejected registration."""
    client = app.test_client()
    first = _register(client, canary.citizen())
    assert client.get(f"/_canary/citizens/{first}").status_code == 200
    response = client.patch(f"/_canary/citizens/{first}", json={
        "full_name": canary.name(), "ethnicity": canary.ethnicity()})
    assert response.status_code == 200
    invalid = canary.citizen()
    invalid["health_id"] = invalid["health_id"][:-1] + "X"
    assert client.post("/_canary/citizens", json=invalid).status_code == 422
    # Straight through the service too (seeders, imports and batch jobs take this path).
    with app.app_context():
        values = canary.citizen()
        values["date_of_birth"] = dt.date.fromisoformat(values["date_of_birth"])
        citizen = register_citizen(session=db.session, **values)
        db.session.commit()
        found = find_citizen_by_health_id(session=db.session, health_id=values["health_id"])
        assert found is not None
        assert found.id == citizen.id
        db.session.remove()


def produce_vault_operations(app: Flask, canary: Canary) -> None:
    """Rotations, verification, a decryption failure over HTTP, and a crypto-shredded citizen."""
    client = app.test_client()
    victim = _register(client, canary.citizen())
    other = _register(client, canary.citizen())
    runner = app.test_cli_runner()
    for args in (["rotate-data-keys", "--citizen", victim], ["rotate-data-keys"],
                 ["rotate-kek", "--retire-old", "--grace-seconds", "0"], ["verify"]):
        result = runner.invoke(args=["vault", *args])
        assert result.exit_code == 0, result.output
    with app.app_context():
        stolen = db.session.scalar(
            select(Citizen.full_name_ct).where(Citizen.id == uuid.UUID(other)))
        db.session.execute(Citizen.__table__.update()
                           .where(Citizen.__table__.c.id == uuid.UUID(victim))
                           .values(full_name_ct=stolen))
        db.session.commit()
    assert client.get(f"/_canary/citizens/{victim}").status_code == 500
    assert runner.invoke(args=["vault", "verify"]).exit_code == 1
    result = runner.invoke(args=["vault", "shred", "--citizen", other, "--yes"])
    assert result.exit_code == 0, result.output


def _api_world(app: Flask) -> dict[str, Any]:
    from registry.services import assign_family_doctor
    from tests.support.auth import (
        make_facility,
        make_practitioner,
        station_client,
        station_token,
        token_for,
    )

    http = app.test_client()
    station = make_facility(app)
    doctor = make_practitioner(app, facility=station)
    other = make_practitioner(app, facility=make_facility(app, kind="hospital"))
    scopes = "system/Patient.crs system/Immunization.crus"
    station_headers = station_token(
        http, app, oauth_client=station_client(app, facility=station, scopes=scopes)[0]).headers
    return {"http": http, "station": station, "doctor": doctor, "other": other,
            "station_headers": station_headers, "token_for": token_for,
            "assign": assign_family_doctor}


def produce_record_api(app: Flask, canary: Canary) -> None:
    """The real API: registration and lookup by a station, entries written, corrected and
    retracted by the family doctor (idempotent creates, a batch), read by the citizen."""
    w = _api_world(app)
    http, station_headers = w["http"], w["station_headers"]
    body = canary.citizen()
    created = http.post("/api/v1/citizens", json=body,
                        headers={**station_headers, "Idempotency-Key": "canary-reg-0001"})
    assert created.status_code == 201, created.get_json()
    citizen_id = uuid.UUID(created.get_json()["id"])
    found = http.post("/api/v1/citizens/lookup", json={"health_id": body["health_id"]},
                      headers=station_headers)
    assert found.status_code == 200
    with app.app_context():
        w["assign"](session=db.session, citizen_id=citizen_id, practitioner_id=w["doctor"],
                    facility_id=w["station"], changed_by="canary")
        db.session.commit()
    doctor = w["token_for"](http, app, role="practitioner", practitioner=w["doctor"]).headers
    citizen = w["token_for"](http, app, citizen=citizen_id).headers
    base = f"/api/v1/citizens/{citizen_id}"
    substance = canary.name().replace("Canary", "Allergen")
    canary.track(substance)
    note = "Ghi chú " + canary.name()
    entry = http.post(base + "/allergies", json={
        "substance": substance, "category": "food", "note": note},
        headers={**doctor, "Idempotency-Key": "canary-entry-0001"})
    assert entry.status_code == 201, entry.get_json()
    entry_url = f"{base}/allergies/{entry.get_json()['id']}"
    corrected = http.patch(entry_url, json={"note": "Đã sửa " + canary.name()},
                           headers={**doctor, "If-Match": entry.headers["ETag"]})
    assert corrected.status_code == 200
    retracted = http.post(entry_url + "/entered-in-error",
                          json={"reason": "Nhầm người " + canary.name()}, headers=doctor)
    assert retracted.status_code == 200
    lot = f"LOT-{secrets.token_hex(5).upper()}"
    canary.track(lot)
    batch = http.post("/api/v1/immunizations/batch", headers=station_headers, json={"items": [
        {"client_item_id": "canary-1", "citizen_id": str(citizen_id), "vaccine_code": "TD",
         "dose_number": 1, "occurrence_date": "2026-01-05", "lot_number": lot}]})
    assert batch.get_json()["results"][0]["status"] == 201, batch.get_json()
    for path in ("/summary", "/allergies?include_entered_in_error=true", "/export"):
        assert http.get(base + path, headers=citizen).status_code == 200
    w.update(citizen_id=citizen_id, citizen=citizen, doctor_headers=doctor)
    app.extensions["canary.api_world"] = w


def produce_consent_and_notifications(app: Flask, canary: Canary) -> None:
    """Reasons and notes people type (access request, break-glass, a flag) and a device."""
    w = app.extensions.pop("canary.api_world")
    http, citizen_id, citizen = w["http"], w["citizen_id"], w["citizen"]
    other = w["token_for"](http, app, role="practitioner", practitioner=w["other"]).headers
    base = f"/api/v1/citizens/{citizen_id}"
    asked = http.post(base + "/access-requests", headers=other, json={
        "sections": ["allergies"], "reason": "Khám lại cho " + canary.name()})
    assert asked.status_code == 201, asked.get_json()
    opened = http.post(base + "/break-glass", headers=other,
                       json={"reason": "Cấp cứu " + canary.name()})
    assert opened.status_code == 201, opened.get_json()
    log = http.get(base + "/access-log", headers=citizen)
    assert log.status_code == 200, log.get_json()
    event_id = log.get_json()["items"][0]["id"]
    flagged = http.post(f"{base}/access-log/{event_id}/flag", headers=citizen,
                        json={"note": "Tôi không biết " + canary.name()})
    assert flagged.status_code in (200, 201), flagged.get_json()
    device_token = "fcm-" + secrets.token_urlsafe(24)
    canary.track(device_token)
    device = http.post("/api/v1/me/devices", headers=citizen,
                       json={"platform": "fcm", "token": device_token})
    assert device.status_code in (200, 201), device.get_json()
    assert http.get("/api/v1/me/notifications", headers=citizen).status_code == 200


def produce_relationships(app: Flask, canary: Canary) -> None:
    """Text typed about a family or an access (issue 14): why station staff ended a
    guardianship, named at a newborn's registration; a facility's answer to a flag."""
    from tests.support.auth import make_facility, token_for

    http = app.test_client()
    station = make_facility(app)
    staff = token_for(http, app, role="station", facility=station).headers
    mother = canary.citizen()
    registered = http.post("/api/v1/citizens", json=mother, headers=staff)
    assert registered.status_code == 201, registered.get_json()
    born = dt.date.today() - dt.timedelta(days=3)  # noqa: DTZ011
    baby = http.post("/api/v1/citizens", headers=staff, json={
        "health_id": canary.health_id(date_of_birth=born, sex="female"),
        "full_name": canary.name(), "date_of_birth": born.isoformat(), "sex": "female",
        "guardians": [{"health_id": mother["health_id"],
                       "date_of_birth": mother["date_of_birth"], "relationship": "mother"}]})
    assert baby.status_code == 201, baby.get_json()
    base = f"/api/v1/citizens/{baby.get_json()['id']}"
    [guardianship] = http.get(base + "/guardians", headers=staff).get_json()["items"]
    ended = http.post(f"{base}/guardians/{guardianship['id']}/end", headers=staff,
                      json={"reason": "Quyết định của tòa án: " + canary.name()})
    assert ended.status_code == 200, ended.get_json()
    person = token_for(http, app, citizen=uuid.UUID(registered.get_json()["id"])).headers
    mother_base = f"/api/v1/citizens/{registered.get_json()['id']}"
    [event] = [e for e in http.get(mother_base + "/access-log", headers=person).get_json()[
        "items"] if e["actor"]["kind"] == "station"][:1]
    flag = http.post(f"{mother_base}/access-log/{event['id']}/flag", headers=person,
                     json={"note": "Không nhận ra " + canary.name()})
    assert flag.status_code == 201, flag.get_json()
    colleague = token_for(http, app, role="station", facility=station).headers  # not the actor
    reviewed = http.post(f"/api/v1/facilities/{station}/access-flags/{flag.get_json()['id']}"
                         "/review", headers=colleague,
                         json={"outcome": "justified", "note": "Đã kiểm tra " + canary.name()})
    assert reviewed.status_code == 200, reviewed.get_json()


def produce_care_team(app: Flask, canary: Canary) -> None:
    """Issue 15's routes: a child of the station's commune (village, contact phone) on the
    station's worklist (JSON and CSV) and the family doctor's panel; a dose the mother reports
    from the vaccination book (lot, the facility's name as written there), verified by station
    staff; the vaccination card; the directory."""
    from registry.services import assign_family_doctor
    from tests.support.auth import make_facility, make_practitioner, token_for

    http = app.test_client()
    station = make_facility(app)
    staff = token_for(http, app, role="station", facility=station).headers
    doctor_id = make_practitioner(app, facility=station)
    doctor = token_for(http, app, role="practitioner", practitioner=doctor_id).headers
    mother = canary.citizen()
    registered = http.post("/api/v1/citizens", json=mother, headers=staff)
    assert registered.status_code == 201, registered.get_json()
    born = dt.date.today() - dt.timedelta(days=100)  # noqa: DTZ011
    village = f"Thôn Đông {canary.name()}"
    canary.track(village)
    child = http.post("/api/v1/citizens", headers=staff, json={
        "health_id": canary.health_id(date_of_birth=born, sex="female"),
        "full_name": canary.name(), "date_of_birth": born.isoformat(), "sex": "female",
        "phone": canary.phone(),
        "address": {"province_code": "24", "commune_code": "09334", "village": village},
        "guardians": [{"health_id": mother["health_id"],
                       "date_of_birth": mother["date_of_birth"], "relationship": "mother"}]})
    assert child.status_code == 201, child.get_json()
    child_id = uuid.UUID(child.get_json()["id"])
    with app.app_context():
        assign_family_doctor(session=db.session, citizen_id=child_id, practitioner_id=doctor_id,
                             facility_id=station, changed_by="canary")
        db.session.commit()
    panel = http.get("/api/v1/me/patients", headers=doctor)
    assert panel.status_code == 200
    assert str(child_id) in {item["citizen_id"] for item in panel.get_json()["items"]}
    worklist = f"/api/v1/facilities/{station}/immunization-worklist"
    listed = http.get(worklist, headers=staff)
    assert listed.status_code == 200, listed.get_json()
    assert str(child_id) in listed.get_data(as_text=True)
    printable = http.get(worklist, headers={**staff, "Accept": "text/csv"})
    assert printable.status_code == 200
    person = token_for(http, app, citizen=uuid.UUID(registered.get_json()["id"])).headers
    lot = f"SO-{secrets.token_hex(5).upper()}"
    canary.track(lot)
    book_facility = f"Phòng tiêm {canary.name()}"
    reported = http.post(f"/api/v1/citizens/{child_id}/immunizations", headers=person, json={
        "vaccine_code": "BCG", "dose_number": 1, "occurrence_date": born.isoformat(),
        "lot_number": lot, "facility_name": book_facility})
    assert reported.status_code == 201, reported.get_json()
    entry_url = f"/api/v1/citizens/{child_id}/immunizations/{reported.get_json()['id']}"
    verified = http.post(entry_url + "/verify", headers={**staff, "If-Match":
                                                         reported.headers["ETag"]}, json={})
    assert verified.status_code == 200, verified.get_json()
    card = http.get(f"/api/v1/citizens/{child_id}/vaccination-card", headers=person)
    assert card.status_code == 200, card.get_json()
    assert http.get("/api/v1/practitioners?q=bac+si", headers=person).status_code == 200


def produce_share_links(app: Flask, canary: Canary) -> None:
    """Issue 16's share links: the label and passcode a citizen types, the file key and
    manifest id the link carries, the name a recipient states; the manifest asked with a
    wrong and a right passcode, the access log read; a second link revoked (the first stays
    live, so its encrypted key is in the database for the scan)."""
    import base64
    from urllib.parse import urlsplit

    from tests.support.auth import make_citizen, token_for

    http = app.test_client()
    citizen_id = make_citizen(app, full_name=canary.name())
    citizen = token_for(http, app, citizen=citizen_id).headers
    base = f"/api/v1/citizens/{citizen_id}/share-links"
    passcode = "pc-" + secrets.token_urlsafe(12)
    canary.track(passcode)
    made = http.post(base, headers=citizen, json={
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
        "passcode": passcode, "label": "Gửi " + canary.name()})
    assert made.status_code == 201, made.get_json()
    encoded = made.get_json()["shlink"].removeprefix("shlink:/")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    manifest = urlsplit(payload["url"]).path
    canary.track(payload["key"], manifest.rsplit("/", 1)[1])
    recipient = "BS. " + canary.name()
    wrong = http.post(manifest, json={"recipient": recipient, "passcode": passcode + "x"})
    assert wrong.status_code == 401, wrong.get_json()
    right = http.post(manifest, json={"recipient": recipient, "passcode": passcode})
    assert right.status_code == 200, right.get_json()
    assert http.get(f"/api/v1/citizens/{citizen_id}/access-log",
                    headers=citizen).status_code == 200
    assert http.get(base, headers=citizen).status_code == 200
    other = http.post(base, headers=citizen, json={
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat(),
        "single_use": True})
    assert other.status_code == 201, other.get_json()
    encoded = other.get_json()["shlink"].removeprefix("shlink:/")
    canary.track(json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))["key"])
    revoked = http.delete(f"{base}/{other.get_json()['id']}", headers=citizen)
    assert revoked.status_code == 200, revoked.get_json()


def produce_fhir(app: Flask, canary: Canary) -> None:
    """Issue 16's FHIR face: a hospital's system pushes a diagnosis with a note for a person
    named by health ID (a transaction Bundle), the person reads it back as FHIR, their IPS and
    `$everything`."""
    from tests.support.auth import (
        make_facility,
        station_client,
        station_token,
        token_for,
    )

    http = app.test_client()
    hospital = make_facility(app, kind="hospital")
    system = station_token(http, app, oauth_client=station_client(
        app, facility=hospital, scopes="system/Condition.c")[0]).headers
    body = canary.citizen()
    staff = token_for(http, app, role="station", facility=make_facility(app)).headers
    registered = http.post("/api/v1/citizens", json=body, headers=staff)
    assert registered.status_code == 201, registered.get_json()
    citizen_id = registered.get_json()["id"]
    note = "Theo dõi " + canary.name()
    identifier = f"DX-{secrets.token_hex(4)}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {
            "resourceType": "Condition",
            "identifier": [{"system": "https://his.example.vn/fhir/sid/dx", "value": identifier}],
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J30.1"}]},
            "subject": {"identifier": {"system": "https://moh.gov.vn/fhir/sid/cccd",
                                       "value": body["health_id"]}},
            "note": [{"text": note}]},
        "request": {"method": "POST", "url": "Condition",
                    "ifNoneExist": f"identifier=https://his.example.vn/fhir/sid/dx|{identifier}"},
    }]}
    pushed = http.post("/fhir/R4", json=bundle,
                       headers={**system, "Content-Type": "application/fhir+json"})
    assert pushed.status_code == 200, pushed.get_json()
    person = token_for(http, app, citizen=uuid.UUID(citizen_id)).headers
    for path in (f"/fhir/R4/Condition?patient={citizen_id}", f"/fhir/R4/Patient/{citizen_id}",
                 f"/fhir/R4/Patient/{citizen_id}/$summary",
                 f"/fhir/R4/Patient/{citizen_id}/$everything"):
        answer = http.get(path, headers=person)
        assert answer.status_code == 200, (path, answer.get_json())
    assert note in json.dumps(http.get(f"/fhir/R4/Patient/{citizen_id}/$everything",
                                       headers=person).get_json(), ensure_ascii=False)


PRODUCERS: list[Producer] = [
    produce_registry, produce_vault_operations, produce_record_api,
    produce_consent_and_notifications, produce_relationships, produce_care_team,
    produce_share_links, produce_fhir,
]


# Where the values must not be ------------------------------------------------------------------


def forms(value: str) -> set[bytes]:
    """Every byte form a leak of ``value`` could take: NFC/NFD, raw UTF-8, JSON-escaped, hex."""
    found: set[bytes] = set()
    for normal in ("NFC", "NFD"):
        text = unicodedata.normalize(normal, value)
        raw = text.encode()
        found.update({raw, raw.hex().encode(), json.dumps(text)[1:-1].encode()})
    return found


def database_bytes(url: str) -> bytes:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        # Committed pages may still sit in the write-ahead log: read it, then checkpoint too.
        wal = path.with_name(path.name + "-wal")
        before = wal.read_bytes() if wal.exists() else b""
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return before + path.read_bytes()
    libpq_url = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    dump = subprocess.run(
        ["/usr/bin/pg_dump", "--data-only", "--no-owner", "--dbname", libpq_url],
        check=True, capture_output=True, timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )
    return dump.stdout


def log_bytes(log_stream: Any) -> bytes:
    log_stream.flush()
    return LOG_FILE.read_bytes()


def leaks(values: list[str], haystacks: dict[str, bytes]) -> list[str]:
    found = []
    for value in values:
        for where, haystack in haystacks.items():
            if any(form in haystack for form in forms(value)):
                found.append(f"{value!r} in {where}")
    return found


def uncovered_fields() -> list[str]:
    missing = []
    for model, fields in encrypted_models().items():
        for encrypted in fields:
            column = getattr(model, encrypted.column_attr)
            name = f"{model.__tablename__}.{encrypted.name}"
            filled = db.session.scalar(select(func.count()).where(column.is_not(None)))
            if not filled and name not in AWAITING_PRODUCER:
                missing.append(name)
    return missing


@pytest.fixture
def canary_app(app, tmp_path):
    # KEK rotation rewrites the key file: give the test its own (the run's stays untouched).
    path = tmp_path / "kek.json"
    LocalKeyFileKekProvider.generate(path)
    current = app.extensions["phr.vault"]
    app.extensions["phr.vault"] = VaultSettings(
        provider=LocalKeyFileKekProvider(path), blind_index_key=current.blind_index_key)
    app.register_blueprint(canary_routes())
    return app


def test_personal_values_never_reach_the_database_or_the_logs(canary_app, database_url,
                                                             log_stream):
    canary = Canary()
    for produce in PRODUCERS:
        produce(canary_app, canary)
    assert len(canary.tracked) > 20

    with canary_app.app_context():
        haystacks = {"database": database_bytes(database_url), "logs": log_bytes(log_stream)}
        assert len(haystacks["database"]) > 0
        found = leaks(canary.tracked, haystacks)
        assert not found, "personal values in clear: " + "; ".join(found)
        missing = uncovered_fields()
        assert not missing, f"no canary value in {missing}: add a producer to PRODUCERS"

        indexes = db.session.execute(select(
            Citizen.health_id_bidx, Citizen.phone_bidx, Citizen.social_insurance_code_bidx,
        )).all()
        stored = [value for row in indexes for value in row if value is not None]
        assert stored
        assert all(len(value) == 32 for value in stored)
        unkeyed = {hashlib.sha256(v.encode()).digest() for v in canary.tracked}
        joined = b"".join(stored)
        found = leaks(canary.tracked, {"blind indexes": joined})
        assert not found, found
        assert not unkeyed & set(stored)
        db.session.remove()


def test_the_scan_finds_a_planted_value(canary_app, database_url, log_stream):
    """The check itself works: a value written in clear or logged is found, in either form."""
    import logging

    canary = Canary()
    name = canary.name()
    with canary_app.app_context():
        # Practitioners are stored in clear (public register): a stand-in for a leaking table.
        from registry.models import Practitioner

        db.session.add(Practitioner(full_name=unicodedata.normalize("NFD", name),
                                    practising_certificate=secrets.token_hex(6),
                                    profession="doctor"))
        db.session.commit()
        assert leaks([name], {"database": database_bytes(database_url)})
    ethnicity = canary.ethnicity()
    logging.getLogger("phr.test.canary").warning("oops %s", ethnicity)
    assert leaks([ethnicity], {"logs": log_bytes(log_stream)})
