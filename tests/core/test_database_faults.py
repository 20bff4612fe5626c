"""PostgreSQL failing under the API, injected through a TCP proxy (tests/support/tcp_proxy.py)
between the app and the database: nothing patched, the driver sees real resets, refusals and
silences.

- Unreachable (connections cut and refused), hung (the established connections go silent), hung
  on connecting (connections cut, new ones accepted and never answered): /readyz and the API
  answer 503 problem+json with Retry-After within 2 s, measured around the one request; when
  the proxy forwards again the same app serves again (no restart).
- The connection cut in the middle of an immunization create, before each of its statements in
  turn, before its COMMIT, and after the COMMIT reached the server but before its answer came
  back: the client gets a 503 (or, when the cut fell after the work, the 201), never a partial
  write; its retry with the same Idempotency-Key ends with exactly one entry, with its one
  idempotency record and its one audit event, and every audit chain verifies.

Timings are printed (run with -s) for README's "Reliability" table.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from core.config import normalize_database_url
from core.db import db
from registry.services import assign_family_doctor
from tests.conftest import make_app
from tests.ehr.samples import SAMPLES
from tests.support.auth import Tokens, make_citizen, make_facility, make_practitioner, token_for
from tests.support.database import empty_all_tables, rows_left
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

BOUND = 2.0  # seconds: the "503 within 2 s"
STATEMENT_BOUND = 1.5  # the test app's DATABASE_STATEMENT_TIMEOUT
LEAKS = ("SELECT", "INSERT", "psycopg2", "sqlalchemy", "Traceback", "127.0.0.1")


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    if not database_url.startswith(("postgresql", "postgres:")):
        pytest.skip("faults are injected between the app and PostgreSQL (set TEST_DATABASE_URL)")
    parts = urlsplit(database_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as running:
        yield running


@pytest.fixture
def direct(database_url: str) -> Iterator[Engine]:
    """An engine straight to the database (not through the proxy), to look at what was stored."""
    engine = create_engine(normalize_database_url(database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def faulty_app(database_url: str, log_stream: Any, proxy: TcpProxy) -> Iterator[Any]:
    """The app with every database connection through the proxy; a statement of a request
    may wait 1.5 s (DATABASE_STATEMENT_TIMEOUT, 5 s by default: see the "hung" case)."""
    application = make_app(proxy.url_for(database_url), log_stream,
                           DATABASE_STATEMENT_TIMEOUT=STATEMENT_BOUND)
    with application.app_context():
        assert not rows_left(db.engine)
    yield application
    proxy.restore()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    cleaner = make_app(database_url, log_stream)
    with cleaner.app_context():
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, leftovers


class World:
    def __init__(self, app: Any) -> None:
        station = make_facility(app)
        doctor = make_practitioner(app, facility=station, full_name="Nguyễn Thị Hương")
        self.patient = make_citizen(app, full_name="Phạm Văn Thắng",
                                    date_of_birth=dt.date(1961, 3, 14))
        with app.app_context():
            assign_family_doctor(session=db.session, citizen_id=self.patient,
                                 practitioner_id=doctor, facility_id=station, changed_by="test")
            db.session.commit()
        self.doctor: Tokens = token_for(app.test_client(), app, role="practitioner",
                                        practitioner=doctor)

    @property
    def url(self) -> str:
        return f"/api/v1/citizens/{self.patient}/immunizations"

    def create(self, http: Any, key: str) -> Any:
        return http.post(self.url, json=SAMPLES["immunizations"][0],
                         headers={**self.doctor.headers, "Idempotency-Key": key})


def _assert_503(response: Any, *, lang: str = "vi") -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Language"] == lang
    body = response.get_json()
    assert body["type"] == "urn:phr-vn:problem:service-unavailable"
    assert body["status"] == 503
    text_ = response.get_data(as_text=True)
    assert not [word for word in LEAKS if word in text_], text_


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


FAULTS = {
    # PostgreSQL gone: live connections reset, new ones refused.
    "refused": lambda proxy: (proxy.cut(), proxy.refuse()),
    # A partition or a hung server: the pooled connections go silent. The first request that
    # meets it waits out its statement bound (DATABASE_STATEMENT_TIMEOUT: 1.5 s here, 5 s by
    # default, longer than any legitimate statement or lock wait); that drops every pooled
    # connection, and the requests after it wait only for a connection (1 s).
    "hung": lambda proxy: proxy.blackhole(),
    # Gone, and connecting hangs: a new connection is accepted and never answered.
    "hung-connecting": lambda proxy: (proxy.cut(), proxy.blackhole()),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_an_unreachable_database_is_a_503_within_2_s_and_the_app_recovers(
        faulty_app, proxy, direct, fault):
    app = faulty_app
    world = World(app)
    http = app.test_client()
    assert http.get(world.url, headers=world.doctor.headers).status_code == 200  # pool warm
    assert http.get("/readyz").status_code == 200

    FAULTS[fault](proxy)
    timings: dict[str, float] = {}
    listed, timings["list"] = _timed(lambda: http.get(world.url, headers=world.doctor.headers))
    _assert_503(listed)
    ready, timings["readyz"] = _timed(lambda: http.get("/readyz"))
    assert ready.status_code == 503
    assert ready.headers["Retry-After"]
    created, timings["create"] = _timed(lambda: world.create(http, f"fault-{fault}-0001"))
    _assert_503(created)
    english, timings["list-en"] = _timed(lambda: http.get(
        world.url, headers={**world.doctor.headers, "Accept-Language": "en"}))
    _assert_503(english, lang="en")
    assert english.get_json()["detail"] != listed.get_json()["detail"]
    # A token the worker has not seen needs the database too.
    fresh = http.get(world.url, headers={"Authorization": "Bearer " + "x" * 43})
    assert fresh.status_code in (401, 503)
    print(f"\n{fault}: time to 503 " + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))
    slow = {name: round(took, 3) for name, took in timings.items() if took >= BOUND}
    assert not slow, f"{fault}: answered after the {BOUND} s bound: {slow}"

    proxy.restore()
    answers = [http.get(world.url, headers=world.doctor.headers).status_code for _ in range(5)]
    assert answers == [200] * 5, answers  # the same app, no restart: broken connections dropped
    assert http.get("/readyz").status_code == 200
    retry = world.create(http, f"fault-{fault}-0001")
    assert retry.status_code == 201, retry.get_json()
    assert "Idempotent-Replayed" not in retry.headers  # the 503 stored nothing
    assert _stored(direct, world.patient)["entries"] == 1


def test_behind_pgbouncer_postgresql_gone_is_a_503_within_2_s(
        database_url, log_stream, proxy, direct):
    """Production's shape: the app talks to PgBouncer (transaction pooling), PgBouncer to
    PostgreSQL through the proxy. PostgreSQL goes away: PgBouncer keeps the app's connections
    and holds a query waiting for a server (its query_wait_timeout is minutes), so the first
    answer within 2 s is the app's own bound (core/db.py); later ones PgBouncer refuses itself
    while it cannot log in to PostgreSQL."""
    _behind_pgbouncer(database_url, log_stream, proxy, direct, recover=False)


@pytest.mark.long
def test_behind_pgbouncer_the_app_recovers_when_postgresql_is_back(
        database_url, log_stream, proxy, direct):
    """The same, then PostgreSQL back: PgBouncer logs in again after its server_login_retry
    (15 s by default, hence `long`) and the same app serves again, the create's retry included."""
    _behind_pgbouncer(database_url, log_stream, proxy, direct, recover=True)


