"""The portal's relationship and account pages over the demo world, as a browser uses them
(Flask test client logged in through the real login form), checked through the API with the
people's own tokens: the access log and "I don't recognise this", consents granted to someone
found in the directory and revoked, access requests approved and denied, the inbox, settings,
CSRF refusals that change nothing, and registering a Web Push subscription.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.portal.conftest import csrf_of, page_csrf, person
from tests.support.auth import ClientInfo, Login, bearer, code_for, exchange

JSON = {"Content-Type": "application/json"}


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


@pytest.fixture
def app(database_url: str, log_stream: Any) -> Iterator[Any]:
    """The test app, accepting Web Push endpoints on this machine (nothing is delivered)."""
    from core.db import db
    from tests.conftest import make_app
    from tests.support.database import empty_all_tables, rows_left

    application = make_app(database_url, log_stream, WEBPUSH_ENDPOINT_HOSTS="127.0.0.1")
    yield application
    with application.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, f"test left rows behind: {leftovers}"


def api_token(app: Any, demo: dict[str, Any], role: str) -> dict[str, str]:
    """A bearer header for a demo person through the code flow on a client of its own (so the
    portal client's cookies stay as they are): the clinic client for staff, the app for
    citizens."""
    who = person(demo, role)
    staff = who in demo["practitioners"]
    spec = demo["clients"]["clinic" if staff else "mobile"]
    info = ClientInfo(spec["client_id"], spec["redirect_uri"], spec.get("client_secret"))
    scope = "openid user/*.cruds" if staff else "openid patient/*.cruds"
    http = app.test_client()
    login = Login(account_id=uuid.uuid4(), role="", username=who["username"],
                  password=who["password"])
    code, verifier = code_for(http, info, login, scope=scope)
    answer = exchange(http, info, code, verifier)
    assert answer.status_code == 200, answer.get_json()
    return bearer(answer.get_json()["access_token"])


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def page(client: Any, path: str, **kwargs: Any) -> str:
    answer = client.get(path, **kwargs)
    assert answer.status_code == 200, html(answer)[:800]
    assert answer.mimetype == "text/html"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY"
    body = html(answer)
    assert "<script>" not in body
    assert " onclick=" not in body
    assert " style=" not in body
    assert body.count("<h1") == 1
    return body


def post(client: Any, path: str, data: dict[str, Any], *, csrf_from: str) -> Any:
    return client.post(path, data={"csrf_token": page_csrf(client, csrf_from), **data})


def assert_back(answer: Any, path: str, done: str) -> None:
    assert answer.status_code == 303, html(answer)[:800]
    target = urlsplit(answer.headers["Location"])
    assert target.path == path
    assert parse_qs(target.query)["done"] == [done]


def read_record(app: Any, headers: dict[str, str], citizen_id: str,
                section: str = "allergies") -> int:
    return app.test_client().get(f"/api/v1/citizens/{citizen_id}/{section}",
                                 headers=headers).status_code


# --- the access log -------------------------------------------------------------------------


def test_the_adult_sees_who_read_the_record_and_flags_it(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    doctor = person(demo, "family-doctor")
    assert read_record(app, api_token(app, demo, "family-doctor"), adult) == 200

    login_as("adult-chronic")
    body = page(client, f"/people/{adult}/access-log")
    assert "Ai đã xem hồ sơ" in body
    assert doctor["full_name"] in body
    assert "Trạm Y tế xã Liên Bão" in body
    assert "Tôi không nhận ra lần truy cập này" in body
    flagged = re.findall(rf'action="/people/{adult}/access-log/([0-9a-f-]{{36}})/flag"', body)
    assert flagged
    event_id = flagged[0]

    answer = client.post(f"/people/{adult}/access-log/{event_id}/flag",
                         data={"csrf_token": csrf_of(body)})
    assert_back(answer, f"/people/{adult}/access-log", "flagged")
    after = page(client, answer.headers["Location"])
    assert "Đã báo." in after
    assert "Đã báo, đang chờ cơ sở y tế xem xét." in after

    log = app.test_client().get(f"/api/v1/citizens/{adult}/access-log",
                                headers=api_token(app, demo, "adult-chronic")).get_json()
    [event] = [item for item in log["items"] if item["id"] == event_id]
    assert event["flag"] is not None
    assert event["flag"]["status"] == "open"


def test_the_access_log_speaks_english_when_chosen(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    read_record(app, api_token(app, demo, "family-doctor"), adult)
    login_as("adult-chronic")
    assert client.get("/language?to=en&next=/").status_code == 303
    body = page(client, f"/people/{adult}/access-log")
    assert "I don&#39;t recognise this" in body
    assert "Who viewed the record" in body
    assert '<html lang="en">' in body


def test_a_guardian_opens_the_child_pages_and_a_stranger_gets_nothing(app, client, demo,
                                                                       login_as):
    infant = person(demo, "infant")
    adult = person(demo, "adult-chronic")["id"]
    login_as("parent")
    for tail in ("access-log", "consents", "requests"):
        body = page(client, f"/people/{infant['id']}/{tail}")
        assert f"Hồ sơ của {infant['full_name']}" in body
    refused = client.get(f"/people/{adult}/access-log")
    assert refused.status_code == 404
    assert refused.mimetype == "text/html"
    assert person(demo, "adult-chronic")["full_name"] not in html(refused)


# --- consents -------------------------------------------------------------------------------


def test_grant_to_a_doctor_found_in_the_directory_then_revoke(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    other = person(demo, "other-doctor")
    duc = api_token(app, demo, "other-doctor")
    mine = api_token(app, demo, "adult-chronic")
    assert read_record(app, duc, adult) in (403, 404)

    login_as("adult-chronic")
    path = f"/people/{adult}/consents"
    assert "Chưa cấp quyền cho ai." in page(client, path)
    found = page(client, path, query_string={"q": "duc"})
    assert other["full_name"] in found
    choice = f"practitioner:{other['id']}"
    assert f'value="{choice}"' in found

    until = (today() + dt.timedelta(days=30)).isoformat()
    answer = client.post(path, data={
        "csrf_token": csrf_of(found), "grantee": choice, "sections": ["allergies", "conditions"],
        "access": "read", "expires_on": until, "q": "duc", "request_key": str(uuid.uuid4())})
    assert_back(answer, path, "granted")
    listed = page(client, answer.headers["Location"])
    assert "Đã cấp quyền." in listed
    assert other["full_name"] in listed
    assert "Dị ứng" in listed
    assert "Thu hồi quyền" in listed

    [consent] = app.test_client().get(f"/api/v1/citizens/{adult}/consents",
                                      headers=mine).get_json()["items"]
    assert consent["grantee"]["id"] == other["id"]
    assert sorted(consent["sections"]) == ["allergies", "conditions"]
    assert consent["expires_at"].startswith(until)
    assert read_record(app, duc, adult) == 200

    revoke = re.search(rf'action="(/people/{adult}/consents/{consent["id"]}/revoke)"', listed)
    assert revoke
    answer = client.post(revoke.group(1), data={"csrf_token": csrf_of(listed)})
    assert_back(answer, path, "revoked")
    assert "Đã thu hồi quyền." in page(client, answer.headers["Location"])
    assert app.test_client().get(f"/api/v1/citizens/{adult}/consents",
                                 headers=mine).get_json()["items"] == []
    assert read_record(app, duc, adult) in (403, 404)


def test_a_grant_the_api_refuses_shows_the_form_again(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    other = person(demo, "other-doctor")
    login_as("adult-chronic")
    path = f"/people/{adult}/consents"
    found = page(client, path, query_string={"q": "duc"})
    choice = f"practitioner:{other['id']}"

    no_sections = client.post(path, data={"csrf_token": csrf_of(found), "grantee": choice,
                                          "access": "read", "q": "duc"})
    assert no_sections.status_code == 422
    assert no_sections.mimetype == "text/html"
    assert "Chưa gửi được" in html(no_sections)
    assert 'id="error-sections"' in html(no_sections)

    past = (today() - dt.timedelta(days=3)).isoformat()
    expired = client.post(path, data={"csrf_token": csrf_of(found), "grantee": choice,
                                      "sections": "allergies", "expires_on": past, "q": "duc"})
    assert expired.status_code == 422
    assert 'id="error-expires_on"' in html(expired)
    assert f'value="{past}"' in html(expired)  # what was typed stays
    assert 'value="allergies" checked' in html(expired)

    nobody = client.post(path, data={"csrf_token": csrf_of(found), "sections": "allergies",
                                     "q": "duc"})
    assert nobody.status_code == 422
    assert "Hãy chọn một người hoặc cơ sở y tế." in html(nobody)

    mine = api_token(app, demo, "adult-chronic")
    assert app.test_client().get(f"/api/v1/citizens/{adult}/consents",
                                 headers=mine).get_json()["items"] == []


def test_a_directory_search_without_hits_says_so(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    login_as("adult-chronic")
    body = page(client, f"/people/{adult}/consents", query_string={"q": "zzzzqqq"})
    assert "Không tìm thấy ai với tên này." in body


# --- access requests ------------------------------------------------------------------------


def ask(app: Any, headers: dict[str, str], citizen_id: str, reason: str) -> str:
    answer = app.test_client().post(
        f"/api/v1/citizens/{citizen_id}/access-requests", headers={**headers, **JSON},
        json={"sections": ["allergies"], "reason": reason})
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["id"])


def pending_requests(app: Any, headers: dict[str, str], citizen_id: str) -> list[str]:
    answer = app.test_client().get(f"/api/v1/citizens/{citizen_id}/access-requests",
                                   headers=headers, query_string={"status": "pending"})
    return [item["id"] for item in answer.get_json()["items"]]


def test_approve_one_access_request_and_deny_another(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    other = person(demo, "other-doctor")
    duc = api_token(app, demo, "other-doctor")
    mine = api_token(app, demo, "adult-chronic")
    # The demo world has the other doctor's request waiting (one at a time per doctor).
    [first] = pending_requests(app, mine, adult)

    login_as("adult-chronic")
    path = f"/people/{adult}/requests"
    body = page(client, path)
    assert f"{other['full_name']} xin xem hồ sơ" in body
    assert "Bệnh viện đa khoa huyện Tiên Du" in body
    assert "Đồng ý" in body
    assert "Từ chối" in body
    answer = client.post(f"{path}/{first}/approve", data={"csrf_token": csrf_of(body)})
    assert_back(answer, path, "approved")
    after = page(client, answer.headers["Location"])
    assert "Đã đồng ý. Quyền truy cập đã được cấp." in after
    assert "Không có yêu cầu nào đang chờ bạn trả lời." in after

    second = ask(app, duc, adult, "Xem lại dị ứng")
    body = page(client, path)
    assert "Xem lại dị ứng" in body
    answer = client.post(f"{path}/{second}/deny", data={"csrf_token": csrf_of(body)})
    assert_back(answer, path, "denied")
    assert "Đã từ chối yêu cầu." in page(client, answer.headers["Location"])

    listed = {item["id"]: item for item in app.test_client().get(
        f"/api/v1/citizens/{adult}/access-requests", headers=mine).get_json()["items"]}
    assert listed[first]["status"] == "approved"
    assert listed[first]["consent_id"]
    assert listed[second]["status"] == "denied"
    assert listed[second]["consent_id"] is None
    assert read_record(app, duc, adult, "conditions") == 200

    # Answering twice is the API's 409, as a page.
    again = client.post(f"{path}/{second}/approve", data={"csrf_token": csrf_of(body)})
    assert again.status_code == 409
    assert again.mimetype == "text/html"


# --- notifications --------------------------------------------------------------------------


def test_the_inbox_marks_one_and_then_all_read(app, client, demo, login_as):
    adult = person(demo, "adult-chronic")["id"]
    duc = api_token(app, demo, "other-doctor")
    mine = api_token(app, demo, "adult-chronic")
    for waiting in pending_requests(app, mine, adult):  # the demo's, told to nobody
        app.test_client().post(f"/api/v1/citizens/{adult}/access-requests/{waiting}/deny",
                               headers={**mine, **JSON}, json={})
    ask(app, duc, adult, "Khám tim mạch định kỳ")
    inbox = app.test_client().get("/api/v1/me/notifications", headers=mine).get_json()
    unread = [item for item in inbox["items"] if not item["read_at"]]
    assert unread, inbox
    target = next(item for item in unread if item["trigger"] == "access-requested")

    login_as("adult-chronic")
    body = page(client, "/notifications")
    assert f"Bạn có {inbox['unread_count']} thông báo chưa đọc." in body
    assert target["title"] in body
    assert f'href="/people/{adult}/requests"' in body
    answer = client.post(f"/notifications/{target['id']}/read",
                         data={"csrf_token": csrf_of(body)})
    assert_back(answer, "/notifications", "read")
    assert "Đã đánh dấu là đã đọc." in page(client, answer.headers["Location"])
    count = app.test_client().get("/api/v1/me/notifications/unread-count",
                                  headers=mine).get_json()["unread_count"]
    assert count == inbox["unread_count"] - 1

    answer = post(client, "/notifications/read-all", {}, csrf_from="/notifications")
    assert_back(answer, "/notifications", "all-read")
    after = page(client, answer.headers["Location"])
    assert "Bạn đã đọc hết thông báo." in after
    assert "Đánh dấu đã đọc" not in after
    assert app.test_client().get("/api/v1/me/notifications/unread-count",
                                 headers=mine).get_json()["unread_count"] == 0


def subscription() -> dict[str, Any]:
    """A browser's PushSubscription (real key shapes) for a push service on this machine."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"endpoint": f"http://127.0.0.1:9/push/{uuid.uuid4()}", "expirationTime": None,
            "keys": {"p256dh": b64(public), "auth": b64(uuid.uuid4().bytes)}}


