"""The portal as people use it: Debian's Chromium (Playwright) at phone size (360x800) against a
live server seeded with the demo world, logging in through the real login form.

Every page a scenario reaches is also checked with axe-core (no serious or critical
violation). Screenshots of the home page at 360x800 are kept as test artifacts in
$TEST_ARTIFACTS_DIR, by default instance/test-artifacts/portal/ (git-ignored):
home-adult-vi.png, home-parent-vi.png, home-adult-en.png.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from playwright.sync_api import expect

from tests.portal import browser_support
from tests.portal.browser_support import (
    Live,
    browser_storage,
    check_accessibility,
    code_in,
    fill,
    flask_session_payload,
    gets,
    log_in,
    needs_chromium,
    screenshot,
    staff_headers,
    station_headers,
)

# The live server, the browser and the app with its fake SMS gateway (browser_support.py).
app = browser_support.app
sms = browser_support.sms
live = browser_support.live
browser = browser_support.browser
phone = browser_support.phone

pytestmark = needs_chromium


def portal_cookies(page: Any) -> list[dict[str, Any]]:
    """The browser's cookies except the login form's own CSRF cookie (Flask's signed
    `session`, which holds nothing but that form token: checked here)."""
    kept = []
    for cookie in page.context.cookies():
        if cookie["name"] == "session":
            assert set(flask_session_payload(cookie["value"])) <= {"phr_csrf"}, cookie
            continue
        kept.append(cookie)
    return kept


def test_landing_login_form_and_logout(live: Live, phone: Any) -> None:
    page = phone
    page.goto(live.url("/"))
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("h1")).to_have_text("Sổ sức khỏe điện tử của bạn")
    check_accessibility(page, "landing")
    page.click("main a[href='/login']")
    expect(page.locator("#username")).to_be_visible()
    check_accessibility(page, "login form")
    log_in(page, live, "adult-chronic", start="/login")
    assert page.url == live.url("/"), page.url
    page.click("header.top form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Bạn đã đăng xuất")
    check_accessibility(page, "logged out")
    assert browser_storage(page) == {"cookie": "", "local": [], "session": []}
    assert portal_cookies(page) == []
    page.goto(live.url("/"))
    expect(page.locator("h1")).to_have_text("Sổ sức khỏe điện tử của bạn")  # the landing again


def test_an_unknown_page_and_a_bad_redirect_uri_are_pages_in_the_persons_language(
        live: Live, phone: Any) -> None:
    page = phone
    answer = page.goto(live.url("/khong-co-trang-nay"))
    assert answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.locator("main a[href='/']")).to_be_visible()
    check_accessibility(page, "error page")
    answer = page.goto(live.url("/oauth/authorize?response_type=code&client_id=phr-portal"
                                "&redirect_uri=https://evil.example/cb&scope=openid"
                                "&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc"
                                "&code_challenge_method=S256&state=x"))
    assert answer.status == 400
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    assert page.url.startswith(live.base + "/oauth/authorize?")  # no redirect to that URI
    expect(page.locator("h1")).to_be_visible()
    check_accessibility(page, "authorize error page")


def test_grant_and_revoke_a_consent(live: Live, phone: Any) -> None:
    page = phone
    adult, doctor = live.person("adult-chronic"), live.person("other-doctor")
    log_in(page, live, "adult-chronic")
    page.goto(live.url(f"/people/{adult['id']}/consents"))
    check_accessibility(page, "consents")
    family_name = doctor["full_name"].split()[-1]
    page.fill("#q", family_name)
    page.click("form[role=search] button[type=submit]")
    check_accessibility(page, "consents with directory results")
    page.get_by_label(doctor["full_name"], exact=False).first.check()
    page.check("#section-allergies")
    page.click("form.grant button[type=submit]")
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    granted = page.locator("ul.consents > li", has_text=doctor["full_name"])
    expect(granted).to_have_count(1)
    check_accessibility(page, "consents after a grant")
    granted.locator("button[type=submit]").click()
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    expect(page.locator("ul.consents > li", has_text=doctor["full_name"])).to_have_count(0)


def test_approve_an_access_request(live: Live, phone: Any) -> None:
    """The other doctor asks through the API (the demo adult has a seeded request of theirs
    already, so the parent is asked here); the parent approves it in the portal."""
    page = phone
    parent, doctor = live.person("parent"), live.person("other-doctor")
    http = live.app.test_client()
    asked = http.post(f"/api/v1/citizens/{parent['id']}/access-requests",
                      headers=staff_headers(live, "other-doctor"),
                      json={"sections": ["allergies", "conditions"],
                            "reason": "Khám tim mạch định kỳ"})
    assert asked.status_code == 201, asked.get_json()
    request_id = asked.get_json()["id"]
    log_in(page, live, "parent")
    page.goto(live.url(f"/people/{parent['id']}/requests"))
    pending = page.locator(f"#request-{request_id}")
    expect(pending).to_contain_text(doctor["full_name"])
    expect(pending).to_contain_text("Khám tim mạch định kỳ")
    check_accessibility(page, "access requests")
    pending.locator("form[action$='/approve'] button").click()
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    expect(page.locator(f"#request-{request_id}")).to_have_count(0)
    expect(page.locator("ul.answered")).to_contain_text(doctor["full_name"])
    check_accessibility(page, "access requests after approving")
    # The doctor now reads what was approved.
    allergies = http.get(f"/api/v1/citizens/{parent['id']}/allergies",
                         headers=staff_headers(live, "other-doctor"))
    assert allergies.status_code == 200, allergies.get_json()


def test_the_parent_opens_the_childs_schedule_and_sees_the_overdue_dose(
        live: Live, phone: Any) -> None:
    page = phone
    infant = live.person("infant")
    log_in(page, live, "parent")
    screenshot(page, "home-parent-vi")
    check_accessibility(page, "home (parent)")
    page.locator("nav.people a", has_text=infant["full_name"]).click()
    expect(page.locator("h1")).to_have_text(infant["full_name"])
    assert page.url == live.url(f"/people/{infant['id']}")
    check_accessibility(page, "home (child)")
    page.locator("nav.menu a", has_text="Tiêm chủng").click()
    assert page.url == live.url(f"/people/{infant['id']}/vaccinations")
    overdue = page.locator("ul.schedule li", has=page.locator(".overdue"))
    expect(overdue.first).to_be_visible()
    expect(overdue.first).to_contain_text("Quá hạn từ")
    expect(page.locator("#schedule-counts .badge.overdue")).to_contain_text("Quá hạn")
    check_accessibility(page, "vaccinations (child)")
    page.locator("#add-dose").click()
    expect(page.locator("form[action$='/doses/new']")).to_be_visible()
    check_accessibility(page, "dose form")


def test_the_adult_adds_a_blood_pressure_and_sees_it_on_the_chart(
        live: Live, phone: Any) -> None:
    page = phone
    adult = live.person("adult-chronic")
    log_in(page, live, "adult-chronic")
    assert page.url == live.url("/")
    screenshot(page, "home-adult-vi")
    check_accessibility(page, "home (adult)")
    page.locator("#add-measurement").click()
    check_accessibility(page, "measurement form")
    page.check("#kind-bp")
    page.fill("#systolic", "163")
    page.fill("#diastolic", "97")
    page.click("#save-measurement")
    assert page.url == live.url(f"/people/{adult['id']}?done=measurement")
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    # The chart's table form (inside <details>) holds the new value...
    page.locator("details summary").first.click()
    expect(page.locator("details table")).to_contain_text("163/97")
    # ...and the chart itself, a server-drawn SVG <img>, loads and draws it.
    chart = page.locator("img.chart")
    expect(chart).to_be_visible()
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
    source = chart.get_attribute("src")
    drawn = page.evaluate("""async src => {
        const answer = await fetch(src, {credentials: "same-origin"});
        return {status: answer.status, type: answer.headers.get("content-type"),
                text: await answer.text()};
    }""", source)
    assert drawn["status"] == 200
    assert drawn["type"].startswith("image/svg+xml")
    assert "163" in drawn["text"]
    assert "97" in drawn["text"]
    check_accessibility(page, "home after adding a measurement")


def test_switching_to_english(live: Live, phone: Any) -> None:
    page = phone
    page.goto(live.url("/"))
    page.locator("header.top a[lang=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Your personal health record")
    check_accessibility(page, "landing (en)")
    log_in(page, live, "adult-chronic")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("nav.menu")).to_contain_text("Vaccinations")
    screenshot(page, "home-adult-en")
    check_accessibility(page, "home (en)")
    page.locator("nav.menu a", has_text="Vaccinations").click()
    expect(page.locator("h1")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    # And back: the choice is a cookie holding only "vi" or "en".
    page.locator("header.top a[lang=vi]").click()
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("nav.menu")).to_contain_text("Tiêm chủng")
    language = [c for c in page.context.cookies() if c["name"] == "phr_lang"]
    assert language[0]["value"] == "vi"
    assert language[0]["httpOnly"]


def test_a_new_person_activates_an_account_with_the_stations_code_and_logs_in(
        live: Live, phone: Any) -> None:
    from registry.reference.health_id import make_health_id

    page = phone
    station = station_headers(live)
    http = live.app.test_client()
    born = dt.date(1979, 8, 21)
    health_id = make_health_id(province_code="027", date_of_birth=born, sex="female",
                               serial=secrets.randbelow(1_000_000))
    registered = http.post("/api/v1/citizens", headers=station, json={
        "health_id": health_id, "full_name": "Lương Thị Hồng Nhung",
        "date_of_birth": born.isoformat(), "sex": "female", "phone": "0903 111 222"})
    assert registered.status_code == 201, registered.get_json()
    issued = http.post(f"/api/v1/citizens/{registered.get_json()['id']}/activation-code",
                       headers=station)
    assert issued.status_code == 201, issued.get_json()
    printed = issued.get_json()["code"]
    live.deliver_notifications()
    [sms] = live.sms_to("+84903111222")
    assert code_in(sms) == printed  # the SMS and the printout carry the same code

    page.goto(live.url("/"))
    page.locator("main a[href='/account/activate']").click()
    check_accessibility(page, "activation page")
    page.fill("#health_id", health_id)
    page.fill("#code", printed[:4] + " " + printed[4:])  # as printed, in two groups
    page.fill("#password", "nhung-mat-khau-2024")
    page.fill("#password_confirm", "nhung-mat-khau-2024")
    page.click("form button[type=submit]")
    expect(page.locator("[role=status]")).to_be_visible()
    check_accessibility(page, "account activated")
    page.locator("main a[href^='/login']").click()
    page.fill("#username", health_id)
    page.fill("#password", "nhung-mat-khau-2024")
    page.click("button[type=submit]")
    expect(page.locator("main h1")).to_have_text("Lương Thị Hồng Nhung")
    assert page.url == live.url("/")


def test_a_person_resets_a_forgotten_password_with_the_code_sent_by_sms(
        live: Live, phone: Any) -> None:
    page = phone
    who = live.person("stranger")
    page.goto(live.url("/"))
    page.locator("main a[href='/account/forgot-password']").click()
    check_accessibility(page, "forgot password")
    page.fill("#health_id", who["health_id"])
    page.click("form button[type=submit]")
    expect(page.locator("[role=status]")).to_be_visible()
    check_accessibility(page, "forgot password: sent")
    live.deliver_notifications()
    [sms] = live.sms_to("+84978112233")
    code = code_in(sms)
    page.locator("main a[href*='/account/reset-password']").click()
    check_accessibility(page, "reset password")
    page.fill("#health_id", who["health_id"])
    page.fill("#code", code)
    page.fill("#password", "mat-khau-moi-cua-trang")
    page.fill("#password_confirm", "mat-khau-moi-cua-trang")
    page.click("form button[type=submit]")
    expect(page.locator("[role=status]")).to_be_visible()
    check_accessibility(page, "password reset")
    # The old password no longer opens the account; the new one does.
    page.goto(live.url("/login"))
    page.fill("#username", who["username"])
    page.fill("#password", who["password"])
    page.click("button[type=submit]")
    expect(page.locator(".error[role=alert]")).to_be_visible()
    page.fill("#username", who["username"])
    page.fill("#password", "mat-khau-moi-cua-trang")
    page.click("button[type=submit]")
    expect(page.locator("main h1")).to_have_text(who["full_name"])


def _personal_values(live: Live, *roles: str) -> list[str]:
    """What must never be in a URL: health IDs, names, phones (as typed and as E.164)."""
    phones = {"parent": ("0987654321", "987654321", "84987654321")}
    values: list[str] = []
    for role in roles:
        who = live.person(role)
        values += [who["health_id"], who["full_name"], *phones.get(role, ())]
        values += [part for part in who["full_name"].split() if len(part) > 3]
    return values


def _in_url(value: str, url: str) -> bool:
    return any(form in url for form in {value, quote(value), quote_plus(value),
                                        quote(value.encode("utf-8"))})


def test_every_page_is_accessible_and_the_browser_keeps_nothing(live: Live, phone: Any) -> None:
    """axe-core on every portal page (every GET route of the URL map, for the parent and
    the child, plus the states forms lead to); no token or personal value in the browser's
    storage or in any URL it asked for."""
    from sqlalchemy import select

    from auth.models import OAuthToken
    from core.db import db

    page = phone
    parent, infant = live.person("parent"), live.person("infant")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    log_in(page, live, "parent")
    checked: list[str] = []

    def visit(path: str, label: str) -> None:
        answer = page.goto(live.url(path))
        assert answer is not None
        assert answer.status < 500, (path, answer.status)
        if not answer.headers.get("content-type", "").startswith("text/html"):
            return
        check_accessibility(page, f"{label} {path}")
        assert page.script_errors == [], (path, page.script_errors)  # type: ignore[attr-defined]
        checked.append(path)

    for rule in gets(live.app):
        if re.search(r"\.[a-z]+$", rule.rule):
            continue  # a download or an image (export.json, trend.svg): no page
        for who in (parent, infant) if "citizen_id" in rule.rule else (parent,):
            visit(fill(rule, who["id"]), rule.endpoint)
    # The states that forms lead to.
    doctor = live.person("other-doctor")
    visit(f"/people/{parent['id']}/consents?q=" + quote(doctor["full_name"].split()[-1]),
          "directory results")
    page.goto(live.url(f"/people/{parent['id']}/measurements/new"))
    page.fill("#systolic", "abc")
    page.click("#save-measurement")
    expect(page.locator("#form-errors")).to_be_visible()
    check_accessibility(page, "measurement form with errors")
    page.goto(live.url(f"/people/{parent['id']}/share"))
    page.fill("#share_label", "Cho phòng khám")
    page.click("#create-share")
    expect(page.locator("#share-created img")).to_be_visible()
    check_accessibility(page, "share with a new QR code")
    page.goto(live.url("/settings"))
    page.click("form.settings button[type=submit]")
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    check_accessibility(page, "settings saved")
    assert len(checked) >= 15, checked

    # Nothing in the browser's storage that script can read; the cookie is no token.
    assert browser_storage(page) == {"cookie": "", "local": [], "session": []}
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["phr_portal"]["httpOnly"]
    assert cookies["phr_portal"]["sameSite"] == "Lax"
    digest = hashlib.sha256(cookies["phr_portal"]["value"].encode()).digest()
    with live.app.app_context():
        hits = db.session.scalars(select(OAuthToken.id).where(
            (OAuthToken.access_token_hash == digest) | (OAuthToken.refresh_token_hash == digest)
        )).all()
        db.session.remove()
    assert hits == []
    for name, cookie in cookies.items():
        assert not cookie["value"].startswith(("phr_at_", "phr_rt_")), name
    # No health ID, name or phone in any URL the browser asked for.
    assert asked
    leaked = [(value, url) for url in asked for value in _personal_values(live, "parent",
                                                                          "infant")
              if _in_url(value, url)]
    assert not leaked, leaked


def test_the_accessibility_check_finds_defects(live: Live, phone: Any) -> None:
    """The axe run is no formality: on a portal page (its CSP in force) with a defect planted,
    the check fails and names it."""
    page = phone
    page.goto(live.url("/"))
    page.evaluate("""() => {
        const img = document.createElement("img");
        img.src = "/static/portal/missing.png";
        document.querySelector("main").append(img);
        const faint = document.createElement("p");
        faint.textContent = "Chữ mờ";
        faint.style.color = "#dddddd";
        document.querySelector("main").append(faint);
    }""")
    with pytest.raises(AssertionError) as failure:
        check_accessibility(page, "planted defects")
    assert "image-alt (critical)" in str(failure.value)
    assert "color-contrast (serious)" in str(failure.value)
