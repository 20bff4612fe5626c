"""Tokens, codes, passwords and client secrets never reach a log line, even at DEBUG."""

from __future__ import annotations

from tests.conftest import LOG_FILE, make_app
from tests.support.auth import (
    bearer,
    code_for,
    exchange,
    make_login,
    refresh,
    shared_client,
    station_client,
    station_token,
    submit_login,
)


def test_flows_leave_no_credential_in_the_log(app, database_url, log_stream):
    debug_app = make_app(database_url, log_stream, LOG_LEVEL="DEBUG")
    http = debug_app.test_client()
    secrets = []

    login = make_login(debug_app, role="citizen")
    secrets += [login.password, login.username]
    oauth_client = shared_client(debug_app)
    code, verifier = code_for(http, oauth_client, login, scope="openid offline_access "
                              "patient/*.rs", nonce="nonce-canary-1")
    secrets += [code, verifier]
    tokens = exchange(http, oauth_client, code, verifier).get_json()
    exchange(http, oauth_client, code, verifier)  # a replay logs a warning
    login = make_login(debug_app, role="citizen")
    code, verifier = code_for(http, oauth_client, login, scope="openid offline_access")
    tokens = exchange(http, oauth_client, code, verifier).get_json()
    secrets += [code, verifier, tokens["access_token"], tokens["refresh_token"],
                tokens["id_token"]]
    rotated = refresh(http, oauth_client, tokens["refresh_token"]).get_json()
    secrets += [rotated["access_token"], rotated["refresh_token"]]
    http.get("/api/v1/me", headers=bearer(rotated["access_token"]))
    http.get("/oauth/userinfo", headers=bearer(rotated["access_token"]))
    http.get("/api/v1/me", headers=bearer("phr_at_tampered-canary-value-0123456789abcdef"))
    secrets.append("phr_at_tampered-canary-value-0123456789abcdef")

    system_client, _ = station_client(debug_app)
    system = station_token(http, debug_app, oauth_client=system_client)
    secrets += [system_client.secret, system.access_token]
    http.post("/oauth/introspect", data={"token": system.access_token},
              auth=(system_client.client_id, system_client.secret))
    http.post("/oauth/revoke", data={"token": rotated["refresh_token"],
                                     "client_id": oauth_client.client_id})

    page = http.get("/oauth/authorize?response_type=code&client_id=test-app")
    assert page.status_code in (200, 302, 400)
    submit_login(http, "/oauth/authorize?" + _query(oauth_client), username="bs.canary",
                 password="password-canary-0042")
    secrets.append("password-canary-0042")

    log_stream.flush()
    text = LOG_FILE.read_text(encoding="utf-8")
    assert '"logger": "phr.auth"' in text  # the flows did log
    for value in secrets:
        assert value not in text, f"a credential reached the log: {value[:10]}..."


def _query(oauth_client):
    from tests.support.auth import authorize_url, pkce_pair

    _, challenge = pkce_pair()
    return authorize_url(oauth_client, scope="openid", challenge=challenge).split("?", 1)[1]
