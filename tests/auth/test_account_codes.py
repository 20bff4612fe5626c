"""A station issues an activation code: who may, the answer, the SMS, the audit, the storage.

Through HTTP with real tokens (station staff through the login form, a station's system by
client credentials); the SMS leaves through the real HTTP protocol to a local fake gateway.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from auth import account_codes
from auth.models import AccountCode
from consent.models import AuditEvent
from core.db import db
from tests.auth.account_world import (
    PHONE,
    code_in,
    deliver,
    issue,
    person,
    running_gateway,
    sms_app,
    sms_texts,
    station,
)
from tests.notifications.fakes import FakeSmsGateway
from tests.support.auth import (
    bearer,
    install_clock,
    make_login,
    station_token,
    token_for,
)

_DIGITS = re.compile(r"^\d{8}$")


@pytest.fixture(scope="module")
def sms_gateway() -> Iterator[FakeSmsGateway]:
    with running_gateway() as gateway:
        yield gateway


@pytest.fixture
def app(database_url: str, log_stream: Any, sms_gateway: FakeSmsGateway) -> Iterator[Any]:
    with sms_app(database_url, log_stream, sms_gateway) as application:
        yield application


def test_station_staff_issue_a_code_shown_once_and_sent_by_sms(app, client, sms_gateway):
    facility = station(app)
    someone = person(app, registered_by=facility)
    staff = token_for(client, app, role="station", facility=facility)

    answer = issue(client, staff, someone.id)

    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert _DIGITS.match(body["code"])
    assert body["sent_to_phone"] is True
    expires = dt.datetime.fromisoformat(body["expires_at"])
    lifetime = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=71, minutes=59) < lifetime <= dt.timedelta(hours=72)

    assert deliver(app).sent == 1
    [sent] = sms_gateway.received
    assert sent.json()["to"].endswith(PHONE.replace(" ", "")[1:])
    text_sent = sent.json()["text"]
    assert code_in(text_sent) == body["code"]
    assert "KHONG chia se" in text_sent  # do not share it (Vietnamese by default, GSM-7)
    assert someone.health_id not in text_sent
    assert "Nhung" not in text_sent

    with app.app_context():
        row = db.session.scalars(select(AccountCode)).one()
        assert (row.purpose, row.issued_by_facility_id) == ("activation", facility)
        assert row.issued_by_account_id == staff.login.account_id
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.citizen_id == someone.id, AuditEvent.section == "account")).one()
        assert (event.action, event.decision, event.rule) == (
            "activation-code", "permit", "station-registry")


def test_the_person_reads_the_issue_in_their_access_log(app, client):
    facility = station(app)
    someone = person(app, registered_by=facility)
    assert issue(client, station_token(client, app, facility=facility), someone.id
                 ).status_code == 201
    mine = token_for(client, app, citizen=someone.id)

    log = client.get(f"/api/v1/citizens/{someone.id}/access-log", headers=bearer(mine))

    assert log.status_code == 200, log.get_data(as_text=True)
    texts = [item["text"] for item in log.get_json()["items"]]
    assert any("đã cấp mã kích hoạt cho tài khoản của bạn" in line for line in texts), texts


def test_a_station_system_issues_codes_too(app, client):
    facility = station(app)
    someone = person(app, registered_by=facility)
    system = station_token(client, app, facility=facility)

    answer = issue(client, system, someone.id)

    assert answer.status_code == 201, answer.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalars(select(AccountCode)).one()
        assert row.issued_by_client_id == system.client.client_id
        assert row.issued_by_account_id is None


def test_a_station_of_another_commune_gets_the_404_of_an_unknown_person(app, client):
    import uuid

    own, other = station(app), station(app, commune="09340")
    someone = person(app, registered_by=own)
    outsider = station_token(client, app, facility=other)

    refused = issue(client, outsider, someone.id)
    unknown = issue(client, outsider, uuid.uuid4())

    assert refused.status_code == unknown.status_code == 404
    assert refused.get_json()["type"] == unknown.get_json()["type"]
    assert refused.get_json()["detail"] == unknown.get_json()["detail"]
    with app.app_context():
        assert db.session.scalars(select(AccountCode)).all() == []
        denied = db.session.scalars(select(AuditEvent).where(
            AuditEvent.citizen_id == someone.id, AuditEvent.section == "account")).one()
        assert (denied.decision, denied.rule) == ("deny", "outside-catchment")


def test_only_stations_issue_codes(app, client):
    facility = station(app)
    someone = person(app, registered_by=facility)
    for token in (token_for(client, app, role="practitioner", facility=facility),
                  token_for(client, app, role="citizen")):
        answer = issue(client, token, someone.id)
        assert answer.status_code == 403
        assert answer.get_json()["type"].endswith("role-not-allowed")


def test_someone_with_an_account_gets_409(app, client):
    facility = station(app)
    someone = person(app, registered_by=facility)
    make_login(app, citizen=someone.id)

    answer = issue(client, station_token(client, app, facility=facility), someone.id,
                   **{"Accept-Language": "en"})

    assert answer.status_code == 409
    assert answer.get_json()["type"].endswith("account-exists")
    assert "already has an account" in answer.get_json()["title"]


def test_a_child_under_the_teen_age_gets_no_account(app, client):
    facility = station(app)
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date()
    child = person(app, registered_by=facility, born=dt.date(today.year - 8, 1, 1))
    teen = person(app, registered_by=facility, born=dt.date(today.year - 13, 1, 1))
    system = station_token(client, app, facility=facility)

    young = issue(client, system, child.id)
    assert young.status_code == 422
    assert young.get_json()["type"].endswith("too-young-for-account")
    assert "12" in young.get_json()["detail"]
    assert issue(client, system, teen.id).status_code == 201


def test_no_phone_means_no_sms(app, client, sms_gateway):
    facility = station(app)
    someone = person(app, registered_by=facility, phone=None)

    answer = issue(client, station_token(client, app, facility=facility), someone.id)

    assert answer.status_code == 201
    assert answer.get_json()["sent_to_phone"] is False
    deliver(app)
    assert sms_gateway.received == []


def test_english_sms_for_an_english_speaker(app, client, sms_gateway):
    facility = station(app)
    someone = person(app, registered_by=facility, language="en")
    code = issue(client, station_token(client, app, facility=facility), someone.id
                 ).get_json()["code"]
    deliver(app)
    [sent] = sms_texts(sms_gateway)
    assert code_in(sent) == code
    assert "Do NOT share this code" in sent


def test_a_new_code_supersedes_the_older_one_and_its_sms(app, client, sms_gateway):
    facility = station(app)
    someone = person(app, registered_by=facility)
    system = station_token(client, app, facility=facility)
    first = issue(client, system, someone.id).get_json()["code"]
    second = issue(client, system, someone.id).get_json()["code"]

    result = deliver(app)

    # The first SMS had not left: its code ended, so only the second goes out.
    assert (result.sent, result.cancelled) == (1, 1)
    assert [code_in(t) for t in sms_texts(sms_gateway)] == [second]
    with app.app_context():
        now = dt.datetime.now(dt.UTC)
        check = {"session": db.session, "citizen_id": someone.id, "purpose": "activation",
                 "now": now}
        if first != second:
            assert account_codes.check_code(code=first, **check) is None
        assert account_codes.check_code(code=second, **check) is not None
        db.session.rollback()


def test_codes_are_single_use_expire_and_burn_after_five_wrong_tries(app):
    facility = station(app)
    someone = person(app, registered_by=facility)
    clock = install_clock(app)
    with app.test_request_context():
        session = db.session
        issued = account_codes.issue_code(session=session, citizen_id=someone.id,
                                          purpose="password-reset")
        session.commit()

        def check(code: str):
            return account_codes.check_code(session=session, citizen_id=someone.id,
                                            purpose="password-reset", code=code, now=clock.now)

        wrong = f"{(int(issued.code) + 1) % 10**8:08d}"
        for _ in range(4):
            assert check(wrong) is None
        assert check(f"{issued.code[:4]} {issued.code[4:]}") is not None  # spaces are fine
        assert check(issued.code) is None  # used
        session.commit()

        expiring = account_codes.issue_code(session=session, citizen_id=someone.id,
                                            purpose="password-reset")
        clock.advance(minutes=15, seconds=1)
        assert check(expiring.code) is None  # expired
        session.rollback()

        burned = account_codes.issue_code(session=session, citizen_id=someone.id,
                                          purpose="password-reset")
        wrong = f"{(int(burned.code) + 1) % 10**8:08d}"
        for _ in range(5):
            assert check(wrong) is None
        assert check(burned.code) is None
        row = session.get(AccountCode, burned.id)
        assert (row.attempts, row.revoked_reason) == (5, "burned")
        session.rollback()


def test_the_digits_are_nowhere_in_the_database(app, client):
    facility = station(app)
    someone = person(app, registered_by=facility)
    code = issue(client, station_token(client, app, facility=facility), someone.id
                 ).get_json()["code"]
    deliver(app)

    with app.app_context():
        connection = db.session.connection()
        dumped = 0
        for table in db.metadata.sorted_tables:
            for row in connection.execute(text(f'SELECT * FROM "{table.name}"')):  # noqa: S608
                for value in row:
                    dumped += 1
                    raw = bytes(value) if isinstance(value, (bytes, memoryview)) else None
                    if raw is not None:
                        assert code.encode() not in raw, table.name
                    else:
                        assert code not in str(value), table.name
        stored = db.session.scalars(select(AccountCode)).one()
        assert len(stored.code_hash) == 32
        assert code.encode() not in stored.code_hash
        db.session.rollback()
    assert dumped > 0


def test_auth_purge_deletes_account_codes_long_expired(app):
    facility = station(app)
    someone = person(app, registered_by=facility)
    clock = install_clock(app)
    with app.test_request_context():
        account_codes.issue_code(session=db.session, citizen_id=someone.id,
                                 purpose="password-reset")
        db.session.commit()
    runner = app.test_cli_runner()
    assert json.loads(runner.invoke(args=["auth", "purge"]).output)["account_codes"] == 0
    clock.advance(days=8)
    assert json.loads(runner.invoke(args=["auth", "purge"]).output)["account_codes"] == 1
    with app.app_context():
        assert db.session.scalars(select(AccountCode)).all() == []
