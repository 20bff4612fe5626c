"""`auth create-client`, `auth rotate-secret`, `auth purge`, `users create`, the demo logins."""

from __future__ import annotations

import hashlib
import json
import uuid

from auth.models import Account, OAuthClient
from auth.seed import seed_demo_accounts
from core.db import db
from registry.seed import seed_demo
from tests.support.auth import (
    ClientInfo,
    Login,
    bearer,
    code_for,
    exchange,
    health_id_of,
    make_citizen,
    make_facility,
    station_token,
    submit_login,
    token_for,
)


def _run(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    return result


def test_create_client_prints_the_secret_once_and_stores_a_digest(app, client):
    facility = make_facility(app)
    with app.app_context():
        from registry.models import Facility

        code = db.session.get(Facility, facility).code
    result = _run(app, "auth", "create-client", "--client-id", "station-x", "--name",
                  "Trạm X", "--type", "confidential", "--grant", "client_credentials",
                  "--scope", "system/Immunization.cr", "--facility-code", code)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["client_id"] == "station-x"
    assert printed["client_secret"].startswith("phr_cs_")
    with app.app_context():
        row = db.session.get(OAuthClient, "station-x")
        assert row.client_secret_hash == hashlib.sha256(
            printed["client_secret"].encode()).digest()
    tokens = station_token(client, app, oauth_client=ClientInfo(
        "station-x", None, printed["client_secret"]))
    assert tokens.scope == "system/Immunization.cr"

    rotated = _run(app, "auth", "rotate-secret", "station-x")
    new_secret = json.loads(rotated.output)["client_secret"]
    assert new_secret != printed["client_secret"]
    old = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                      auth=("station-x", printed["client_secret"]))
    assert old.status_code == 401


def test_create_client_refuses_unsafe_registrations(app):
    cases = [
        ("--type", "public", "--grant", "client_credentials"),
        ("--type", "public", "--grant", "authorization_code",
         "--redirect-uri", "http://example.com/cb"),  # plain http off loopback
        ("--type", "public", "--grant", "authorization_code",
         "--redirect-uri", "https://example.com/*"),
        ("--type", "public", "--grant", "authorization_code",
         "--redirect-uri", "javascript:alert(1)"),
        ("--type", "confidential", "--grant", "client_credentials"),  # no facility
        ("--type", "public", "--grant", "authorization_code", "--redirect-uri",
         "https://app.example/cb", "--scope", "system/*.cruds"),
    ]
    for extra in cases:
        result = _run(app, "auth", "create-client", "--name", "x", *extra)
        assert result.exit_code != 0, extra
    result = _run(app, "auth", "create-client", "--name", "Portal", "--type", "public",
                  "--grant", "authorization_code", "--grant", "refresh_token",
                  "--redirect-uri", "https://portal.example/cb", "--first-party",
                  "--scope", "openid offline_access patient/*.rs")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["client_secret"] is None


def test_users_create(app, client):
    citizen = make_citizen(app)
    health_id = health_id_of(app, citizen)
    result = _run(app, "users", "create", "--role", "citizen", "--health-id", health_id,
                  "--password-stdin", input="a good long password\n")
    assert result.exit_code == 0, result.output
    account_id = json.loads(result.output)["account_id"]
    login = Login(account_id=account_id, role="citizen", username=health_id,
                  password="a good long password", citizen_id=citizen)
    tokens = token_for(client, app, login=login)
    assert client.get("/api/v1/me", headers=bearer(tokens)).get_json()["citizen_id"] == (
        str(citizen)
    )

    prompted = _run(app, "users", "create", "--role", "admin", "--username", "ops.admin",
                    input="another long password\nanother long password\n")
    assert prompted.exit_code == 0, prompted.output
    short = _run(app, "users", "create", "--role", "admin", "--username", "ops.two",
                 "--password-stdin", input="short\n")
    assert short.exit_code != 0
    assert "at least 8" in short.output
    again = _run(app, "users", "create", "--role", "citizen", "--health-id", health_id,
                 "--password-stdin", input="a good long password\n")
    assert again.exit_code != 0


def test_purge_keeps_live_tokens(app, client, clock):
    tokens = token_for(client, app, scopes="openid")
    assert json.loads(_run(app, "auth", "purge").output)["tokens"] == 0
    clock.advance(days=8)
    counts = json.loads(_run(app, "auth", "purge").output)
    assert counts["tokens"] == 1
    assert counts["codes"] == 1
    clock.advance(days=-8)
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401


def _identities(app):
    with app.app_context():
        identities, _ = seed_demo()
        created = seed_demo_accounts(identities)
    return identities, created


def test_demo_logins_are_idempotent_and_work(app, client):
    first, created = _identities(app)
    assert created > 0
    second, created_again = _identities(app)
    assert created_again == 0
    assert first == second

    by_role = {person["demo_role"]: person for person in first["citizens"]}
    assert "username" not in by_role["infant"]
    adult = by_role["adult-chronic"]
    assert adult["username"] == adult["health_id"]
    staff = {person["demo_role"]: person for person in first["practitioners"]}
    assert {"username", "password"} <= set(staff["family-doctor"])
    clients = first["clients"]
    assert set(clients) == {"mobile", "portal", "clinic"}
    assert clients["clinic"]["client_secret"].startswith("phr_cs_")

    mobile = ClientInfo(clients["mobile"]["client_id"], clients["mobile"]["redirect_uri"])
    with app.app_context():
        account = db.session.query(Account).filter_by(citizen_id=uuid.UUID(adult["id"])).one()
    login = Login(account_id=account.id, role="citizen", username=adult["username"],
                  password=adult["password"])
    code, verifier = code_for(client, mobile, login, scope="openid offline_access patient/*.rs")
    tokens = exchange(client, mobile, code, verifier).get_json()
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).get_json()[
        "citizen_id"] == adult["id"]

    station = first["stations"][0]
    system = station_token(client, app, oauth_client=ClientInfo(
        station["client_id"], None, station["client_secret"]))
    me = client.get("/api/v1/me", headers=bearer(system)).get_json()
    assert me["facility_ids"] == [station["facility_id"]]

    vaccinator = staff["vaccinator"]
    page = submit_login(client, _clinic_url(clients["clinic"]), username=vaccinator["username"],
                        password=vaccinator["password"])
    assert page.status_code == 200  # the clinic client is third-party: approval screen
    assert 'name="decision"' in page.get_data(as_text=True)


def _clinic_url(clinic):
    from tests.support.auth import authorize_url, pkce_pair

    _, challenge = pkce_pair()
    return authorize_url(ClientInfo(clinic["client_id"], clinic["redirect_uri"], "x"),
                         scope="openid user/*.rs", challenge=challenge)
