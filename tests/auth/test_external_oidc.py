"""Login through an external OpenID provider (VNeID), against a local Authlib provider.

Every exchange is real: our app (Flask test client, checked against openapi.yaml) sends the
browser to the provider, the test follows that redirect over HTTP to the provider (a werkzeug
server on 127.0.0.1), the provider redirects back, and our app exchanges the code, fetches the
provider's discovery document and JWKS and verifies the RS256 ID token over the network.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from auth.external_login import forget_provider_cache
from auth.external_models import ExternalIdentity
from auth.models import Account
from core.db import db
from registry.reference.health_id import make_health_id
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOpenIdProvider, Person
from tests.conftest import LOG_FILE, make_app
from tests.support.auth import (
    authorize_url,
    bearer,
    exchange,
    health_id_of,
    make_citizen,
    make_client,
    make_login,
    pkce_pair,
    query_of,
    submit_login,
)

HTML = {"Accept": "text/html"}
BUTTON = "Đăng nhập bằng VNeID"
PORTAL = dict(client_id="phr-portal", redirect_uri="http://127.0.0.1:8080/callback",
              scopes="openid profile offline_access patient/*.cruds", name="Cổng sức khỏe")


@pytest.fixture(scope="module")
def provider():
    server = FakeOpenIdProvider().start()
    yield server
    server.stop()


def _external_app(database_url: str, log_stream: Any, provider: FakeOpenIdProvider,
                  **overrides: Any) -> Any:
    provider.reset()
    forget_provider_cache()
    application = make_app(database_url, log_stream, EXTERNAL_OIDC_ISSUER=provider.issuer,
                           EXTERNAL_OIDC_CLIENT_ID=CLIENT_ID,
                           EXTERNAL_OIDC_CLIENT_SECRET=CLIENT_SECRET, **overrides)
    provider.redirect_uri = (application.config["OAUTH_ISSUER"].rstrip("/")
                             + "/oauth/external/callback")
    return application


@pytest.fixture
def ext_app(app, database_url, log_stream, provider):
    # `app` first: it checks the database is empty and empties it after the test.
    return _external_app(database_url, log_stream, provider)


@pytest.fixture
def http(ext_app):
    return ext_app.test_client()


@pytest.fixture
def portal(ext_app):
    return make_client(ext_app, **PORTAL)


def _sub() -> str:
    return "vneid-" + secrets.token_hex(12)


def _start_authorization(http, oauth_client, *, scope="openid patient/*.rs", **extra):
    verifier, challenge = pkce_pair()
    url = authorize_url(oauth_client, scope=scope, challenge=challenge, **extra)
    page = http.get(url, headers=HTML)
    assert page.status_code == 200
    return url, verifier, page.get_data(as_text=True)


def _through_provider(http, url: str, provider: FakeOpenIdProvider, *, lang: str = "vi",
                      headers: dict[str, str] | None = None) -> Any:
    """The button, the provider's login, the callback: our app's answer to the callback."""
    start = http.get("/oauth/external/start?" + urlencode({"next": url, "ui_locales": lang}),
                     headers=HTML)
    assert start.status_code == 302, start.get_data(as_text=True)
    location = start.headers["Location"]
    assert location.startswith(provider.issuer + "/authorize?")
    at_provider = requests.get(location, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    return http.get(provider.callback_path(at_provider.headers["Location"]),
                    headers=headers or HTML)


def _login_as(http, oauth_client, provider, person: Person, **extra) -> tuple[Any, str, str]:
    provider.next_user = person
    url, verifier, _ = _start_authorization(http, oauth_client, **extra)
    return _through_provider(http, url, provider), url, verifier


def _code_after(http, url: str) -> str:
    """Back at the pending authorization request: the code, without a password."""
    response = http.get(url, headers=HTML)
    assert response.status_code == 302, response.get_data(as_text=True)
    params = query_of(response.headers["Location"])
    assert "code" in params, params
    return params["code"]


def _session_of(app, http) -> dict[str, Any]:
    """What the browser's session cookie holds (signed, readable by its holder)."""
    cookie = http.get_cookie("session")
    assert cookie is not None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def _identities(app) -> list[ExternalIdentity]:
    with app.app_context():
        return list(db.session.scalars(select(ExternalIdentity)).all())


