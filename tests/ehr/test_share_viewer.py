"""The share viewer page in a real browser (Debian's Chromium through Playwright) against a
live server: the link travels in the URL fragment, the page asks for the manifest, decrypts
the summary with WebCrypto and shows it on a phone-sized screen."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.ehr.samples import SAMPLES

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed")

PHONE = {"width": 390, "height": 844}
PASSCODE = "sen-hong-1357"
# Our own narratives escape what a person typed; the viewer must show it as text, too.
HOSTILE = "Tôm <img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>"


class _Quiet(WSGIRequestHandler):
    # The request line holds the manifest id (a capability): the app logs route templates
    # only, and so does this server (none at all).
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["SHARE_BASE_URL"] = base  # the links the app makes point at this server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _share(client: Any, world: Any, **body: Any) -> dict[str, Any]:
    body.setdefault("expires_at", (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat())
    made = client.post(f"/api/v1/citizens/{world.patient}/share-links", json=body,
                       headers=world.headers("patient"))
    assert made.status_code == 201, made.get_data(as_text=True)
    return made.get_json()


def _record(client: Any, world: Any) -> None:
    for body in (SAMPLES["allergies"][0], {**SAMPLES["allergies"][0], "substance": HOSTILE}):
        created = client.post(f"/api/v1/citizens/{world.patient}/allergies", json=body,
                              headers=world.headers("doctor"))
        assert created.status_code == 201, created.get_data(as_text=True)


def test_the_viewer_decrypts_and_shows_the_summary(app, client, world, live, browser):
    _record(client, world)
    made = _share(client, world, label="Cho phòng khám")
    key = made["shlink"]
    context = browser.new_context(viewport=PHONE, locale="vi-VN")
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url + (request.post_data or "")))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(made["viewer_url"])
    assert page.locator("#label").inner_text() == "Cho phòng khám"
    page.fill("#recipient", "BS. Lê Văn Tâm")
    page.click("#open")
    summary = page.locator("#summary")
    summary.wait_for(state="visible", timeout=15000)
    text = summary.inner_text()
    assert "Penicillin" in text
    assert "Dị ứng" in text  # the section titles, in the reader's language
    assert "<img" in text
    assert "<script>" in text
    assert page.evaluate("window.pwned") is None
    assert page.locator("#summary img, #summary script").count() == 0
    assert errors == []
    # The key and the link stayed in the fragment: no request carried them.
    assert sent
    assert not any(key.removeprefix("shlink:/") in url for url in sent)
    context.close()
    listed = client.get(f"/api/v1/citizens/{world.patient}/share-links",
                        headers=world.headers("patient")).get_json()["items"]
    assert listed[0]["opened_count"] == 1


def test_the_viewer_asks_for_the_passcode_in_english(app, client, world, live, browser):
    _record(client, world)
    made = _share(client, world, passcode=PASSCODE)
    context = browser.new_context(viewport=PHONE, locale="en-US")
    page = context.new_page()
    page.goto(made["viewer_url"].replace("/share/view#", "/share/view?lang=en#"))
    assert page.locator("#passcode").is_visible()
    page.fill("#recipient", "Hoa Binh Clinic")
    page.fill("#passcode", "wrong-one")
    page.click("#open")
    expect(page.locator("#status")).to_have_text("Wrong passcode. 9 attempts remain.")
    page.fill("#passcode", PASSCODE)
    page.click("#open")
    page.locator("#summary").wait_for(state="visible", timeout=15000)
    assert "Allergies" in page.locator("#summary").inner_text()
    context.close()


def test_the_viewer_says_when_a_link_is_gone(app, client, world, live, browser):
    made = _share(client, world)
    client.delete(f"/api/v1/citizens/{world.patient}/share-links/{made['id']}",
                  headers=world.headers("patient"))
    page = browser.new_page(viewport=PHONE)
    page.goto(made["viewer_url"].replace("/share/view#", "/share/view?lang=en#"))
    page.fill("#recipient", "Someone")
    page.click("#open")
    expect(page.locator("#status")).to_contain_text("expired, was revoked or has been used")
    page.goto(made["viewer_url"].split("#")[0] + "?lang=en#shlink:/not-a-link")
    page.reload()  # only the fragment changed: the page must start again
    expect(page.locator("#status")).to_have_text("This link is not valid.")
