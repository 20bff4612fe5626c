"""The record API end to end over HTTP, with real tokens, database and crypto."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid

import pytest

from tests.ehr.conftest import count_entries
from tests.ehr.samples import BAD, BAD_PATCHES, SAMPLES, YESTERDAY
from tests.support.auth import make_client, token_for
from tests.support.sql_log import statements

CITIZEN_APP_SCOPES = "openid profile offline_access patient/*.cruds"  # phr-mobile, phr-portal

SECTIONS = sorted(SAMPLES)


def base(citizen: uuid.UUID, section: str) -> str:
    return f"/api/v1/citizens/{citizen}/{section}"


@pytest.mark.parametrize("section", SECTIONS)
def test_section_lifecycle(client, world, section):
    body, patch, (field, expected) = SAMPLES[section]
    doctor = world.headers("doctor")
    url = base(world.patient, section)

    created = client.post(url, json=body, headers=doctor)
    assert created.status_code == 201, created.get_json()
    entry = created.get_json()
    assert entry["section"] == section
    assert entry["version"] == 1
    assert entry["status"] == "current"
    assert entry["source"] == "clinician"
    assert entry["author"]["name"] == "Nguyễn Thị Hương"
    assert created.headers["Location"].endswith(entry["id"])
    etag = created.headers["ETag"]

    listed = client.get(url, headers=doctor)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.get_json()["items"]] == [entry["id"]]

    read = client.get(f"{url}/{entry['id']}", headers=world.headers("patient"))
    assert read.status_code == 200
    assert read.get_json()["data"] == entry["data"]
    assert read.headers["ETag"] == etag

    no_precondition = client.patch(f"{url}/{entry['id']}", json=patch, headers=doctor)
    assert no_precondition.status_code == 428
    stale = client.patch(f"{url}/{entry['id']}", json=patch,
                         headers={**doctor, "If-Match": '"stale"'})
    assert stale.status_code == 412
    updated = client.patch(f"{url}/{entry['id']}", json=patch,
                           headers={**doctor, "If-Match": etag})
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["version"] == 2
    assert updated.get_json()["data"][field] == expected
    assert updated.headers["ETag"] != etag
    replayed_old_etag = client.patch(f"{url}/{entry['id']}", json=patch,
                                     headers={**doctor, "If-Match": etag})
    assert replayed_old_etag.status_code == 412

    versions = client.get(f"{url}/{entry['id']}/versions", headers=doctor).get_json()
    assert versions["current"]["version"] == 2
    assert [v["version"] for v in versions["versions"]] == [1]
    assert versions["versions"][0]["data"] == entry["data"]

    retracted = client.post(f"{url}/{entry['id']}/entered-in-error",
                            json={"reason": "Nhập nhầm bệnh nhân"}, headers=doctor)
    assert retracted.status_code == 200, retracted.get_json()
    assert retracted.get_json()["status"] == "entered-in-error"
    assert retracted.get_json()["entered_in_error"]["reason"] == "Nhập nhầm bệnh nhân"
    again = client.post(f"{url}/{entry['id']}/entered-in-error",
                        json={"reason": "lần nữa"}, headers=doctor)
    assert again.status_code == 409
    assert client.get(url, headers=doctor).get_json()["items"] == []
    with_retracted = client.get(url + "?include_entered_in_error=true", headers=doctor)
    assert [i["status"] for i in with_retracted.get_json()["items"]] == ["entered-in-error"]
    # Nothing is ever deleted: the entry and its two earlier versions are all still there.
    versions = client.get(f"{url}/{entry['id']}/versions", headers=doctor).get_json()
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    assert client.delete(f"{url}/{entry['id']}", headers=doctor).status_code == 405


@pytest.mark.parametrize(("case", "section", "body", "field"), BAD, ids=[b[0] for b in BAD])
def test_every_validation_rule_refuses_and_stores_nothing(app, client, world, case, section,
                                                          body, field):
    before = count_entries(app, world.patient)
    response = client.post(base(world.patient, section), json=body,
                           headers=world.headers("doctor"))
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["type"].endswith("validation-error")
    assert field in problem["errors"], problem["errors"]
    english = client.post(base(world.patient, section), json=body,
                          headers=world.headers("doctor", **{"Accept-Language": "en"}))
    assert english.get_json()["errors"][field] != problem["errors"][field]
    assert count_entries(app, world.patient) == before


@pytest.mark.parametrize(("case", "section", "patch", "field"), BAD_PATCHES,
                         ids=[b[0] for b in BAD_PATCHES])
def test_bad_patch_changes_nothing(client, world, case, section, patch, field):
    url = base(world.patient, section)
    body, _, _ = SAMPLES[section]
    created = client.post(url, json=body, headers=world.headers("doctor"))
    assert created.status_code == 201, created.get_json()
    entry_url = f"{url}/{created.get_json()['id']}"
    if_match = {"If-Match": created.headers["ETag"]}
    response = client.patch(entry_url, json=patch, headers=world.headers("doctor", **if_match))
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["type"].endswith("validation-error")
    assert field in problem["errors"], problem["errors"]
    english = client.patch(entry_url, json=patch,
                           headers=world.headers("doctor", **if_match, **{"Accept-Language": "en"}))
    assert english.status_code == 422
    assert english.get_json()["errors"][field] != problem["errors"][field]
    current = client.get(entry_url, headers=world.headers("doctor"))
    assert current.headers["ETag"] == created.headers["ETag"]
    assert current.get_json()["version"] == 1
    assert current.get_json()["data"] == created.get_json()["data"]
    assert current.get_json()["sensitivity"] == created.get_json()["sensitivity"]
    versions = client.get(entry_url + "/versions", headers=world.headers("doctor")).get_json()
    assert versions["versions"] == []


def test_entered_in_error_needs_a_reason(client, world):
    url = base(world.patient, "allergies")
    entry = client.post(url, json=SAMPLES["allergies"][0], headers=world.headers("doctor"))
    entry_id = entry.get_json()["id"]
    for body in ({}, {"reason": "  "}, {"reason": "x", "extra": 1}):
        response = client.post(f"{url}/{entry_id}/entered-in-error", json=body,
                               headers=world.headers("doctor"))
        assert response.status_code == 422


def test_etag_and_304_on_entries_and_lists(client, world):
    url = base(world.patient, "allergies")
    created = client.post(url, json=SAMPLES["allergies"][0], headers=world.headers("doctor"))
    entry_url = f"{url}/{created.get_json()['id']}"
    first = client.get(entry_url, headers=world.headers("patient"))
    again = client.get(entry_url,
                       headers=world.headers("patient", **{"If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304
    assert again.data == b""
    page = client.get(url, headers=world.headers("patient"))
    cached = client.get(url, headers=world.headers("patient",
                                                   **{"If-None-Match": page.headers["ETag"]}))
    assert cached.status_code == 304
    client.post(url, json={"substance": "Tôm", "category": "food"},
                headers=world.headers("doctor"))
    changed = client.get(url, headers=world.headers("patient",
                                                    **{"If-None-Match": page.headers["ETag"]}))
    assert changed.status_code == 200


def test_a_lists_etag_is_the_hash_of_the_json_it_sends(client, world):
    """Serialized once: the strong tag names the very bytes of the answer, and the same page
    read again (unchanged) has the same tag."""
    url = base(world.patient, "allergies")
    client.post(url, json=SAMPLES["allergies"][0], headers=world.headers("doctor"))
    page = client.get(url, headers=world.headers("patient"))
    assert page.status_code == 200
    assert page.data.endswith(b"\n")
    assert page.get_json()["items"]
    digest = hashlib.sha256(page.data.removesuffix(b"\n")).hexdigest()[:32]
    assert page.headers["ETag"] == f'"{digest}"'
    assert client.get(url, headers=world.headers("patient")).headers["ETag"] == f'"{digest}"'


def test_cursor_pagination_is_stable_and_complete(client, world):
    url = base(world.patient, "observations")
    for day in range(7):
        moment = (dt.datetime.now(dt.UTC) - dt.timedelta(days=day, hours=1)).isoformat()
        client.post(url, json={"kind": "heart-rate", "value": 60 + day, "unit": "/min",
                               "effective_at": moment}, headers=world.headers("doctor"))
    seen, cursor = [], None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url + query, headers=world.headers("patient")).get_json()
        seen.extend(item["data"]["value"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [60.0 + d for d in range(7)]
    tampered = client.get(url + "?cursor=AAAA" + cursor_tail(), headers=world.headers("patient"))
    assert tampered.status_code == 400
    assert tampered.get_json()["type"].endswith("invalid-cursor")
    assert client.get(url + "?limit=0", headers=world.headers("patient")).status_code == 400
    assert client.get(url + "?limit=1000", headers=world.headers("patient")).status_code == 400


def cursor_tail() -> str:
    return "Zm9v"


def test_fields_trims_the_payload(client, world):
    url = base(world.patient, "immunizations")
    client.post(url, json=SAMPLES["immunizations"][0], headers=world.headers("doctor"))
    page = client.get(url + "?fields=id,version,data.vaccine_code",
                      headers=world.headers("patient")).get_json()
    assert page["items"][0].keys() == {"id", "version", "data"}
    assert page["items"][0]["data"] == {"vaccine_code": "TD"}
    bad = client.get(url + "?fields=id,password", headers=world.headers("patient"))
    assert bad.status_code == 400


def test_delta_sync_returns_changes_and_retractions(client, world):
    url = base(world.patient, "allergies")
    doctor = world.headers("doctor")
    first = client.post(url, json=SAMPLES["allergies"][0], headers=doctor).get_json()
    synced_at = client.get(url, headers=world.headers("patient")).get_json()["items"][0][
        "updated_at"]
    second = client.post(url, json={"substance": "Tôm", "category": "food"},
                         headers=doctor).get_json()
    client.post(f"{url}/{first['id']}/entered-in-error", json={"reason": "trùng"}, headers=doctor)
    since = dt.datetime.fromisoformat(synced_at)
    delta = client.get(url, query_string={"updated_since": since.isoformat()},
                       headers=world.headers("patient")).get_json()
    changes = {item["id"]: item["status"] for item in delta["items"]}
    assert changes == {second["id"]: "current", first["id"]: "entered-in-error"}
    naive = client.get(url + "?updated_since=2026-01-01T00:00:00",
                       headers=world.headers("patient"))
    assert naive.status_code == 400


def test_idempotent_create_replays_100_times_in_sequence(app, client, world):
    url = base(world.patient, "immunizations")
    headers = world.headers("doctor", **{"Idempotency-Key": "vacc-2026-11-23-0001"})
    body = SAMPLES["immunizations"][0]
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201
    for _ in range(100):
        replay = client.post(url, json=body, headers=headers)
        assert replay.status_code == 201
        assert replay.get_json() == first.get_json()
        assert replay.headers["Idempotent-Replayed"] == "true"
    assert count_entries(app, world.patient, "immunizations") == 1
    other_body = {**body, "lot_number": "OTHER"}
    conflict = client.post(url, json=other_body, headers=headers)
    assert conflict.status_code == 422
    assert conflict.get_json()["type"].endswith("idempotency-key-reused")
    assert count_entries(app, world.patient, "immunizations") == 1


def test_a_new_key_is_looked_up_with_the_persons_facts(app, client, world):
    """Whether a key was used rides in the statement of the person's facts (issue 18): a
    create with a new key sends no lookup of its own; a retry reads the stored answer."""
    url = base(world.patient, "immunizations")
    headers = world.headers("doctor", **{"Idempotency-Key": "facts-ride-key-0001"})
    body = SAMPLES["immunizations"][0]
    with statements(app) as seen:
        first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    lookups = [s for s in seen if s.startswith("SELECT") and "idempotency_records" in s]
    assert len(lookups) == 1, lookups
    assert lookups[0].startswith("SELECT citizens.id")
    assert "key_used" in lookups[0]
    with statements(app) as seen:
        replay = client.post(url, json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert any(s.startswith("SELECT idempotency_records.") for s in seen), seen
    assert count_entries(app, world.patient, "immunizations") == 1


@pytest.mark.parametrize("person", ["another person", "nobody"])
def test_a_key_used_for_one_person_is_refused_for_another(app, client, world, person):
    """The key is the caller's, not the person's: used again on another person's route, or on
    a person who does not exist, it answers 422 and creates nothing."""
    headers = world.headers("doctor", **{"Idempotency-Key": "one-person-key-0001"})
    body = SAMPLES["immunizations"][0]
    assert client.post(base(world.patient, "immunizations"), json=body,
                       headers=headers).status_code == 201
    other = world.stranger if person == "another person" else uuid.uuid4()
    answer = client.post(base(other, "immunizations"), json=body, headers=headers)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["type"].endswith("idempotency-key-reused")
    assert count_entries(app, other, "immunizations") == 0


def test_idempotency_keys_are_scoped_to_client_and_account(app, client, world):
    """One key and one body, four callers: the family doctor and the patient on the same
    client, and the patient again on the phone app and on the portal. None replays another's
    answer; each caller's own retry replays its own."""
    url = base(world.patient, "allergies")
    body = SAMPLES["allergies"][0]
    key = {"Idempotency-Key": "shared-key-0001"}
    login = world.patient_token.login
    mobile = make_client(app, client_id="phr-mobile", redirect_uri="vn.gov.phr.app:/oauth/callback",
                         scopes=CITIZEN_APP_SCOPES)
    portal = make_client(app, client_id="phr-portal", redirect_uri="http://127.0.0.1:8080/callback",
                         scopes=CITIZEN_APP_SCOPES)
    callers = {
        "doctor on the test client": world.doctor_token,
        "patient on the test client": world.patient_token,
        "patient on phr-mobile": token_for(client, app, login=login, oauth_client=mobile),
        "patient on phr-portal": token_for(client, app, login=login, oauth_client=portal),
    }
    created: dict[str, str] = {}
    for who, token in callers.items():
        response = client.post(url, json=body, headers={**token.headers, **key})
        assert response.status_code == 201, (who, response.get_json())
        assert "Idempotent-Replayed" not in response.headers, who
        created[who] = response.get_json()["id"]
    assert len(set(created.values())) == len(callers), created
    assert count_entries(app, world.patient, "allergies") == len(callers)
    for who, token in callers.items():
        retry = client.post(url, json=body, headers={**token.headers, **key})
        assert retry.status_code == 201, (who, retry.get_json())
        assert retry.headers["Idempotent-Replayed"] == "true", who
        assert retry.get_json()["id"] == created[who], who
    assert count_entries(app, world.patient, "allergies") == len(callers)