def _accounts_of(app, citizen_id) -> list[Account]:
    with app.app_context():
        return list(db.session.scalars(
            select(Account).where(Account.citizen_id == citizen_id)).all())


# --- success ---------------------------------------------------------------------------------


def test_a_citizen_without_account_logs_in_and_the_portal_gets_a_token(ext_app, http, portal,
                                                                        provider):
    citizen = make_citizen(ext_app)
    person = Person(sub=_sub(), pin=health_id_of(ext_app, citizen))
    provider.next_user = person
    url, verifier, page = _start_authorization(http, portal)
    assert BUTTON in page

    back = _through_provider(http, url, provider)
    assert back.status_code == 302
    assert back.headers["Location"] == url  # local, relative: back to the pending request
    assert back.headers["Cache-Control"] == "no-store"
    code = _code_after(http, url)
    tokens = exchange(http, portal, code, verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    me = http.get("/api/v1/me", headers=bearer(tokens.get_json()["access_token"])).get_json()
    assert me["role"] == "citizen"
    assert me["citizen_id"] == str(citizen)
    assert me["client_id"] == "phr-portal"

    # The PKCE verifier went to the provider's token endpoint, never to the browser.
    verifier_sent = provider.token_requests[-1]["code_verifier"]
    assert verifier_sent
    assert verifier_sent not in repr(_session_of(ext_app, http))

    accounts = _accounts_of(ext_app, citizen)
    assert len(accounts) == 1  # a new account, its password random and never shown
    [identity] = _identities(ext_app)
    assert identity.account_id == accounts[0].id
    assert identity.issuer == provider.issuer
    assert person.sub.encode() not in identity.subject_digest
    assert len(identity.subject_digest) == 32
    # The person is told an account was opened, as after an activation code.
    assert _activation_notices(ext_app, citizen) == 1

    # No single sign-on: the next authorization asks for the password again.
    again, _, _ = _start_authorization(http, portal)
    assert b'name="password"' in http.get(again, headers=HTML).data

    # The same person again: the same account, no second link.
    back, url, verifier = _login_as(http, portal, provider, person)
    assert back.status_code == 302
    assert exchange(http, portal, _code_after(http, url), verifier).status_code == 200
    assert len(_identities(ext_app)) == 1
    assert len(_accounts_of(ext_app, citizen)) == 1
    assert _activation_notices(ext_app, citizen) == 1


def _activation_notices(app, citizen) -> int:
    from notifications.models import Notification

    with app.app_context():
        return len(db.session.scalars(select(Notification).where(
            Notification.subject_citizen_id == citizen,
            Notification.trigger == "account-activated")).all())


def test_an_existing_account_is_linked_and_keeps_its_password(ext_app, http, portal, provider):
    login = make_login(ext_app, role="citizen")
    back, url, verifier = _login_as(http, portal, provider,
                                    Person(sub=_sub(), pin=login.username))
    assert back.status_code == 302
    tokens = exchange(http, portal, _code_after(http, url), verifier).get_json()
    me = http.get("/api/v1/me", headers=bearer(tokens["access_token"])).get_json()
    assert me["account_id"] == str(login.account_id)
    [identity] = _identities(ext_app)
    assert identity.account_id == login.account_id

    verifier, challenge = pkce_pair()
    url = authorize_url(portal, scope="openid", challenge=challenge)
    assert submit_login(http, url, username=login.username,
                        password=login.password).status_code == 302


def test_the_pin_may_come_from_userinfo(ext_app, http, portal, provider):
    citizen = make_citizen(ext_app)
    provider.pin_in_userinfo = True
    back, url, verifier = _login_as(http, portal, provider,
                                    Person(sub=_sub(), pin=health_id_of(ext_app, citizen)))
    assert back.status_code == 302
    assert exchange(http, portal, _code_after(http, url), verifier).status_code == 200


def test_a_third_party_client_still_shows_the_approval_page(ext_app, http, provider):
    clinic = make_client(ext_app, public=False, first_party=False, name="Phòng khám X",
                         redirect_uri="http://127.0.0.1:8100/oauth/callback")
    login = make_login(ext_app, role="citizen")
    back, url, _ = _login_as(http, clinic, provider, Person(sub=_sub(), pin=login.username),
                             scope="openid patient/*.rs")
    assert back.status_code == 302
    page = http.get(url, headers=HTML)
    assert page.status_code == 200
    assert b'name="decision"' in page.data


def test_the_login_mark_serves_only_the_request_it_was_made_for(ext_app, http, portal,
                                                                 provider):
    login = make_login(ext_app, role="citizen")
    back, url, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin=login.username))
    assert back.status_code == 302
    other, _, _ = _start_authorization(http, portal, state="another")
    page = http.get(other, headers=HTML)
    assert page.status_code == 200
    assert b'name="password"' in page.data
    # ...and the mark was used up by that request.
    assert b'name="password"' in http.get(url, headers=HTML).data


