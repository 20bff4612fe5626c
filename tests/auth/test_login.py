"""The login form: CSRF, throttling and lockout, no user enumeration."""

from __future__ import annotations

import re
import statistics
import time

from sqlalchemy import select

from auth.accounts import deactivate_account
from auth.models import Account, LoginThrottle
from core.db import db
from tests.support.auth import (
    authorize_url,
    csrf_from,
    make_login,
    pkce_pair,
    query_of,
    shared_client,
    submit_login,
)


def _url(app):
    _, challenge = pkce_pair()
    return authorize_url(shared_client(app), scope="openid patient/*.rs", challenge=challenge)


WRONG_PASSWORD = "wrong password!"  # noqa: S105


def _fail(client, url, username):
    return submit_login(client, url, username=username, password=WRONG_PASSWORD)


def test_csrf_token_is_required(app, client):
    login = make_login(app, role="citizen")
    url = _url(app)
    client.get(url)  # the browser has a session and a token...
    fields = {"action": "login", "username": login.username, "password": login.password}
    for csrf in (None, "", "forged-token", "tôken-giả"):  # non-ASCII: a 403, not a 500
        data = dict(fields) if csrf is None else {**fields, "csrf_token": csrf}
        response = client.post(url, data=data)
        assert response.status_code == 403
        assert response.get_json()["type"] == "urn:phr-vn:problem:csrf-failed"

    # ...and a token from another browser session is worth nothing.
    other = app.test_client()
    stolen = csrf_from(other.get(url).data)
    response = client.post(url, data={**fields, "csrf_token": stolen})
    assert response.status_code == 403

    fresh = app.test_client()
    response = fresh.post(url, data={**fields, "csrf_token": stolen})  # no cookie at all
    assert response.status_code == 403
    html = fresh.post(url, data={**fields, "csrf_token": "x"},
                      headers={"Accept": "text/html"})
    assert html.status_code == 403
    assert html.mimetype == "text/html"

    # The right token from a page another site framed or posted: the browser says so.
    own = csrf_from(client.get(url).data)
    for site in ("cross-site", "same-site"):
        response = client.post(url, data={**fields, "csrf_token": own},
                               headers={"Sec-Fetch-Site": site})
        assert response.status_code == 403
    assert client.post(url, data={**fields, "csrf_token": own},
                       headers={"Sec-Fetch-Site": "same-origin"}).status_code != 403


def _failure_page(response, username):
    """The failure page with what differs by design (the echoed username) taken out."""
    return response.get_data(as_text=True).replace(username, "USERNAME")


def test_unknown_user_and_wrong_password_look_the_same(app, client):
    login = make_login(app, role="practitioner", username="bs.that")
    url = _url(app)
    wrong = _fail(client, url, "bs.that")
    unknown = _fail(client, url, "bs.nobody")
    assert wrong.status_code == unknown.status_code == 200
    assert _failure_page(wrong, "bs.that") == _failure_page(unknown, "bs.nobody")
    assert "Thông tin đăng nhập không đúng." in wrong.get_data(as_text=True)

    with app.app_context():
        deactivate_account(session=db.session, account=db.session.get(Account, login.account_id))
        db.session.commit()
    disabled = submit_login(client, url, username="bs.that", password=login.password)
    assert _failure_page(disabled, "bs.that") == _failure_page(unknown, "bs.nobody")

    # Citizens: an unknown health ID and a wrong password also look the same.
    citizen = make_login(app, role="citizen")
    a = _fail(client, url, citizen.username)
    b = _fail(client, url, "001090999999")
    assert _failure_page(a, citizen.username) == _failure_page(b, "001090999999")


def test_unknown_user_costs_a_password_verification_too(app, client):
    make_login(app, role="practitioner", username="bs.timing")
    url = _url(app)
    csrf = csrf_from(client.get(url).data)
    app.config["AUTH_LOGIN_MAX_FAILURES"] = 100

    def timed(username):
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            submit_login(client, url, username=username, password="wrong password!",
                         csrf=csrf)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    known, unknown = timed("bs.timing"), timed("bs.ghost")
    # Both run one argon2 verification (tens of ms); without the dummy verification the
    # unknown path would be an order of magnitude faster.
    assert 0.3 < unknown / known < 3.3, (known, unknown)


def test_lockout_after_repeated_failures(app, client, clock):
    login = make_login(app, role="citizen")
    url = _url(app)
    for _ in range(4):
        assert _fail(client, url, login.username).status_code == 200
    locked = _fail(client, url, login.username)
    assert locked.status_code == 429
    assert locked.get_json()["type"] == "urn:phr-vn:problem:login-locked"
    assert 1 <= int(locked.headers["Retry-After"]) <= 900

    # Locked means locked, even for the right password; the page says so to a browser too.
    right = submit_login(client, url, username=login.username, password=login.password)
    assert right.status_code == 429
    page = submit_login(client, url, username=login.username, password=login.password,
                        Accept="text/html")
    assert page.status_code == 429
    assert page.mimetype == "text/html"
    assert "Retry-After" in page.headers

    clock.advance(seconds=int(locked.headers["Retry-After"]) + 1)
    response = submit_login(client, url, username=login.username, password=login.password)
    assert response.status_code == 302
    assert "code" in query_of(response.headers["Location"])


def test_unknown_usernames_lock_exactly_like_known_ones(app, client):
    url = _url(app)
    statuses = [_fail(client, url, "bs.never.existed").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_success_resets_the_username_count(app, client):
    login = make_login(app, role="citizen")
    url = _url(app)
    for _ in range(4):
        _fail(client, url, login.username)
    assert submit_login(client, url, username=login.username,
                        password=login.password).status_code == 302
    for _ in range(4):
        assert _fail(client, url, login.username).status_code == 200


def test_one_address_guessing_many_usernames_is_throttled(app, client):
    app.config["AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    login = make_login(app, role="citizen")
    url = _url(app)
    assert _fail(client, url, "guess.one").status_code == 200
    assert _fail(client, url, "guess.two").status_code == 200
    assert _fail(client, url, "guess.three").status_code == 429
    response = submit_login(client, url, username=login.username, password=login.password)
    assert response.status_code == 429
    # Another address is not affected.
    elsewhere = app.test_client()
    page = elsewhere.get(url, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    response = elsewhere.post(url, data={
        "csrf_token": csrf_from(page.data), "action": "login", "username": login.username,
        "password": login.password,
    }, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 302


def test_throttle_rows_hold_no_usernames_or_addresses(app, client):
    url = _url(app)
    _fail(client, url, "bs.secret.name")
    with app.app_context():
        rows = db.session.scalars(select(LoginThrottle)).all()
        assert {row.kind for row in rows} == {"user", "address"}
        for row in rows:
            assert len(row.key) == 32
            assert b"bs.secret.name" not in row.key
            assert b"127.0.0.1" not in row.key


def test_health_id_with_spaces_logs_in(app, client):
    login = make_login(app, role="citizen")
    spaced = " ".join(re.findall(r"\d{3}", login.username))
    response = submit_login(client, _url(app), username=spaced, password=login.password)
    assert response.status_code == 302


def test_missing_fields_are_not_a_failure(app, client):
    url = _url(app)
    for _ in range(6):
        response = submit_login(client, url, username="bs.someone", password="")
        assert response.status_code == 200
    assert "Hãy nhập cả tên đăng nhập và mật khẩu." in response.get_data(as_text=True)
