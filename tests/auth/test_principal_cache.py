"""A worker remembers a token's principal, and a statement the request runs anyway confirms on
every request that the token is still live (auth.resource, `remembers_principal`): revoking a
token, disabling its account or client, or its expiry still act on the very next request of a
warm worker (same app, principal remembered), and a changed principal is loaded anew."""
# ruff: noqa: F811  (the tests take the imported `world` fixture as an argument)

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Blueprint, jsonify
from sqlalchemy import func, select, update

from auth.models import Account, OAuthClient, OAuthToken
from auth.resource import current_caller, remembers_principal, require_token
from consent.pdp import citizen_exists
from core.db import db
from ehr.record_models import RecordEntry
from registry.models import PractitionerMembership
from tests.ehr.conftest import world  # noqa: F401  (the record world fixture)
from tests.support.auth import bearer, make_citizen, make_facility, make_practitioner, token_for
from tests.support.sql_log import statements

DOSE = {"vaccine_code": "TD", "dose_number": 1, "occurrence_date": "2024-03-01",
        "lot_number": "CACHE-LOT-77"}


def _principal_queries(seen: list[str]) -> list[str]:
    """The token check as a statement of its own (the principal query or the lone probe)."""
    return [s for s in seen if "access_token_hash" in s and "citizens" not in s]