# --- refusals --------------------------------------------------------------------------------


def _refused(response, status: int, text: str) -> str:
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert response.mimetype == "text/html"
    assert text in body
    assert "Location" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"
    return body


@pytest.mark.parametrize("verified", [False, None, "true"])
def test_an_unverified_pin_is_refused(ext_app, http, portal, provider, verified):
    citizen = make_citizen(ext_app)
    back, _, _ = _login_as(http, portal, provider, Person(
        sub=_sub(), pin=health_id_of(ext_app, citizen), pin_verified=verified))
    _refused(back, 403, "chưa xác thực số định danh")
    assert _identities(ext_app) == []
    assert _accounts_of(ext_app, citizen) == []


@pytest.mark.parametrize("pin", [None, "12345", "0012345678901", "00123456789a"])
def test_a_missing_or_malformed_pin_is_refused(ext_app, http, portal, provider, pin):
    back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin=pin))
    _refused(back, 403, "chưa xác thực số định danh")


def test_a_pin_given_as_a_number_is_refused(ext_app, http, portal, provider):
    citizen = make_citizen(ext_app)
    provider.claim_overrides = {"pin": int(health_id_of(ext_app, citizen))}
    back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin=None))
    _refused(back, 403, "chưa xác thực số định danh")


@pytest.mark.parametrize("tamper", [
    "nonce", "audience", "issuer", "expired", "rogue-key", "azp",
])
def test_an_id_token_that_does_not_verify_is_refused(ext_app, http, portal, provider, tamper):
    citizen = make_citizen(ext_app)
    now = int(time.time())
    if tamper == "rogue-key":
        provider.sign_with_rogue_key = True
    else:
        provider.claim_overrides = {
            "nonce": {"nonce": "a-nonce-of-another-login"},
            "audience": {"aud": ["another-client"]},
            "issuer": {"iss": "http://127.0.0.1:1"},
            "expired": {"exp": now - 3600, "iat": now - 3900},
            "azp": {"aud": [CLIENT_ID, "another-client"], "azp": "another-client"},
        }[tamper]
    back, url, _ = _login_as(http, portal, provider,
                             Person(sub=_sub(), pin=health_id_of(ext_app, citizen)))
    _refused(back, 502, "Không xác minh được")
    assert _identities(ext_app) == []
    # Not logged in: the authorization request asks for the password.
    assert b'name="password"' in http.get(url, headers=HTML).data


def test_nobody_registered_with_that_pin_gets_a_page_about_the_station(ext_app, http, portal,
                                                                       provider):
    pin = make_health_id(province_code="001", date_of_birth=dt.date(1990, 1, 1), sex="male",
                         serial=secrets.randbelow(10**6))
    back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin=pin))
    _refused(back, 404, "Trạm y tế xã, phường")
    assert back.headers["Content-Language"] == "vi"
    assert _identities(ext_app) == []

    provider.next_user = Person(sub=_sub(), pin=pin)
    url, _, _ = _start_authorization(http, portal, ui_locales="en")
    english = _through_provider(http, url, provider, lang="en")
    _refused(english, 404, "health station of your commune")
    assert english.headers["Content-Language"] == "en"