def test_the_devices_route_registers_a_web_push_subscription(app, client, demo, login_as):
    login_as("adult-chronic")
    body = page(client, "/notifications")
    assert "Bật thông báo trên thiết bị này" in body
    assert '<script src="/static/portal/push.js" defer></script>' in body
    key = re.search(r'data-vapid-key="([A-Za-z0-9_-]{87})"', body)
    assert key
    token = re.search(r'data-csrf-token="([0-9a-f]+)"', body).group(1)
    assert token == csrf_of(body)
    mine = api_token(app, demo, "adult-chronic")

    refused = client.post("/notifications/devices", json=subscription())
    assert refused.status_code == 403
    not_one = client.post("/notifications/devices", json={"endpoint": 3},
                          headers={"X-CSRF-Token": token})
    assert not_one.status_code == 400
    assert not_one.mimetype == "application/problem+json"
    assert app.test_client().get("/api/v1/me/devices", headers=mine).get_json()["items"] == []

    sent = subscription()
    answer = client.post("/notifications/devices", json=sent, headers={"X-CSRF-Token": token})
    assert answer.status_code == 204, answer.get_data(as_text=True)
    assert client.post("/notifications/devices", json=sent,
                       headers={"X-CSRF-Token": token}).status_code == 204
    devices = app.test_client().get("/api/v1/me/devices", headers=mine).get_json()["items"]
    assert [d["platform"] for d in devices] == ["webpush"]

    elsewhere = {**sent, "endpoint": "https://push.example.org/x"}
    unknown = client.post("/notifications/devices", json=elsewhere,
                          headers={"X-CSRF-Token": token})
    assert unknown.status_code == 422
    assert unknown.mimetype == "application/problem+json"


