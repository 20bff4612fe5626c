"""The portal in a real browser: Debian's Chromium driven by Playwright against a live server.

Fixtures (import them into a test module):
    sms      a local fake SMS gateway (the real JSON protocol; tests/notifications/fakes.py)
    app      the test app with its SMS channel on that gateway (overrides tests/conftest.py's)
    live     a werkzeug server on a free port, the issuer set to its URL BEFORE `seed demo`
             (the portal's redirect URI is {issuer}/callback), the demo world seeded
    browser  one Chromium per module; `phone` gives each test its own context at 360x800

Helpers: `log_in(page, live, role)` through the real login form, `check_accessibility(page)`
(axe-core: no serious or critical violation), `screenshot(page, name)` into the artifacts
directory (env TEST_ARTIFACTS_DIR, default instance/test-artifacts/portal/, git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.notifications.fakes import FakeSmsGateway

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 360, "height": 800}
SERIOUS = ("serious", "critical")
PARAMETER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
# Routes that answer only with a redirect (no page of their own).
REDIRECTS = {"portal.login", "portal.callback", "portal.language"}
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="Debian's chromium is not installed")


def artifacts_dir() -> Path:
    """Where screenshots go: $TEST_ARTIFACTS_DIR, else <repo>/instance/test-artifacts/portal."""
    chosen = os.environ.get("TEST_ARTIFACTS_DIR")
    path = Path(chosen) if chosen else ROOT / "instance" / "test-artifacts" / "portal"
    path.mkdir(parents=True, exist_ok=True)
    return path


def portal_rules(app: Any) -> list[Any]:
    """The portal's pages and the account pages (auth's, also for browsers)."""
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith(".static"):
            continue
        if rule.endpoint.startswith(("portal.", "account_pages.")):
            rules.append(rule)
    return sorted(rules, key=lambda rule: rule.rule)


def fill(rule: Any, citizen_id: str) -> str:
    """The rule's path with its parameters filled: the person's id where a citizen is meant,
    a random UUID (an unknown object: a 404 page) or a word elsewhere."""

    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        if name in ("citizen_id", "person_id"):
            return citizen_id
        return str(uuid.uuid4()) if converter == "uuid" else "json"

    return PARAMETER.sub(value, rule.rule)


def gets(app: Any) -> list[Any]:
    return [r for r in portal_rules(app) if "GET" in r.methods and r.endpoint not in REDIRECTS]


def posts(app: Any) -> list[Any]:
    return [r for r in portal_rules(app) if "POST" in r.methods]



class _Quiet(WSGIRequestHandler):
    # The app logs route templates only; the dev server's own request lines would add URLs.
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Live:
    base: str
    app: Any
    demo: dict[str, Any]
    sms: FakeSmsGateway

    def url(self, path: str) -> str:
        return self.base + path

    def person(self, role: str) -> dict[str, Any]:
        for entry in self.demo["citizens"] + self.demo["practitioners"]:
            if entry["demo_role"] == role:
                return entry
        raise KeyError(role)

    def deliver_notifications(self) -> None:
        """Run the outbox once (the suite's worker is off): SMS reach the fake gateway."""
        result = self.app.test_cli_runner().invoke(
            args=["notifications", "process", "--until-idle"])
        assert result.exit_code == 0, result.output

    def sms_to(self, phone_e164: str) -> list[str]:
        """Texts the gateway received for this number, oldest first."""
        texts = []
        for received in list(self.sms.received):
            body = received.json()
            if body.get("to") == phone_e164:
                texts.append(str(body.get("text", "")))
        return texts


@pytest.fixture(scope="session")
def sms() -> Iterator[FakeSmsGateway]:
    gateway = FakeSmsGateway().start()
    yield gateway
    gateway.stop()


@pytest.fixture
def app(database_url: str, log_stream: Any, sms: FakeSmsGateway) -> Iterator[Any]:
    """tests/conftest.py's app, with SMS going to the local fake gateway."""
    from core.db import db
    from notifications import shutdown
    from tests.conftest import make_app
    from tests.support.database import empty_all_tables, rows_left

    sms.reset()
    application = make_app(database_url, log_stream, SMS_GATEWAY_URL=sms.url + "/messages",
                           QUIET_HOURS="", NOTIFICATIONS_WORKER="none")
    with application.app_context():
        leftovers = rows_left(db.engine)
        assert not leftovers, f"database not empty before the test: {leftovers}"
    yield application
    shutdown(application)
    with application.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, f"test left rows behind: {leftovers}"


@pytest.fixture
def live(app: Any, sms: FakeSmsGateway, tmp_path: Path) -> Iterator[Live]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    base = f"http://127.0.0.1:{server.server_port}"
    # Before the seed: the portal client's redirect URI is registered from the issuer.
    app.config["OAUTH_ISSUER"] = base
    app.config["SHARE_BASE_URL"] = base
    out = tmp_path / "demo.json"
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    demo = json.loads(out.read_text(encoding="utf-8"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(base=base, app=app, demo=demo, sms=sms)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) at phone size, Vietnamese: its first page."""
    context = browser.new_context(viewport=PHONE, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.script_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def log_in(page: Any, live: Live, role: str | None = None, *, username: str | None = None,
           password: str | None = None, start: str = "/login") -> None:
    """Through the portal's login button and the server's real login form."""
    if role is not None:
        who = live.person(role)
        username, password = who["username"], who["password"]
    page.goto(live.url(start))
    page.fill("#username", str(username))
    page.fill("#password", str(password))
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/oauth/" not in page.url, page.content()[:2000]
    assert "/callback" not in page.url, page.content()[:2000]


def check_accessibility(page: Any, label: str = "") -> None:
    """axe-core on the page as shown: no violation of impact serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    if bad:
        report = "\n".join(
            f"- {v['id']} ({v['impact']}): {v['help']}\n    "
            + "\n    ".join(node["html"][:300] for node in v["nodes"][:5])
            for v in bad)
        print(f"axe on {label or page.url}:\n{report}")
    assert not bad, f"axe on {label or page.url}: " + ", ".join(
        f"{v['id']} ({v['impact']})" for v in bad)


def screenshot(page: Any, name: str) -> Path:
    path = artifacts_dir() / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def browser_storage(page: Any) -> dict[str, Any]:
    """What script on the page can see of the browser's storage."""
    return page.evaluate("""() => ({
        cookie: document.cookie,
        local: Object.keys(localStorage).map(k => [k, localStorage.getItem(k)]),
        session: Object.keys(sessionStorage).map(k => [k, sessionStorage.getItem(k)]),
    })""")


def flask_session_payload(value: str) -> dict[str, Any]:
    """The JSON inside a Flask signed-cookie session (signed, not encrypted: readable)."""
    import base64
    import zlib

    compressed = value.startswith(".")  # itsdangerous marks a zlib payload with a dot
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def staff_headers(live: Live, role: str) -> dict[str, str]:
    """A demo staff member's bearer token through the clinic's software (its real client:
    authorization code + PKCE through the login form)."""
    from tests.support.auth import ClientInfo, Login, bearer, code_for, exchange

    clinic = live.demo["clients"]["clinic"]
    info = ClientInfo(clinic["client_id"], clinic["redirect_uri"], clinic["client_secret"])
    who = live.person(role)
    http = live.app.test_client()
    login = Login(account_id=uuid.uuid4(), role="", username=who["username"],
                  password=who["password"])
    code, verifier = code_for(http, info, login, scope="openid user/*.cruds")
    answer = exchange(http, info, code, verifier)
    assert answer.status_code == 200, answer.get_json()
    return {**bearer(answer.get_json()["access_token"]), "Content-Type": "application/json"}


def station_headers(live: Live) -> dict[str, str]:
    """The demo station's system token (client credentials, its demo secret)."""
    station = live.demo["stations"][0]
    http = live.app.test_client()
    answer = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(station["client_id"], station["client_secret"]))
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": "Bearer " + answer.get_json()["access_token"],
            "Content-Type": "application/json"}


def code_in(text: str) -> str:
    """The eight-digit code an SMS carries."""
    found = re.findall(r"(?<!\d)\d{8}(?!\d)", text.replace(" ", ""))
    assert len(found) == 1, text
    return found[0]