def test_a_linked_subject_naming_another_pin_is_refused(ext_app, http, portal, provider):
    first, second = make_citizen(ext_app), make_citizen(ext_app)
    person = Person(sub=_sub(), pin=health_id_of(ext_app, first))
    back, _, _ = _login_as(http, portal, provider, person)
    assert back.status_code == 302

    moved = Person(sub=person.sub, pin=health_id_of(ext_app, second))
    back, url, _ = _login_as(http, portal, provider, moved)
    _refused(back, 409, "không khớp")
    assert _accounts_of(ext_app, second) == []
    assert b'name="password"' in http.get(url, headers=HTML).data

    # Another subject of the same provider for the already linked person: refused too.
    back, _, _ = _login_as(http, portal, provider,
                           Person(sub=_sub(), pin=health_id_of(ext_app, first)))
    _refused(back, 409, "không khớp")
    assert len(_identities(ext_app)) == 1


def test_a_disabled_account_is_refused(ext_app, http, portal, provider):
    login = make_login(ext_app, role="citizen")
    with ext_app.app_context():
        db.session.get(Account, login.account_id).active = False
        db.session.commit()
    back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin=login.username))
    _refused(back, 403, "đã bị khóa")


def test_a_cancelled_login_at_the_provider_is_a_page(ext_app, http, portal, provider):
    provider.deny = True
    back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin=None))
    _refused(back, 400, "đã hủy")


@pytest.mark.parametrize("next_path", [
    "https://evil.example/oauth/authorize?x=1",
    "//evil.example/oauth/authorize",
    "/\\evil.example/oauth/authorize",
    "/oauth/authorize\\@evil.example",
    "http://127.0.0.1:8000/oauth/authorize?x=1",
    "/oauth/authorizex",
    "/oauth/token",
    "/oauth/authorize/../../evil",
    "/oauth/authorize?x=1#frag",
    "/oauth/authorize?x=1\r\nLocation: https://evil.example",
    "",
])
def test_next_must_be_the_local_authorization_endpoint(ext_app, http, provider, next_path):
    response = http.get("/oauth/external/start?" + urlencode({"next": next_path}), headers=HTML)
    _refused(response, 400, "không hợp lệ")


def test_a_callback_without_this_browsers_flow_is_refused(ext_app, http, portal, provider):
    login = make_login(ext_app, role="citizen")
    provider.next_user = Person(sub=_sub(), pin=login.username)
    url, _, _ = _start_authorization(http, portal)
    start = http.get("/oauth/external/start?" + urlencode({"next": url}), headers=HTML)
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    callback = provider.callback_path(at_provider.headers["Location"])

    # Another browser (an attacker planting their own login) has no such flow.
    stranger = ext_app.test_client()
    _refused(stranger.get(callback, headers=HTML), 400, "hết hạn")
    # The right browser with a forged state.
    forged = callback.replace("state=", "state=x")
    _refused(http.get(forged, headers=HTML), 400, "hết hạn")
    # The flow was used up by that attempt: the genuine answer now fails too.
    _refused(http.get(callback, headers=HTML), 400, "hết hạn")
    assert _identities(ext_app) == []


def test_the_callback_refuses_a_response_of_another_issuer(ext_app, http, portal, provider):
    login = make_login(ext_app, role="citizen")
    provider.next_user = Person(sub=_sub(), pin=login.username)
    url, _, _ = _start_authorization(http, portal)
    start = http.get("/oauth/external/start?" + urlencode({"next": url}), headers=HTML)
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    callback = provider.callback_path(at_provider.headers["Location"])
    _refused(http.get(callback + "&iss=https%3A%2F%2Fevil.example", headers=HTML), 502,
             "Không xác minh được")


