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
    import time

    from core.rate_limits import SweptMemoryStorage

    storage = SweptMemoryStorage("phr-memory://")
    storage.SWEEP_SECONDS = 0.05
    storage.incr("first", expiry=0.05)
    assert storage.get("first") == 1
    time.sleep(0.12)
    assert "first" in storage.storage  # nothing has swept it yet
    storage.incr("second", expiry=60)
    assert "first" not in storage.storage
    assert "first" not in storage.expirations
    assert storage.get("second") == 1