def test_idempotent_create_50_concurrent_with_one_key(app, world):
    url = base(world.patient, "immunizations")
    headers = world.headers("doctor", **{"Idempotency-Key": "concurrent-key-0001"})
    body = SAMPLES["immunizations"][0]
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def post() -> None:
        local = app.test_client()
        start.wait()
        response = local.post(url, json=body, headers=headers)
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=post) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _ in results)
    assert len(results) == 50
    assert all(status < 500 for status in statuses), statuses
    assert set(statuses) == {201}, statuses
    ids = {body["id"] for _, body in results}
    assert len(ids) == 1
    assert count_entries(app, world.patient, "immunizations") == 1


def test_worker_dying_after_commit_is_answered_by_the_retry(app, client, world):
    """The first attempt commits and then dies before answering; the retry replays."""
    from sqlalchemy import event

    from core.db import db

    url = base(world.patient, "immunizations")
    headers = world.headers("doctor", **{"Idempotency-Key": "lost-answer-key-0001"})
    body = SAMPLES["immunizations"][0]
    died = []

    def die_after_commit(session):  # noqa: ANN001 - SQLAlchemy event signature
        if not died:
            died.append(True)
            raise SystemExit("worker killed after commit")

    with app.app_context():
        session_cls = db.session.session_factory.class_
    event.listen(session_cls, "after_commit", die_after_commit)
    try:
        with pytest.raises(SystemExit):
            client.post(url, json=body, headers=headers)
    finally:
        event.remove(session_cls, "after_commit", die_after_commit)
    assert count_entries(app, world.patient, "immunizations") == 1
    retry = client.post(url, json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert count_entries(app, world.patient, "immunizations") == 1


def test_a_server_process_killed_after_commit_is_answered_by_the_retry(
        app, world, database_url, tmp_path):
    """A real gunicorn worker commits the immunization with its idempotency record and dies
    (os._exit, tests/support/crash_server) before answering: the phone sees the connection
    drop. A fresh server process answers the retry with the original result, and the record
    holds one entry."""
    import requests
    from sqlalchemy import select

    from core.db import db
    from ehr.record_models import RecordEntry
    from tests.support.crash_server import CRASH_HEADER, running_server, wait_for_text

    path = base(world.patient, "immunizations")
    body = SAMPLES["immunizations"][0]
    headers = world.headers("doctor", **{"Idempotency-Key": "killed-worker-key-0001"})
    log = tmp_path / "server.log"
    with running_server(database_url, log) as server:
        with pytest.raises(requests.ConnectionError):
            requests.post(server + path, json=body, timeout=30,
                          headers={**headers, CRASH_HEADER: "after-commit"})
        wait_for_text(log, "exited with code 1")  # os._exit(1): the worker, not the client
    with app.app_context():
        stored = db.session.scalars(select(RecordEntry.id).where(
            RecordEntry.citizen_id == world.patient)).all()
    assert len(stored) == 1  # committed before the worker died

    with running_server(database_url, log) as server:
        retry = requests.post(server + path, json=body, headers=headers, timeout=30)
        assert retry.status_code == 201, retry.text
        assert retry.headers["Idempotent-Replayed"] == "true"
        answer = retry.json()
        assert answer["id"] == str(stored[0])
        assert retry.headers["Location"].endswith(f"{path}/{stored[0]}")
        # (requests asks for gzip, and a gzip answer carries the weak form of the tag)
        assert retry.headers["ETag"].removeprefix("W/") == f'"{stored[0]}.v1"'
        assert answer["data"]["lot_number"] == body["lot_number"]
        read = requests.get(server + f"{path}/{stored[0]}", headers=world.headers("doctor"),
                            timeout=30)
        assert read.status_code == 200
        assert {k: v for k, v in read.json().items() if k != "updated_at"} == {
            k: v for k, v in answer.items() if k != "updated_at"}
    assert count_entries(app, world.patient) == 1


def test_invalid_idempotency_key_is_refused(client, world):
    response = client.post(base(world.patient, "allergies"), json=SAMPLES["allergies"][0],
                           headers=world.headers("doctor", **{"Idempotency-Key": "bad key"}))
    assert response.status_code == 400


def test_batch_mixed_items_twice_stores_no_duplicates(app, client, world):
    yesterday = YESTERDAY
    good = {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": yesterday,
            "lot_number": "TD-1"}
    items = [
        {"client_item_id": "a1", "citizen_id": str(world.patient), **good},
        {"client_item_id": "a2", "citizen_id": str(world.patient), **good, "dose_number": 0},
        {"client_item_id": "a3", "citizen_id": str(uuid.uuid4()), **good},
        {"client_item_id": "a4", "citizen_id": str(world.stranger), **good},
        {"client_item_id": "a5", "citizen_id": "not-a-uuid", **good},
        {"client_item_id": "a1", "citizen_id": str(world.patient), **good},
        "not an object",
    ]
    first = client.post("/api/v1/immunizations/batch", json={"items": items},
                        headers=world.headers("station"))
    assert first.status_code == 200, first.get_json()
    results = first.get_json()["results"]
    assert [r["status"] for r in results] == [201, 422, 404, 201, 422, 422, 422]
    assert results[1]["problem"]["errors"]["dose_number"]
    assert count_entries(app, world.patient, "immunizations") == 1
    assert count_entries(app, world.stranger, "immunizations") == 1
    second = client.post("/api/v1/immunizations/batch", json={"items": items},
                         headers=world.headers("station"))
    statuses = [r["status"] for r in second.get_json()["results"]]
    assert statuses == [200, 422, 404, 200, 422, 422, 422]
    assert second.get_json()["results"][0]["entry"] == results[0]["entry"]
    assert count_entries(app, world.patient, "immunizations") == 1
    assert count_entries(app, world.stranger, "immunizations") == 1


def test_batch_limits(client, world):
    too_many = [{"client_item_id": f"i{n}", "citizen_id": str(world.patient)} for n in range(501)]
    assert client.post("/api/v1/immunizations/batch", json={"items": too_many},
                       headers=world.headers("station")).status_code == 422
    assert client.post("/api/v1/immunizations/batch", json={"items": []},
                       headers=world.headers("station")).status_code == 422


def test_a_batch_of_exactly_500_items_is_taken_whole_and_replays_whole(app, client, world):
    people = (world.patient, world.stranger, world.child)
    items = [{"client_item_id": f"outreach-{n:03d}", "citizen_id": str(people[n % 3]),
              "vaccine_code": "TD", "dose_number": 1 + (n // 3) % 10, "occurrence_date": YESTERDAY,
              "lot_number": f"TD-{n:03d}"} for n in range(500)]
    url = "/api/v1/immunizations/batch"
    first = client.post(url, json={"items": items}, headers=world.headers("station"))
    assert first.status_code == 200, first.get_json()
    answer = first.get_json()
    assert [r["status"] for r in answer["results"]] == [201] * 500
    assert [r["client_item_id"] for r in answer["results"]] == [i["client_item_id"] for i in items]
    assert answer["counts"] == {"created": 500, "replayed": 0, "failed": 0}
    assert [r["entry"]["citizen_id"] for r in answer["results"]] == [i["citizen_id"] for i in items]
    assert len({r["entry"]["id"] for r in answer["results"]}) == 500
    assert [count_entries(app, who, "immunizations") for who in people] == [167, 167, 166]

    again = client.post(url, json={"items": items}, headers=world.headers("station"))
    assert again.status_code == 200, again.get_json()
    replay = again.get_json()
    assert [r["status"] for r in replay["results"]] == [200] * 500
    assert replay["counts"] == {"created": 0, "replayed": 500, "failed": 0}
    assert [r["entry"] for r in replay["results"]] == [r["entry"] for r in answer["results"]]
    assert sum(count_entries(app, who, "immunizations") for who in people) == 500


def test_batch_items_are_decided_by_the_policy_for_each_caller(app, client, world):
    """The envelope needs a scope covering Immunization create; then each item gets the
    policy's answer for its citizen: a station creates, a citizen reports their own dose (a
    citizen-reported one, unverified until a station verifies it) and, for a stranger they have
    nothing to do with, gets the 404 of a person who does not exist; the family doctor creates
    for their patient only (the stranger: 404 likewise)."""
    def items(prefix: str) -> list[dict]:
        return [{"client_item_id": f"{prefix}-{n}", "citizen_id": str(who), "vaccine_code": "TD",
                 "dose_number": 1, "occurrence_date": YESTERDAY, "lot_number": "L-1"}
                for n, who in enumerate((world.patient, world.stranger))]

    url = "/api/v1/immunizations/batch"
    citizen = client.post(url, json={"items": items("c")}, headers=world.headers("patient"))
    assert citizen.status_code == 200, citizen.get_json()
    results = citizen.get_json()["results"]
    assert [r["status"] for r in results] == [201, 404]
    assert results[0]["entry"]["source"] == "citizen-reported"
    assert results[1]["problem"]["type"].endswith("not-found")
    assert "entry" not in results[1]
    assert count_entries(app, world.patient) == 1
    assert count_entries(app, world.stranger) == 0

    doctor = client.post(url, json={"items": items("d")}, headers=world.headers("doctor"))
    assert doctor.status_code == 200, doctor.get_json()
    assert [r["status"] for r in doctor.get_json()["results"]] == [201, 404]
    assert doctor.get_json()["results"][0]["entry"]["source"] == "clinician"

    station = client.post(url, json={"items": items("s")}, headers=world.headers("station"))
    assert [r["status"] for r in station.get_json()["results"]] == [201, 201]
    assert {r["entry"]["source"] for r in station.get_json()["results"]} == {"station"}
    # Reported by the person, recorded by the doctor and by the station.
    assert count_entries(app, world.patient) == 3
    assert count_entries(app, world.stranger) == 1

    vaccinations_only = token_for(client, app, login=world.stranger_token.login,
                                  scopes="openid patient/Immunization.rs")
    refused = client.post(url, json={"items": items("r")}, headers=vaccinations_only.headers)
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("insufficient-scope")
    assert count_entries(app, world.stranger) == 1


def _grant_conditions(client, world, *categories: str) -> None:
    """The patient lets the other doctor read and write conditions of these categories."""
    grant = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
              "sections": ["conditions"], "categories": list(categories),
              "access": "read-write"})
    assert grant.status_code == 201, grant.get_json()


