"""Hostile input on the OAuth endpoints (issue 14): NUL and non-ASCII parameters.

PostgreSQL refuses NUL in text, so a client id, a nonce... with one used to answer 500 there
(`TEST_DATABASE_URL=postgresql://...` runs these on PostgreSQL); a quote or a non-ASCII
character in a value Authlib echoes into an error description made Authlib raise, a 500 on
every database. Each must be the OAuth answer the endpoint gives an unknown client or a
malformed request, and change nothing.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import pytest

from core.db import db
from tests.support.auth import (
    authorize_url,
    csrf_from,
    make_login,
    pkce_pair,
    shared_client,
    station_client,
    token_for,
)
from tests.support.database import rows_left

UNKNOWN = "no-such-client"


def _rows(app: Any) -> dict[str, int]:
    with app.app_context():
        return rows_left(db.engine)


def _basic(client_id: bytes, secret: bytes = b"secret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(client_id + b":" + secret).decode()}


def _same_oauth_error(response: Any, baseline: Any) -> None:
    assert response.status_code == baseline.status_code, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == baseline.get_json()["error"]


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("bad_id", ["ab\x00c", "test-app\x00", "a" * 5000, "klient-\u0111"])
def test_a_malformed_client_id_is_an_unknown_client(app, client, path, bad_id):
    shared_client(app)
    data = {"grant_type": "client_credentials", "client_secret": "x", "token": "phr_at_x"}
    baseline = client.post(path, data={**data, "client_id": UNKNOWN})
    assert baseline.get_json()["error"] == "invalid_client"
    before = _rows(app)
    _same_oauth_error(client.post(path, data={**data, "client_id": bad_id}), baseline)
    assert _rows(app) == before


@pytest.mark.parametrize("credentials", [b"ab\x00c", b"ab%00c", b"\xff\xfe", b"%FF%FE"])
def test_malformed_basic_credentials_are_an_unknown_client(app, client, credentials):
    station_client(app)
    baseline = client.post("/oauth/introspect", data={"token": "phr_at_x"},
                           headers=_basic(UNKNOWN.encode()))
    assert baseline.status_code == 401
    before = _rows(app)
    for path in ("/oauth/introspect", "/oauth/token", "/oauth/revoke"):
        response = client.post(path, data={"token": "phr_at_x",
                                           "grant_type": "client_credentials"},
                               headers=_basic(credentials))
        _same_oauth_error(response, baseline)
        assert "WWW-Authenticate" in response.headers
    assert _rows(app) == before


@pytest.mark.parametrize(("name", "value"), [
    ("scope", 'system/Patient.rs "x"'),
    ("scope", "system/Patient.rs\x00"),
    ("code", "phr_ac_\x00"),
    ("refresh_token", "phr_rt_\x00"),
    ("grant_type", "client_credentials\x00"),
])
def test_a_malformed_token_parameter_is_invalid_request(app, client, name, value):
    oauth_client, _ = station_client(app)
    before = _rows(app)
    data = {"grant_type": "client_credentials", name: value}
    response = client.post("/oauth/token", data=data,
                           auth=(oauth_client.client_id, oauth_client.secret))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_request"
    assert _rows(app) == before


def test_a_nul_token_is_invalid_request_at_revocation_and_introspection(app, client):
    oauth_client, _ = station_client(app)
    for path in ("/oauth/revoke", "/oauth/introspect"):
        response = client.post(path, data={"token": "phr_at_\x00"},
                               auth=(oauth_client.client_id, oauth_client.secret))
        assert response.status_code == 400, path
        assert response.get_json()["error"] == "invalid_request"


# The authorization endpoint: a request it cannot trust is shown, never redirected.
AUTHORIZE = [
    ("nul-client-id", {"client_id": "test-app\x00"}),
    ("nul-nonce", {"nonce": "n\x00"}),
    ("nul-state", {"state": "s\x00"}),
    ("nul-redirect-uri", {"redirect_uri": "vn.gov.phr.test:/oauth/call\x00back"}),
    ("quote-in-redirect-uri", {"redirect_uri": 'https://evil.example/"'}),
    ("non-ascii-redirect-uri", {"redirect_uri": "https://evil.example/đ"}),
    ("quote-in-scope", {"scope": 'openid "x"'}),
    ("quote-in-response-type", {"response_type": 'co"de'}),
    ("nul-code-challenge-method", {"code_challenge_method": "S256\x00"}),
]


@pytest.mark.parametrize(("case", "changes"), AUTHORIZE, ids=[c[0] for c in AUTHORIZE])
def test_a_malformed_authorization_request_is_a_400_problem(app, client, case, changes):
    oauth_client = shared_client(app)
    _, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": oauth_client.client_id,
              "redirect_uri": oauth_client.redirect_uri, "scope": "openid", "state": "st-1",
              "code_challenge": challenge, "code_challenge_method": "S256", **changes}
    for lang in ("vi", "en"):
        response = client.get("/oauth/authorize?" + urlencode(params),
                              headers={"Accept-Language": lang, "Accept": "application/json"})
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert response.headers["Content-Language"] == lang
        assert response.get_json()["type"].endswith("invalid-authorization-request")
        assert "Location" not in response.headers


@pytest.mark.parametrize("username", ["ab\x00c", "0010900\x0012345", "admin\u202e"])
def test_a_nul_username_is_a_failed_login_and_the_account_still_works(app, client, username):
    oauth_client = shared_client(app)
    login = make_login(app)
    _, challenge = pkce_pair()
    url = authorize_url(oauth_client, scope="openid", challenge=challenge)
    page = client.get(url)
    response = client.post(url, data={"csrf_token": csrf_from(page.data), "action": "login",
                                      "username": username, "password": "whatever"})
    assert response.status_code == 200
    assert b"\x00" not in response.data
    assert token_for(client, app, login=login).access_token
