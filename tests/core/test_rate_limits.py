"""Rate limits on the API (issue 19): per token, per address, the station batch's and the
export's own budgets; 429 problem+json (OperationOutcome under /fhir) with Retry-After and the
RateLimit headers; a refused request writes nothing; counts shared through Redis by two app
instances as by two gunicorn workers.

Each test builds its app with small budgets per hour (a window never ends in the middle of a
test, however slow the machine); the production defaults are in core/config.py and the rest of
the suite runs with them. The requests, tokens and database are real.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import make_app
from tests.ehr.samples import SAMPLES, YESTERDAY
from tests.support.auth import bearer, token_for

REDIS_URL = "redis://127.0.0.1:6379/13"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


@pytest.fixture
def build(app: Any, database_url: str, log_stream: Any) -> Iterator[Any]:
    """Apps on the test's database with the given settings (the `app` fixture empties the
    database after the test)."""
    from core.db import db

    built: list[Any] = []

    def _build(**settings: Any) -> Any:
        application = make_app(database_url, log_stream, **settings)
        built.append(application)
        return application

    yield _build
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def _rate_headers(response: Any) -> dict[str, str]:
    return {name: response.headers.get(name) for name in RATE_HEADERS}


def _assert_throttled_problem(response: Any, *, lang: str) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:phr-vn:problem:too-many-requests"
    assert body["status"] == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    assert response.headers["Content-Language"] == lang
    expected = {"vi": f"Bạn đã gửi quá nhiều yêu cầu; hãy thử lại sau {retry_after} giây.",
                "en": f"Too many requests; try again in {retry_after} seconds."}[lang]
    assert body["detail"] == expected
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) == retry_after


def test_a_normal_answer_carries_the_rate_limit_headers(build):
    app = build(RATELIMIT_PER_TOKEN="5/hour")
    client = app.test_client()
    token = token_for(client, app)
    first = client.get("/api/v1/me", headers=bearer(token))
    second = client.get("/api/v1/me", headers=bearer(token))
    assert first.status_code == second.status_code == 200
    assert first.headers["RateLimit-Limit"] == "5"
    assert first.headers["RateLimit-Policy"] == "5;w=3600"
    assert first.headers["RateLimit-Remaining"] == "4"
    assert second.headers["RateLimit-Remaining"] == "3"
    assert 1 <= int(first.headers["RateLimit-Reset"]) <= 3600
    assert "Retry-After" not in first.headers  # only a refusal says when to come back


def test_the_per_token_budget_refuses_in_vietnamese_and_english_and_spares_other_tokens(build):
    app = build(RATELIMIT_PER_TOKEN="3/hour")
    client = app.test_client()
    first, other = token_for(client, app), token_for(client, app)
    for _ in range(3):
        assert client.get("/api/v1/me", headers=bearer(first)).status_code == 200
    _assert_throttled_problem(client.get("/api/v1/me", headers=bearer(first)), lang="vi")
    _assert_throttled_problem(
        client.get("/api/v1/me", headers={**bearer(first), "Accept-Language": "en"}), lang="en")
    # Another token from the same address has its own budget.
    answer = client.get("/api/v1/me", headers=bearer(other))
    assert answer.status_code == 200
    assert answer.headers["RateLimit-Remaining"] == "2"


def test_a_refused_create_writes_nothing(build):
    app = build(RATELIMIT_PER_TOKEN="2/hour")
    client = app.test_client()
    token = token_for(client, app)
    citizen = token.login.citizen_id
    path = f"/api/v1/citizens/{citizen}/allergies"
    body = SAMPLES["allergies"][0]
    assert client.get(path, headers=bearer(token)).status_code == 200
    created = client.post(path, json=body,
                          headers={**bearer(token), "Idempotency-Key": "allergy-one"})
    assert created.status_code == 201, created.get_json()
    refused = client.post(path, json={**body, "substance": "Aspirin"},
                          headers={**bearer(token), "Idempotency-Key": "allergy-two"})
    _assert_throttled_problem(refused, lang="vi")
    # Read with a second login of the same person: only the first allergy exists.
    again = token_for(client, app, login=token.login)
    listed = client.get(path, headers=bearer(again))
    assert listed.status_code == 200
    assert [item["data"]["substance"] for item in listed.get_json()["items"]] == ["Penicillin"]


def test_requests_without_a_token_are_counted_per_address_and_fhir_answers_an_outcome(build):
    app = build(RATELIMIT_ANONYMOUS="2/hour")
    client = app.test_client()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(2):
        assert client.get("/fhir/R4/metadata", environ_base=here).status_code == 200
    refused = client.get("/fhir/R4/metadata", environ_base=here,
                         headers={"Accept-Language": "en"})
    assert refused.status_code == 429
    assert refused.mimetype == "application/fhir+json"
    outcome = refused.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["code"] == "throttled"
    assert issue["details"]["coding"][0]["code"] == "too-many-requests"
    retry_after = int(refused.headers["Retry-After"])
    assert issue["details"]["text"] == f"Too many requests; try again in {retry_after} seconds."
    assert refused.headers["RateLimit-Remaining"] == "0"
    # A neighbour on another address, and a token holder on this one, are not refused.
    elsewhere = client.get("/fhir/R4/metadata", environ_base={"REMOTE_ADDR": "203.0.113.8"})
    assert elsewhere.status_code == 200
    token = token_for(client, app)
    me = client.get("/api/v1/me", headers=bearer(token), environ_base=here)
    assert me.status_code == 200


def test_a_token_past_its_budget_gets_an_operation_outcome_on_fhir_routes(build):
    app = build(RATELIMIT_PER_TOKEN="1/hour")
    client = app.test_client()
    token = token_for(client, app)
    path = f"/fhir/R4/Patient/{token.login.citizen_id}"
    assert client.get(path, headers=bearer(token)).status_code == 200
    refused = client.get(path, headers=bearer(token))
    assert refused.status_code == 429
    assert refused.mimetype == "application/fhir+json"
    assert refused.get_json()["issue"][0]["code"] == "throttled"
    assert refused.get_json()["issue"][0]["details"]["text"].startswith(
        "Bạn đã gửi quá nhiều yêu cầu")
    assert int(refused.headers["Retry-After"]) >= 1


def _dose(key: str, citizen: uuid.UUID) -> dict[str, Any]:
    return {"client_item_id": key, "citizen_id": str(citizen), "vaccine_code": "TD",
            "dose_number": 1, "occurrence_date": YESTERDAY, "lot_number": "TD-1"}


def test_the_station_batch_has_its_own_budget(build):
    app = build(RATELIMIT_BATCH="1/hour", RATELIMIT_PER_TOKEN="50/hour")
    client = app.test_client()
    token = token_for(client, app)
    citizen = token.login.citizen_id
    batch = "/api/v1/immunizations/batch"
    accepted = client.post(batch, json={"items": [_dose("one", citizen)]}, headers=bearer(token))
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.headers["RateLimit-Limit"] == "1"  # the batch's budget, not the token's
    refused = client.post(batch, json={"items": [_dose("two", citizen)]}, headers=bearer(token))
    _assert_throttled_problem(refused, lang="vi")
    # The token's general budget is untouched by the batch's: other routes still answer.
    listed = client.get(f"/api/v1/citizens/{citizen}/immunizations", headers=bearer(token))
    assert listed.status_code == 200
    assert listed.headers["RateLimit-Limit"] == "50"
    assert len(listed.get_json()["items"]) == 1  # the refused batch wrote nothing


def test_the_export_routes_share_one_budget(build):
    app = build(RATELIMIT_EXPORT="1/hour")
    client = app.test_client()
    token = token_for(client, app)
    citizen = token.login.citizen_id
    assert client.get(f"/api/v1/citizens/{citizen}/export",
                      headers=bearer(token)).status_code == 200
    refused = client.get(f"/fhir/R4/Patient/{citizen}/$everything", headers=bearer(token))
    assert refused.status_code == 429
    assert refused.mimetype == "application/fhir+json"


def test_health_readiness_and_metrics_are_never_limited(build):
    app = build(RATELIMIT_PER_ADDRESS="1/hour", RATELIMIT_ANONYMOUS="1/hour")
    client = app.test_client()
    for path in ("/healthz", "/readyz", "/metrics") * 3:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "RateLimit-Limit" not in answer.headers


def test_two_instances_share_the_count_through_redis(build):
    store = redis.Redis.from_url(REDIS_URL)
    prefix = "phr-test-" + secrets.token_hex(6)  # this run's keys only
    settings = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix,
                "RATELIMIT_PER_TOKEN": "3/hour"}
    one, two = build(**settings), build(**settings)
    try:
        token = token_for(one.test_client(), one)
        assert one.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 200
        second = two.test_client().get("/api/v1/me", headers=bearer(token))
        assert second.status_code == 200
        assert second.headers["RateLimit-Remaining"] == "1"  # the first instance's request counted
        assert one.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 200
        _assert_throttled_problem(two.test_client().get("/api/v1/me", headers=bearer(token)),
                                  lang="vi")
        keys = [key.decode() for key in store.scan_iter(f"*LIMITER/{prefix}/*")]
        assert keys
        assert not [key for key in keys if token.access_token in key]  # never the token itself
    finally:
        for key in store.scan_iter(f"*LIMITER/{prefix}/*"):
            store.delete(key)
        store.close()


def test_an_unreachable_storage_does_not_refuse_requests(build):
    # Nothing listens on port 1: the limiter falls back to counting in this process.
    app = build(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", RATELIMIT_PER_TOKEN="2/hour")
    client = app.test_client()
    token = token_for(client, app)
    answers = [client.get("/api/v1/me", headers=bearer(token)).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


def test_a_budget_naming_an_unknown_endpoint_stops_the_start(build, monkeypatch):
    import app as application_module

    monkeypatch.setitem(application_module.ROUTE_BUDGETS, "nowhere.route", "batch")
    with pytest.raises(RuntimeError, match="nowhere.route"):
        build()


def test_the_production_defaults_parse_and_bad_ones_are_refused(tmp_path):
    from core.config import ConfigError, load_config

    environ = {"APP_ENV": "development"}
    config = load_config(root=tmp_path, environ=environ)
    assert config["RATELIMIT_PER_TOKEN"] == "300/minute"
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    with pytest.raises(ConfigError, match="RATELIMIT_BATCH"):
        load_config(root=tmp_path, environ={**environ, "RATELIMIT_BATCH": "lots"})
    # The proxies whose X-Forwarded-For names the client (README's TRUSTED_PROXIES) are read
    # from the environment: the per-address budgets count the client, not the proxy.
    assert config["TRUSTED_PROXIES"] == 0
    assert load_config(root=tmp_path,
                       environ={**environ, "TRUSTED_PROXIES": "1"})["TRUSTED_PROXIES"] == 1


def test_the_client_address_comes_from_the_trusted_proxy(build):
    app = build(TRUSTED_PROXIES=1, RATELIMIT_ANONYMOUS="1/hour")
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    first = client.get("/fhir/R4/metadata", environ_base=proxy,
                       headers={"X-Forwarded-For": "198.51.100.1"})
    second = client.get("/fhir/R4/metadata", environ_base=proxy,
                        headers={"X-Forwarded-For": "198.51.100.2"})
    again = client.get("/fhir/R4/metadata", environ_base=proxy,
                       headers={"X-Forwarded-For": "198.51.100.1"})
    assert (first.status_code, second.status_code, again.status_code) == (200, 200, 429)


def test_the_portal_pages_spend_the_sessions_token_budget_and_show_a_page_when_it_is_spent(
        build):
    from tests.portal.conftest import portal_login
    from tests.support.auth import make_login

    app = build(RATELIMIT_PER_TOKEN="4/hour")
    assert app.test_cli_runner().invoke(args=["portal", "register-client"]).exit_code == 0
    client = app.test_client()
    login = make_login(app, role="citizen")
    assert portal_login(client, login.username, login.password).status_code == 303
    # Each page calls the API in-process with the session's token: those calls count.
    pages = [client.get("/", headers={"Accept": "text/html"}) for _ in range(4)]
    statuses = [page.status_code for page in pages]
    assert statuses[0] == 200
    assert 429 in statuses
    refused = pages[statuses.index(429)]
    assert refused.mimetype == "text/html"
    assert "Quá nhiều yêu cầu" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) >= 1


def test_every_rate_limited_operation_documents_its_429():
    import yaml

    from app import RATE_LIMITED_PATHS
    from tests.support.contract import SPEC_PATH

    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    undocumented = []
    for path, item in spec["paths"].items():
        if not (path + "/").startswith(RATE_LIMITED_PATHS):
            continue
        for method in ("get", "put", "post", "patch", "delete"):
            responses = item.get(method, {}).get("responses")
            if responses is not None and "429" not in responses:
                undocumented.append(f"{method.upper()} {path}")
    assert not undocumented
    headers = spec["components"]["responses"]["TooManyRequests"]["headers"]
    assert {"Retry-After", *RATE_HEADERS} <= set(headers)


def test_the_memory_storage_starts_no_thread_per_request(build, monkeypatch):
    """Development's in-process counts sweep expired windows on the request thread: limits'
    own storage started a timer thread for nearly every request, each start waiting for the
    GIL. Thread.start is wrapped to count calls, not replaced."""
    import threading

    from core.rate_limits import EXTENSION, SweptMemoryStorage

    app = build(RATELIMIT_PER_TOKEN="50/hour")
    limiter, _ = app.extensions[EXTENSION]
    assert isinstance(limiter.storage, SweptMemoryStorage)
    client = app.test_client()
    token = token_for(client, app)
    client.get("/api/v1/me", headers=bearer(token))
    started: list[str] = []
    original = threading.Thread.start

    def counted(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counted)
    remaining = []
    for _ in range(10):
        response = client.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 200
        remaining.append(int(response.headers["RateLimit-Remaining"]))
        threading.Event().wait(0.02)  # longer than limits' 10 ms timer
    assert remaining == list(range(remaining[0], remaining[0] - 10, -1))
    assert [name for name in started if "Timer" in name or name.startswith("Thread-")] == []


def test_the_memory_storage_sweeps_expired_counters():
    from core.rate_limits import SweptMemoryStorage

    storage = SweptMemoryStorage()
    storage.SWEEP_SECONDS = 0.05
    storage.count([("first", 50, 1)])
    assert storage.get("first") == 1
    time.sleep(0.12)
    assert "first" in storage.storage  # nothing has swept it yet
    storage.count([("second", 60_000, 1)])
    assert "first" not in storage.storage
    assert "first" not in storage.expirations
    assert storage.get("second") == 1


# One storage operation per request (issue 18): every budget counted, and what the headers
# need read, in one EVALSHA. Counted on a dedicated database by a real MONITOR connection.
COUNTED_REDIS_URL = "redis://127.0.0.1:6379/15"


def _sent_to_redis(url: str, run: Any) -> list[str]:
    """The commands clients sent to `url`'s database while `run()` ran, as MONITOR saw them
    (the commands a script ran inside Redis are not round trips and are left out)."""
    store = redis.Redis.from_url(url)
    db = store.connection_pool.connection_kwargs["db"]
    # The marker's client works on database 0: its connection's SELECT is not counted.
    marker_client = redis.Redis.from_url(url.rsplit("/", 1)[0] + "/0")
    marker = "end-of-run-" + secrets.token_hex(4)
    sent = []
    try:
        with store.monitor() as monitor:
            run()
            marker_client.echo(marker)
            while True:
                command = monitor.next_command()
                if marker in command["command"]:
                    break
                if command["db"] == db and command["client_type"] != "lua":
                    sent.append(command["command"])
    finally:
        store.close()
        marker_client.close()
    return sent


def _delete_keys(url: str, prefix: str) -> None:
    store = redis.Redis.from_url(url)
    for key in store.scan_iter(f"*LIMITER/{prefix}/*"):
        store.delete(key)
    store.close()


def test_with_redis_a_request_costs_one_round_trip_whatever_its_budgets(build):
    prefix = "phr-test-" + secrets.token_hex(6)
    app = build(RATELIMIT_STORAGE_URI=COUNTED_REDIS_URL, RATELIMIT_KEY_PREFIX=prefix,
                RATELIMIT_PER_TOKEN="50/hour", RATELIMIT_EXPORT="5/hour")
    client = app.test_client()
    try:
        token = token_for(client, app)
        citizen = token.login.citizen_id
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200  # warm
        answers: list[Any] = []

        def run() -> None:
            answers.append(client.get("/api/v1/me", headers=bearer(token)))  # token, address
            answers.append(client.get("/fhir/R4/metadata"))  # address, anonymous
            answers.append(client.get(f"/api/v1/citizens/{citizen}/export",
                                      headers=bearer(token)))  # token, address, export

        sent = _sent_to_redis(COUNTED_REDIS_URL, run)
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert len(sent) == 3, sent
        assert all(command.startswith("EVALSHA ") for command in sent), sent
        assert [command.count(f"LIMITER/{prefix}/") for command in sent] == [2, 2, 3]
        assert [answer.headers["RateLimit-Limit"] for answer in answers] == ["50", "120", "5"]
        assert answers[0].headers["RateLimit-Remaining"] == "48"  # the warm-up counted
        assert answers[2].headers["RateLimit-Remaining"] == "4"
        assert 3590 <= int(answers[2].headers["RateLimit-Reset"]) <= 3600
    finally:
        _delete_keys(COUNTED_REDIS_URL, prefix)


def test_a_request_refused_by_one_budget_does_not_count_in_the_later_ones(build):
    # flask-limiter's order, kept: the shortest windows first, and among equal ones token,
    # address, anonymous, route budget; the first budget exceeded stops the counting (it is
    # counted, the later ones are not).
    prefix = "phr-test-" + secrets.token_hex(6)
    app = build(RATELIMIT_STORAGE_URI=COUNTED_REDIS_URL, RATELIMIT_KEY_PREFIX=prefix,
                RATELIMIT_PER_TOKEN="1/minute")
    store = redis.Redis.from_url(COUNTED_REDIS_URL, decode_responses=True)
    try:
        client = app.test_client()
        token = token_for(client, app)
        citizen = token.login.citizen_id
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
        refused = client.get(f"/api/v1/citizens/{citizen}/export", headers=bearer(token))
        _assert_throttled_problem(refused, lang="vi")
        assert refused.headers["RateLimit-Limit"] == "1"  # the token's budget: the breached one
        counts = {key.split("/")[-4]: int(store.get(key))
                  for key in store.scan_iter(f"*LIMITER/{prefix}/*")}
        assert counts["token"] == 2  # the refused request counted where it was refused
        assert "budget:export" not in counts  # and not after (the address was before)
    finally:
        store.close()
        _delete_keys(COUNTED_REDIS_URL, prefix)


def test_a_window_that_ends_gives_the_budget_back(build):
    prefix = "phr-test-" + secrets.token_hex(6)
    app = build(RATELIMIT_STORAGE_URI=COUNTED_REDIS_URL, RATELIMIT_KEY_PREFIX=prefix,
                RATELIMIT_ANONYMOUS="2/hour")
    store = redis.Redis.from_url(COUNTED_REDIS_URL)
    client = app.test_client()
    here = {"REMOTE_ADDR": "203.0.113.9"}
    try:
        statuses = [client.get("/fhir/R4/metadata", environ_base=here).status_code
                    for _ in range(3)]
        assert statuses == [200, 200, 429]
        [anonymous] = [key for key in store.scan_iter(f"*LIMITER/{prefix}/*")
                       if b"/anonymous/" in key]
        assert 3590_000 <= store.pttl(anonymous) <= 3600_000  # the window, set once
        store.pexpire(anonymous, 30)  # the end of the hour, brought near
        time.sleep(0.1)
        again = client.get("/fhir/R4/metadata", environ_base=here)
        assert again.status_code == 200
        assert again.headers["RateLimit-Remaining"] == "1"
        assert 3590 <= int(again.headers["RateLimit-Reset"]) <= 3600  # a new window
    finally:
        store.close()
        _delete_keys(COUNTED_REDIS_URL, prefix)


def test_a_window_that_ends_gives_the_budget_back_in_memory(build):
    app = build(RATELIMIT_ANONYMOUS="2/second")
    client = app.test_client()
    here = {"REMOTE_ADDR": "203.0.113.10"}
    first, second, third = (client.get("/fhir/R4/metadata", environ_base=here)
                            for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert third.headers["Retry-After"] == third.headers["RateLimit-Reset"] == "1"
    assert first.headers["RateLimit-Policy"] == "2;w=1"
    time.sleep(1.05)
    again = client.get("/fhir/R4/metadata", environ_base=here)
    assert again.status_code == 200
    assert again.headers["RateLimit-Remaining"] == "1"


def test_the_memory_counters_count_several_budgets_at_once_and_stop_at_the_first_exceeded():
    from core.rate_limits import SweptMemoryStorage

    storage = SweptMemoryStorage()
    counters = [("a", 60_000, 5), ("b", 60_000, 1), ("c", 60_000, 5)]
    assert [count for count, _ in storage.count(counters)] == [1, 1, 1]
    second = storage.count(counters)
    assert [count for count, _ in second] == [2, 2]  # "b" exceeded: "c" not counted
    assert all(59_000 <= left <= 60_000 for _, left in second)
    assert (storage.get("a"), storage.get("b"), storage.get("c")) == (2, 2, 1)


def test_redis_going_away_and_coming_back(build, tmp_path):
    """A real redis-server of the test's own, stopped and started again: while it is away the
    requests are answered at once and counted in this process's memory (with their headers);
    once it answers again (tried after a second) the counts are in Redis again."""
    import shutil
    import socket
    import subprocess

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server to start")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(  # noqa: S603 - the test's own server
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                return process
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    url = f"redis://127.0.0.1:{port}/0"
    process = start()
    try:
        app = build(RATELIMIT_STORAGE_URI=url, RATELIMIT_PER_TOKEN="5/hour")
        client = app.test_client()
        token = token_for(client, app)
        me = client.get("/api/v1/me", headers=bearer(token))
        assert me.headers["RateLimit-Remaining"] == "4"
        process.terminate()
        process.wait(10)
        started = time.monotonic()
        away = [client.get("/api/v1/me", headers=bearer(token)) for _ in range(6)]
        assert time.monotonic() - started < 5
        # Counted afresh in memory, the headers included; the sixth is refused.
        assert [answer.status_code for answer in away] == [200] * 5 + [429]
        assert [answer.headers["RateLimit-Remaining"] for answer in away] == [
            "4", "3", "2", "1", "0", "0"]
        process = start()
        time.sleep(1.1)
        back = client.get("/api/v1/me", headers=bearer(token))
        assert back.status_code == 200
        assert back.headers["RateLimit-Remaining"] == "4"  # Redis again: a new server, empty
        assert list(redis.Redis(port=port).scan_iter("*LIMITER/*/token/*"))
    finally:
        process.terminate()
        process.wait(10)