def test_restricted_condition_gets_its_category_label(app, client, world):
    url = base(world.patient, "conditions")
    # A citizen cannot report diagnoses; the family doctor writing a mental-health diagnosis
    # needs a grant naming the category: both are refused, and nothing is stored.
    assert client.post(url, json={"icd10_code": "F32.0"},
                       headers=world.headers("patient")).status_code == 403
    assert client.post(url, json={"icd10_code": "F32.0"},
                       headers=world.headers("doctor")).status_code == 403
    assert client.post(url, json={"icd10_code": "F32.0", "sensitivity": "normal"},
                       headers=world.headers("doctor")).status_code == 403
    assert count_entries(app, world.patient) == 0

    # A clinician the patient named for mental health writes it: declared "normal" or not
    # declared at all, the F code labels the entry mental-health.
    _grant_conditions(client, world, "mental-health")
    other = world.headers("other_doctor")
    ids = []
    for declared in ({}, {"sensitivity": "normal"}):
        created = client.post(url, json={"icd10_code": "f320", **declared}, headers=other)
        assert created.status_code == 201, created.get_json()
        assert created.get_json()["sensitivity"] == "mental-health"
        assert created.get_json()["data"]["icd10_code"] == "F32.0"
        ids.append(created.get_json()["id"])
    # A correction cannot loosen it either.
    current = client.get(f"{url}/{ids[1]}", headers=other)
    loosened = client.patch(f"{url}/{ids[1]}", json={"sensitivity": "normal"},
                            headers={**other, "If-Match": current.headers["ETag"]})
    assert loosened.status_code == 200, loosened.get_json()
    assert loosened.get_json()["sensitivity"] == "mental-health"
    plain = client.post(url, json={"icd10_code": "I10"}, headers=other)
    assert plain.get_json()["sensitivity"] == "normal"

    for entry_id in ids:
        stored = client.get(f"{url}/{entry_id}", headers=world.headers("patient"))
        assert stored.status_code == 200
        assert stored.get_json()["sensitivity"] == "mental-health"
        # The family doctor cannot read it, by id, in the list or in the summary.
        assert client.get(f"{url}/{entry_id}", headers=world.headers("doctor")).status_code == 404
        assert client.get(f"{url}/{entry_id}/versions",
                          headers=world.headers("doctor")).status_code == 404
    listed = client.get(url, headers=world.headers("doctor"))
    assert [item["id"] for item in listed.get_json()["items"]] == [plain.get_json()["id"]]
    summary = client.get(f"/api/v1/citizens/{world.patient}/summary",
                         headers=world.headers("doctor")).get_json()
    assert [c["id"] for c in summary["active_conditions"]] == [plain.get_json()["id"]]
    body = client.get(url, headers=world.headers("doctor")).get_data(as_text=True)
    assert "F32" not in body  # test facility codes are digits, so this can only be the code