def test_the_push_scripts_are_served(client):
    for name in ("push.js", "sw.js"):
        answer = client.get(f"/static/portal/{name}")
        try:
            assert answer.status_code == 200
            assert answer.mimetype in ("text/javascript", "application/javascript")
        finally:
            answer.close()


# --- settings -------------------------------------------------------------------------------


def preferences(app: Any, headers: dict[str, str]) -> dict[str, Any]:
    return app.test_client().get("/api/v1/me/notification-preferences",
                                 headers=headers).get_json()


def test_settings_are_saved_through_the_api_and_switch_the_language(app, client, demo,
                                                                    login_as):
    login_as("adult-chronic")
    mine = api_token(app, demo, "adult-chronic")
    before = preferences(app, mine)
    body = page(client, "/settings")
    assert "Lưu cài đặt" in body
    assert "Giờ yên tĩnh" in body
    form: dict[str, Any] = {
        "csrf_token": csrf_of(body),
        "version": re.search(r'name="version" value="([^"]*)"', body).group(1).replace(
            "&#34;", '"'),
        "language": "en", "quiet_mode": "custom", "quiet_start": "22:00", "quiet_end": "06:30",
    }
    for code, channels in before["triggers"].items():
        for channel in ("push", "sms", "email"):
            on = channels[channel]
            if code == "vaccination-due" and channel == "sms":
                on = False
            if code == "record-accessed" and channel == "sms":
                on = True
            if on:
                form[f"ch.{code}.{channel}"] = "on"
    answer = client.post("/settings", data=form)
    assert answer.status_code == 303, html(answer)[:800]
    assert answer.headers["Location"].startswith("/language?")
    back = client.get(answer.headers["Location"])
    assert back.status_code == 303
    assert_back(back, "/settings", "saved")
    saved = page(client, back.headers["Location"])
    assert "Settings saved." in saved
    assert '<html lang="en">' in saved

    after = preferences(app, mine)
    assert after["language"] == "en"
    assert after["quiet_hours"]["mode"] == "custom"
    assert (after["quiet_hours"]["start"], after["quiet_hours"]["end"]) == ("22:00", "06:30")
    assert after["triggers"]["vaccination-due"]["sms"] is False
    assert after["triggers"]["record-accessed"]["sms"] is True
    assert after["triggers"]["vaccination-due"]["push"] is before["triggers"][
        "vaccination-due"]["push"]


