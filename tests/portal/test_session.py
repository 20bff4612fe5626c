"""The portal as a backend-for-frontend: logging in through the real login form, a session
that holds its tokens on the server, refreshes them, and ends when the login ends."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from tests.portal.conftest import csrf_of, person, portal_login


def _cookie(client: Any, name: str = "phr_portal") -> str | None:
    found = client.get_cookie(name)
    return found.value if found is not None else None


def test_logged_out_home_is_the_landing_page_in_vietnamese(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'lang="vi"' in html
    assert "Đăng nhập" in html
    assert 'href="/login"' in html
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"].split("style-src")[0]


def test_login_opens_a_session_under_a_new_cookie_and_shows_the_record(client, demo):
    adult = person(demo, "adult-chronic")
    started = client.get("/login", query_string={"next": "/notifications"})
    assert started.status_code == 303
    pending_cookie = _cookie(client)
    query = parse_qs(urlsplit(started.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == ["phr-portal"]
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/callback"]
    form = client.get(started.headers["Location"], headers={"Accept": "text/html"})
    posted = client.post(started.headers["Location"], data={
        "csrf_token": csrf_of(form.get_data(as_text=True)), "action": "login",
        "username": adult["username"], "password": adult["password"]})
    assert posted.status_code == 302
    callback = client.get(posted.headers["Location"].replace("http://127.0.0.1:8000", ""))
    assert callback.status_code == 303
    assert callback.headers["Location"] == "/notifications"
    cookie_header = callback.headers["Set-Cookie"]
    assert "HttpOnly" in cookie_header
    assert "SameSite=Lax" in cookie_header
    active_cookie = _cookie(client)
    assert active_cookie
    assert active_cookie != pending_cookie

    home = client.get("/")
    assert home.status_code == 200
    assert adult["full_name"] in home.get_data(as_text=True)
    assert home.headers["Cache-Control"] == "no-store"

    # The cookie a browser had before logging in opens nothing afterwards.
    client.set_cookie("phr_portal", pending_cookie)
    assert client.get("/").get_data(as_text=True).count('href="/login"') >= 1


def test_the_session_table_holds_no_token_and_no_cookie(app, client, demo):
    from auth.models import OAuthToken
    from core.db import db
    from portal.models import PortalSession

    adult = person(demo, "adult-chronic")
    assert portal_login(client, adult["username"], adult["password"]).status_code == 303
    cookie = _cookie(client)
    with app.app_context():
        rows = db.session.scalars(select(PortalSession)).all()
        assert len(rows) == 1
        assert rows[0].phase == "active"
        blob = rows[0].sealed + rows[0].digest
        assert cookie.encode() not in blob
        token = db.session.scalars(select(OAuthToken)).one()
        assert token.client_id == "phr-portal"
        # The token table keeps digests; the session keeps the values sealed: neither in clear.
        assert b"phr_" not in blob
        assert b"access_token" not in blob


def test_an_expired_access_token_is_refreshed_and_rotated(app, client, demo):
    from auth.models import OAuthToken
    from core.db import db

    adult = person(demo, "adult-chronic")
    assert portal_login(client, adult["username"], adult["password"]).status_code == 303
    with app.app_context():
        db.session.execute(update(OAuthToken).values(
            access_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)))
        db.session.commit()
    home = client.get("/")
    assert home.status_code == 200
    assert adult["full_name"] in home.get_data(as_text=True)
    with app.app_context():
        tokens = db.session.scalars(select(OAuthToken)).all()
        assert len(tokens) == 2  # the first rotated into its successor
        assert sum(1 for token in tokens if token.refresh_rotated_at is not None) == 1
    assert client.get("/").status_code == 200  # and the successor keeps working


def test_a_changed_password_ends_the_portal_session(app, client, demo):
    from auth.accounts import find_login_account, set_password
    from core.db import db

    adult = person(demo, "adult-chronic")
    assert portal_login(client, adult["username"], adult["password"]).status_code == 303
    with app.app_context():
        account = find_login_account(session=db.session, username=adult["username"])
        set_password(session=db.session, account=account, password="Một mật khẩu mới 2026!")
        db.session.commit()
    home = client.get("/")
    assert home.status_code == 303
    assert home.headers["Location"].startswith("/login?next=")


def test_staff_cannot_use_the_portal(client, demo):
    doctor = person(demo, "family-doctor")
    answer = portal_login(client, doctor["username"], doctor["password"])
    assert answer.status_code == 403
    assert "text/html" in answer.content_type
    assert "người dân" in answer.get_data(as_text=True)
    assert client.get("/").get_data(as_text=True).count('href="/login"') >= 1


def test_a_callback_without_its_pending_login_is_a_page(client):
    answer = client.get("/callback", query_string={"code": "x", "state": "y"})
    assert answer.status_code == 400
    assert "text/html" in answer.content_type
    assert "Phiên đăng nhập đã hết hạn" in answer.get_data(as_text=True)


def test_next_never_leaves_the_site(client):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        started = client.get("/login", query_string={"next": target})
        assert started.status_code == 303
        assert started.headers["Location"].startswith("/oauth/authorize?")
        # The landing target kept in the pending session is "/", checked at the callback.
    answer = client.get("/language", query_string={"to": "en", "next": "https://evil.example/"})
    assert answer.headers["Location"] == "/"


def test_language_switch_and_english_pages(client):
    answer = client.get("/language", query_string={"to": "en", "next": "/"})
    assert answer.status_code == 303
    page = client.get("/")
    assert 'lang="en"' in page.get_data(as_text=True)
    assert "Log in" in page.get_data(as_text=True)
    assert page.headers["Content-Language"] == "en"


def test_a_browser_gets_pages_for_missing_paths_and_programs_get_problems(client):
    page = client.get("/khong-co-trang-nay", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404
    assert page.content_type.startswith("text/html")
    assert "<h1>" in page.get_data(as_text=True)
    api = client.get("/api/v1/nope", headers={"Accept": "text/html"})
    assert api.content_type.startswith("application/problem+json")
    program = client.get("/khong-co-trang-nay", headers={"Accept": "application/json"})
    assert program.content_type.startswith("application/problem+json")


def test_logout_ends_the_session_and_revokes_the_tokens(app, client, demo):
    from auth.models import OAuthToken
    from core.db import db
    from portal.models import PortalSession

    adult = person(demo, "adult-chronic")
    assert portal_login(client, adult["username"], adult["password"]).status_code == 303
    home = client.get("/")
    done = client.post("/logout", data={"csrf_token": csrf_of(home.get_data(as_text=True))})
    assert done.status_code == 200
    with app.app_context():
        assert db.session.scalars(select(PortalSession)).all() == []
        assert all(token.revoked_at is not None
                   for token in db.session.scalars(select(OAuthToken)).all())
    assert client.get("/").get_data(as_text=True).count('href="/login"') >= 1


def test_a_post_without_the_form_token_changes_nothing(app, client, demo):
    from core.db import db
    from portal.models import PortalSession

    adult = person(demo, "adult-chronic")
    assert portal_login(client, adult["username"], adult["password"]).status_code == 303
    refused = client.post("/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert "text/html" in refused.content_type
    cross_site = client.post("/logout", data={"csrf_token": "x"},
                             headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    with app.app_context():
        assert len(db.session.scalars(select(PortalSession)).all()) == 1


def test_login_takes_the_language_the_account_pages_chose(client):
    started = client.get("/login", query_string={"ui_locales": "en"})
    assert started.status_code == 303
    assert "ui_locales=en" in started.headers["Location"]
    assert client.get_cookie("phr_lang").value == "en"
    assert 'lang="en"' in client.get("/").get_data(as_text=True)


def test_the_register_client_command_follows_the_issuer(app):
    from auth.models import OAuthClient
    from core.db import db

    app.config["OAUTH_ISSUER"] = "http://127.0.0.1:8123"
    runner = app.test_cli_runner()
    first = runner.invoke(args=["portal", "register-client"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "registered http://127.0.0.1:8123/callback"
    app.config["OAUTH_ISSUER"] = "http://127.0.0.1:8124"
    again = runner.invoke(args=["portal", "register-client"])
    assert again.output.strip() == "updated http://127.0.0.1:8124/callback"
    with app.app_context():
        client = db.session.get(OAuthClient, "phr-portal")
        assert client.first_party
        assert client.client_type == "public"
        assert client.redirect_uris.split() == ["http://127.0.0.1:8123/callback",
                                                "http://127.0.0.1:8124/callback"]
