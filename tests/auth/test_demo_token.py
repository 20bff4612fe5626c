"""`flask auth demo-token ROLE`: a development shortcut to a normal, revocable access token."""

from __future__ import annotations

import json

import pytest

from tests.support.auth import bearer


@pytest.fixture
def demo(app, tmp_path):
    """The demo world as `make run` seeds it, and the identities file it writes."""
    out = tmp_path / "demo-identities.json"
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads(out.read_text(encoding="utf-8"))


def _token(app, demo, *args):
    out, _ = demo
    return app.test_cli_runner().invoke(
        args=["auth", "demo-token", *args, "--identities", str(out)])


def _person(identities, role):
    people = identities["citizens"] + identities["practitioners"]
    return next(p for p in people if p["demo_role"] == role)


@pytest.mark.parametrize(("role", "account_role"), [
    ("adult-chronic", "citizen"), ("parent", "citizen"), ("stranger", "citizen"),
    ("family-doctor", "practitioner"), ("other-doctor", "practitioner"),
    ("vaccinator", "station"),
])
def test_the_printed_token_works_on_me(app, client, demo, role, account_role):
    result = _token(app, demo, role)
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # the token and nothing else
    assert token.startswith("phr_at_")

    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    body = me.get_json()
    assert body["role"] == account_role
    person = _person(demo[1], role)
    if account_role == "citizen":
        assert body["citizen_id"] == person["id"]
        assert body["client_id"] == "phr-mobile"
        assert "patient/*.cruds" in body["scopes"]
        assert "offline_access" not in body["scopes"]
    else:
        assert body["practitioner_id"] == person["id"]
        assert "user/*.cruds" in body["scopes"]


def test_the_token_is_short_lived_and_revocable(app, client, demo):
    token = _token(app, demo, "parent").stdout.strip()
    with app.app_context():
        from auth.tokens import find_by_access_token
        from core.db import db

        row = find_by_access_token(session=db.session, value=token)
        assert (row.access_expires_at - row.issued_at).total_seconds() <= 900
        assert row.refresh_token_hash is None
    revoked = client.post("/oauth/revoke", data={"token": token, "client_id": "phr-mobile"})
    assert revoked.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_the_station_system_token(app, client, demo):
    station = demo[1]["stations"][0]
    for args in (["station"], ["station", "--station", station["facility_code"]]):
        result = _token(app, demo, *args)
        assert result.exit_code == 0, result.stderr
        body = client.get("/api/v1/me", headers=bearer(result.stdout.strip())).get_json()
        assert body["role"] == "station"
        assert body["account_id"] is None
        assert body["facility_ids"] == [station["facility_id"]]
        assert all(scope.startswith("system/") for scope in body["scopes"])


def test_scope_narrows_and_never_widens(app, client, demo):
    narrow = _token(app, demo, "adult-chronic", "--scope", "patient/Immunization.rs")
    assert narrow.exit_code == 0, narrow.stderr
    body = client.get("/api/v1/me", headers=bearer(narrow.stdout.strip())).get_json()
    assert body["scopes"] == ["patient/Immunization.rs"]
    wider = _token(app, demo, "adult-chronic", "--scope", "user/*.cruds")
    assert wider.exit_code != 0
    assert wider.stdout == ""


def test_refusals(app, demo):
    assert _token(app, demo, "infant").exit_code != 0  # not a demo login
    assert _token(app, demo, "parent", "--station", "X").exit_code != 0
    missing = app.test_cli_runner().invoke(
        args=["auth", "demo-token", "parent", "--identities", "/nonexistent/file.json"])
    assert missing.exit_code != 0
    assert "seed demo" in missing.stderr
    app.config["APP_ENV"] = "production"
    refused = _token(app, demo, "parent")
    assert refused.exit_code != 0
    assert "production" in refused.stderr
    assert refused.stdout == ""