def test_failures_are_throttled_by_address(app, database_url, log_stream, provider):
    strict = _external_app(database_url, log_stream, provider,
                           AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS=3)
    http = strict.test_client()
    portal = make_client(strict, **PORTAL)
    for _ in range(2):
        back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin="000000000000"))
        assert back.status_code == 404
    back, _, _ = _login_as(http, portal, provider, Person(sub=_sub(), pin="000000000000"))
    _refused(back, 429, "quá nhiều lần")
    assert "Retry-After" in back.headers
    url, _, _ = _start_authorization(http, portal)
    blocked = http.get("/oauth/external/start?" + urlencode({"next": url}), headers=HTML)
    _refused(blocked, 429, "quá nhiều lần")
    # Another address is not affected.
    other = http.get("/oauth/external/start?" + urlencode({"next": url}), headers=HTML,
                     environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 302


def test_the_provider_being_down_is_a_page(app, database_url, log_stream):
    down = make_app(database_url, log_stream, EXTERNAL_OIDC_ISSUER="http://127.0.0.1:9",
                    EXTERNAL_OIDC_CLIENT_ID=CLIENT_ID)
    forget_provider_cache()
    http = down.test_client()
    portal = make_client(down, **PORTAL)
    url, _, page = _start_authorization(http, portal)
    assert BUTTON in page
    response = http.get("/oauth/external/start?" + urlencode({"next": url}), headers=HTML)
    _refused(response, 502, "Không liên lạc được")


def test_a_program_gets_problem_json(ext_app, http):
    response = http.get("/oauth/external/start?next=https://evil.example/",
                        headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("external-login-invalid-next")


# --- feature off -----------------------------------------------------------------------------


def test_without_a_provider_the_routes_are_404_and_there_is_no_button(app):
    http = app.test_client()
    portal = make_client(app, **PORTAL)
    _, _, page = _start_authorization(http, portal)
    assert "VNeID" not in page
    assert "/oauth/external" not in page
    for path in ("/oauth/external/start?next=/oauth/authorize", "/oauth/external/callback"):
        response = http.get(path, headers=HTML)
        assert response.status_code == 404
        assert response.mimetype == "text/html"


# --- logs ------------------------------------------------------------------------------------


def test_no_pin_subject_or_code_reaches_the_log(app, database_url, log_stream, provider):
    debug = _external_app(database_url, log_stream, provider, LOG_LEVEL="DEBUG")
    http = debug.test_client()
    portal = make_client(debug, **PORTAL)
    secrets_seen = []

    citizen = make_citizen(debug)
    person = Person(sub=_sub(), pin=health_id_of(debug, citizen))
    back, url, verifier = _login_as(http, portal, provider, person)
    assert back.status_code == 302
    code = _code_after(http, url)
    tokens = exchange(http, portal, code, verifier).get_json()
    secrets_seen += [person.sub, person.pin, code, tokens["access_token"]]
    secrets_seen += [request["code"] for request in provider.token_requests]
    secrets_seen += [request["code_verifier"] for request in provider.token_requests]

    other = make_citizen(debug)
    moved = Person(sub=person.sub, pin=health_id_of(debug, other))
    assert _login_as(http, portal, provider, moved)[0].status_code == 409
    stranger = Person(sub=_sub(), pin="001090123456")
    assert _login_as(http, portal, provider, stranger)[0].status_code == 404
    unverified = Person(sub=_sub(), pin=health_id_of(debug, other), pin_verified=False)
    assert _login_as(http, portal, provider, unverified)[0].status_code == 403
    secrets_seen += [moved.pin, stranger.sub, stranger.pin, unverified.sub]

    log_stream.flush()
    text = LOG_FILE.read_text(encoding="utf-8")
    assert "external login succeeded" in text
    assert "external login failed" in text
    for value in secrets_seen:
        assert value not in text, f"reached the log: {value[:6]}..."


def test_the_start_redirect_carries_pkce_state_and_nonce(ext_app, http, portal, provider):
    url, _, _ = _start_authorization(http, portal)
    start = http.get("/oauth/external/start?" + urlencode({"next": url}), headers=HTML)
    params = query_of(start.headers["Location"])
    assert params["code_challenge_method"] == "S256"
    assert params["client_id"] == CLIENT_ID
    assert params["scope"].split()[0] == "openid"
    assert len(params["state"]) >= 43
    assert len(params["nonce"]) >= 43
    assert params["redirect_uri"] == provider.redirect_uri
    assert urlsplit(params["redirect_uri"]).path == "/oauth/external/callback"
    flow = _session_of(ext_app, http)["phr_external_flow"]
    assert set(flow) == {"state", "next", "lang", "started"}
    assert flow["state"] == params["state"]
    assert flow["next"] == url
    assert params["nonce"] not in repr(_session_of(ext_app, http))