def _behind_pgbouncer(database_url: str, log_stream: Any, proxy: TcpProxy, direct: Engine, *,
                      recover: bool) -> None:
    from tests.support.pgbouncer import pgbouncer_binary, start_pgbouncer

    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    with start_pgbouncer(proxy.url_for(database_url), pool_size=2) as bouncer:
        app = make_app(bouncer.url, log_stream)
        try:
            world = World(app)
            http = app.test_client()
            assert http.get(world.url, headers=world.doctor.headers).status_code == 200
            proxy.cut()
            proxy.refuse()
            timings: dict[str, float] = {}
            ready, timings["readyz"] = _timed(lambda: http.get("/readyz"))
            assert ready.status_code == 503
            listed, timings["list"] = _timed(
                lambda: http.get(world.url, headers=world.doctor.headers))
            _assert_503(listed)
            created, timings["create"] = _timed(lambda: world.create(http, "bouncer-0001"))
            _assert_503(created)
            print("\nbehind pgbouncer: time to 503 "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))
            slow = {name: round(took, 3) for name, took in timings.items() if took >= BOUND}
            assert not slow, f"answered after the {BOUND} s bound: {slow}"
            if not recover:
                return
            proxy.restore()
            deadline = time.monotonic() + 40  # PgBouncer retries its server login itself
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, bouncer.log[-2000:]
                time.sleep(0.2)
            answers = [http.get(world.url, headers=world.doctor.headers).status_code
                       for _ in range(5)]
            assert answers == [200] * 5, answers
            assert world.create(http, "bouncer-0001").status_code == 201
            assert _stored(direct, world.patient)["entries"] == 1
        finally:
            proxy.restore()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            cleaner = make_app(database_url, log_stream)
            with cleaner.app_context():
                empty_all_tables(db.engine)
                assert not rows_left(db.engine)
                db.engine.dispose()


# -- a create cut in the middle ---------------------------------------------------------------

