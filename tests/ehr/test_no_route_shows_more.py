"""DESIGN.md §5 "No route shows more": export, summary, lists and single reads of the same
caller return the same entries.

A world built over HTTP with real tokens: an adult with a chronic record (a restricted
condition written under a consent, an entry entered in error, corrections, a self-reported
entry whose first version was restricted, an observation outside a consent's data period),
a 13-year-old with a mental-health entry, an infant with doses, an unrelated adult. For every
identity × every person:

- the entries the section lists return (entered-in-error ones asked for) are exactly those a
  single read returns 200 for;
- an export, when the caller may export, holds exactly those entries, each with exactly the
  earlier versions its versions route returns;
- the summary and the immunization schedule name no entry outside them;
- an identity with no relationship gets nothing from any of these routes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from consent.models import Guardianship
from core.db import db, utcnow
from registry.services import assign_family_doctor, create_facility
from tests.ehr.conftest import STATION
from tests.ehr.samples import NOW_UTC, SAMPLES, TODAY, YESTERDAY
from tests.support.auth import (
    facility_code,
    make_citizen,
    make_facility,
    make_practitioner,
    station_client,
    station_token,
    token_for,
)

SECTIONS = sorted(SAMPLES)
DENIED = (403, 404)


@dataclass
class Person:
    id: uuid.UUID
    born: dt.date
    entries: dict[str, str] = field(default_factory=dict)  # label → entry id
    sections: dict[str, str] = field(default_factory=dict)  # entry id → section


@dataclass
class MatrixWorld:
    people: dict[str, Person]
    tokens: dict[str, dict[str, str]]  # identity → headers


def _years_ago(years: int) -> dt.date:
    return TODAY.replace(year=TODAY.year - years) - dt.timedelta(days=40)


def _create(client: Any, person: Person, section: str, body: dict, headers: dict,
            label: str) -> tuple[str, str]:
    response = client.post(f"/api/v1/citizens/{person.id}/{section}", json=body,
                           headers=headers)
    assert response.status_code == 201, (label, response.get_json())
    entry_id = response.get_json()["id"]
    person.entries[label] = entry_id
    person.sections[entry_id] = section
    return entry_id, response.headers["ETag"]


def _relate(app: Any, guardian: uuid.UUID, dependant: uuid.UUID, *, kind: str,
            categories: list[str]) -> None:
    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=guardian, dependant_citizen_id=dependant,
            kind=kind, relationship="mother" if kind == "minor" else "relative",
            categories=categories, valid_from=utcnow() - dt.timedelta(days=30),
            created_via="station"))
        db.session.commit()


@pytest.fixture
def matrix_world(app: Any, client: Any) -> MatrixWorld:
    station = make_facility(app)
    hospital = make_facility(app, kind="hospital")
    with app.app_context():
        elsewhere = create_facility(
            session=db.session, code=facility_code(),
            kind="commune-health-station", name="Trạm Y tế xã Khác", province_code="27",
            district_code="260", commune_code="09340").id
        db.session.commit()
    family_doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
    other_doctor = make_practitioner(app, facility=hospital, full_name="Trần Văn Đức")
    consent_doctor = make_practitioner(app, facility=hospital, full_name="Lê Minh Tâm")
    people = {
        "adult": Person(make_citizen(app, full_name="Phạm Văn Thắng",
                                     date_of_birth=dt.date(1961, 3, 14)), dt.date(1961, 3, 14)),
        "teen": Person(make_citizen(app, full_name="Nguyễn Thu Hà", sex="female",
                                    date_of_birth=_years_ago(13)), _years_ago(13)),
        "infant": Person(make_citizen(app, full_name="Nguyễn Minh Khôi",
                                      date_of_birth=TODAY - dt.timedelta(days=150)),
                         TODAY - dt.timedelta(days=150)),
        "stranger": Person(make_citizen(app, full_name="Hoàng Thị Thu Trang", sex="female",
                                        date_of_birth=dt.date(1988, 6, 25)),
                           dt.date(1988, 6, 25)),
    }
    parent = make_citizen(app, full_name="Đỗ Thị Lan Anh", sex="female",
                          date_of_birth=dt.date(1985, 11, 2))
    proxy_plain = make_citizen(app, full_name="Phạm Thị Mai", sex="female",
                               date_of_birth=dt.date(1990, 1, 9))
    proxy_named = make_citizen(app, full_name="Phạm Văn Long", date_of_birth=dt.date(1987, 4, 1))
    with app.app_context():
        for who in ("adult", "teen", "infant"):
            assign_family_doctor(session=db.session, citizen_id=people[who].id,
                                 practitioner_id=family_doctor, facility_id=station,
                                 changed_by="test")
        db.session.commit()
    _relate(app, parent, people["infant"].id, kind="minor", categories=[])
    _relate(app, parent, people["teen"].id, kind="minor", categories=[])
    _relate(app, proxy_plain, people["adult"].id, kind="proxy", categories=[])
    _relate(app, proxy_named, people["adult"].id, kind="proxy", categories=["mental-health"])

    def user(**kwargs: Any) -> dict[str, str]:
        return token_for(client, app, **kwargs).headers

    tokens = {
        "adult": user(citizen=people["adult"].id),
        "teen": user(citizen=people["teen"].id),
        "stranger": user(citizen=people["stranger"].id),
        "parent": user(citizen=parent),
        "proxy_plain": user(citizen=proxy_plain),
        "proxy_named": user(citizen=proxy_named),
        "family_doctor": user(role="practitioner", practitioner=family_doctor),
        "other_doctor": user(role="practitioner", practitioner=other_doctor),
        "consent_doctor": user(role="practitioner", practitioner=consent_doctor),
        "vaccinator": user(role="station", facility=station),
        "other_commune_staff": user(role="station", facility=elsewhere),
        "station_system": station_token(
            client, app, oauth_client=station_client(app, facility=station,
                                                     scopes=STATION)[0]).headers,
    }

    # The adult grants a hospital doctor conditions, observations and allergies, mental health
    # named, read-write, for data from 2024 on.
    granted = client.post(f"/api/v1/citizens/{people['adult'].id}/consents",
                          headers=tokens["adult"], json={
                              "grantee": {"type": "practitioner", "id": str(consent_doctor)},
                              "sections": ["conditions", "observations", "allergies"],
                              "categories": ["mental-health"], "access": "read-write",
                              "data_from": "2024-01-01"})
    assert granted.status_code == 201, granted.get_json()

    adult, teen, infant, stranger = (people[k] for k in ("adult", "teen", "infant", "stranger"))
    doctor, system, nurse = tokens["family_doctor"], tokens["station_system"], tokens["vaccinator"]
    _create(client, adult, "allergies", SAMPLES["allergies"][0], doctor, "allergy")
    retracted, _ = _create(client, adult, "allergies",
                           {"substance": "Tôm", "category": "food"}, doctor, "allergy-retracted")
    response = client.post(f"/api/v1/citizens/{adult.id}/allergies/{retracted}/entered-in-error",
                           json={"reason": "Nhập nhầm người"}, headers=doctor)
    assert response.status_code == 200, response.get_json()
    condition, etag = _create(client, adult, "conditions", SAMPLES["conditions"][0], doctor,
                              "hypertension")
    response = client.patch(f"/api/v1/citizens/{adult.id}/conditions/{condition}",
                            json={"clinical_status": "remission"},
                            headers={**doctor, "If-Match": etag})
    assert response.status_code == 200, response.get_json()
    _create(client, adult, "conditions",
            {"icd10_code": "F32.0", "clinical_status": "active", "onset_date": "2025-02-10"},
            tokens["consent_doctor"], "depression")
    _create(client, adult, "observations", SAMPLES["observations"][0], doctor, "bp-recent")
    _create(client, adult, "observations",
            {**SAMPLES["observations"][0], "effective_at": "2023-05-01T08:00:00+07:00"},
            doctor, "bp-2023")
    _create(client, adult, "medications", SAMPLES["medications"][0], doctor, "amlodipine")
    _create(client, adult, "encounters", SAMPLES["encounters"][0], doctor, "visit")
    # Self-reported, restricted at first, then corrected to normal: version 1 stays restricted.
    history, etag = _create(client, adult, "history",
                            {**SAMPLES["history"][0], "sensitivity": "mental-health"},
                            tokens["adult"], "history")
    response = client.patch(f"/api/v1/citizens/{adult.id}/history/{history}",
                            json={"sensitivity": "normal", "status": "never"},
                            headers={**tokens["adult"], "If-Match": etag})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sensitivity"] == "normal"
    _create(client, adult, "immunizations", SAMPLES["immunizations"][0], system, "td")

    _create(client, teen, "history",
            {"category": "other-risk", "description": "Tư vấn tâm lý học đường",
             "sensitivity": "mental-health"}, tokens["teen"], "counselling")
    _create(client, teen, "allergies", SAMPLES["allergies"][0], doctor, "allergy")
    _create(client, teen, "immunizations", SAMPLES["immunizations"][0], nurse, "td")

    for label, vaccine in (("bcg", "BCG"), ("hepb", "HEPB")):
        _create(client, infant, "immunizations",
                {"vaccine_code": vaccine, "dose_number": 1, "occurrence_date": YESTERDAY,
                 "lot_number": f"{vaccine}-2611"}, system if label == "bcg" else nurse, label)
    _create(client, infant, "observations",
            {"kind": "body-weight", "value": 6.1, "unit": "kg", "effective_at": NOW_UTC},
            doctor, "weight")
    rash, _ = _create(client, infant, "allergies", {"substance": "Sữa bò", "category": "food"},
                      doctor, "milk")
    response = client.post(f"/api/v1/citizens/{infant.id}/allergies/{rash}/entered-in-error",
                           json={"reason": "Nhầm trẻ"}, headers=doctor)
    assert response.status_code == 200

    _create(client, stranger, "allergies", {"substance": "Tôm", "category": "food"},
            tokens["stranger"], "allergy")
    _create(client, stranger, "observations", SAMPLES["observations"][0], tokens["stranger"],
            "bp")
    _create(client, stranger, "immunizations", SAMPLES["immunizations"][0], system, "td")
    return MatrixWorld(people=people, tokens=tokens)


@dataclass
class Seen:
    listed: set[str] = field(default_factory=set)
    lists_permitted: int = 0
    read: set[str] = field(default_factory=set)
    versions: dict[str, list[int]] = field(default_factory=dict)
    export: dict[str, list[int]] | None = None  # entry id → earlier version numbers
    summary: set[str] | None = None
    schedule: set[str] | None = None


def _entry_ids_in(payload: Any, known: set[str]) -> set[str]:
    """Every known entry id anywhere in a payload (views, schedule doses...)."""
    found: set[str] = set()
    if isinstance(payload, dict):
        for value in payload.values():
            found |= _entry_ids_in(value, known)
    elif isinstance(payload, list):
        for value in payload:
            found |= _entry_ids_in(value, known)
    elif isinstance(payload, str) and payload in known:
        found.add(payload)
    return found


def _look(client: Any, headers: dict[str, str], person: Person, problems: list[str],
          label: str) -> Seen:
    seen = Seen()
    base = f"/api/v1/citizens/{person.id}"
    known = set(person.sections)
    for section in SECTIONS:
        response = client.get(f"{base}/{section}?include_entered_in_error=true&limit=200",
                              headers=headers)
        if response.status_code == 200:
            seen.lists_permitted += 1
            seen.listed |= {item["id"] for item in response.get_json()["items"]}
        elif response.status_code not in DENIED:
            problems.append(f"{label} list {section}: {response.status_code}")
    for entry_id, section in person.sections.items():
        response = client.get(f"{base}/{section}/{entry_id}", headers=headers)
        versions = client.get(f"{base}/{section}/{entry_id}/versions", headers=headers)
        if response.status_code == 200:
            seen.read.add(entry_id)
            if versions.status_code != 200:
                problems.append(f"{label} versions of a readable {section} entry: "
                                f"{versions.status_code}")
            else:
                seen.versions[entry_id] = sorted(
                    v["version"] for v in versions.get_json()["versions"])
        else:
            if response.status_code not in DENIED or versions.status_code not in DENIED:
                problems.append(f"{label} read {section}: {response.status_code}, versions "
                                f"{versions.status_code}")
    response = client.get(f"{base}/export", headers=headers)
    if response.status_code == 200:
        seen.export = {}
        for section, items in response.get_json()["sections"].items():
            for item in items:
                if item["section"] != section:
                    problems.append(f"{label} export: {item['id']} under {section}")
                seen.export[item["id"]] = sorted(v["version"] for v in item["earlier_versions"])
    elif response.status_code not in DENIED:
        problems.append(f"{label} export: {response.status_code}")
    for path in ("summary", "immunization-schedule"):
        response = client.get(f"{base}/{path}", headers=headers)
        if response.status_code == 200:
            ids = _entry_ids_in(response.get_json(), known)
            if path == "summary":
                seen.summary = ids
            else:
                seen.schedule = ids
        elif response.status_code not in DENIED:
            problems.append(f"{label} {path}: {response.status_code}")
    return seen


IDENTITIES = ("adult", "teen", "stranger", "parent", "proxy_plain", "proxy_named",
              "family_doctor", "other_doctor", "consent_doctor", "vaccinator",
              "other_commune_staff", "station_system")

# Who relates to whom in the world (anything else: no relationship, nothing shown).
RELATED = {
    "adult": {"adult"}, "teen": {"teen"}, "stranger": {"stranger"},
    "parent": {"infant", "teen"}, "proxy_plain": {"adult"}, "proxy_named": {"adult"},
    "family_doctor": {"adult", "teen", "infant"}, "other_doctor": set(),
    "consent_doctor": {"adult"},
    # Every station reads (and records) anyone's immunizations: its public-health remit.
    "vaccinator": {"adult", "teen", "infant", "stranger"},
    "other_commune_staff": {"adult", "teen", "infant", "stranger"},
    "station_system": {"adult", "teen", "infant", "stranger"},
}


def test_no_route_shows_more_than_another(client, matrix_world):
    world = matrix_world
    problems: list[str] = []
    seen: dict[tuple[str, str], Seen] = {}
    for identity in IDENTITIES:
        for target, person in world.people.items():
            label = f"{identity}→{target}"
            look = _look(client, world.tokens[identity], person, problems, label)
            seen[(identity, target)] = look
            if look.listed != look.read:
                problems.append(f"{label}: lists {_names(person, look.listed)} ≠ reads "
                                f"{_names(person, look.read)}")
            if look.export is not None:
                if set(look.export) != look.read:
                    problems.append(f"{label}: export {_names(person, set(look.export))} ≠ "
                                    f"reads {_names(person, look.read)}")
                for entry_id, earlier in look.export.items():
                    if earlier != look.versions.get(entry_id):
                        problems.append(f"{label}: export versions of "
                                        f"{_names(person, {entry_id})} {earlier} ≠ versions "
                                        f"route {look.versions.get(entry_id)}")
            for part in ("summary", "schedule"):
                shown = getattr(look, part)
                if shown is not None and not shown <= look.read:
                    problems.append(f"{label}: {part} shows {_names(person, shown - look.read)}")
            if target not in RELATED[identity]:
                opened = [name for name, value in (
                    ("lists", look.lists_permitted), ("reads", look.read),
                    ("export", look.export is not None), ("summary", look.summary is not None),
                    ("schedule", look.schedule is not None)) if value]
                if opened:
                    problems.append(f"{label}: no relationship, yet {opened} answered")
    assert not problems, "\n".join(problems)
    _check_the_world_is_not_vacuous(world, seen)


def _names(person: Person, ids: set[str]) -> list[str]:
    labels = {entry_id: label for label, entry_id in person.entries.items()}
    return sorted(labels.get(entry_id, entry_id) for entry_id in ids)


def _check_the_world_is_not_vacuous(world: MatrixWorld, seen: dict[tuple[str, str], Seen]
                                    ) -> None:
    """The cases the matrix exists for are really there (pinned, so the test cannot pass by
    everyone seeing nothing)."""
    adult, teen = world.people["adult"], world.people["teen"]

    def read(identity: str, target: str) -> list[str]:
        return _names(world.people[target], seen[(identity, target)].read)

    everything = sorted(adult.entries)
    assert read("adult", "adult") == everything
    assert seen[("adult", "adult")].export is not None
    history = adult.entries["history"]
    assert seen[("adult", "adult")].versions[history] == [1]
    # A proxy without categories: no restricted condition, and not the restricted version 1.
    plain = [label for label in everything if label != "depression"]
    assert read("proxy_plain", "adult") == plain
    assert seen[("proxy_plain", "adult")].export is not None
    assert seen[("proxy_plain", "adult")].versions[history] == []
    assert read("proxy_named", "adult") == everything
    assert seen[("proxy_named", "adult")].versions[history] == [1]
    # The family doctor: everything normal, entered-in-error included, no export.
    assert read("family_doctor", "adult") == plain
    assert seen[("family_doctor", "adult")].export is None
    # The consent: its sections, mental health named, clinical dates from 2024 only (the
    # hypertension dates from 2015, the allergies have no date, one reading is from 2023).
    assert read("consent_doctor", "adult") == ["bp-recent", "depression"]
    # A guardian of a 13-year-old: not her mental-health entry, in no route.
    assert read("parent", "teen") == ["allergy", "td"]
    assert seen[("parent", "teen")].export is not None
    assert read("teen", "teen") == sorted(teen.entries)
    assert read("parent", "infant") == sorted(world.people["infant"].entries)
    # Stations: immunizations of anyone, nothing else.
    for station in ("vaccinator", "other_commune_staff", "station_system"):
        assert read(station, "stranger") == ["td"]
        assert read(station, "infant") == ["bcg", "hepb"]
        assert seen[(station, "infant")].schedule == {
            world.people["infant"].entries["bcg"], world.people["infant"].entries["hepb"]}
