"""Client credentials for a facility's system (station, clinic)."""

from __future__ import annotations

import hashlib

from auth.models import OAuthClient
from core.db import db
from tests.support.auth import (
    STATION_SCOPES,
    bearer,
    make_client,
    make_facility,
    station_client,
    station_token,
)


def test_station_system_gets_a_short_token_for_its_facility(app, client):
    oauth_client, facility = station_client(app)
    tokens = station_token(client, app, oauth_client=oauth_client)
    assert tokens.refresh_token is None
    assert 0 < tokens.expires_in <= 900
    assert tokens.scope == STATION_SCOPES
    me = client.get("/api/v1/me", headers=bearer(tokens)).get_json()
    assert me["role"] == "station"
    assert me["account_id"] is None
    assert me["facility_ids"] == [str(facility)]
    assert me["client_id"] == oauth_client.client_id


def test_secret_in_the_body_works_and_a_wrong_one_does_not(app, client):
    oauth_client, _ = station_client(app)
    response = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": oauth_client.client_id,
        "client_secret": oauth_client.secret,
    })
    assert response.status_code == 200
    wrong = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(oauth_client.client_id, oauth_client.secret + "x"))
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_client"
    missing = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                "client_id": oauth_client.client_id})
    assert missing.status_code == 401


def test_client_secret_is_stored_hashed(app, client):
    oauth_client, _ = station_client(app)
    with app.app_context():
        row = db.session.get(OAuthClient, oauth_client.client_id)
        stored = row.client_secret_hash
    assert stored != oauth_client.secret.encode()
    assert oauth_client.secret.encode() not in stored
    assert stored == hashlib.sha256(oauth_client.secret.encode()).digest()


def test_requested_scope_is_bounded_by_the_registration(app, client):
    oauth_client, _ = station_client(app)
    narrower = station_token(client, app, oauth_client=oauth_client,
                             scopes="system/Immunization.c")
    assert narrower.scope == "system/Immunization.c"
    for escalation in ("system/*.cruds", "system/Immunization.cruds", "system/Condition.r",
                       "user/*.cruds", "patient/*.rs", "openid", "made-up"):
        response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                     "scope": escalation},
                               auth=(oauth_client.client_id, oauth_client.secret))
        assert response.status_code == 400, escalation
        assert response.get_json()["error"] == "invalid_scope"


def test_public_clients_cannot_use_client_credentials(app, client):
    public = make_client(app, client_id="public-app")
    response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "client_id": public.client_id})
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_client", "unauthorized_client")


def test_client_without_the_grant_cannot_use_it(app, client):
    facility = make_facility(app)
    clinic = make_client(app, public=False, first_party=False, facility=facility,
                         scopes="openid user/*.cruds", redirect_uri="https://clinic.example/cb")
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(clinic.client_id, clinic.secret))
    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_disabled_client_loses_its_tokens(app, client):
    oauth_client, _ = station_client(app)
    tokens = station_token(client, app, oauth_client=oauth_client)
    with app.app_context():
        db.session.get(OAuthClient, oauth_client.client_id).active = False
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(oauth_client.client_id, oauth_client.secret))
    assert response.status_code == 401