def _entry(client, world) -> str:
    answer = client.post(f"/api/v1/citizens/{world.patient}/immunizations",
                         json=DOSE, headers=world.headers("doctor"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def _revoke(app, token_id: uuid.UUID | None = None, **values) -> None:
    with app.app_context():
        db.session.execute(update(OAuthToken).where(OAuthToken.id == token_id).values(**values))
        db.session.commit()


def _token_id(app, tokens) -> uuid.UUID:
    from auth.credentials import digest

    with app.app_context():
        return db.session.scalars(select(OAuthToken.id).where(
            OAuthToken.access_token_hash == digest(tokens.access_token))).one()


def _invalid_token(answer) -> None:
    assert answer.status_code == 401
    if answer.mimetype == "application/fhir+json":  # a FHIR route's error: OperationOutcome
        body = answer.get_json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["details"]["coding"][0]["code"] == "invalid-token", body
    else:
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["type"] == "urn:phr-vn:problem:invalid-token"
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert b"CACHE-LOT-77" not in answer.get_data()


def test_a_warm_worker_checks_the_token_inside_the_facts_statement(app, client, world):
    entry = _entry(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    assert client.get(path, headers=world.headers("doctor")).status_code == 200
    with statements(app) as seen:
        answer = client.get(path, headers=world.headers("doctor"))
    assert answer.status_code == 200
    assert b"CACHE-LOT-77" in answer.get_data()
    assert _principal_queries(seen) == []
    # One statement: the entry, its citizen's facts and the token's liveness.
    (carrier,) = [s for s in seen if "access_token_hash" in s]
    assert "record_entries" in carrier
    assert "family_doctor_assignments" in carrier


WARM_ROUTES = ["entry", "versions", "list", "summary", "schedule", "card", "ips"]


def _warm_path(world, route: str, entry: str) -> str:
    base = f"/api/v1/citizens/{world.patient}"
    return {"entry": f"{base}/immunizations/{entry}",
            "versions": f"{base}/immunizations/{entry}/versions",
            "list": f"{base}/immunizations", "summary": f"{base}/summary",
            "schedule": f"{base}/immunization-schedule",
            "card": f"{base}/vaccination-card",
            "ips": f"/fhir/R4/Patient/{world.patient}/$summary"}[route]


@pytest.mark.parametrize("route", WARM_ROUTES)
def test_a_warm_read_sends_no_token_query_of_its_own(app, client, world, route):
    path = _warm_path(world, route, _entry(client, world))
    headers = world.headers("doctor")
    assert client.get(path, headers=headers).status_code == 200  # remembered now
    with statements(app) as seen:
        assert client.get(path, headers=headers).status_code == 200
    assert _principal_queries(seen) == []
    assert any("access_token_hash" in s for s in seen), seen  # the probe rode along


@pytest.mark.parametrize("route", WARM_ROUTES)
def test_revoked_then_the_next_read_on_a_warm_worker_is_401(app, client, world, route):
    path = _warm_path(world, route, _entry(client, world))
    headers = world.headers("doctor")
    assert client.get(path, headers=headers).status_code == 200  # remembered now
    assert client.get(path, headers=headers).status_code == 200  # and used
    _revoke(app, _token_id(app, world.doctor_token), revoked_at=func.now())
    _invalid_token(client.get(path, headers=headers))


def test_revoked_through_the_endpoint(app, client, world):
    entry = _entry(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    tokens = world.doctor_token
    assert client.get(path, headers=tokens.headers).status_code == 200
    answer = client.post("/oauth/revoke", data={"token": tokens.access_token,
                                                "client_id": tokens.client.client_id})
    assert answer.status_code == 200
    _invalid_token(client.get(path, headers=tokens.headers))


def test_a_revoked_token_creates_nothing(app, client, world):
    path = f"/api/v1/citizens/{world.patient}/immunizations"
    headers = {**world.headers("doctor"), "Idempotency-Key": "cache-create-1"}
    assert client.post(path, json=DOSE, headers=headers).status_code == 201
    _revoke(app, _token_id(app, world.doctor_token), revoked_at=func.now())
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(RecordEntry))
    answer = client.post(path, json={**DOSE, "dose_number": 2},
                         headers={**headers, "Idempotency-Key": "cache-create-2"})
    _invalid_token(answer)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecordEntry)) == before


def test_a_disabled_account_is_401_on_the_next_request(app, client, world):
    entry = _entry(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    assert client.get(path, headers=world.headers("doctor")).status_code == 200
    with app.app_context():
        db.session.execute(update(Account).where(
            Account.id == world.doctor_token.login.account_id).values(active=False))
        db.session.commit()
    _invalid_token(client.get(path, headers=world.headers("doctor")))


def test_a_disabled_client_is_401_on_the_next_request(app, client, world):
    path = f"/api/v1/citizens/{world.child}/immunizations"
    assert client.get(path, headers=world.headers("station")).status_code == 200
    assert client.get(path, headers=world.headers("station")).status_code == 200
    with app.app_context():
        db.session.execute(update(OAuthClient).where(
            OAuthClient.client_id == world.station_token.client.client_id).values(active=False))
        db.session.commit()
    _invalid_token(client.get(path, headers=world.headers("station")))


def test_expiry_acts_on_the_next_request(app, client, world):
    """Expired in the database (the worker's memory still says it is valid): the probe
    refuses it."""
    entry = _entry(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    assert client.get(path, headers=world.headers("doctor")).status_code == 200
    _revoke(app, _token_id(app, world.doctor_token),
            access_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    _invalid_token(client.get(path, headers=world.headers("doctor")))


def test_expiry_by_the_clock(app, client, world):
    from tests.support.auth import install_clock

    clock = install_clock(app)
    entry = _entry(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    assert client.get(path, headers=world.headers("doctor")).status_code == 200
    clock.advance(seconds=world.doctor_token.expires_in + 1)
    _invalid_token(client.get(path, headers=world.headers("doctor")))


@pytest.fixture
def probe(app):
    """Routes that remember principals (outside /api: test-only): one whose first statement
    carries the probe, one whose first statement does not, one that runs none."""
    bp = Blueprint("principal_probe", __name__)

    def facilities():
        return jsonify(sorted(str(f) for f in current_caller().facility_ids))

    @bp.get("/_principal/facts/<uuid:citizen_id>")
    @remembers_principal
    @require_token
    def facts(citizen_id):
        citizen_exists(db.session, citizen_id)
        return facilities()

    @bp.get("/_principal/other")
    @remembers_principal
    @require_token
    def other():
        db.session.execute(select(func.count()).select_from(PractitionerMembership)).scalar()
        return facilities()

    @bp.get("/_principal/none")
    @remembers_principal
    @require_token
    def none():
        return facilities()

    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize("kind", ["facts", "other", "none"])
def test_every_route_shape_is_probed(probe, client, kind):
    app = probe
    station = make_facility(app)
    citizen = make_citizen(app)
    tokens = token_for(client, app, role="practitioner",
                       practitioner=make_practitioner(app, facility=station))
    path = f"/_principal/facts/{citizen}" if kind == "facts" else f"/_principal/{kind}"
    assert client.get(path, headers=bearer(tokens)).get_json() == [str(station)]
    with statements(app) as seen:
        assert client.get(path, headers=bearer(tokens)).status_code == 200
    if kind == "facts":
        assert _principal_queries(seen) == []  # carried by the facts statement
    else:
        assert len(_principal_queries(seen)) == 1  # the probe on its own
    _revoke(app, _token_id(app, tokens), revoked_at=func.now())
    _invalid_token(client.get(path, headers=bearer(tokens)))


@pytest.mark.parametrize("kind", ["facts", "other", "none"])
def test_a_changed_principal_is_loaded_anew(probe, client, kind):
    """An ended membership (or a new one) changes what the token acts as: the route runs
    again with the principal as it is now."""
    app = probe
    first, second = make_facility(app), make_facility(app, kind="hospital")
    practitioner = make_practitioner(app, facility=first)
    citizen = make_citizen(app)
    tokens = token_for(client, app, role="practitioner", practitioner=practitioner)
    path = f"/_principal/facts/{citizen}" if kind == "facts" else f"/_principal/{kind}"
    assert client.get(path, headers=bearer(tokens)).get_json() == [str(first)]
    with app.app_context():
        db.session.add(PractitionerMembership(
            id=uuid.uuid4(), practitioner_id=practitioner, facility_id=second,
            started_on=dt.date(2021, 1, 1)))
        db.session.commit()
    assert client.get(path, headers=bearer(tokens)).get_json() == sorted(
        [str(first), str(second)])
    with app.app_context():
        db.session.execute(update(PractitionerMembership).where(
            PractitionerMembership.practitioner_id == practitioner,
            PractitionerMembership.facility_id == first).values(ended_on=dt.date(2022, 1, 1)))
        db.session.commit()
    assert client.get(path, headers=bearer(tokens)).get_json() == [str(second)]
    with statements(app) as seen:
        assert client.get(path, headers=bearer(tokens)).get_json() == [str(second)]
    if kind == "facts":
        assert _principal_queries(seen) == []  # remembered anew


def test_the_cache_can_be_turned_off(app, client, world):
    from auth.resource import _PRINCIPALS_KEY, _Principals

    app.extensions[_PRINCIPALS_KEY] = _Principals(0)
    entry = _entry(client, world)
    path = f"/api/v1/citizens/{world.patient}/immunizations/{entry}"
    assert client.get(path, headers=world.headers("doctor")).status_code == 200
    with statements(app) as seen:
        assert client.get(path, headers=world.headers("doctor")).status_code == 200
    assert len(_principal_queries(seen)) == 1