def test_bad_or_stale_settings_show_the_form_and_change_nothing(app, client, demo, login_as):
    login_as("adult-chronic")
    mine = api_token(app, demo, "adult-chronic")
    before = preferences(app, mine)
    body = page(client, "/settings")
    version = re.search(r'name="version" value="([^"]*)"', body).group(1).replace("&#34;", '"')
    bad = client.post("/settings", data={"csrf_token": csrf_of(body), "version": version,
                                         "language": "vi", "quiet_mode": "custom",
                                         "quiet_start": "25:00", "quiet_end": ""})
    assert bad.status_code == 422
    assert bad.mimetype == "text/html"
    assert "Chưa gửi được" in html(bad)
    assert preferences(app, mine) == before

    stale = client.post("/settings", data={"csrf_token": csrf_of(body), "version": '"x.v99"',
                                           "language": "vi", "quiet_mode": "off"})
    assert stale.status_code == 409
    assert "Cài đặt vừa được thay đổi ở nơi khác." in html(stale)
    assert preferences(app, mine) == before


# --- CSRF -----------------------------------------------------------------------------------


def test_posts_without_the_form_token_are_refused_and_change_nothing(app, client, demo,
                                                                     login_as):
    adult = person(demo, "adult-chronic")["id"]
    other = person(demo, "other-doctor")
    read_record(app, api_token(app, demo, "family-doctor"), adult)
    mine = api_token(app, demo, "adult-chronic")
    login_as("adult-chronic")
    body = page(client, f"/people/{adult}/access-log")
    event_id = re.findall(rf"/people/{adult}/access-log/([0-9a-f-]{{36}})/flag", body)[0]

    for path, data in (
        (f"/people/{adult}/access-log/{event_id}/flag", {}),
        (f"/people/{adult}/consents", {"grantee": f"practitioner:{other['id']}",
                                        "sections": "allergies"}),
        ("/notifications/read-all", {}),
        ("/settings", {"language": "en", "quiet_mode": "off"}),
    ):
        for token in (None, "0" * 64, "không-phải-mã"):
            sent = data if token is None else {**data, "csrf_token": token}
            refused = client.post(path, data=sent)
            assert refused.status_code == 403, path
            assert refused.mimetype == "text/html"
            assert "Biểu mẫu đã hết hạn" in html(refused)

    log = app.test_client().get(f"/api/v1/citizens/{adult}/access-log",
                                headers=mine).get_json()["items"]
    assert all(item["flag"] is None for item in log)
    assert app.test_client().get(f"/api/v1/citizens/{adult}/consents",
                                 headers=mine).get_json()["items"] == []
    assert preferences(app, mine)["language"] is None


def test_the_pages_send_a_logged_out_browser_to_the_login(client, demo):
    adult = person(demo, "adult-chronic")["id"]
    for path in (f"/people/{adult}/access-log", f"/people/{adult}/consents",
                 f"/people/{adult}/requests", "/notifications", "/settings"):
        answer = client.get(path)
        assert answer.status_code == 303
        assert urlsplit(answer.headers["Location"]).path == "/login"
