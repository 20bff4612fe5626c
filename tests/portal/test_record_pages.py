"""The record pages through the browser's door: home with the trend chart, vaccinations,
adding a measurement or a past dose, export downloads and share by QR code.

Everything goes through the Flask test client logged in with the real login form; the pages
reach the data through the public API with the session's token.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.portal.conftest import csrf_of, person

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HIDDEN_KEY = re.compile(r'name="idempotency_key" value="([^"]*)"')


def _page(client: Any, path: str, status: int = 200) -> str:
    answer = client.get(path, headers=HTML)
    assert answer.status_code == status, answer.get_data(as_text=True)[:800]
    return answer.get_data(as_text=True)


def _form(client: Any, path: str) -> dict[str, str]:
    html = _page(client, path)
    key = HIDDEN_KEY.search(html)
    assert key, "no idempotency key on the form"
    return {"csrf_token": csrf_of(html), "idempotency_key": key.group(1)}


def _pressure(client: Any, who: dict[str, Any], systolic: str, diastolic: str,
              fields: dict[str, str] | None = None) -> Any:
    path = f"/people/{who['id']}/measurements/new"
    fields = fields or _form(client, path)
    return client.post(path, headers=HTML, data={
        **fields, "kind": "blood-pressure", "systolic": systolic, "diastolic": diastolic,
        "measured_date": "2026-01-15", "measured_time": "07:45", "glucose": "",
        "glucose_unit": "mmol/L"})


def _assert_page_headers(answer: Any) -> None:
    assert answer.mimetype == "text/html"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Frame-Options"] == "DENY"
    body = answer.get_data(as_text=True)
    assert "<script>" not in body
    assert " onclick=" not in body
    assert " style=" not in body


def test_home_shows_the_adults_conditions_by_name_and_the_chart(client, login_as):
    adult = login_as("adult-chronic")
    answer = client.get("/", headers=HTML)
    assert answer.status_code == 200
    _assert_page_headers(answer)
    html = answer.get_data(as_text=True)
    assert adult["full_name"] in html
    assert "Tăng huyết áp vô căn" in html
    assert "Đái tháo đường típ 2" in html
    assert "(I10)" in html
    assert f'<img class="chart" src="/people/{adult["id"]}/trend.svg" alt="' in html
    assert "Penicillin" in html
    assert "Amlodipin 5 mg" in html
    assert "138/86 mmHg" in html
    assert "7,1 mmol/L" in html
    # The same page by the person's id.
    assert "Tăng huyết áp vô căn" in _page(client, f"/people/{adult['id']}")


def test_the_trend_chart_is_an_svg_with_the_values(client, login_as):
    adult = login_as("adult-chronic")
    answer = client.get(f"/people/{adult['id']}/trend.svg")
    assert answer.status_code == 200
    assert answer.mimetype == "image/svg+xml"
    assert answer.headers["Content-Security-Policy"] == \
        "default-src 'none'; style-src 'unsafe-inline'"
    assert answer.headers["Cache-Control"] == "no-store"
    svg = answer.get_data(as_text=True)
    assert "<svg" in svg
    assert "<script" not in svg
    for value in (": 152<", ": 144<", ": 138<", ": 94<", ": 86<", ": 8,4<", ": 7,1<"):
        assert value in svg, value
    assert "<title>Biểu đồ huyết áp và đường huyết</title>" in svg
    # The accessible table of the same values.
    table = _page(client, f"/people/{adult['id']}/measurements")
    assert "152/94 mmHg" in table
    assert "8,4 mmol/L" in table


def test_the_parent_opens_the_childs_vaccinations_and_sees_the_overdue_dose(client, demo,
                                                                             login_as):
    login_as("parent")
    infant = person(demo, "infant")
    home = _page(client, "/")
    assert f'href="/people/{infant["id"]}"' in home  # the switch to the child's record
    child_home = _page(client, f"/people/{infant['id']}")
    assert infant["full_name"] in child_home
    assert "Quá hạn: 3 mũi" in child_home
    html = _page(client, f"/people/{infant['id']}/vaccinations")
    assert "Quá hạn từ " in html
    assert re.search(r"Quá hạn từ \d\d/\d\d/\d{4}", html)
    assert "Bạch hầu - ho gà - uốn ván - viêm gan B - Hib mũi 2" in html
    assert "Vắc xin phòng lao (BCG)" in html
    assert "Trạm Y tế xã Liên Bão" in html
    assert "Đã xác nhận" in html


def test_a_new_blood_pressure_shows_in_the_trend(client, login_as):
    adult = login_as("adult-chronic")
    posted = _pressure(client, adult, "151", "97")
    assert posted.status_code == 303
    assert posted.headers["Location"] == f"/people/{adult['id']}?done=measurement"
    home = _page(client, posted.headers["Location"])
    assert "Đã lưu chỉ số" in home
    svg = client.get(f"/people/{adult['id']}/trend.svg").get_data(as_text=True)
    assert "15/01: 151<" in svg
    assert "15/01: 97<" in svg
    table = _page(client, f"/people/{adult['id']}/measurements")
    assert "151/97 mmHg" in table
    assert "15/01/2026 07:45" in table
    assert "Tại nhà" in table


def test_a_double_submit_records_once(client, login_as):
    adult = login_as("adult-chronic")
    fields = _form(client, f"/people/{adult['id']}/measurements/new")
    first = _pressure(client, adult, "163", "99", fields)
    second = _pressure(client, adult, "163", "99", fields)
    assert first.status_code == second.status_code == 303
    table = _page(client, f"/people/{adult['id']}/measurements")
    assert table.count("163/99 mmHg") == 1
    # A fresh form has a fresh key: the same values again are a second reading.
    assert _pressure(client, adult, "163", "99").status_code == 303
    assert _page(client, f"/people/{adult['id']}/measurements").count("163/99 mmHg") == 2


def test_a_bad_value_shows_the_form_again_with_the_message(client, login_as):
    adult = login_as("adult-chronic")
    answer = _pressure(client, adult, "400", "97")
    assert answer.status_code == 422
    _assert_page_headers(answer)
    html = answer.get_data(as_text=True)
    assert 'id="systolic-error"' in html
    assert 'aria-invalid="true"' in html
    assert 'value="400"' in html  # what was typed stays
    glucose = client.post(f"/people/{adult['id']}/measurements/new", headers=HTML, data={
        **_form(client, f"/people/{adult['id']}/measurements/new"), "kind": "blood-glucose",
        "glucose": "nhiều", "glucose_unit": "mmol/L", "measured_date": "2026-01-15",
        "measured_time": "07:45"})
    assert glucose.status_code == 422
    assert 'id="glucose-error"' in glucose.get_data(as_text=True)
    table = _page(client, f"/people/{adult['id']}/measurements")
    assert "400/97" not in table
    assert "nhiều" not in table


def test_a_glucose_with_a_decimal_comma_is_recorded(client, login_as):
    adult = login_as("adult-chronic")
    path = f"/people/{adult['id']}/measurements/new"
    answer = client.post(path, headers=HTML, data={
        **_form(client, path), "kind": "blood-glucose", "glucose": "6,3",
        "glucose_unit": "mmol/L", "measured_date": "2026-01-16", "measured_time": "06:30"})
    assert answer.status_code == 303
    assert "16/01: 6,3<" in client.get(f"/people/{adult['id']}/trend.svg").get_data(
        as_text=True)


def test_a_past_dose_from_the_book_shows_as_unverified(client, demo, login_as):
    login_as("parent")
    infant = person(demo, "infant")
    path = f"/people/{infant['id']}/doses/new"
    form_html = _page(client, path)
    assert 'value="DTP-HEPB-HIB"' in form_html
    assert 'for="occurrence_date"' in form_html
    missing = client.post(path, headers=HTML, data={**_form(client, path), "vaccine_code": "",
                                                    "occurrence_date": "", "dose_number": "2"})
    assert missing.status_code == 422
    assert 'id="vaccine_code-error"' in missing.get_data(as_text=True)
    answer = client.post(path, headers=HTML, data={
        **_form(client, path), "vaccine_code": "DTP-HEPB-HIB", "occurrence_date": "2026-10-20",
        "dose_number": "2", "lot_number": "", "facility_name": "Phòng tiêm chủng ABC"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/people/{infant['id']}/vaccinations?done=dose"
    html = _page(client, answer.headers["Location"])
    assert "Chưa xác nhận" in html
    assert "Phòng tiêm chủng ABC" in html
    assert "sẽ được tính khi trạm y tế xác nhận" in html


def test_export_downloads_are_json_attachments(client, login_as):
    adult = login_as("adult-chronic")
    page = _page(client, f"/people/{adult['id']}/export")
    assert f'href="/people/{adult["id"]}/export.json"' in page
    plain = client.get(f"/people/{adult['id']}/export.json")
    assert plain.status_code == 200
    assert plain.mimetype == "application/json"
    assert re.fullmatch(r'attachment; filename="ho-so-suc-khoe-\d{4}-\d\d-\d\d\.json"',
                        plain.headers["Content-Disposition"])
    assert plain.headers["Cache-Control"] == "no-store"
    assert json.loads(plain.get_data())["citizen"]["id"] == adult["id"]
    fhir = client.get(f"/people/{adult['id']}/export.fhir.json")
    assert fhir.status_code == 200
    assert fhir.mimetype == "application/fhir+json"
    assert re.fullmatch(r'attachment; filename="ho-so-suc-khoe-\d{4}-\d\d-\d\d\.fhir\.json"',
                        fhir.headers["Content-Disposition"])
    assert json.loads(fhir.get_data())["resourceType"] == "Bundle"
    for answer in (plain, fhir):
        assert adult["full_name"] not in answer.headers["Content-Disposition"]


def test_a_stranger_gets_an_error_page_for_the_childs_record(client, demo, login_as):
    login_as("stranger")
    infant = person(demo, "infant")
    for path in ("", "/vaccinations", "/trend.svg", "/measurements", "/measurements/new",
                 "/doses/new", "/export", "/export.json", "/export.fhir.json", "/share"):
        answer = client.get(f"/people/{infant['id']}{path}", headers=HTML)
        assert answer.status_code == 404, path
        assert answer.mimetype == "text/html", path
        html = answer.get_data(as_text=True)
        assert infant["full_name"] not in html, path
        assert "<h1>" in html, path
    # The FHIR face refuses with an OperationOutcome: the page says the same as for JSON.
    titles = {re.search(r"<h1>([^<]+)</h1>", _page(client, f"/people/{infant['id']}{path}",
                                                   404)).group(1)
              for path in ("/export.json", "/export.fhir.json")}
    assert len(titles) == 1
    fields = _form(client, "/people/" + person(demo, "stranger")["id"] + "/measurements/new")
    posted = client.post(f"/people/{infant['id']}/measurements/new", headers=HTML, data={
        **fields, "kind": "blood-pressure", "systolic": "120", "diastolic": "80",
        "measured_date": "2026-01-15", "measured_time": "07:45"})
    assert posted.status_code == 404
    assert posted.mimetype == "text/html"


def test_the_pages_speak_english_when_chosen(client, demo, login_as):
    login_as("parent")
    infant = person(demo, "infant")
    switched = client.get("/language", query_string={"to": "en",
                                                     "next": f"/people/{infant['id']}"})
    assert switched.status_code == 303
    html = _page(client, f"/people/{infant['id']}/vaccinations")
    assert '<html lang="en">' in html
    assert re.search(r"Overdue since \d{1,2} [A-Z][a-z]+ \d{4}", html)
    assert "Quá hạn" not in html
    assert "Add a past dose from the vaccination book" in html
    form = _page(client, f"/people/{infant['id']}/measurements/new")
    assert "Systolic pressure (upper number, mmHg)" in form


def test_share_by_qr_shows_the_code_once_and_revokes(client, login_as):
    adult = login_as("adult-chronic")
    path = f"/people/{adult['id']}/share"
    page = _page(client, path)
    assert "Chưa tạo mã nào." in page
    made = client.post(path, headers=HTML, data={
        "csrf_token": csrf_of(page), "share_label": "Khám ở bệnh viện", "expires_in": "4",
        "passcode": "", })
    assert made.status_code == 200
    _assert_page_headers(made)
    html = made.get_data(as_text=True)
    assert '<img src="data:image/png;base64,' in html
    link = re.search(r'<code id="share-link">([^<]+)</code>', html)
    assert link
    assert "/share/view#shlink:/" in link.group(1)
    # Listed without its key afterwards; nothing of the link in our URLs.
    listing = _page(client, path)
    assert "Khám ở bệnh viện" in listing
    assert "Đang hiệu lực" in listing
    assert link.group(1) not in listing
    assert "shlink:/" not in listing
    short = client.post(path, headers=HTML, data={"csrf_token": csrf_of(listing),
                                                  "expires_in": "1", "passcode": "123"})
    assert short.status_code == 422
    assert 'id="passcode-error"' in short.get_data(as_text=True)
    revoke = re.search(r'action="(/people/[^"]+/share/[^"]+/revoke)"', listing)
    assert revoke
    revoked = client.post(revoke.group(1), headers=HTML, data={"csrf_token": csrf_of(listing)})
    assert revoked.status_code == 303
    assert revoked.headers["Location"] == f"{path}?done=revoked"
    after = _page(client, revoked.headers["Location"])
    assert "Đã thu hồi liên kết chia sẻ" in after
    assert "Đã thu hồi</span>" in after


def test_forms_without_the_csrf_token_change_nothing(client, login_as):
    adult = login_as("adult-chronic")
    fields = _form(client, f"/people/{adult['id']}/measurements/new")
    answer = _pressure(client, adult, "171", "101", {**fields, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert answer.mimetype == "text/html"
    assert "171/101" not in _page(client, f"/people/{adult['id']}/measurements")
