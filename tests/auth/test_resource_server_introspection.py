"""RFC 7662 §2.1 for resource servers (issue 19): a confidential client registered as a resource
server (a FHIR gateway, a partner API) introspects the access tokens its callers present,
whoever they were issued to; any other client only its own. Through the real endpoints with
real tokens of a phone login."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from sqlalchemy.exc import IntegrityError

from auth.models import Account, OAuthClient
from core.db import db
from tests.support.auth import (
    ClientInfo,
    bearer,
    make_client,
    station_client,
    station_token,
    token_for,
)

# Everything an active answer may hold: RFC 7662 §2.2 members the project fills, no more
# (`sub` is the account id, never the health ID or a name).
ACTIVE_KEYS = {"active", "client_id", "scope", "sub", "iss", "iat", "exp", "token_type"}


def _resource_server(app, client_id: str = "fhir-gateway") -> ClientInfo:
    """Registered as an operator does it: `flask auth create-client --resource-server`."""
    result = app.test_cli_runner().invoke(args=[
        "auth", "create-client", "--client-id", client_id, "--name", "Cổng FHIR",
        "--type", "confidential", "--resource-server"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["resource_server"] is True
    return ClientInfo(printed["client_id"], None, printed["client_secret"])


def _introspect(http, who: ClientInfo, token: str, **extra: str):
    return http.post("/oauth/introspect", data={"token": token, **extra},
                     auth=(who.client_id, who.secret))


def test_a_resource_server_introspects_a_citizens_phone_token_until_it_is_revoked(app, client):
    gateway = _resource_server(app)
    phone = token_for(client, app, scopes="openid offline_access patient/Immunization.rs")

    response = _introspect(client, gateway, phone.access_token,
                           token_type_hint="access_token")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == ACTIVE_KEYS
    assert body["active"] is True
    assert body["client_id"] == phone.client.client_id
    assert body["scope"] == "openid offline_access patient/Immunization.rs"
    assert body["sub"] == str(phone.login.account_id)
    assert body["token_type"] == "Bearer"
    assert body["iss"] == app.config["OAUTH_ISSUER"].rstrip("/")
    assert 0 < body["exp"] - body["iat"] <= 900
    assert client.get("/api/v1/me", headers=bearer(phone)).status_code == 200

    # The phone logs out: the very next introspection says inactive, as the API does.
    logout = client.post("/oauth/revoke", data={"token": phone.refresh_token,
                                                "client_id": phone.client.client_id})
    assert logout.status_code == 200
    assert _introspect(client, gateway, phone.access_token).get_json() == {"active": False}
    assert client.get("/api/v1/me", headers=bearer(phone)).status_code == 401


def test_a_resource_server_sees_access_tokens_only_not_refresh_tokens(app, client):
    gateway = _resource_server(app)
    phone = token_for(client, app)
    assert phone.refresh_token
    answer = _introspect(client, gateway, phone.refresh_token, token_type_hint="refresh_token")
    assert answer.status_code == 200
    assert answer.get_json() == {"active": False}
    assert _introspect(client, gateway, phone.access_token).get_json()["active"] is True


def test_a_plain_confidential_client_sees_its_own_tokens_only(app, client):
    phone = token_for(client, app)
    station, _ = station_client(app)
    own = station_token(client, app, oauth_client=station)

    assert _introspect(client, station, phone.access_token).get_json() == {"active": False}
    mine = _introspect(client, station, own.access_token).get_json()
    assert mine["active"] is True
    assert mine["client_id"] == station.client_id
    assert "sub" not in mine  # client credentials: no person behind the token


def test_a_resource_server_also_sees_a_systems_token_and_its_own(app, client):
    gateway = _resource_server(app)
    station, _ = station_client(app)
    system = station_token(client, app, oauth_client=station)
    body = _introspect(client, gateway, system.access_token).get_json()
    assert (body["active"], body["client_id"], body["scope"]) == (
        True, station.client_id, system.scope)
    assert _introspect(client, gateway, "phr_at_nonsense").get_json() == {"active": False}


def test_expired_tokens_and_disabled_accounts_or_clients_are_inactive(app, client, clock):
    gateway = _resource_server(app)
    phone = token_for(client, app)
    clock.advance(seconds=901)
    assert _introspect(client, gateway, phone.access_token).get_json() == {"active": False}
    clock.advance(seconds=-901)
    assert _introspect(client, gateway, phone.access_token).get_json()["active"] is True

    with app.app_context():
        db.session.get(Account, phone.login.account_id).active = False
        db.session.commit()
    assert _introspect(client, gateway, phone.access_token).get_json() == {"active": False}
    assert client.get("/api/v1/me", headers=bearer(phone)).status_code == 401

    other = token_for(client, app)
    with app.app_context():
        db.session.get(OAuthClient, other.client.client_id).active = False
        db.session.commit()
    assert _introspect(client, gateway, other.access_token).get_json() == {"active": False}
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 401


def test_a_public_client_cannot_introspect_even_its_own_token(app, client):
    phone = token_for(client, app)
    response = client.post("/oauth/introspect", data={"token": phone.access_token,
                                                      "client_id": phone.client.client_id})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("credentials", [
    ("fhir-gateway", "phr_cs_wrong"),  # a resource server with a wrong secret
    ("nobody-here", "phr_cs_wrong"),  # an unknown client
    None,  # no client authentication at all
])
def test_bad_client_credentials_answer_401_invalid_client(app, client, credentials):
    _resource_server(app)
    phone = token_for(client, app)
    response = client.post("/oauth/introspect", data={"token": phone.access_token},
                           auth=credentials)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] == "invalid_client"
    assert "active" not in body
    assert phone.access_token not in response.get_data(as_text=True)


def test_the_introspection_of_anothers_token_is_logged_without_token_or_person(
    app, client, caplog,
):
    gateway = _resource_server(app)
    phone = token_for(client, app)
    caplog.clear()  # the login itself logged its account (login succeeded)
    with caplog.at_level(logging.INFO, logger="phr.auth"):
        assert _introspect(client, gateway, phone.access_token).get_json()["active"] is True
    [record] = [r for r in caplog.records if r.getMessage() == "token introspected by a "
                "resource server"]
    assert (record.client_id, record.token_client_id, record.active) == (
        "fhir-gateway", phone.client.client_id, True)
    logged = json.dumps([vars(r) for r in caplog.records], default=str)
    assert phone.access_token not in logged
    assert str(phone.login.account_id) not in logged


def test_registration_keeps_resource_servers_confidential_with_a_hashed_secret(app):
    gateway = _resource_server(app, client_id="partner-api")
    with app.app_context():
        row = db.session.get(OAuthClient, "partner-api")
        assert (row.client_type, row.resource_server, row.grant_types) == (
            "confidential", True, "")
        assert row.client_secret_hash == hashlib.sha256(gateway.secret.encode()).digest()

    runner = app.test_cli_runner()
    refused = [
        ("--type", "public", "--resource-server"),  # no secret to authenticate with
        ("--type", "confidential", "--resource-server", "--scope", "user/*.rs"),  # no grant
        ("--type", "confidential"),  # neither a grant nor a resource server
    ]
    for extra in refused:
        result = runner.invoke(args=["auth", "create-client", "--name", "x", *extra])
        assert result.exit_code != 0, extra
    # A plain confidential client is no resource server unless registered as one.
    plain = make_client(app, public=False, client_id="clinic-app", scopes="openid")
    with app.app_context():
        assert db.session.get(OAuthClient, plain.client_id).resource_server is False


def test_the_database_refuses_a_public_resource_server(app):
    with app.app_context():
        db.session.add(OAuthClient(client_id="public-rs", name="x", client_type="public",
                                   grant_types="authorization_code", resource_server=True))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
