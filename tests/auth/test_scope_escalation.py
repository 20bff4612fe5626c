"""A token never carries more than the client's registration and the account's role allow."""

from __future__ import annotations

import pytest

from tests.support.auth import (
    authorize_url,
    code_for,
    exchange,
    make_client,
    make_login,
    pkce_pair,
    query_of,
    refresh,
    token_for,
)


@pytest.fixture
def narrow_client(app):
    return make_client(app, client_id="immunization-app",
                       scopes="openid offline_access patient/Immunization.rs")


ESCALATIONS = (
    "patient/*.rs",
    "patient/Immunization.cruds",
    "patient/Immunization.rs patient/Condition.r",
    "user/Immunization.rs",
    "system/Immunization.r",
    "profile",
)
MALFORMED = (
    "patient/Immunization.read",  # SMART v1
    "patient/Immunization.sr",  # letters out of order
    "patient/Immunization.",
    "patient/Unknown.rs",
    "patient/Immunization.rs?vaccine-code=BCG",
    "admin",
)


def test_asking_beyond_the_registration_is_refused(app, client, narrow_client):
    _, challenge = pkce_pair()
    for scope in ESCALATIONS:
        response = client.get(authorize_url(narrow_client, scope=scope, challenge=challenge))
        assert response.status_code == 302, scope
        params = query_of(response.headers["Location"])
        assert params["error"] == "invalid_scope", scope
        assert params["state"] == "st-1"


def test_malformed_scopes_are_refused(app, client):
    wide = make_client(app, client_id="wide-app")
    _, challenge = pkce_pair()
    for scope in MALFORMED:
        response = client.get(authorize_url(wide, scope=scope, challenge=challenge))
        assert query_of(response.headers["Location"])["error"] == "invalid_scope", scope


def test_narrower_than_registered_is_fine(app, client, narrow_client):
    login = make_login(app, role="citizen")
    code, verifier = code_for(client, narrow_client, login, scope="patient/Immunization.r")
    assert exchange(client, narrow_client, code, verifier).get_json()["scope"] == (
        "patient/Immunization.r"
    )


def test_no_scope_asked_means_the_registration(app, client, narrow_client):
    login = make_login(app, role="citizen")
    code, verifier = code_for(client, narrow_client, login, scope="")
    assert exchange(client, narrow_client, code, verifier).get_json()["scope"] == (
        "openid offline_access patient/Immunization.rs"
    )


def test_roles_trim_what_they_cannot_hold(app, client):
    asked = "openid patient/*.rs user/*.rs"
    citizen = token_for(client, app, role="citizen", scopes=asked)
    assert citizen.scope == "openid patient/*.rs"
    doctor = token_for(client, app, role="practitioner", scopes=asked)
    assert doctor.scope == "openid user/*.rs"
    station_staff = token_for(client, app, role="station", scopes=asked)
    assert station_staff.scope == "openid user/*.rs"
    admin = token_for(client, app, role="admin", scopes=asked)
    assert admin.scope == "openid"


def test_refresh_cannot_regain_a_trimmed_scope(app, client):
    doctor = token_for(client, app, role="practitioner",
                       scopes="offline_access patient/*.rs user/*.rs")
    assert doctor.scope == "offline_access user/*.rs"
    response = refresh(client, doctor.client, doctor.refresh_token,
                       scope="offline_access patient/*.rs")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"
