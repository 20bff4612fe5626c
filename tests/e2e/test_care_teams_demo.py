"""Issue 15 over the demo world, as its users would: real logins (authorization code + PKCE
through the login form; client credentials for the station's system), the real CLI.

bs.huong's panel lists her registered people with the right flags and nobody else; a new
registration appears there and in her inbox; the station's worklist for the coming 30 days
lists the demo infant's due and overdue doses, as JSON and CSV; the directory finds "Hương" from
"huong" and a consent is granted to a practitioner found through it; a citizen adds a 2021
COVID-19 dose that shows as unverified until station staff verify it; `run-reminders --today`
past an adult's exam date sends one periodic-exam reminder (twice run: still one).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import db
from tests.support.auth import ClientInfo, Login, bearer, code_for, exchange, station_token

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def demo(app, tmp_path) -> dict[str, Any]:
    out = tmp_path / "demo.json"
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


def _login(client, demo, person: dict[str, Any], *, staff: bool) -> dict[str, str]:
    clients = demo["clients"]
    if staff:
        info = ClientInfo(clients["clinic"]["client_id"], clients["clinic"]["redirect_uri"],
                          clients["clinic"]["client_secret"])
        scope = "openid user/*.cruds"
    else:
        info = ClientInfo(clients["mobile"]["client_id"], clients["mobile"]["redirect_uri"])
        scope = "openid patient/*.cruds"
    login = Login(account_id=uuid.uuid4(), role="", username=person["username"],
                  password=person["password"])
    code, verifier = code_for(client, info, login, scope=scope)
    answer = exchange(client, info, code, verifier)
    assert answer.status_code == 200, answer.get_json()
    return bearer(answer.get_json()["access_token"])


def _by_role(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["demo_role"]: item for item in items}


def test_care_teams_over_the_demo_world(app, client, demo):
    citizens, staff = _by_role(demo["citizens"]), _by_role(demo["practitioners"])
    huong = _login(client, demo, staff["family-doctor"], staff=True)

    # The panel: her three registered people, the infant flagged for an overdue dose.
    panel = client.get("/api/v1/me/patients", headers=huong)
    assert panel.status_code == 200, panel.get_json()
    people = {item["citizen_id"]: item for item in panel.get_json()["items"]}
    assert set(people) == {citizens[r]["id"] for r in ("adult-chronic", "parent", "infant")}
    flags = {item["citizen_id"]: {f["code"] for f in item["flags"]} for item in people.values()}
    assert flags[citizens["infant"]["id"]] == {"vaccination-overdue"}
    assert flags[citizens["adult-chronic"]["id"]] == set()  # measured 3 days ago, exam in 60

    # A new registration (the stranger chooses her, found through the directory).
    stranger = _login(client, demo, citizens["stranger"], staff=False)
    found = client.get("/api/v1/practitioners", headers=stranger, query_string={"q": "huong"})
    assert found.status_code == 200, found.get_json()
    hits = [p for p in found.get_json()["items"] if p["id"] == staff["family-doctor"]["id"]]
    assert hits, found.get_json()
    doctor = hits[0]
    assert doctor["full_name"] == staff["family-doctor"]["full_name"]
    facility = doctor["memberships"][0]["facility"]["id"]
    chosen = client.put(f"/api/v1/citizens/{citizens['stranger']['id']}/family-doctor",
                        headers={**stranger, **JSON},
                        json={"practitioner_id": doctor["id"], "facility_id": facility})
    assert chosen.status_code == 200, chosen.get_json()
    listed = {i["citizen_id"] for i in client.get("/api/v1/me/patients",
                                                  headers=huong).get_json()["items"]}
    assert citizens["stranger"]["id"] in listed
    inbox = client.get("/api/v1/me/notifications", headers=huong).get_json()["items"]
    assert "family-doctor-changed" in {n["trigger"] for n in inbox}

    # A consent to the other doctor, found through the directory.
    other = client.get("/api/v1/practitioners", headers=stranger,
                       query_string={"q": staff["other-doctor"]["full_name"].split()[-1]})
    [other_doctor] = [p for p in other.get_json()["items"]
                      if p["id"] == staff["other-doctor"]["id"]]
    granted = client.post(f"/api/v1/citizens/{citizens['stranger']['id']}/consents",
                          headers={**stranger, **JSON},
                          json={"grantee": {"type": "practitioner", "id": other_doctor["id"]},
                                "sections": ["allergies"], "access": "read"})
    assert granted.status_code == 201, granted.get_json()
    duc = _login(client, demo, staff["other-doctor"], staff=True)
    assert client.get(f"/api/v1/citizens/{citizens['stranger']['id']}/allergies",
                      headers=duc).status_code == 200


def test_the_station_worklist_and_a_verified_book_dose(app, client, demo):
    citizens, staff = _by_role(demo["citizens"]), _by_role(demo["practitioners"])
    station = demo["stations"][0]
    system = station_token(client, app, oauth_client=ClientInfo(
        station["client_id"], None, station["client_secret"]))
    url = f"/api/v1/facilities/{station['facility_id']}/immunization-worklist"
    worklist = client.get(url, headers=bearer(system))
    assert worklist.status_code == 200, worklist.get_json()
    infant = citizens["infant"]["id"]
    rows = [child for village in worklist.get_json()["villages"]
            for child in village["children"] if child["child"]["id"] == infant]
    assert rows, worklist.get_json()
    statuses = {dose["status"] for dose in rows[0]["doses"]}
    assert "overdue" in statuses
    printable = client.get(url, headers={**bearer(system), "Accept": "text/csv"})
    assert printable.status_code == 200
    assert printable.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(printable.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(table) - 1 == sum(len(child["doses"]) for village in
                                 worklist.get_json()["villages"] for child in village["children"])

    # The adult adds a 2021 COVID-19 dose from the book: unverified until station staff check.
    adult = _login(client, demo, citizens["adult-chronic"], staff=False)
    base = f"/api/v1/citizens/{citizens['adult-chronic']['id']}"
    reported = client.post(base + "/immunizations", headers={**adult, **JSON}, json={
        "vaccine_code": "COVID-19", "dose_number": 1, "occurrence_date": "2021-08-14"})
    assert reported.status_code == 201, reported.get_json()
    assert reported.get_json()["verification"]["status"] == "unverified"
    card = client.get(base + "/vaccination-card", headers=adult).get_json()
    assert "unverified" in json.dumps(card)
    vaccinator = _login(client, demo, staff["vaccinator"], staff=True)
    verified = client.post(f"{base}/immunizations/{reported.get_json()['id']}/verify",
                           headers={**vaccinator, "If-Match": reported.headers["ETag"]})
    assert verified.status_code == 200, verified.get_json()
    assert verified.get_json()["verification"]["status"] == "verified"


def test_one_periodic_exam_reminder_past_the_adult_exam_date(app, client, demo):
    from notifications.models import Notification

    adult = _by_role(demo["citizens"])["adult-chronic"]
    past = (dt.date.today() + dt.timedelta(days=61)).isoformat()  # noqa: DTZ011
    runner = app.test_cli_runner()

    def exam_reminders() -> int:
        with app.app_context():
            return int(db.session.scalar(select(func.count()).select_from(Notification).where(
                Notification.trigger == "periodic-exam-due",
                Notification.subject_citizen_id == uuid.UUID(adult["id"]))))

    for _ in range(2):
        result = runner.invoke(args=["notifications", "run-reminders", "--today", past])
        assert result.exit_code == 0, result.output
        assert exam_reminders() == 1
