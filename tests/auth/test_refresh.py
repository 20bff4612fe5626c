"""Refresh tokens: rotation, reuse detection, the grace window for a lost response."""

from __future__ import annotations

from auth.accounts import deactivate_account
from auth.models import Account
from core.db import db
from tests.support.auth import bearer, make_client, refresh, token_for


def _me(client, access_token):
    return client.get("/api/v1/me", headers=bearer(access_token)).status_code


def test_every_refresh_rotates(app, client):
    first = token_for(client, app)
    response = refresh(client, first.client, first.refresh_token)
    assert response.status_code == 200
    second = response.get_json()
    assert second["refresh_token"] != first.refresh_token
    assert second["access_token"] != first.access_token
    assert 0 < second["expires_in"] <= 900
    assert second["scope"] == first.scope
    assert _me(client, second["access_token"]) == 200

    third = refresh(client, first.client, second["refresh_token"]).get_json()
    assert third["refresh_token"] not in (first.refresh_token, second["refresh_token"])


def test_replay_inside_the_grace_window_returns_the_same_successor(app, client, clock):
    first = token_for(client, app)
    successor = refresh(client, first.client, first.refresh_token).get_json()

    clock.advance(seconds=20)  # the phone never saw the answer and tries again
    replay = refresh(client, first.client, first.refresh_token)
    assert replay.status_code == 200
    again = replay.get_json()
    assert again["access_token"] == successor["access_token"]
    assert again["refresh_token"] == successor["refresh_token"]
    assert again["expires_in"] <= successor["expires_in"] - 20

    # Nothing was revoked: the successor goes on as usual.
    assert _me(client, successor["access_token"]) == 200
    assert refresh(client, first.client, successor["refresh_token"]).status_code == 200


def test_replay_after_the_successor_was_used_revokes_the_family(app, client):
    first = token_for(client, app)
    second = refresh(client, first.client, first.refresh_token).get_json()
    third = refresh(client, first.client, second["refresh_token"]).get_json()
    assert _me(client, third["access_token"]) == 200

    stolen = refresh(client, first.client, first.refresh_token)
    assert stolen.status_code == 400
    assert stolen.get_json()["error"] == "invalid_grant"
    # The whole login is gone, including the legitimate newest tokens.
    assert _me(client, third["access_token"]) == 401
    assert _me(client, second["access_token"]) == 401
    assert refresh(client, first.client, third["refresh_token"]).get_json()["error"] == (
        "invalid_grant"
    )


def test_replay_after_the_grace_window_revokes_the_family(app, client, clock):
    first = token_for(client, app)
    second = refresh(client, first.client, first.refresh_token).get_json()
    clock.advance(seconds=61)
    replay = refresh(client, first.client, first.refresh_token)
    assert replay.status_code == 400
    assert _me(client, second["access_token"]) == 401


def test_a_refresh_token_belongs_to_its_client(app, client):
    first = token_for(client, app)
    other = make_client(app, client_id="other-app")
    response = refresh(client, other, first.refresh_token)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert refresh(client, first.client, first.refresh_token).status_code == 200


def test_no_refresh_token_without_offline_access(app, client):
    tokens = token_for(client, app, scopes="openid patient/*.rs")
    assert tokens.refresh_token is None


def test_narrowing_is_allowed_widening_is_not(app, client):
    first = token_for(client, app, scopes="offline_access patient/*.rs")
    wider = refresh(client, first.client, first.refresh_token,
                    scope="offline_access patient/*.cruds")
    assert wider.status_code == 400
    assert wider.get_json()["error"] == "invalid_scope"
    narrower = refresh(client, first.client, first.refresh_token,
                       scope="offline_access patient/Immunization.rs")
    assert narrower.status_code == 200
    assert narrower.get_json()["scope"] == "offline_access patient/Immunization.rs"


def test_idle_refresh_token_expires(app, client, clock):
    first = token_for(client, app)
    clock.advance(days=31)
    response = refresh(client, first.client, first.refresh_token)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_login_has_an_absolute_lifetime(app, client, clock):
    app.config["OAUTH_SESSION_MAX_SECONDS"] = 3600
    tokens = token_for(client, app)
    clock.advance(minutes=50)
    tokens_after = refresh(client, tokens.client, tokens.refresh_token).get_json()
    clock.advance(minutes=11)
    response = refresh(client, tokens.client, tokens_after["refresh_token"])
    assert response.get_json()["error"] == "invalid_grant"


def test_disabled_account_cannot_refresh(app, client):
    tokens = token_for(client, app)
    with app.app_context():
        account = db.session.get(Account, tokens.login.account_id)
        deactivate_account(session=db.session, account=account)
        db.session.commit()
    assert _me(client, tokens.access_token) == 401
    response = refresh(client, tokens.client, tokens.refresh_token)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
