"""What schemathesis found from the outside (issue 19), each reproduced over HTTP with a real token.

Two kinds: an answer the contract did not document (a 500, a 404 for a path whose id is not a
UUID), now documented or fixed; and a value the contract allowed that the app rightly refuses,
now outside the contract. Every exchange also goes through the ContractClient (the status must
be documented for the operation; a 2xx request must have been valid).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from tests.support.auth import bearer, make_facility, station_token, token_for
from tests.support.contract import Contract, load_contract

JSON = {"Content-Type": "application/json", "Accept-Language": "en"}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


def _documented(contract: Contract, method: str, template: str, status: int) -> bool:
    responses = contract.spec["paths"][template][method]["responses"]
    return str(status) in responses or f"{str(status)[0]}XX" in responses


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    return body


# The 500 ----------

def test_a_nul_client_id_at_the_token_endpoint_is_an_unknown_client(app, client):
    # `client_id=%00`: PostgreSQL refuses NUL in text; it was a 500 there.
    answers = [client.post("/oauth/token", data=f"grant_type=client_credentials&client_id={cid}"
                           "&client_secret=x", content_type="application/x-www-form-urlencoded")
               for cid in ("no-such-client", "%00")]
    unknown, nul = answers
    assert nul.status_code == unknown.status_code == 400, nul.get_data(as_text=True)
    assert nul.get_json() == unknown.get_json()
    assert nul.get_json()["error"] == "invalid_client"


# Undocumented 404s: a path id that is not a UUID matches no route ----------

@pytest.mark.parametrize(("template", "path"), [
    ("/api/v1/citizens/{citizen_id}/access-log", "/api/v1/citizens/null%2Cnull/access-log"),
    ("/api/v1/citizens/{citizen_id}/consents", "/api/v1/citizens/null%2Cnull/consents"),
    ("/api/v1/citizens/{citizen_id}/access-requests",
     "/api/v1/citizens/null%2Cnull/access-requests"),
    ("/api/v1/facilities/{facility_id}/break-glass",
     "/api/v1/facilities/null%2Cnull/break-glass"),
    ("/api/v1/facilities/{facility_id}/access-flags",
     "/api/v1/facilities/null%2Cnull/access-flags"),
])
def test_a_path_id_that_is_not_a_uuid_is_a_documented_404(app, client, contract, template, path):
    token = token_for(client, app, role="station")
    _problem(client.get(path, headers=bearer(token)), 404)
    assert _documented(contract, "get", template, 404), f"GET {template} does not document 404"


@pytest.mark.parametrize("path", ["/people/null%2Cnull", "/people/null%2Cnull/vaccinations",
                                  "/notifications/null%2Cnull/read"])
def test_a_portal_path_whose_id_is_not_a_uuid_is_a_documented_problem(app, client, contract,
                                                                      path):
    method = "post" if path.endswith("/read") else "get"
    response = client.open(path, method=method.upper())
    _problem(response, 404)
    template = path.replace("null%2Cnull", "{notification_id}" if "notifications" in path
                            else "{citizen_id}")
    spec, _ = contract.resolve(contract.spec["paths"][template][method]["responses"]["404"], "")
    assert PROBLEM in spec["content"]


# Values the contract allowed and the app refuses: now outside the contract ----------

def _entry(client: Any, headers: dict[str, str], citizen: Any) -> dict[str, Any]:
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    response = client.post(f"/api/v1/citizens/{citizen}/observations", headers=headers,
                           json={"kind": "body-weight", "value": 61.5, "unit": "kg",
                                 "effective_at": when})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_a_forged_cursor_is_a_400_and_a_malformed_one_is_outside_the_contract(app, client,
                                                                              contract):
    token = token_for(client, app)
    headers = {**bearer(token), "Accept-Language": "en"}
    base = f"/api/v1/citizens/{token.login.citizen_id}/observations"
    cursor_schema = "/components/parameters/Cursor/schema"
    for forged in ("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not a cursor!"):
        with client.unchecked():  # the malformed one leaves the contract on purpose
            body = _problem(client.get(base, headers=headers, query_string={"cursor": forged}),
                            400)
        assert body["type"] == "urn:phr-vn:problem:invalid-cursor"
        assert _documented(contract, "get", "/api/v1/citizens/{citizen_id}/{section}", 400)
    assert contract.errors("not a cursor!", cursor_schema)
    assert not contract.errors("", cursor_schema)


@pytest.mark.parametrize("names", ["nonsense", "id,data.", "id, version x"])
def test_unknown_fields_are_a_400_and_outside_the_contract(app, client, contract, names):
    token = token_for(client, app)
    headers = {**bearer(token), "Accept-Language": "en"}
    base = f"/api/v1/citizens/{token.login.citizen_id}/observations"
    with client.unchecked():
        body = _problem(client.get(base, headers=headers, query_string={"fields": names}), 400)
    assert body["type"] == "urn:phr-vn:problem:invalid-fields"
    assert contract.errors(names, "/components/parameters/Fields/schema")
    # Known names, spaces and a `data.` field stay inside, and are served.
    fine = "id , version,,data.value ,display"
    assert not contract.errors(fine, "/components/parameters/Fields/schema")
    assert client.get(base, headers=headers, query_string={"fields": fine}).status_code == 200


def test_a_blank_reason_is_a_422_and_outside_the_contract(app, client, contract):
    token = token_for(client, app)
    citizen = token.login.citizen_id
    entry = _entry(client, bearer(token), citizen)
    response = client.post(
        f"/api/v1/citizens/{citizen}/observations/{entry['id']}/entered-in-error",
        headers={**bearer(token), **JSON, "If-Match": f'"{entry["version"]}"'},
        data=json.dumps({"reason": "\n"}))
    _problem(response, 422)
    assert contract.errors({"reason": "\n"}, "/components/schemas/EnteredInErrorRequest")


@pytest.mark.parametrize("guardian", [{}, {"date_of_birth": "1990-05-17"}])
def test_a_guardian_named_no_way_is_a_422_and_outside_the_contract(app, client, contract,
                                                                   guardian):
    token = token_for(client, app)
    body = {"guardian": guardian, "relationship": "spouse", "kind": "proxy"}
    with client.unchecked():
        response = client.post(f"/api/v1/citizens/{token.login.citizen_id}/guardians",
                               headers={**bearer(token), **JSON}, data=json.dumps(body))
    _problem(response, 422)
    assert contract.errors(body, "/components/schemas/GuardianCreate")


@pytest.mark.parametrize("change", [
    {"phone": "0"}, {"phone": "call me"}, {"phone": "+84 12"},
    {"address": {"province_code": "00"}}, {"address": {"province_code": "99"}},
])
def test_a_phone_or_province_the_app_refuses_is_outside_the_contract(app, client, contract,
                                                                     change):
    token = token_for(client, app)
    path = f"/api/v1/citizens/{token.login.citizen_id}"
    etag = client.get(path, headers=bearer(token)).headers["ETag"]
    with client.unchecked():
        response = client.patch(path, headers={**bearer(token), **JSON, "If-Match": etag},
                                data=json.dumps(change))
    _problem(response, 422)
    assert contract.errors(change, "/components/schemas/CitizenUpdate")


@pytest.mark.parametrize("change", [
    {"phone": "0912 345 678"}, {"phone": "+84 (24) 3825-1234"}, {"phone": "+1 202 555 0143"},
    {"address": {"province_code": "27"}}, {"address": {"province_code": "24"}},
])
def test_a_phone_or_province_inside_the_contract_is_accepted(app, client, contract, change):
    token = token_for(client, app)
    path = f"/api/v1/citizens/{token.login.citizen_id}"
    etag = client.get(path, headers=bearer(token)).headers["ETag"]
    assert not contract.errors(change, "/components/schemas/CitizenUpdate")
    response = client.patch(path, headers={**bearer(token), **JSON, "If-Match": etag},
                            data=json.dumps(change))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_station_systems_reach_the_facility_routes_they_document(app, client, contract):
    # The facility routes above, with a real id: a documented answer for a station system.
    facility = make_facility(app)
    token = station_token(client, app, facility=facility)
    for route in ("break-glass", "access-flags"):
        response = client.get(f"/api/v1/facilities/{facility}/{route}", headers=bearer(token))
        assert response.status_code in (200, 403), response.get_data(as_text=True)


# A 500 the four-identity run found: a station's read of an entry of nobody ----------

@pytest.mark.parametrize("who", ["station-staff", "station-system"])
@pytest.mark.parametrize("tail", ["", "/versions"])
def test_a_station_reading_an_entry_of_nobody_is_a_404(app, client, who, tail):
    # A station's public-health read is permitted for anyone, so it was decided, audited and
    # reported to a citizen who does not exist: the notification's insert failed (500).
    token = (token_for(client, app, role="station") if who == "station-staff"
             else station_token(client, app))
    path = f"/api/v1/citizens/{uuid.uuid4()}/immunizations/{uuid.uuid4()}{tail}"
    _problem(client.get(path, headers={**bearer(token), "Accept-Language": "en"}), 404)