def test_a_restricted_diagnosis_cannot_be_relabelled_into_another_category(client, world):
    """An F (mental-health) diagnosis declared hiv-sti still carries mental-health: another
    restricted label would show it to a reader whose grant names only that other category."""
    _grant_conditions(client, world, "mental-health", "hiv-sti")
    url = base(world.patient, "conditions")
    created = client.post(url, json={"icd10_code": "F32.0", "sensitivity": "hiv-sti"},
                          headers=world.headers("other_doctor"))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["sensitivity"] == "mental-health"
    hiv_only = client.post(
        f"/api/v1/citizens/{world.patient}/consents", headers=world.headers("patient"),
        json={"grantee": {"type": "practitioner", "id": str(world.doctor_id)},
              "sections": ["conditions"], "categories": ["hiv-sti"], "access": "read"})
    assert hiv_only.status_code == 201, hiv_only.get_json()
    entry_url = f"{url}/{created.get_json()['id']}"
    assert client.get(entry_url, headers=world.headers("doctor")).status_code == 404
    # A writer may still restrict an entry whose codes are not restricted.
    tightened = client.post(url, json={"icd10_code": "I10", "sensitivity": "hiv-sti"},
                            headers=world.headers("other_doctor"))
    assert tightened.get_json()["sensitivity"] == "hiv-sti"


