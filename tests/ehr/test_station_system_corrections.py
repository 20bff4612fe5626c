"""A station's system client holds the same facility-bound rights over doses as its staff
(issue 15): it corrects and retracts the doses its own facility recorded, no one else's."""

from __future__ import annotations

import uuid
from typing import Any

from tests.ehr.conftest import STATION
from tests.ehr.samples import SAMPLES
from tests.support.auth import make_facility, station_client, station_token


def url(citizen: uuid.UUID, *tail: str) -> str:
    return "/".join([f"/api/v1/citizens/{citizen}/immunizations", *tail])


def other_station(client: Any, app: Any) -> dict[str, str]:
    facility = make_facility(app)
    token = station_token(client, app,
                          oauth_client=station_client(app, facility=facility, scopes=STATION)[0])
    return token.headers


def _recorded(client: Any, world: Any) -> Any:
    created = client.post(url(world.patient), json=SAMPLES["immunizations"][0],
                          headers=world.headers("station"))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["source"] == "station"
    return created


def test_the_system_corrects_its_own_dose(client, world):
    created = _recorded(client, world)
    entry_url = url(world.patient, created.get_json()["id"])
    station = world.headers("station")
    assert client.patch(entry_url, json={"lot_number": "TD-2"}, headers=station).status_code == 428
    stale = client.patch(entry_url, json={"lot_number": "TD-2"},
                         headers={**station, "If-Match": '"stale"'})
    assert stale.status_code == 412
    lot = client.patch(entry_url, json={"lot_number": "TD-2611-02"},
                       headers={**station, "If-Match": created.headers["ETag"]})
    assert lot.status_code == 200, lot.get_json()
    assert lot.get_json()["data"]["lot_number"] == "TD-2611-02"
    assert lot.get_json()["version"] == 2
    # A new date is a new clinical date: decided again, on the same (own) dose.
    day = client.patch(entry_url, json={"occurrence_date": "2024-01-02"},
                       headers={**station, "If-Match": lot.headers["ETag"]})
    assert day.status_code == 200, day.get_json()
    assert day.get_json()["clinical_date"] == "2024-01-02"
    versions = client.get(f"{entry_url}/versions", headers=station).get_json()
    assert [v["version"] for v in versions["versions"]] == [2, 1]


def test_the_system_retracts_its_own_dose(client, world):
    created = _recorded(client, world)
    retracted = client.post(url(world.patient, created.get_json()["id"], "entered-in-error"),
                            json={"reason": "Ghi nhầm trẻ cùng tên"},
                            headers=world.headers("station"))
    assert retracted.status_code == 200, retracted.get_json()
    assert retracted.get_json()["status"] == "entered-in-error"
    listed = client.get(url(world.patient), headers=world.headers("station")).get_json()
    assert listed["items"] == []


def test_another_facilitys_system_gets_404(client, app, world):
    created = _recorded(client, world)
    other = other_station(client, app)
    entry_url = url(world.patient, created.get_json()["id"])
    patched = client.patch(entry_url, json={"lot_number": "X-1"},
                           headers={**other, "If-Match": created.headers["ETag"]})
    assert patched.status_code == 404
    retracted = client.post(f"{entry_url}/entered-in-error", json={"reason": "không phải"},
                            headers=other)
    assert retracted.status_code == 404
    current = client.get(entry_url, headers=world.headers("station")).get_json()
    assert current["version"] == 1
    assert current["status"] == "current"


def test_the_system_cannot_correct_a_clinicians_dose(client, world):
    created = client.post(url(world.patient), json=SAMPLES["immunizations"][0],
                          headers=world.headers("doctor"))
    entry_url = url(world.patient, created.get_json()["id"])
    patched = client.patch(entry_url, json={"lot_number": "X-1"},
                           headers=world.headers("station",
                                                 **{"If-Match": created.headers["ETag"]}))
    assert patched.status_code == 404


def test_staff_and_system_of_one_station_share_its_doses(client, world, vaccinator):
    created = _recorded(client, world)
    patched = client.patch(url(world.patient, created.get_json()["id"]),
                           json={"lot_number": "TD-2611-03"},
                           headers=world.headers("vaccinator",
                                                 **{"If-Match": created.headers["ETag"]}))
    assert patched.status_code == 200, patched.get_json()


def test_a_system_token_without_update_scope_is_refused(client, app, world):
    created = _recorded(client, world)
    reader = station_token(client, app, facility=world.station,
                           scopes="system/Immunization.crs")
    patched = client.patch(url(world.patient, created.get_json()["id"]),
                           json={"lot_number": "X-1"},
                           headers={**reader.headers, "If-Match": created.headers["ETag"]})
    assert patched.status_code == 403
