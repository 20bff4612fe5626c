"""RFC 7009 revocation (public clients log out) and RFC 7662 introspection."""

from __future__ import annotations

from tests.support.auth import (
    bearer,
    code_for,
    exchange,
    make_client,
    make_login,
    station_client,
    station_token,
    token_for,
)


def _me(client, tokens):
    return client.get("/api/v1/me", headers=bearer(tokens)).status_code


def test_public_client_logout_takes_effect_on_the_next_request(app, client):
    for which in ("refresh_token", "access_token"):
        tokens = token_for(client, app)
        assert _me(client, tokens) == 200
        response = client.post("/oauth/revoke", data={
            "token": getattr(tokens, which), "token_type_hint": which,
            "client_id": tokens.client.client_id,
        })
        assert response.status_code == 200
        assert _me(client, tokens) == 401, which
        again = client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
            "client_id": tokens.client.client_id,
        })
        assert again.get_json()["error"] == "invalid_grant"


def test_revoking_needs_the_client_and_only_its_own_tokens(app, client):
    tokens = token_for(client, app)
    anonymous = client.post("/oauth/revoke", data={"token": tokens.access_token})
    assert anonymous.status_code in (400, 401)
    assert anonymous.get_json()["error"] == "invalid_client"

    other = make_client(app, client_id="other-app")
    foreign = client.post("/oauth/revoke", data={"token": tokens.access_token,
                                                 "client_id": other.client_id})
    assert foreign.status_code == 400
    assert _me(client, tokens) == 200

    unknown = client.post("/oauth/revoke", data={"token": "phr_at_unknown",
                                                 "client_id": tokens.client.client_id})
    assert unknown.status_code == 200


def test_confidential_client_revokes_with_its_secret(app, client):
    oauth_client, _ = station_client(app)
    tokens = station_token(client, app, oauth_client=oauth_client)
    response = client.post("/oauth/revoke", data={"token": tokens.access_token},
                           auth=(oauth_client.client_id, oauth_client.secret))
    assert response.status_code == 200
    assert _me(client, tokens) == 401


def test_introspection_for_confidential_clients(app, client, clock):
    clinic = make_client(app, public=False, first_party=True, client_id="clinic-app",
                         scopes="openid offline_access user/*.cruds")
    login = make_login(app, role="practitioner")
    code, verifier = code_for(client, clinic, login, scope="openid offline_access user/*.rs")
    tokens = exchange(client, clinic, code, verifier).get_json()

    def introspect(token):
        return client.post("/oauth/introspect", data={"token": token},
                           auth=(clinic.client_id, clinic.secret))

    body = introspect(tokens["access_token"]).get_json()
    assert body["active"] is True
    assert body["client_id"] == "clinic-app"
    assert body["scope"] == "openid offline_access user/*.rs"
    assert body["sub"] == str(login.account_id)
    assert body["exp"] - body["iat"] <= 900
    assert introspect(tokens["refresh_token"]).get_json()["active"] is True
    assert introspect("phr_at_nonsense").get_json() == {"active": False}

    clock.advance(seconds=901)
    assert introspect(tokens["access_token"]).get_json() == {"active": False}
    clock.advance(seconds=-901)

    client.post("/oauth/revoke", data={"token": tokens["refresh_token"]},
                auth=(clinic.client_id, clinic.secret))
    assert introspect(tokens["access_token"]).get_json() == {"active": False}


def test_public_clients_cannot_introspect(app, client):
    tokens = token_for(client, app)
    response = client.post("/oauth/introspect", data={"token": tokens.access_token,
                                                      "client_id": tokens.client.client_id})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspecting_another_clients_token_says_inactive(app, client):
    tokens = token_for(client, app)
    clinic = make_client(app, public=False, client_id="clinic-app",
                         scopes="openid user/*.cruds")
    response = client.post("/oauth/introspect", data={"token": tokens.access_token},
                           auth=(clinic.client_id, clinic.secret))
    assert response.get_json() == {"active": False}
