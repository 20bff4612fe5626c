"""The API through PgBouncer in transaction pooling mode, as production runs it.

Debian's pgbouncer 1.18 hands each transaction whichever server connection is free: anything a
connection keeps between transactions (a prepared statement, a SET, a temporary table) is
missing, or someone else's, on the next one. What breaks shows only when a later transaction
lands on another server connection, so the pooler here has several server connections and hands
them out in turn (server_round_robin), and the requests come from several threads at once, each
round twice.

Real requests: tokens through the login form and client credentials, creates with
Idempotency-Key, reads of the entry, the list and the summary, a station batch; every answer is
checked to be the one asked for (a statement run on the wrong connection could answer another
statement's rows).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from core.db import db
from registry.services import assign_family_doctor
from tests.conftest import make_app, test_database_url
from tests.ehr.samples import SAMPLES, YESTERDAY
from tests.support.auth import (
    Tokens,
    make_citizen,
    make_facility,
    make_practitioner,
    station_client,
    station_token,
    token_for,
)
from tests.support.database import empty_all_tables, rows_left
from tests.support.pgbouncer import PgBouncer, pgbouncer_binary, start_pgbouncer

pytestmark = pytest.mark.postgres

STATION = "system/Patient.crs system/Immunization.crus system/ImmunizationRecommendation.rs"
THREADS = 6
ROUNDS = 2


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    url = test_database_url()
    if not url.startswith(("postgresql", "postgres:")):
        pytest.skip("PgBouncer fronts PostgreSQL (set TEST_DATABASE_URL)")
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    # Under .ci/run's smoke run TEST_DATABASE_URL is itself a pooler: go to PostgreSQL.
    target = os.environ.get("TEST_DATABASE_ADMIN_URL") or url
    with start_pgbouncer(target, pool_size=3, round_robin=True) as running:
        yield running


@pytest.fixture
def pooled_app(database_url: str, log_stream: Any, bouncer: PgBouncer) -> Iterator[Any]:
    """The app with every connection through the pooler (the run's default settings)."""
    application = make_app(bouncer.url, log_stream)
    with application.app_context():
        assert not rows_left(db.engine)
    yield application
    with application.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, leftovers


class World:
    def __init__(self, app: Any) -> None:
        client = app.test_client()
        self.station = make_facility(app)
        self.doctor = make_practitioner(app, facility=self.station, full_name="Nguyễn Thị Hương")
        self.patients = [make_citizen(app, full_name=f"Bệnh Nhân {n}",
                                      date_of_birth=dt.date(1960 + n, 3, 14))
                         for n in range(3)]
        with app.app_context():
            for patient in self.patients:
                assign_family_doctor(session=db.session, citizen_id=patient,
                                     practitioner_id=self.doctor, facility_id=self.station,
                                     changed_by="test")
            db.session.commit()
        self.doctor_token: Tokens = token_for(client, app, role="practitioner",
                                              practitioner=self.doctor)
        self.patient_token: Tokens = token_for(client, app, citizen=self.patients[0])
        self.station_token: Tokens = station_token(client, app, oauth_client=station_client(
            app, facility=self.station, scopes=STATION)[0])


def _url(citizen: uuid.UUID, tail: str) -> str:
    return f"/api/v1/citizens/{citizen}/{tail}"


def _create(http: Any, world: World, citizen: uuid.UUID, key: str) -> dict[str, Any]:
    body = SAMPLES["allergies"][0]
    response = http.post(_url(citizen, "allergies"), json=body,
                         headers={**world.doctor_token.headers, "Idempotency-Key": key})
    assert response.status_code == 201, response.get_json()
    entry = response.get_json()
    assert entry["citizen_id"] == str(citizen)
    assert entry["data"]["substance"] == body["substance"]
    return dict(entry)


def _reads(http: Any, world: World, citizen: uuid.UUID, entry: dict[str, Any]) -> None:
    doctor = world.doctor_token.headers
    read = http.get(_url(citizen, f"allergies/{entry['id']}"), headers=doctor)
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["id"] == entry["id"]
    assert read.get_json()["citizen_id"] == str(citizen)
    assert read.get_json()["data"] == entry["data"]
    listed = http.get(_url(citizen, "allergies"), headers=doctor)
    assert listed.status_code == 200, listed.get_json()
    items = listed.get_json()["items"]
    assert entry["id"] in {item["id"] for item in items}
    assert {item["citizen_id"] for item in items} == {str(citizen)}
    summary = http.get(_url(citizen, "summary"), headers=doctor)
    assert summary.status_code == 200, summary.get_json()


def _batch(http: Any, world: World, tag: str) -> None:
    items = [{"client_item_id": f"{tag}-{n}", "citizen_id": str(world.patients[n % 3]),
              "vaccine_code": "TD", "dose_number": 1 + n // 3, "occurrence_date": YESTERDAY,
              "lot_number": f"TD-{tag}-{n}"} for n in range(9)]
    response = http.post("/api/v1/immunizations/batch", json={"items": items},
                         headers=world.station_token.headers)
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [201] * 9, results
    assert [r["entry"]["citizen_id"] for r in results] == [i["citizen_id"] for i in items]


def _in_threads(work: Any, count: int) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as failure:  # noqa: BLE001 - reported by the test below
            failures.append(failure)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures[:3]


def test_api_requests_work_through_a_transaction_pooler(pooled_app):
    app = pooled_app
    world = World(app)
    client = app.test_client()
    first = _create(client, world, world.patients[0], "pgbouncer-first")
    _reads(client, world, world.patients[0], first)
    _batch(client, world, "solo")
    own = client.get(_url(world.patients[0], f"allergies/{first['id']}"),
                     headers=world.patient_token.headers)
    assert own.status_code == 200
    assert own.get_json()["id"] == first["id"]

    for round_number in range(ROUNDS):
        def requests(index: int, round_number: int = round_number) -> None:
            http = app.test_client()
            citizen = world.patients[index % 3]
            for n in range(3):
                entry = _create(http, world, citizen, f"pgb-{round_number}-{index}-{n}")
                _reads(http, world, citizen, entry)
                replay = http.post(_url(citizen, "allergies"), json=SAMPLES["allergies"][0],
                                   headers={**world.doctor_token.headers,
                                            "Idempotency-Key": f"pgb-{round_number}-{index}-{n}"})
                assert replay.status_code == 201
                assert replay.headers.get("Idempotent-Replayed") == "true"
                assert replay.get_json()["id"] == entry["id"]
            if index == 0:
                _batch(http, world, f"round{round_number}")

        _in_threads(requests, THREADS)

    with app.app_context():
        count = db.session.execute(text(
            "SELECT COUNT(*) FROM record_entries WHERE section = 'allergies'")).scalar_one()
    assert count == 1 + ROUNDS * THREADS * 3


def test_the_pooler_spreads_transactions_over_its_server_connections(pooled_app):
    """The hazard above is real in this setup: consecutive transactions of one client land on
    different PostgreSQL sessions, so nothing session-level may be relied on."""
    with pooled_app.app_context():
        held = [db.engine.connect() for _ in range(3)]
        for connection in held:  # three transactions at once: three server connections
            connection.execute(text("SELECT 1"))
        for connection in held:
            connection.close()
        connection = held[0] = db.engine.connect()
        backends = set()
        for _ in range(6):
            with connection.begin():
                backends.add(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        connection.close()
    assert len(backends) > 1
