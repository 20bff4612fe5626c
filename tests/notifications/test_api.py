"""The inbox, preferences and devices over HTTP with real tokens, checked against openapi.yaml."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from core.db import db
from core.events import ACCESS_REQUEST_ANSWERED, ENTRY_CREATED, DomainEvent, emit
from registry.services import create_facility, create_practitioner
from tests.notifications.conftest import browser_subscription, fcm_token, make_person
from tests.notifications.helpers import deliveries, notify, process
from tests.support.auth import bearer, make_login, make_practitioner, station_token, token_for
from tests.support.contract import ContractClient

BORN = dt.date(2025, 1, 17)


@pytest.fixture
def http(app):
    app.test_client_class = ContractClient
    return app.test_client()


@pytest.fixture
def citizen(app):
    return make_person(app, full_name="Đỗ Thị Lan Anh", phone="0987 654 321")


@pytest.fixture
def token(http, app, citizen):
    return token_for(http, app, citizen=citizen.id)


def _headers(token, **extra):
    return {**bearer(token), **extra}


# Inbox ------------------------------------------------------------------------------------------
def test_the_inbox_renders_in_the_readers_language(app, http, citizen, token):
    child = make_person(app, full_name="Nguyễn Minh Khôi", date_of_birth=BORN, phone=None,
                        email=None)
    notify(app, subject=child.id, recipient=citizen.id, trigger="vaccination-due",
           key="r1", params={"doses": ["dtp-1", "opv-1"], "due_date": "2025-03-17"})

    vi = http.get("/api/v1/me/notifications", headers=_headers(token))
    en = http.get("/api/v1/me/notifications", headers=_headers(token, **{"Accept-Language": "en"}))

    assert vi.status_code == 200, vi.get_data(as_text=True)
    (item,) = vi.get_json()["items"]
    assert item["title"] == "Sắp đến lịch tiêm chủng"
    assert item["body"] == (
        "Nguyễn Minh Khôi đến lịch tiêm Bạch hầu - ho gà - uốn ván - viêm gan B - Hib mũi 1 "
        "và Bại liệt uống lần 1 vào ngày 17/03/2025. Hãy đưa trẻ đến trạm y tế.")
    assert item["subject_citizen_id"] == str(child.id)
    assert item["data"] == {"doses": ["dtp-1", "opv-1"], "due_date": "2025-03-17"}
    assert {d["channel"]: d["status"] for d in item["deliveries"]} == {
        "in_app": "delivered", "sms": "pending"}
    assert vi.get_json()["unread_count"] == 1
    assert en.get_json()["items"][0]["body"].startswith("Nguyễn Minh Khôi is due for ")
    assert "on 17 Mar 2025" in en.get_json()["items"][0]["body"]


def test_delivery_status_is_visible_to_the_recipient(app, http, citizen, token):
    notify(app, subject=citizen.id, trigger="vaccination-due",
           params={"doses": ["bcg"], "due_date": "2025-03-10"})
    process(app)
    (item,) = http.get("/api/v1/me/notifications", headers=_headers(token)).get_json()["items"]
    assert {d["channel"]: (d["status"], d["attempts"]) for d in item["deliveries"]} == {
        "in_app": ("delivered", 1), "sms": ("sent", 1)}
    assert item["body"] == "Bạn đến lịch tiêm Lao (BCG) vào ngày 10/03/2025."


def test_an_entry_notification_names_the_author_from_the_public_register(app, http, citizen,
                                                                         token):
    with app.app_context():
        station = create_facility(session=db.session, code="T-LB2",
                                  kind="commune-health-station", name="Trạm Y tế xã Liên Bão",
                                  province_code="27", district_code="260")
        nurse = create_practitioner(session=db.session, full_name="Lê Thị Mai",
                                    practising_certificate="004512/BN-CCHN",
                                    profession="nurse", facility=station)
        db.session.flush()
        emit(db.session, DomainEvent(name=ENTRY_CREATED, citizen_id=citizen.id, data={
            "section": "immunizations", "entry_id": str(uuid.uuid4()),
            "sensitivity": "normal", "author_practitioner_id": str(nurse.id)}))
        db.session.commit()
    (item,) = http.get("/api/v1/me/notifications", headers=_headers(token)).get_json()["items"]
    assert item["body"] == (
        "Lê Thị Mai (Trạm Y tế xã Liên Bão) đã thêm thông tin vào mục tiêm chủng "
        "trong hồ sơ của bạn.")


def test_pages_unread_count_and_marking_read(app, http, citizen, token, clock):
    ids = []
    for index in range(5):
        clock.advance(seconds=1)
        ids += notify(app, subject=citizen.id, key=f"k{index}")
    first = http.get("/api/v1/me/notifications?limit=2", headers=_headers(token)).get_json()
    assert [i["id"] for i in first["items"]] == [str(i) for i in reversed(ids[-2:])]
    second = http.get(f"/api/v1/me/notifications?limit=2&cursor={first['next_cursor']}",
                      headers=_headers(token)).get_json()
    third = http.get(f"/api/v1/me/notifications?limit=2&cursor={second['next_cursor']}",
                     headers=_headers(token)).get_json()
    assert third["next_cursor"] is None
    seen = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert seen == [str(i) for i in reversed(ids)]

    read = http.post(f"/api/v1/me/notifications/{ids[0]}/read", headers=_headers(token))
    assert read.status_code == 200
    assert read.get_json()["read_at"] is not None
    again = http.post(f"/api/v1/me/notifications/{ids[0]}/read", headers=_headers(token))
    assert again.get_json()["read_at"] == read.get_json()["read_at"]
    count = http.get("/api/v1/me/notifications/unread-count", headers=_headers(token))
    assert count.get_json() == {"unread_count": 4}
    unread = http.get("/api/v1/me/notifications?unread_only=true", headers=_headers(token))
    assert len(unread.get_json()["items"]) == 4

    everything = http.post("/api/v1/me/notifications/read-all", headers=_headers(token))
    assert everything.get_json() == {"marked_read": 4, "unread_count": 0}


def test_an_unchanged_inbox_answers_304(http, app, citizen, token):
    notify(app, subject=citizen.id)
    first = http.get("/api/v1/me/notifications", headers=_headers(token))
    second = http.get("/api/v1/me/notifications",
                      headers=_headers(token, **{"If-None-Match": first.headers["ETag"]}))
    assert second.status_code == 304


def test_nobody_reads_anothers_notifications(app, http, citizen, token):
    stranger = make_person(app)
    (theirs,) = notify(app, subject=stranger.id)
    mine = http.get("/api/v1/me/notifications", headers=_headers(token)).get_json()
    assert mine["items"] == []
    answer = http.post(f"/api/v1/me/notifications/{theirs}/read", headers=_headers(token))
    assert answer.status_code == 404
    assert http.post("/api/v1/me/notifications/not-a-uuid/read",
                     headers=_headers(token)).status_code == 404


def test_a_practitioner_reads_their_accounts_inbox(app, http):
    patient = make_person(app, full_name="Phạm Văn Thắng")
    practitioner = make_practitioner(app)
    login = make_login(app, role="practitioner", practitioner=practitioner)
    doctor = token_for(http, app, login=login)
    with app.app_context():
        emit(db.session, DomainEvent(name=ACCESS_REQUEST_ANSWERED, citizen_id=patient.id, data={
            "request_id": str(uuid.uuid4()), "decision": "approved",
            "practitioner_id": str(practitioner)}))
        db.session.commit()
    (item,) = http.get("/api/v1/me/notifications", headers=_headers(doctor)).get_json()["items"]
    assert item["body"] == "Phạm Văn Thắng đã đồng ý yêu cầu xem hồ sơ của bạn."


def test_tokens_without_a_person_or_scope_are_refused(app, http, citizen):
    with http.unchecked():  # a 401 without any token is what the contract says; checked anyway
        assert http.get("/api/v1/me/notifications").status_code == 401
    system = station_token(http, app)
    refused = http.get("/api/v1/me/notifications", headers=bearer(system))
    assert refused.status_code == 403
    narrow = token_for(http, app, citizen=citizen.id, scopes="openid patient/Immunization.rs")
    refused = http.get("/api/v1/me/notifications", headers=bearer(narrow))
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("insufficient-scope")


# Preferences ------------------------------------------------------------------------------------
def test_preferences_defaults_update_with_if_match_and_effect(app, http, citizen, token,
                                                             providers):
    got = http.get("/api/v1/me/notification-preferences", headers=_headers(token))
    assert got.status_code == 200
    body = got.get_json()
    assert body["triggers"]["vaccination-due"] == {"in_app": True, "push": True, "sms": True,
                                                   "email": False}
    assert body["quiet_hours"] == {"mode": "default", "start": None, "end": None,
                                   "time_zone": "Asia/Ho_Chi_Minh"}  # QUIET_HOURS="" in tests
    assert body["urgent_triggers"] == ["break-glass"]
    assert body["effective_language"] == "vi"
    etag = got.headers["ETag"]

    update = {"triggers": {"vaccination-due": {"sms": False, "email": True}},
              "quiet_hours": {"mode": "custom", "start": "22:00", "end": "06:30"},
              "language": "en"}
    missing = http.put("/api/v1/me/notification-preferences", json=update,
                       headers=_headers(token))
    assert missing.status_code == 428
    saved = http.put("/api/v1/me/notification-preferences", json=update,
                     headers=_headers(token, **{"If-Match": etag}))
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert saved.get_json()["triggers"]["vaccination-due"] == {
        "in_app": True, "push": True, "sms": False, "email": True}
    assert saved.get_json()["quiet_hours"]["start"] == "22:00"
    assert saved.get_json()["effective_language"] == "en"
    stale = http.put("/api/v1/me/notification-preferences", json=update,
                     headers=_headers(token, **{"If-Match": etag}))
    assert stale.status_code == 412

    notify(app, subject=citizen.id, trigger="vaccination-due",
           params={"doses": ["bcg"], "due_date": "2025-03-10"})
    assert [row.channel for row in deliveries(app)] == ["email"]
    process(app)
    (mail,) = providers.smtp.received  # in English, the person's choice
    assert mail.message["Subject"] == "New health notification"


INVALID_PREFERENCES = [
    {"triggers": {"no-such-trigger": {"push": True}}},
    {"triggers": {"entry-created": {"pigeon": True}}},
    {"triggers": {"entry-created": {"push": "yes"}}},
    {"triggers": {"entry-created": {"in_app": False}}},
    {"quiet_hours": {"mode": "custom", "start": "25:00", "end": "06:00"}},
    {"quiet_hours": {"mode": "custom", "start": "06:00", "end": "06:00"}},
    {"language": "fr"},
    {"colour": "blue"},
]


def test_invalid_preferences_are_refused_and_nothing_changes(app, http, token):
    etag = http.get("/api/v1/me/notification-preferences", headers=_headers(token)).headers["ETag"]
    for body in INVALID_PREFERENCES:  # one login for all cases: logins cost two argon2 hashes
        answer = http.put("/api/v1/me/notification-preferences", json=body,
                          headers=_headers(token, **{"If-Match": etag, "Accept-Language": "en"}))
        assert answer.status_code == 422, body
        assert answer.get_json()["errors"], body
    after = http.get("/api/v1/me/notification-preferences", headers=_headers(token))
    assert after.headers["ETag"] == etag


# Devices ----------------------------------------------------------------------------------------
def test_register_list_and_remove_devices(app, http, citizen, token, providers):
    fcm = fcm_token()
    created = http.post("/api/v1/me/devices", json={"platform": "fcm", "token": fcm},
                        headers=_headers(token))
    assert created.status_code == 201
    assert "token" not in created.get_json()
    again = http.post("/api/v1/me/devices", json={"platform": "fcm", "token": fcm},
                      headers=_headers(token))
    assert again.status_code == 200
    assert again.get_json()["id"] == created.get_json()["id"]
    browser = browser_subscription(providers)
    web = http.post("/api/v1/me/devices", json={"platform": "webpush", "token": browser.token()},
                    headers=_headers(token))
    assert web.status_code == 201
    listed = http.get("/api/v1/me/devices", headers=_headers(token)).get_json()["items"]
    assert sorted(d["platform"] for d in listed) == ["fcm", "webpush"]

    notify(app, subject=citizen.id)  # one push per device
    assert sorted(r.channel for r in deliveries(app)) == ["push", "push"]
    removed = http.delete(f"/api/v1/me/devices/{created.get_json()['id']}",
                          headers=_headers(token))
    assert removed.status_code == 204
    assert sorted(r.status for r in deliveries(app)) == ["cancelled", "pending"]
    assert process(app).sent == 1


def test_device_tokens_are_encrypted_at_rest(app, http, citizen, token):
    from sqlalchemy import select

    from notifications.models import Device

    fcm = fcm_token()
    http.post("/api/v1/me/devices", json={"platform": "fcm", "token": fcm},
              headers=_headers(token))
    with app.app_context():
        raw = db.session.execute(select(Device.token_ct, Device.token_hash)).one()
    assert fcm.encode() not in raw[0]
    assert fcm.encode() not in raw[1]


def test_a_device_moves_to_whoever_logs_in_on_it(app, http, token, citizen):
    other_person = make_person(app)
    other = token_for(http, app, citizen=other_person.id)
    fcm = fcm_token()
    first = http.post("/api/v1/me/devices", json={"platform": "fcm", "token": fcm},
                      headers=_headers(token))
    moved = http.post("/api/v1/me/devices", json={"platform": "fcm", "token": fcm},
                      headers=_headers(other))
    assert moved.status_code == 201
    assert http.get("/api/v1/me/devices", headers=_headers(token)).get_json()["items"] == []
    gone = http.delete(f"/api/v1/me/devices/{moved.get_json()['id']}", headers=_headers(token))
    assert gone.status_code == 404  # not theirs any more
    assert first.get_json()["id"] != moved.get_json()["id"]


IMPLAUSIBLE_DEVICES = [
    {"platform": "sms", "token": "x" * 40},
    {"platform": "fcm", "token": "has spaces and <angle> brackets"},
    {"platform": "webpush", "token": "not json"},
    {"platform": "webpush", "token": json.dumps({
        "endpoint": "https://evil.example.com/push/1",
        "keys": {"p256dh": "BA" + "A" * 85, "auth": "A" * 22}})},
    {"platform": "fcm"},
]


def test_implausible_devices_are_refused(app, http, token):
    for body in IMPLAUSIBLE_DEVICES:
        answer = http.post("/api/v1/me/devices", json=body, headers=_headers(token))
        assert answer.status_code == 422, body
    assert http.get("/api/v1/me/devices", headers=_headers(token)).get_json()["items"] == []


def test_the_portal_gets_the_vapid_public_key(http, token):
    import base64

    answer = http.get("/api/v1/webpush/vapid-public-key", headers=_headers(token))
    assert answer.status_code == 200
    raw = answer.get_json()["public_key"]
    point = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    assert len(point) == 65
    assert point[0] == 4
