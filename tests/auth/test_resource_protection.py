"""The resource side: bearer tokens on /api, principals, SMART scope and role checks."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Blueprint, jsonify

from auth.accounts import set_password
from auth.models import Account
from auth.resource import current_caller, require_role, require_scope
from core.db import db
from registry.models import PractitionerMembership
from tests.support.auth import (
    bearer,
    make_facility,
    make_practitioner,
    station_token,
    token_for,
)


@pytest.fixture
def probe(app):
    """Routes that use the resource contract as API handlers do (outside /api: test-only)."""
    bp = Blueprint("auth_probe", __name__)

    @bp.get("/_probe/<resource>/<interaction>")
    def scoped(resource, interaction):
        require_scope(resource=resource, interaction=interaction)
        principal = current_caller()
        return jsonify(role=principal.role, token_id=str(principal.token_id))

    @bp.get("/_probe/staff-only")
    def staff_only():
        require_role("practitioner", "station")
        return jsonify(ok=True)

    @bp.get("/_probe/actor/<uuid:acting_for>")
    def actor(acting_for):
        actor = current_caller().acting_for_citizen(acting_for)
        return jsonify(role=actor.role, acting_for=str(actor.acting_for)
                       if actor.acting_for else None,
                       facility_ids=sorted(str(f) for f in actor.facility_ids))

    app.register_blueprint(bp)
    return app


def _today():
    return dt.datetime.now(dt.UTC).date()


def _problem(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == f"urn:phr-vn:problem:{code}"


def test_no_token(app, client):
    response = client.get("/api/v1/me")
    _problem(response, 401, "token-required")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="phr"'
    # Another scheme is not a bearer token; a token in the URL is not accepted either.
    _problem(client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwdw=="}),
             401, "token-required")
    tokens = token_for(client, app)
    _problem(client.get(f"/api/v1/me?access_token={tokens.access_token}"), 401, "token-required")


def test_every_api_path_needs_a_token_even_unknown_ones(app, client):
    for path in ("/api", "/api/v1", "/api/v1/nothing-here", f"/api/v1/citizens/{uuid.uuid4()}"):
        _problem(client.get(path), 401, "token-required")
    assert client.open("/api/v1/me", method="OPTIONS").status_code != 401


def test_tampered_and_unknown_tokens(app, client):
    tokens = token_for(client, app)
    token = tokens.access_token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for value in (tampered, token + "x", "phr_at_" + "0" * 43, "not-a-token", "Bearer"):
        response = client.get("/api/v1/me", headers=bearer(value))
        _problem(response, 401, "invalid-token")
        assert response.headers["WWW-Authenticate"].startswith(
            'Bearer realm="phr", error="invalid_token"'
        )
    _problem(client.get("/api/v1/me", headers={"Authorization": "Bearer"}), 401,
             "invalid-token")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_expired_token(app, client, clock):
    tokens = token_for(client, app)
    clock.advance(seconds=tokens.expires_in - 1)
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 200
    clock.advance(seconds=1)
    response = client.get("/api/v1/me", headers=bearer(tokens))
    _problem(response, 401, "invalid-token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_password_change_ends_every_session(app, client):
    tokens = token_for(client, app)
    with app.app_context():
        account = db.session.get(Account, tokens.login.account_id)
        set_password(session=db.session, account=account, password="a brand new password")
        db.session.commit()
    _problem(client.get("/api/v1/me", headers=bearer(tokens)), 401, "invalid-token")


def test_require_scope_follows_smart_v2(probe, client):
    tokens = token_for(client, probe, scopes="patient/Immunization.rs patient/Condition.r")

    def call(resource, interaction):
        return client.get(f"/_probe/{resource}/{interaction}", headers=bearer(tokens))

    assert call("Immunization", "r").status_code == 200
    assert call("immunizations", "s").status_code == 200  # section names map to FHIR types
    assert call("Immunization", "rs").status_code == 200
    assert call("conditions", "r").status_code == 200
    denied = call("Immunization", "c")
    _problem(denied, 403, "insufficient-scope")
    assert denied.headers["WWW-Authenticate"] == (
        'Bearer realm="phr", error="insufficient_scope", scope="patient/Immunization.c"'
    )
    assert denied.get_json()["required_scope"] == "patient/Immunization.c"
    _problem(call("conditions", "s"), 403, "insufficient-scope")
    _problem(call("Observation", "r"), 403, "insufficient-scope")
    _problem(call("summary", "r"), 403, "insufficient-scope")  # needs patient/*.r


def test_wildcard_scope(probe, client):
    tokens = token_for(client, probe, scopes="patient/*.rs")
    for resource in ("Observation", "history", "examinations", "summary", "consents"):
        assert client.get(f"/_probe/{resource}/r", headers=bearer(tokens)).status_code == 200
    response = client.get("/_probe/Observation/u", headers=bearer(tokens))
    _problem(response, 403, "insufficient-scope")


def test_scopes_are_read_in_the_roles_context(probe, client):
    staff = token_for(client, probe, role="practitioner", scopes="user/Immunization.rs")
    assert client.get("/_probe/Immunization/r", headers=bearer(staff)).status_code == 200
    response = client.get("/_probe/Immunization/c", headers=bearer(staff))
    assert response.get_json()["required_scope"] == "user/Immunization.c"

    system = station_token(client, probe, scopes="system/Immunization.cr")
    assert client.get("/_probe/Immunization/c", headers=bearer(system)).status_code == 200
    _problem(client.get("/_probe/Patient/r", headers=bearer(system)), 403,
             "insufficient-scope")


def test_admins_hold_no_clinical_scope(probe, client):
    tokens = token_for(client, probe, role="admin", scopes="openid profile patient/*.rs")
    assert tokens.scope == "openid profile"
    _problem(client.get("/_probe/Immunization/r", headers=bearer(tokens)), 403,
             "role-not-allowed")


def test_require_role(probe, client):
    citizen = token_for(client, probe)
    _problem(client.get("/_probe/staff-only", headers=bearer(citizen)), 403,
             "role-not-allowed")
    doctor = token_for(client, probe, role="practitioner")
    assert client.get("/_probe/staff-only", headers=bearer(doctor)).status_code == 200


def test_policy_actor(probe, client):
    dependant = uuid.uuid4()
    citizen = token_for(client, probe)
    body = client.get(f"/_probe/actor/{dependant}", headers=bearer(citizen)).get_json()
    assert body == {"role": "citizen", "acting_for": str(dependant), "facility_ids": []}
    doctor = token_for(client, probe, role="practitioner")
    body = client.get(f"/_probe/actor/{dependant}", headers=bearer(doctor)).get_json()
    assert body["role"] == "practitioner"
    assert body["acting_for"] is None
    assert len(body["facility_ids"]) == 1


def test_practitioner_facilities_follow_active_memberships(app, client):
    first = make_facility(app)
    second = make_facility(app, kind="hospital")
    practitioner = make_practitioner(app, facility=first)
    with app.app_context():
        db.session.add(PractitionerMembership(
            id=uuid.uuid4(), practitioner_id=practitioner, facility_id=second,
            started_on=dt.date(2021, 1, 1),
        ))
        db.session.add(PractitionerMembership(  # starts in the future: not yet
            id=uuid.uuid4(), practitioner_id=practitioner, facility_id=make_facility(app),
            started_on=_today() + dt.timedelta(days=30),
        ))
        db.session.commit()
    tokens = token_for(client, app, role="practitioner", practitioner=practitioner)
    me = client.get("/api/v1/me", headers=bearer(tokens)).get_json()
    assert sorted(me["facility_ids"]) == sorted([str(first), str(second)])

    with app.app_context():
        membership = db.session.query(PractitionerMembership).filter_by(
            practitioner_id=practitioner, facility_id=second).one()
        membership.ended_on = _today()
        db.session.commit()
    me = client.get("/api/v1/me", headers=bearer(tokens)).get_json()
    assert me["facility_ids"] == [str(first)]


def test_station_staff_act_for_their_station_while_they_work_there(app, client):
    station = make_facility(app)
    tokens = token_for(client, app, role="station", facility=station)
    me = client.get("/api/v1/me", headers=bearer(tokens)).get_json()
    assert me["role"] == "station"
    assert me["facility_ids"] == [str(station)]
    assert me["practitioner_id"] == str(tokens.login.practitioner_id)
    assert "user/*.cruds" in me["scopes"]

    with app.app_context():
        membership = db.session.query(PractitionerMembership).filter_by(
            practitioner_id=tokens.login.practitioner_id).one()
        membership.ended_on = _today()
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(tokens)).get_json()["facility_ids"] == []


def test_the_token_check_is_one_query(app, client):
    from sqlalchemy import event

    tokens = token_for(client, app, role="practitioner")
    statements = []
    with app.app_context():
        from auth.resource import load_caller
        from core.db import utcnow

        engine = db.engine

        def count(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            principal = load_caller(tokens.access_token, now=utcnow())
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert principal is not None
    assert principal.role == "practitioner"
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
