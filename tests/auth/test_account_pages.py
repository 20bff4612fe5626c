"""The pages people open and recover their accounts with, through the Flask test client.

A station issues a code through the API with a real token, the SMS reaches a fake gateway over
HTTP, the person types the code into the page, and then logs in through /oauth/authorize.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from auth.account_codes import FORGOT_MIN_SECONDS
from auth.models import Account
from core.db import db
from tests.auth.account_world import (
    STRONG_PASSWORD,
    activate,
    code_in,
    deliver,
    forgot,
    issue,
    person,
    reset,
    running_gateway,
    sms_app,
    sms_texts,
    station,
    submit,
)
from tests.notifications.fakes import FakeSmsGateway
from tests.support.auth import (
    Login,
    bearer,
    install_clock,
    make_login,
    refresh,
    station_token,
    token_for,
)

INVALID_VI = "Mã hoặc số định danh không hợp lệ."
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def sms_gateway() -> Iterator[FakeSmsGateway]:
    with running_gateway() as gateway:
        yield gateway


@pytest.fixture
def app(database_url: str, log_stream: Any, sms_gateway: FakeSmsGateway) -> Iterator[Any]:
    with sms_app(database_url, log_stream, sms_gateway) as application:
        yield application


def _issued(app, client, someone) -> str:
    facility_token = station_token(client, app, facility=_facility_of(app, someone))
    answer = issue(client, facility_token, someone.id)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["code"]


def _facility_of(app, someone):
    from registry.models import Citizen

    with app.app_context():
        return db.session.get(Citizen, someone.id).registered_by_facility_id


def _login(app, someone, password=STRONG_PASSWORD) -> Login:
    with app.app_context():
        account = db.session.scalars(
            select(Account).where(Account.citizen_id == someone.id)).one()
        return Login(account_id=account.id, role="citizen", username=someone.health_id,
                     password=password, citizen_id=someone.id)


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_issue_sms_activate_then_log_in(app, client, sms_gateway, log_stream):
    from tests.conftest import LOG_FILE

    log_stream.flush()
    log_start = LOG_FILE.stat().st_size
    someone = person(app, registered_by=station(app))
    staff = token_for(client, app, role="station", facility=_facility_of(app, someone))
    assert issue(client, staff, someone.id).status_code == 201
    deliver(app)
    code = code_in(sms_texts(sms_gateway)[0])

    done = activate(client, f"{someone.health_id[:3]} {someone.health_id[3:]}",
                    f"{code[:4]}-{code[4:]}")

    assert done.status_code == 200, _text(done)
    page = _text(done)
    assert "Đã kích hoạt tài khoản" in page
    assert 'href="/login' in page
    tokens = token_for(client, app, login=_login(app, someone))
    me = client.get("/api/v1/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.get_json()["citizen_id"] == str(someone.id)

    deliver(app)
    activated = sms_texts(sms_gateway)[1]
    assert "vua duoc kich hoat" in activated
    assert "lien he" in activated
    assert not re.search(r"\d{4} \d{4}", activated)

    # The inbox tells of both, never with the code.
    inbox = client.get("/api/v1/me/notifications", headers=bearer(tokens))
    assert inbox.status_code == 200, _text(inbox)
    items = inbox.get_json()["items"]
    assert {item["trigger"] for item in items} == {"account-activation-code",
                                                   "account-activated"}
    assert code not in inbox.get_data(as_text=True)

    # Nothing of it in the log: neither the code nor the health ID.
    log_stream.flush()
    with LOG_FILE.open(encoding="utf-8") as handle:
        handle.seek(log_start)
        written = handle.read()
    assert "account activated with a code" in written
    assert code not in written
    assert someone.health_id not in written


def test_a_code_opens_one_account_once(app, client):
    someone = person(app, registered_by=station(app))
    code = _issued(app, client, someone)
    assert activate(client, someone.health_id, code).status_code == 200

    again = activate(client, someone.health_id, code, password="another long password")

    assert again.status_code == 200
    assert INVALID_VI in _text(again)
    with app.app_context():
        assert len(db.session.scalars(select(Account).where(
            Account.citizen_id == someone.id)).all()) == 1


def test_an_expired_code_is_refused(app, client):
    clock = install_clock(app)
    someone = person(app, registered_by=station(app))
    code = _issued(app, client, someone)
    clock.advance(hours=72, seconds=1)

    late = activate(client, someone.health_id, code)

    assert late.status_code == 200
    assert INVALID_VI in _text(late)


def test_five_wrong_tries_burn_the_code(app, client):
    app.config["AUTH_LOGIN_MAX_FAILURES"] = 100  # the code's own limit is what is tested
    someone = person(app, registered_by=station(app))
    code = _issued(app, client, someone)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(5):
        assert INVALID_VI in _text(activate(client, someone.health_id, wrong))

    burned = activate(client, someone.health_id, code)

    assert INVALID_VI in _text(burned)
    with app.app_context():
        assert db.session.scalars(select(Account)).all() == []


def test_unknown_and_known_health_ids_read_the_same(app, client, sms_gateway):
    facility = station(app)
    with_account = person(app, registered_by=facility)
    make_login(app, citizen=with_account.id)
    without_account = person(app, registered_by=facility)
    unknown = "027190999999"

    answers, took = [], []
    for health_id in (with_account.health_id, without_account.health_id, unknown):
        started = time.monotonic()
        answers.append(forgot(client, health_id))
        took.append(time.monotonic() - started)

    assert {answer.status_code for answer in answers} == {200}
    assert min(took) >= FORGOT_MIN_SECONDS  # no answer comes sooner, a code sent or not
    assert len({_text(answer) for answer in answers}) == 1
    assert "Nếu số định danh này có tài khoản" in _text(answers[0])
    deliver(app)
    assert len(sms_gateway.received) == 1  # the one with an account and a phone

    wrong_code = [activate(client, health_id, "12345678")
                  for health_id in (without_account.health_id, unknown)]
    assert {answer.status_code for answer in wrong_code} == {200}
    shown = [_text(answer).replace(health_id, "")
             for answer, health_id in zip(wrong_code,
                                          (without_account.health_id, unknown), strict=True)]
    assert shown[0] == shown[1]
    assert INVALID_VI in shown[0]


def test_reset_ends_every_session_and_logs_in_with_the_new_password(app, client, sms_gateway):
    someone = person(app, registered_by=station(app))
    old = make_login(app, citizen=someone.id)
    tokens = token_for(client, app, login=old)
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 200

    assert forgot(client, someone.health_id).status_code == 200
    deliver(app)
    code = code_in(sms_texts(sms_gateway)[0])
    assert "Ma dat lai mat khau" in sms_texts(sms_gateway)[0]
    done = reset(client, someone.health_id, code, password="một mật khẩu mới khác")

    assert done.status_code == 200
    assert "Đã đổi mật khẩu" in _text(done)
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401
    assert refresh(client, tokens.client, tokens.refresh_token).status_code == 400
    fresh = token_for(client, app, login=_login(app, someone, "một mật khẩu mới khác"))
    assert client.get("/api/v1/me", headers=bearer(fresh)).status_code == 200
    # The code was single use.
    again = reset(client, someone.health_id, code, password="yet another password")
    assert INVALID_VI in _text(again)
    deliver(app)
    assert "Mat khau tai khoan cua ban vua duoc doi" in sms_texts(sms_gateway)[1]


def test_a_short_password_spends_no_try(app, client):
    someone = person(app, registered_by=station(app))
    code = _issued(app, client, someone)

    short = activate(client, someone.health_id, code, password="short")
    mismatch = submit(client, "/account/activate", health_id=someone.health_id, code=code,
                      password="long enough password", password_confirm="another one")

    assert "Mật khẩu phải có ít nhất 8 ký tự." in _text(short)
    assert "Hai mật khẩu không giống nhau." in _text(mismatch)
    assert activate(client, someone.health_id, code).status_code == 200


def test_wrong_codes_lock_the_health_id_with_429(app, client):
    app.config["AUTH_LOGIN_MAX_FAILURES"] = 3
    someone = person(app, registered_by=station(app))
    code = _issued(app, client, someone)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    assert activate(client, someone.health_id, wrong).status_code == 200
    assert activate(client, someone.health_id, wrong).status_code == 200

    locked = activate(client, someone.health_id, wrong)
    still = activate(client, someone.health_id, code)

    for answer in (locked, still):
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) > 0
        assert "Đã thử quá nhiều lần" in _text(answer)
    # Another person's number is not locked.
    other = person(app, registered_by=_facility_of(app, someone))
    assert activate(client, other.health_id, "00000000").status_code == 200


def test_forgot_requests_are_throttled_per_number_and_per_address(app, client, sms_gateway):
    app.config["AUTH_LOGIN_MAX_FAILURES"] = 2
    app.config["AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS"] = 4
    facility = station(app)
    someone = person(app, registered_by=facility)
    make_login(app, citizen=someone.id)

    assert [forgot(client, someone.health_id).status_code for _ in range(3)] == [200, 200, 429]
    assert forgot(client, "027190000001").status_code == 200
    assert forgot(client, "027190000002").status_code == 200
    # The address has made its four requests (the refused one counts for nothing): the next
    # number is refused too.
    assert forgot(client, "027190000003").status_code == 429
    other_address = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    page = client.get("/account/forgot-password", **other_address)
    assert page.status_code == 200
    deliver(app)
    # Two codes were issued; the second superseded the first before it left: one SMS.
    assert len(sms_gateway.received) == 1


def test_english_by_header_or_ui_locales(app, client):
    by_header = client.get("/account/activate", headers={"Accept-Language": "en"})
    by_query = client.get("/account/forgot-password?ui_locales=en")

    assert "Activate your account" in _text(by_header)
    assert by_header.headers["Content-Language"] == "en"
    assert "Forgot your password" in _text(by_query)
    assert '<html lang="en">' in _text(by_query)
    vietnamese = client.get("/account/reset-password")
    assert "Đặt lại mật khẩu" in _text(vietnamese)
    assert vietnamese.headers["Content-Language"] == "vi"

    someone = person(app, registered_by=station(app))
    wrong = activate(client, someone.health_id, "12345678",
                     headers={"Accept-Language": "en"})
    assert "The code or the identification number is not valid." in _text(wrong)


def test_pages_are_not_cached_framed_or_scripted(app, client):
    for path in ("/account/activate", "/account/forgot-password", "/account/reset-password"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["X-Frame-Options"] == "DENY"
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src" not in csp
        body = _text(page)
        assert "<script" not in body
        assert not re.search(r"\son[a-z]+=", body)
        assert 'name="csrf_token"' in body


def test_a_form_without_its_csrf_token_is_refused(app, client):
    someone = person(app, registered_by=station(app))
    for path, fields in (
        ("/account/activate", {"health_id": someone.health_id, "code": "12345678",
                               "password": STRONG_PASSWORD,
                               "password_confirm": STRONG_PASSWORD}),
        ("/account/forgot-password", {"health_id": someone.health_id}),
        ("/account/reset-password", {"health_id": someone.health_id, "code": "12345678",
                                     "password": STRONG_PASSWORD,
                                     "password_confirm": STRONG_PASSWORD}),
    ):
        client.get(path)  # a session with a token, which the form does not send back
        page = client.post(path, data={"csrf_token": "forged", **fields}, headers=HTML)
        assert page.status_code == 403
        assert page.mimetype == "text/html"
        assert "Biểu mẫu đã hết hạn" in _text(page)
        program = client.post(path, data={"csrf_token": "", **fields})
        assert program.status_code == 403
        assert program.mimetype == "application/problem+json"


def test_the_login_page_links_to_activation_and_recovery(app, client):
    from tests.support.auth import authorize_url, pkce_pair, shared_client

    _, challenge = pkce_pair()
    page = client.get(authorize_url(shared_client(app), scope="openid", challenge=challenge))

    assert page.status_code == 200
    assert "/account/activate" in _text(page)
    assert "Kích hoạt tài khoản" in _text(page)
    assert "/account/forgot-password" in _text(page)
    assert "Quên mật khẩu" in _text(page)