def _stored(engine: Engine, citizen: uuid.UUID) -> dict[str, Any]:
    """What the database holds about the citizen's immunizations, and whether it is whole."""
    from consent.audit import verify_chains

    with engine.connect() as connection:
        entries = connection.execute(text(
            "SELECT id::text FROM record_entries WHERE citizen_id = :c "
            "AND section = 'immunizations'"), {"c": citizen}).scalars().all()
        records = connection.execute(text(
            "SELECT resource_id FROM idempotency_records WHERE citizen_id = :c"),
            {"c": citizen}).scalars().all()
        # The decision is audited before the entry exists: the event names no entry.
        audits = connection.execute(text(
            "SELECT COUNT(*) FROM audit_events WHERE citizen_id = :c AND action = 'create' "
            "AND section = 'immunizations' AND decision = 'permit'"),
            {"c": citizen}).scalar_one()
        versions = connection.execute(text(
            "SELECT entry_id::text FROM record_entry_versions WHERE citizen_id = :c"),
            {"c": citizen}).scalars().all()
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        chains = verify_chains(session, citizen_id=citizen)
    return {"entries": len(entries), "ids": sorted(entries), "records": sorted(records),
            "audits": audits, "versions": sorted(versions),
            "chains_ok": chains.ok}


def _assert_whole(stored: dict[str, Any], expected_entries: int) -> None:
    assert stored["entries"] == expected_entries, stored
    assert stored["records"] == stored["ids"], stored  # one idempotency record per entry
    assert stored["audits"] == expected_entries, stored  # one create event per entry
    assert stored["versions"] == [], stored  # a create keeps no earlier version
    assert stored["chains_ok"], stored


def _statements_of_a_create(app: Any, world: World) -> int:
    """How many statements a create runs once the worker knows the token and the keys."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    assert world.create(app.test_client(), "cut-warm-up-0001").status_code == 201
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert world.create(app.test_client(), "cut-baseline-0001").status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_create_cut_anywhere_leaves_nothing_half_written_and_the_retry_makes_one(
        faulty_app, proxy, direct):
    app = faulty_app
    world = World(app)
    http = app.test_client()
    statements = _statements_of_a_create(app, world)
    assert statements >= 3
    _assert_whole(_stored(direct, world.patient), 2)
    with app.app_context():
        engine = db.engine

    outcomes: dict[str, int] = {}
    replayed: dict[str, bool] = {}

    def attempt(name: str, hook: str, trigger: Any) -> None:
        key = f"cut-{name}-0001"
        event.listen(engine, hook, trigger)
        try:
            first = world.create(http, key)
        finally:
            event.remove(engine, hook, trigger)
        proxy.restore()
        assert first.status_code in (201, 503), first.get_json()
        if first.status_code == 503:
            _assert_503(first)
        outcomes[name] = first.status_code
        retry = world.create(http, key)
        assert retry.status_code == 201, retry.get_json()
        replayed[name] = retry.headers.get("Idempotent-Replayed") == "true"
        again = world.create(http, key)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.get_json()["id"] == retry.get_json()["id"]

    # Before the n-th statement of the request: everything the transaction did is lost.
    for n in range(statements):
        counter = {"seen": 0}

        def cut_before(conn: Any, cursor: Any, statement: str, *args: Any,
                       counter: dict[str, int] = counter, n: int = n) -> None:
            if counter["seen"] == n:
                proxy.cut()
            counter["seen"] += 1

        attempt(f"statement-{n}", "before_cursor_execute", cut_before)

    # Before the COMMIT is sent.
    attempt("before-commit", "commit", lambda conn: proxy.cut())

    # After the COMMIT reached the server, before its answer came back: each way takes 0.6 s
    # through the proxy, the cut comes 0.9 s after the COMMIT was handed to it (the wait stays
    # under the statement bound).
    def cut_in_flight(conn: Any) -> None:
        proxy.delay(0.6)
        threading.Timer(0.9, proxy.cut).start()

    attempt("commit-answer-lost", "commit", cut_in_flight)

    stored = _stored(direct, world.patient)
    print(f"\ncut create: {statements} statements, {len(outcomes)} cut points, outcomes "
          f"{sorted(outcomes.items())}, entries {stored['entries']}")
    assert outcomes["before-commit"] == 503
    assert outcomes["commit-answer-lost"] == 503
    assert replayed["commit-answer-lost"]  # the server had committed: the retry replays it
    assert not replayed["before-commit"]
    # Every cut point was reached: the create answered 503 each time, and wrote nothing.
    assert {outcomes[f"statement-{n}"] for n in range(statements)} == {503}, outcomes
    # One entry per key (the two baselines' and each attempt's), each whole: none lost, none
    # twice.
    _assert_whole(stored, 2 + len(outcomes))
