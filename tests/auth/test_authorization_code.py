"""Authorization code + PKCE through the login form, as the phone and the portal do it."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.auth import (
    approve,
    authorize_url,
    bearer,
    code_for,
    csrf_from,
    exchange,
    make_client,
    make_login,
    pkce_pair,
    query_of,
    shared_client,
    submit_login,
)

SCOPE = "openid profile offline_access patient/*.cruds"


def test_login_form_code_and_tokens(app, client):
    login = make_login(app, role="citizen")
    oauth_client = shared_client(app)
    verifier, challenge = pkce_pair()
    url = authorize_url(oauth_client, scope=SCOPE, challenge=challenge, state="xyz-123",
                        nonce="n-0S6")

    page = client.get(url)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    response = client.post(url, data={"csrf_token": csrf_from(html), "action": "login",
                                      "username": login.username, "password": login.password})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(oauth_client.redirect_uri + "?")
    params = query_of(location)
    assert params["state"] == "xyz-123"
    assert params["iss"] == app.config["OAUTH_ISSUER"].rstrip("/")
    assert params["code"].startswith("phr_ac_")

    token = exchange(client, oauth_client, params["code"], verifier)
    assert token.status_code == 200
    assert token.headers["Cache-Control"] == "no-store"
    body = token.get_json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 900
    assert body["scope"] == SCOPE
    assert body["refresh_token"].startswith("phr_rt_")

    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).get_json()
    assert me["role"] == "citizen"
    assert me["citizen_id"] == str(login.citizen_id)
    assert me["account_id"] == str(login.account_id)


def test_id_token_is_es256_signed_by_the_published_key(app, client):
    login = make_login(app, role="citizen")
    code, verifier = code_for(client, shared_client(app), login, scope=SCOPE, nonce="n-42")
    body = exchange(client, shared_client(app), code, verifier).get_json()

    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    decoded = jwt.decode(body["id_token"], keys, algorithms=["ES256"])
    claims = decoded.claims
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["kid"] == keys.keys[0].kid
    assert claims["iss"] == app.config["OAUTH_ISSUER"].rstrip("/")
    assert claims["aud"] == ["test-app"]
    assert claims["sub"] == str(login.account_id)
    assert claims["nonce"] == "n-42"
    assert claims["name"] == "Nguyễn Văn An"
    assert "at_hash" in claims
    assert "auth_time" in claims
    assert claims["exp"] - claims["iat"] <= 600
    assert login.username not in body["id_token"]  # the health ID never leaves in a token

    info = client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 200
    assert info.get_json() == {"sub": str(login.account_id), "name": "Nguyễn Văn An",
                               "locale": "vi"}


def test_userinfo_needs_the_openid_scope(app, client):
    login = make_login(app, role="citizen")
    code, verifier = code_for(client, shared_client(app), login, scope="patient/*.rs")
    body = exchange(client, shared_client(app), code, verifier).get_json()
    assert "id_token" not in body
    assert "refresh_token" not in body
    response = client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="phr", error="insufficient_scope", scope="openid"'
    )


def test_pkce_s256_is_required_of_every_client(app, client):
    public = shared_client(app)
    confidential = make_client(app, public=False, first_party=True)
    verifier, challenge = pkce_pair()
    attempts = [
        (public, None, None),  # no PKCE at all
        (public, verifier, "plain"),  # SMART forbids plain
        (public, verifier, None),  # plain by default (RFC 7636)
        (public, challenge, None),  # S256 must be said
        (confidential, None, None),  # confidential clients too
    ]
    for oauth_client, code_challenge, method in attempts:
        response = client.get(authorize_url(oauth_client, scope=SCOPE, challenge=code_challenge,
                                            method=method))
        assert response.status_code == 302
        params = query_of(response.headers["Location"])
        assert params["error"] == "invalid_request", (code_challenge, method)
        assert params["state"] == "st-1"


def test_wrong_or_missing_verifier_is_refused(app, client):
    login = make_login(app, role="citizen")
    oauth_client = shared_client(app)
    code, _ = code_for(client, oauth_client, login, scope=SCOPE)
    wrong, _ = pkce_pair()
    response = exchange(client, oauth_client, code, wrong)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"

    code, _ = code_for(client, oauth_client, login, scope=SCOPE)
    response = exchange(client, oauth_client, code, None)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_unregistered_redirect_uri_is_shown_not_followed(app, client):
    oauth_client = shared_client(app)
    _, challenge = pkce_pair()
    for uri in ("https://evil.example/cb", oauth_client.redirect_uri + "/extra",
                oauth_client.redirect_uri + "?x=1"):
        response = client.get(authorize_url(oauth_client, scope=SCOPE, challenge=challenge,
                                             redirect_uri=uri))
        assert response.status_code == 400
        assert "Location" not in response.headers
        assert response.get_json()["type"].endswith("invalid-authorization-request")

    # A browser gets the same problem as a page.
    response = client.get(
        authorize_url(oauth_client, scope=SCOPE, challenge=challenge,
                      redirect_uri="https://evil.example/cb"),
        headers={"Accept": "text/html,application/xhtml+xml"},
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert 'href="https://evil.example' not in response.get_data(as_text=True)


def test_redirect_uri_must_match_at_the_token_endpoint(app, client):
    login = make_login(app, role="citizen")
    oauth_client = shared_client(app)
    code, verifier = code_for(client, oauth_client, login, scope=SCOPE)
    response = exchange(client, oauth_client, code, verifier,
                        redirect_uri="vn.gov.phr.test:/oauth/other")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_unknown_client(app, client):
    from tests.support.auth import ClientInfo

    ghost = ClientInfo("no-such-client", "vn.gov.phr.test:/oauth/callback")
    _, challenge = pkce_pair()
    response = client.get(authorize_url(ghost, scope=SCOPE, challenge=challenge))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.get_json()["type"].endswith("invalid-authorization-request")

    response = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": "phr_ac_x", "client_id": "no-such-client",
        "code_verifier": "a" * 43, "redirect_uri": ghost.redirect_uri,
    })
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=("no-such-client", "phr_cs_guess"))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_reused_code_is_refused_and_revokes_its_tokens(app, client):
    login = make_login(app, role="citizen")
    oauth_client = shared_client(app)
    code, verifier = code_for(client, oauth_client, login, scope=SCOPE)
    first = exchange(client, oauth_client, code, verifier).get_json()
    assert client.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 200

    replay = exchange(client, oauth_client, code, verifier)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert client.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 401
    again = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": oauth_client.client_id,
    })
    assert again.get_json()["error"] == "invalid_grant"


def test_code_lives_at_most_a_minute(app, client, clock):
    login = make_login(app, role="citizen")
    oauth_client = shared_client(app)
    code, verifier = code_for(client, oauth_client, login, scope=SCOPE)
    clock.advance(seconds=61)
    response = exchange(client, oauth_client, code, verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(app, client):
    login = make_login(app, role="citizen")
    code, verifier = code_for(client, shared_client(app), login, scope=SCOPE)
    other = make_client(app, client_id="other-app")
    response = exchange(client, other, code, verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_third_party_client_asks_for_approval_in_plain_words(app, client):
    clinic = make_client(app, public=False, first_party=False, name="Phòng khám ABC",
                         scopes="openid offline_access user/*.cruds patient/Immunization.rs",
                         redirect_uri="https://clinic.example/cb")
    login = make_login(app, role="citizen")
    verifier, challenge = pkce_pair()
    url = authorize_url(clinic, scope="openid patient/Immunization.rs", challenge=challenge)

    page = submit_login(client, url, username=login.username, password=login.password,
                        **{"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Phòng khám ABC" in html
    assert "Read and search: immunizations" in html
    assert "Confirm who you are" in html

    denied = approve(client, url, page.data, decision="deny")
    assert denied.status_code == 302
    assert query_of(denied.headers["Location"])["error"] == "access_denied"

    page = submit_login(client, url, username=login.username, password=login.password)
    assert "Xem và tìm kiếm: tiêm chủng" in page.get_data(as_text=True)
    allowed = approve(client, url, page.data)
    assert allowed.status_code == 302
    code = query_of(allowed.headers["Location"])["code"]

    # A confidential client must authenticate to redeem its code.
    without_secret = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": clinic.client_id,
        "redirect_uri": clinic.redirect_uri, "code_verifier": verifier,
    })
    assert without_secret.status_code == 401
    assert without_secret.get_json()["error"] == "invalid_client"
    response = exchange(client, clinic, code, verifier)
    assert response.status_code == 200
    assert response.get_json()["scope"] == "openid patient/Immunization.rs"


def test_approval_needs_a_fresh_login(app, client, clock):
    clinic = make_client(app, public=True, first_party=False, client_id="third-party")
    login = make_login(app, role="citizen")
    _, challenge = pkce_pair()
    url = authorize_url(clinic, scope="openid", challenge=challenge)
    page = submit_login(client, url, username=login.username, password=login.password)
    clock.advance(minutes=11)
    response = approve(client, url, page.data)
    assert response.status_code == 200
    assert 'name="password"' in response.get_data(as_text=True)  # back to the login form


def test_prompt_none_needs_a_login(app, client):
    oauth_client = shared_client(app)
    _, challenge = pkce_pair()
    for scope in ("openid", "patient/*.rs"):
        response = client.get(authorize_url(oauth_client, scope=scope, challenge=challenge,
                                             prompt="none"))
        assert response.status_code == 302
        assert query_of(response.headers["Location"])["error"] == "login_required"


def test_no_implicit_or_password_grant(app, client):
    oauth_client = shared_client(app)
    _, challenge = pkce_pair()
    url = authorize_url(oauth_client, scope=SCOPE, challenge=challenge).replace(
        "response_type=code", "response_type=token"
    )
    response = client.get(url)
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "unsupported_response_type"

    login = make_login(app, role="citizen")
    response = client.post("/oauth/token", data={
        "grant_type": "password", "username": login.username, "password": login.password,
        "client_id": oauth_client.client_id,
    })
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_token_parameters_in_the_url_are_refused(app, client):
    login = make_login(app, role="citizen")
    oauth_client = shared_client(app)
    code, verifier = code_for(client, oauth_client, login, scope=SCOPE)
    response = client.post(f"/oauth/token?code={code}", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": oauth_client.client_id, "redirect_uri": oauth_client.redirect_uri,
    })
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_pages_speak_english_on_request(app, client):
    oauth_client = shared_client(app)
    _, challenge = pkce_pair()
    url = authorize_url(oauth_client, scope=SCOPE, challenge=challenge)
    assert "Đăng nhập" in client.get(url).get_data(as_text=True)
    english = client.get(url, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in" in english.get_data(as_text=True)
    assert english.headers["Content-Language"] == "en"
    assert "Sign in" in client.get(url + "&ui_locales=en").get_data(as_text=True)
