"""Portal tests: the demo world and a browser-like login through the real login form."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture
def demo(app: Any, tmp_path: Any) -> dict[str, Any]:
    out = tmp_path / "demo.json"
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


def person(demo: dict[str, Any], role: str) -> dict[str, Any]:
    for entry in demo["citizens"] + demo["practitioners"]:
        if entry["demo_role"] == role:
            return entry
    raise KeyError(role)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def portal_login(client: Any, username: str, password: str, *, next_path: str = "/",
                 headers: dict[str, str] | None = None) -> Any:
    """Log in to the portal as a browser does: /login -> the login form -> /callback.
    Returns the callback's response (303 to `next_path` on success)."""
    started = client.get("/login", query_string={"next": next_path}, headers=headers)
    assert started.status_code == 303, started.get_data(as_text=True)
    authorize = started.headers["Location"]
    form_page = client.get(authorize, headers={"Accept": "text/html", **(headers or {})})
    assert form_page.status_code == 200, form_page.get_data(as_text=True)[:500]
    posted = client.post(authorize, data={
        "csrf_token": csrf_of(form_page.get_data(as_text=True)), "action": "login",
        "username": username, "password": password,
    }, headers={"Accept": "text/html", **(headers or {})})
    if posted.status_code != 302:
        return posted
    location = urlsplit(posted.headers["Location"])
    assert location.path == "/callback", posted.headers["Location"]
    return client.get("/callback", query_string=parse_qs(location.query),
                      headers=headers)


@pytest.fixture
def login_as(client: Any, demo: dict[str, Any]) -> Any:
    """Log the test client in as a demo person (by demo role); returns the person."""

    def log_in(role: str, **kwargs: Any) -> dict[str, Any]:
        who = person(demo, role)
        answer = portal_login(client, who["username"], who["password"], **kwargs)
        assert answer.status_code == 303, answer.get_data(as_text=True)[:800]
        return who

    return log_in


def page_csrf(client: Any, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)[:800]
    return csrf_of(page.get_data(as_text=True))
