"""The portal's security promises, checked over every route it has (found in the URL map, so
a page added later is covered without touching this file):

- every page: a CSP whose script-src allows no inline script, no inline <script> or on*
  attribute in the body, X-Frame-Options DENY, Cache-Control no-store;
- every form (POST route): a missing or wrong CSRF token, or a cross-site Sec-Fetch-Site, is
  refused with a 403 page and changes nothing in the database;
- the session: an HttpOnly SameSite cookie that is not a token, a new value on login (the
  pre-login cookie is worth nothing after), tokens revoked on logout, an idle timeout;
- browsers get pages, never JSON: an unknown path, a bad redirect_uri at /oauth/authorize;
- a portal canary: a person whose every personal value is a canary logs in and opens every
  page; none of the values reaches a log line or a URL, and the session store holds neither
  them nor a token in clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import MetaData, select, text, update

from core.db import db
from tests.portal.browser_support import fill, gets, posts
from tests.portal.conftest import csrf_of, page_csrf, person, portal_login
from tests.test_canary import Canary, database_bytes, leaks, log_bytes

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
COOKIE = "phr_portal"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_ATTRIBUTE = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


# --- checks ----------------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def page_problems(path: str, response: Any) -> list[str]:
    """What is wrong with a page's headers and body (empty: nothing)."""
    found = []
    headers = response.headers
    if "no-store" not in headers.get("Cache-Control", ""):
        found.append(f"{path}: Cache-Control {headers.get('Cache-Control')!r}")
    if not response.content_type.startswith("text/html"):
        if headers.get("X-Content-Type-Options") != "nosniff":
            found.append(f"{path}: {response.content_type} without nosniff")
        return found
    csp = csp_directives(headers.get("Content-Security-Policy", ""))
    script_src = csp.get("script-src", csp.get("default-src"))
    if script_src is None:
        found.append(f"{path}: no CSP script-src/default-src")
    elif {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(script_src):
        found.append(f"{path}: script-src {script_src}")
    if csp.get("frame-ancestors") != ["'none'"]:
        found.append(f"{path}: frame-ancestors {csp.get('frame-ancestors')}")
    if headers.get("X-Frame-Options") != "DENY":
        found.append(f"{path}: X-Frame-Options {headers.get('X-Frame-Options')!r}")
    body = response.get_data(as_text=True)
    if INLINE_SCRIPT.search(body):
        found.append(f"{path}: inline <script>")
    if EVENT_ATTRIBUTE.search(body):
        found.append(f"{path}: an on* attribute: {EVENT_ATTRIBUTE.search(body).group(0)[:80]}")
    if "javascript:" in body.lower():
        found.append(f"{path}: a javascript: URL")
    return found


def snapshot(app: Any) -> dict[str, list[str]]:
    """Every row of every table (a refused form must change none)."""
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(bind=db.engine)
        rows = {}
        with db.engine.connect() as connection:
            for name, table in sorted(metadata.tables.items()):
                rows[name] = sorted(repr(tuple(row)) for row in connection.execute(table.select()))
        db.session.remove()
        return rows


def session_row(app: Any, cookie: str) -> Any:
    from portal.models import PortalSession

    with app.app_context():
        row = db.session.scalars(select(PortalSession).where(
            PortalSession.digest == hashlib.sha256(cookie.encode()).digest())).one_or_none()
        db.session.expunge_all()
        return row


def session_tokens(app: Any, cookie: str) -> dict[str, Any]:
    """The tokens a session keeps (unsealed with its cookie, as the portal does)."""
    from portal import sessions

    with app.test_request_context():
        from portal.web import session_settings

        found = sessions.find(session=db.session, cookie=cookie,
                              now=dt.datetime.now(dt.UTC), settings=session_settings())
        assert found is not None
        secrets_ = dict(found.secrets)
        db.session.remove()
        return secrets_


def logged_in(client: Any) -> bool:
    """Whether "/" is this client's home (a page with the logout form) or the landing."""
    page = client.get("/", headers=BROWSER)
    assert page.status_code == 200
    return 'action="/logout"' in page.get_data(as_text=True)


def cookie_of(client: Any) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie is not None else None


# --- every page, every form --------------------------------------------------------------------


def test_every_page_has_a_strict_csp_no_framing_and_no_store(app, client, demo, login_as):
    anonymous = app.test_client()
    found: list[str] = []
    checked = 0
    for rule in gets(app):
        path = fill(rule, person(demo, "parent")["id"])
        answer = anonymous.get(path, headers=BROWSER)
        assert answer.status_code < 500, (path, answer.status_code)
        if answer.status_code != 303:
            found += page_problems(path + " (logged out)", answer)
    login_as("parent")
    for rule in gets(app):
        for role in ("parent", "infant"):
            path = fill(rule, person(demo, role)["id"])
            answer = client.get(path, headers=BROWSER)
            assert answer.status_code < 500, (path, answer.get_data(as_text=True)[:600])
            if answer.status_code in (301, 302, 303, 307, 308):
                continue
            found += page_problems(path, answer)
            checked += 1
    assert not found, "\n".join(found)
    assert checked >= 2


@pytest.mark.parametrize("role", ["parent"])
def test_every_form_refuses_a_missing_or_wrong_token_and_a_cross_site_post(
        app, client, demo, login_as, role):
    login_as(role)
    good = page_csrf(client, "/")
    rules = posts(app)
    # Every form of the portal and the account pages (17 when this was written).
    assert len(rules) >= 15, [r.rule for r in rules]
    tried = []
    before = snapshot(app)
    for rule in rules:
        for who in ("parent", "infant") if "citizen_id" in rule.rule else ("parent",):
            path = fill(rule, person(demo, who)["id"])
            attempts = [({}, {}), ({"csrf_token": "0" * 64}, {})]
            if rule.endpoint.startswith("portal."):
                # The right token from another site's page: the browser says so.
                attempts.append(({"csrf_token": good}, {"Sec-Fetch-Site": "cross-site"}))
                attempts.append(({"csrf_token": good}, {"Sec-Fetch-Site": "same-site"}))
            for form, headers in attempts:
                answer = client.post(path, data=form, headers={**BROWSER, **headers})
                assert answer.status_code == 403, (path, form, headers, answer.status_code,
                                                   answer.get_data(as_text=True)[:400])
                assert answer.content_type.startswith("text/html")
                tried.append(path)
    after = snapshot(app)
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"refused forms changed {changed}"
    assert logged_in(client)  # the refused logouts ended nothing
    assert tried


def test_a_form_from_the_portal_itself_is_accepted(app, client, demo, login_as):
    """The refusals above are not the only answer: the same logout with the page's token
    and a same-origin fetch works (so the checks are not vacuous)."""
    login_as("parent")
    token = page_csrf(client, "/")
    answer = client.post("/logout", data={"csrf_token": token},
                         headers={**BROWSER, "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 200
    assert cookie_of(client) is None


# --- the session ---------------------------------------------------------------------------


def _finish_login(client: Any, started: Any, who: dict[str, Any]) -> Any:
    authorize = started.headers["Location"]
    form = client.get(authorize, headers=BROWSER)
    posted = client.post(authorize, headers=BROWSER, data={
        "csrf_token": csrf_of(form.get_data(as_text=True)), "action": "login",
        "username": who["username"], "password": who["password"]})
    assert posted.status_code == 302, posted.get_data(as_text=True)[:500]
    location = urlsplit(posted.headers["Location"])
    return client.get("/callback", query_string=parse_qs(location.query), headers=BROWSER)


def test_the_cookie_is_httponly_samesite_not_a_token_and_changes_on_login(app, client, demo):
    from auth.models import OAuthToken

    who = person(demo, "adult-chronic")
    started = client.get("/login", headers=BROWSER)
    set_cookie = started.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in set_cookie
    planted = cookie_of(client)
    assert planted
    done = _finish_login(client, started, who)
    assert done.status_code == 303
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in done.headers["Set-Cookie"]
    session_cookie = cookie_of(client)
    assert session_cookie
    assert session_cookie != planted
    # The pre-login value opens nothing now (a planted cookie is worth nothing after login).
    other = app.test_client()
    other.set_cookie(COOKIE, planted)
    assert not logged_in(other)
    assert logged_in(client)
    # The cookie is no token: neither an access nor a refresh token of the server.
    assert not session_cookie.startswith(("phr_at_", "phr_rt_"))
    with app.app_context():
        digest = hashlib.sha256(session_cookie.encode()).digest()
        hits = db.session.scalars(select(OAuthToken.id).where(
            (OAuthToken.access_token_hash == digest) | (OAuthToken.refresh_token_hash == digest)
        )).all()
        assert hits == []
        db.session.remove()
    tokens = session_tokens(app, session_cookie)
    assert tokens["access_token"].startswith("phr_at_")
    assert session_cookie not in (tokens["access_token"], tokens["refresh_token"])


def test_a_secure_deployment_uses_a_host_only_secure_cookie(app, client, demo):
    app.config["SESSION_COOKIE_SECURE"] = True
    answer = client.get("/login", headers=BROWSER, base_url="https://127.0.0.1")
    assert answer.headers["Set-Cookie"].startswith("__Host-phr_portal=")
    assert "Secure" in answer.headers["Set-Cookie"]


def test_logout_revokes_the_tokens(app, client, demo, login_as):
    login_as("adult-chronic")
    cookie = cookie_of(client)
    tokens = session_tokens(app, cookie)
    assert client.get("/api/v1/me", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).status_code == 200
    token = page_csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}, headers=BROWSER).status_code == 200
    assert session_row(app, cookie) is None
    refreshed = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": app.config["PORTAL_CLIENT_ID"]})
    assert refreshed.status_code == 400, refreshed.get_json()
    assert refreshed.get_json()["error"] == "invalid_grant"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 401
    # The old cookie, replayed, opens nothing.
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    assert not logged_in(other)


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_an_idle_or_expired_session_ends(app, client, demo, login_as, column):
    from portal.models import PortalSession

    app.config["PORTAL_IDLE_MINUTES"] = 5
    who = login_as("adult-chronic")
    cookie = cookie_of(client)
    assert client.get("/", headers=BROWSER).status_code == 200
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    with app.app_context():
        db.session.execute(update(PortalSession).where(
            PortalSession.digest == hashlib.sha256(cookie.encode()).digest()
        ).values({column: past}))
        db.session.commit()
        db.session.remove()
    answer = client.get(f"/people/{who['id']}/access-log", headers=BROWSER)
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login?next=")
    assert session_row(app, cookie) is None
    assert not logged_in(client)


def test_a_recent_session_stays(app, client, demo, login_as):
    app.config["PORTAL_IDLE_MINUTES"] = 5
    who = login_as("adult-chronic")
    assert client.get(f"/people/{who['id']}/access-log", headers=BROWSER).status_code == 200


# --- pages, never JSON, for a browser ---------------------------------------------------------


def test_a_browser_gets_pages_for_unknown_paths_and_bad_authorization_requests(app, client):
    missing = client.get("/khong-co/trang-nay", headers=BROWSER)
    assert missing.status_code == 404
    assert missing.content_type.startswith("text/html")
    assert "<h1>" in missing.get_data(as_text=True)
    english = client.get("/nope", headers={**BROWSER, "Accept-Language": "en"})
    assert english.content_type.startswith("text/html")
    assert 'lang="en"' in english.get_data(as_text=True)
    # Programs keep their problem+json.
    assert client.get("/nope", headers={"Accept": "application/json"}).content_type.startswith(
        "application/problem+json")
    assert client.get("/api/v1/nope", headers=BROWSER).content_type.startswith("application/")
    bad = client.get("/oauth/authorize", headers=BROWSER, query_string={
        "response_type": "code", "client_id": "phr-portal",
        "redirect_uri": "https://evil.example/callback", "scope": "openid",
        "code_challenge": "a" * 43, "code_challenge_method": "S256", "state": "s"})
    assert bad.status_code == 400
    assert bad.content_type.startswith("text/html")
    assert "Location" not in bad.headers


# --- the portal canary ------------------------------------------------------------------------


def _canary_family(app: Any, canary: Canary) -> tuple[dict[str, Any], str, str]:
    """A mother and her newborn, every personal value a canary; the mother's login."""
    from tests.support.auth import TEST_PASSWORD, make_facility, make_login, token_for

    http = app.test_client()
    staff = token_for(http, app, role="station", facility=make_facility(app)).headers
    mother = canary.citizen()
    registered = http.post("/api/v1/citizens", json=mother, headers=staff)
    assert registered.status_code == 201, registered.get_json()
    born = dt.date.today() - dt.timedelta(days=90)  # noqa: DTZ011
    baby_name = canary.name()
    baby = http.post("/api/v1/citizens", headers=staff, json={
        "health_id": canary.health_id(date_of_birth=born, sex="female"),
        "full_name": baby_name, "date_of_birth": born.isoformat(), "sex": "female",
        "guardians": [{"health_id": mother["health_id"],
                       "date_of_birth": mother["date_of_birth"], "relationship": "mother"}]})
    assert baby.status_code == 201, baby.get_json()
    login = make_login(app, citizen=uuid.UUID(registered.get_json()["id"]))
    assert login.username == mother["health_id"]
    mother.update(id=registered.get_json()["id"], password=TEST_PASSWORD)
    return mother, baby.get_json()["id"], baby_name


def _portal_table(app: Any) -> bytes:
    """portal_sessions, every column of every row, as bytes (raw blobs and their text)."""
    with app.app_context():
        rows = db.session.execute(text("SELECT * FROM portal_sessions")).all()
        db.session.remove()
    out = b""
    for row in rows:
        for value in row:
            raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
            out += raw + b"\n" + raw.hex().encode() + b"\n"
    return out


@pytest.fixture
def recorded(client: Any) -> list[str]:
    """Every URL the test client asked for or was sent to."""
    urls: list[str] = []
    original = client.open

    def open_(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        urls.append(response.request.url)
        if response.headers.get("Location"):
            urls.append(response.headers["Location"])
        return response

    client.open = open_
    return urls


def test_the_portal_canary(app, client, database_url, log_stream, recorded):
    with app.app_context():  # the portal's commands are a plain click group
        registered = app.test_cli_runner().invoke(args=["portal", "register-client"])
    assert registered.exit_code == 0, registered.output
    canary = Canary()
    mother, baby_id, baby_name = _canary_family(app, canary)
    answer = portal_login(client, mother["health_id"], mother["password"])
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    cookie = cookie_of(client)
    tokens = session_tokens(app, cookie)
    shown = ""
    for rule in gets(app):
        for citizen_id in (mother["id"], baby_id):
            page = client.get(fill(rule, citizen_id), headers=BROWSER)
            assert page.status_code < 500, (rule.rule, page.get_data(as_text=True)[:500])
            shown += page.get_data(as_text=True)
    # A form with a personal value typed in (a share link's label), then the list showing it.
    label = "Gửi " + canary.name()
    shared = client.post(f"/people/{mother['id']}/share", headers=BROWSER, data={
        "csrf_token": page_csrf(client, f"/people/{mother['id']}/share"),
        "share_label": label, "expires_in": "1"})
    assert shared.status_code in (200, 303), shared.get_data(as_text=True)[:500]
    listed = client.get(f"/people/{mother['id']}/share", headers=BROWSER)
    shown += listed.get_data(as_text=True)
    assert label in shown
    # The pages did show the person (the scan below is not of empty pages).
    assert mother["full_name"] in shown
    assert baby_name in shown
    secrets_ = [tokens["access_token"], tokens["refresh_token"], cookie]
    with app.app_context():
        haystacks = {
            "logs": log_bytes(log_stream),
            "URLs": "\n".join(recorded).encode(),
            "portal_sessions": _portal_table(app),
        }
        found = leaks(canary.tracked, haystacks)
        assert not found, "personal values where they must not be: " + "; ".join(found)
        everything = {**haystacks, "database": database_bytes(database_url)}
        found = leaks(secrets_, everything)
        assert not found, "a token or the cookie in clear: " + "; ".join(
            f[:24] + "…" for f in found)
        db.session.remove()
    assert len(recorded) > 10
    assert secrets.compare_digest(cookie, cookie_of(client) or "")