def test_citizen_reports_home_blood_pressure(client, world):
    body = {"kind": "blood-pressure", "systolic": 128, "diastolic": 82,
            "effective_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "method": "home"}
    response = client.post(base(world.patient, "observations"), json=body,
                           headers=world.headers("patient"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["source"] == "citizen-reported"


def test_glucose_in_mg_dl_is_stored_in_mmol_l(client, world):
    body = {"kind": "blood-glucose", "value": 126, "unit": "mg/dL",
            "effective_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}
    response = client.post(base(world.patient, "observations"), json=body,
                           headers=world.headers("doctor"))
    assert response.get_json()["data"]["unit"] == "mmol/L"
    assert response.get_json()["data"]["value"] == pytest.approx(7.0, abs=0.05)


def test_gzip_when_accepted(client, world):
    for _ in range(5):
        client.post(base(world.patient, "allergies"), json=SAMPLES["allergies"][0],
                    headers=world.headers("doctor"))
    response = client.get(base(world.patient, "allergies"),
                          headers=world.headers("patient", **{"Accept-Encoding": "gzip"}))
    assert response.headers.get("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]


def _audit(app, citizen_id):
    from sqlalchemy import select

    from consent.models import AuditEvent
    from core.db import db

    with app.app_context():
        return [(e.action, e.section, e.decision, e.rule, e.entry_id) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.citizen_id == citizen_id)
            .order_by(AuditEvent.seq))]


def test_every_read_write_and_denial_leaves_an_audit_event(app, client, world):
    url = base(world.patient, "allergies")
    created = client.post(url, json=SAMPLES["allergies"][0], headers=world.headers("doctor"))
    entry_id = uuid.UUID(created.get_json()["id"])
    client.get(f"{url}/{entry_id}", headers=world.headers("patient"))
    denied_list = client.get(url, headers=world.headers("other_doctor"))
    denied_entry = client.get(f"{url}/{entry_id}", headers=world.headers("other_doctor"))
    # No relationship to the patient: 404 for the list as for the entry (DESIGN.md §5).
    assert (denied_list.status_code, denied_entry.status_code) == (404, 404)
    events = _audit(app, world.patient)
    assert ("create", "allergies", "permit", "family-doctor", None) in events
    assert ("read", "allergies", "permit", "self", entry_id) in events
    denials = [e for e in events if e[2] == "deny"]
    assert len(denials) == 2
    assert {e[4] for e in denials} == {None, entry_id}


def test_numbers_must_be_numbers(client, world):
    body = {"kind": "heart-rate", "value": "72", "unit": "/min",
            "effective_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}
    response = client.post(base(world.patient, "observations"), json=body,
                           headers=world.headers("doctor"))
    assert response.status_code == 422
    assert "value" in response.get_json()["errors"]


def test_icd10_codes_are_stored_in_canonical_form(client, world):
    response = client.post(base(world.patient, "conditions"), json={"icd10_code": "e119"},
                           headers=world.headers("doctor"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["icd10_code"] == "E11.9"


def _batch_statements(app, client, world, items) -> tuple[list[dict], int]:
    with statements(app) as seen:
        response = client.post("/api/v1/immunizations/batch", json={"items": items},
                               headers=world.headers("station"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"], len(seen)


def test_batch_is_set_based_tells_guardians_and_keeps_every_audit_chain(app, client, world):
    """A batch costs the same statements for 3 items as for 24; each new entry notifies its
    citizen and, for a child, the guardian (once each); every decision is in a chain that
    still verifies."""
    from sqlalchemy import func, select

    from consent.models import AuditEvent, Guardianship
    from core.db import db
    from notifications.models import Notification

    with app.app_context():
        db.session.add(Guardianship(
            guardian_citizen_id=world.stranger, dependant_citizen_id=world.child, kind="minor",
            relationship="mother", categories=[], created_via="station",
            valid_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        ))
        db.session.commit()

    def items(prefix: str, count: int) -> list[dict]:
        people = [world.child, world.patient, world.child]
        return [{"client_item_id": f"{prefix}{n}", "citizen_id": str(people[n % 3]),
                 "vaccine_code": "TD", "dose_number": 1 + n // 3, "occurrence_date": YESTERDAY,
                 "lot_number": f"TD-{prefix}{n}"} for n in range(count)]

    small, small_statements = _batch_statements(app, client, world, items("s", 3))
    large, large_statements = _batch_statements(app, client, world, items("l", 24))
    assert {r["status"] for r in small + large} == {201}
    # (the second batch may even cost one less: the station's name is cached by then)
    assert large_statements <= small_statements <= 15
    with app.app_context():
        told = dict(db.session.execute(
            select(Notification.recipient_id, func.count()).group_by(Notification.recipient_id)
        ).all())
        decisions = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "create", AuditEvent.actor_role == "station"))
    child_entries = sum(1 for n in range(3) if n % 3 != 1) + sum(
        1 for n in range(24) if n % 3 != 1)
    assert told == {world.child: child_entries, world.stranger: child_entries,
                    world.patient: 27 - child_entries}
    assert decisions == 27
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
