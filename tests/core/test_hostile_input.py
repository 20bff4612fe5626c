"""Hostile input (issue 14): every request here used to answer 500 or store what it should not.

Each must be a 4xx problem+json (Vietnamese by default, English on request) that changes
nothing: the whole database is counted before and after. Requests go through HTTP with real
tokens; the JSON-parser limits are also probed at their exact boundaries on a test-only route.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Blueprint

from core.db import db
from core.http import MAX_HEADER_BYTES, MAX_HEADER_FIELD_BYTES, MAX_JSON_DEPTH, json_body
from tests.support.auth import (
    Tokens,
    make_citizen,
    station_token,
    token_for,
)
from tests.support.database import rows_left

PROBLEM = "application/problem+json"
ALLERGY = {"substance": "Penicillin", "category": "medication"}


@pytest.fixture
def patient(app: Any, client: Any) -> tuple[uuid.UUID, Tokens]:
    citizen = make_citizen(app)
    return citizen, token_for(client, app, citizen=citizen)


def _allergies(citizen: uuid.UUID) -> str:
    return f"/api/v1/citizens/{citizen}/allergies"


def _rows(app: Any) -> dict[str, int]:
    with app.app_context():
        return rows_left(db.engine)


def _problem(response: Any, status: int, code: str, lang: str = "vi") -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert response.headers["Content-Language"] == lang
    body = response.get_json(force=True)
    assert body["type"] == "urn:phr-vn:problem:" + code
    assert body["status"] == status
    return body


def _post_raw(client: Any, url: str, raw: str | bytes, tokens: Tokens, **headers: str) -> Any:
    return client.post(url, data=raw, headers={**tokens.headers, **headers,
                                               "Content-Type": "application/json"})


def _both_languages(client: Any, url: str, raw: str | bytes, tokens: Tokens, status: int,
                    code: str, **headers: str) -> tuple[dict[str, Any], dict[str, Any]]:
    vi = _problem(_post_raw(client, url, raw, tokens, **headers), status, code, "vi")
    en = _problem(_post_raw(client, url, raw, tokens, **headers, **{"Accept-Language": "en"}),
                  status, code, "en")
    assert vi["title"] != en["title"]
    return vi, en


# --- 1. nesting ---------------------------------------------------------------------------


def test_a_5000_deep_array_is_a_400_problem_and_stores_nothing(app, client, patient):
    citizen, tokens = patient
    before = _rows(app)
    raw = "[" * 5000 + "]" * 5000
    vi, en = _both_languages(client, _allergies(citizen), raw, tokens, 400, "malformed-json")
    assert str(MAX_JSON_DEPTH) in vi["detail"]
    assert str(MAX_JSON_DEPTH) in en["detail"]
    deep_object = '{"substance": ' * 5000 + '"x"' + "}" * 5000
    _problem(_post_raw(client, _allergies(citizen), deep_object, tokens), 400, "malformed-json")
    assert _rows(app) == before


# --- 2. unpaired surrogates ---------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "hostile-input-surrogate-01"])
def test_a_lone_surrogate_is_a_422_naming_the_field(app, client, patient, key):
    citizen, tokens = patient
    before = _rows(app)
    raw = '{"substance": "Penicillin \\ud800", "category": "medication"}'
    headers = {"Idempotency-Key": key} if key else {}
    vi, en = _both_languages(client, _allergies(citizen), raw, tokens, 422, "validation-error",
                             **headers)
    assert set(vi["errors"]) == {"substance"}
    assert vi["errors"]["substance"] != en["errors"]["substance"]
    assert "surrogate" in en["errors"]["substance"][0]
    assert _rows(app) == before


def test_a_surrogate_pair_is_a_character_like_any_other(client, patient):
    citizen, tokens = patient
    raw = '{"substance": "T\\u00f4m \\ud83e\\udd90", "category": "food"}'
    created = _post_raw(client, _allergies(citizen), raw, tokens)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["data"]["substance"] == "Tôm 🦐"


# --- 5. free text -------------------------------------------------------------------------

# (case, field, value): every one a 422 naming `field`, in both languages.
BAD_TEXT = [
    ("nul", "substance", "Peni\x00cillin"),
    ("c0-escape", "substance", "Peni\x1b[31mcillin"),
    ("del", "substance", "Peni\x7fcillin"),
    ("c1", "substance", "Peni\x9bcillin"),
    ("line-break-in-a-name", "substance", "Peni\ncillin"),
    ("tab-in-a-name", "substance", "Peni\tcillin"),
    ("line-separator", "substance", "Peni\u2028cillin"),
    ("rlo", "substance", "Penicillin \u202egnorw"),
    ("lre", "substance", "\u202aPenicillin"),
    ("isolate", "substance", "Peni\u2066cillin\u2069"),
    ("space-only", "substance", " "),
    ("ideographic-space-only", "substance", "\u3000"),
    ("zero-width-only", "substance", "\u200b\u200c\u200d"),
    ("bom-and-word-joiner-only", "substance", "\ufeff\u2060"),
    ("blank-note", "note", "  \n\t "),
    ("nul-in-note", "note", "Ngứa\x00"),
    ("bidi-in-note", "note", "Ngứa \u2067x"),
    ("zero-width-note", "note", "\u200b"),
]


@pytest.mark.parametrize(("case", "field", "value"), BAD_TEXT, ids=[c[0] for c in BAD_TEXT])
def test_free_text_refuses_controls_bidi_and_blank(app, client, patient, case, field, value):
    citizen, tokens = patient
    before = _rows(app)
    body = {**ALLERGY, field: value}
    vi = client.post(_allergies(citizen), json=body, headers=tokens.headers)
    en = client.post(_allergies(citizen), json=body,
                     headers={**tokens.headers, "Accept-Language": "en"})
    vi_errors = _problem(vi, 422, "validation-error")["errors"]
    en_errors = _problem(en, 422, "validation-error", "en")["errors"]
    assert set(vi_errors) == {field}
    assert vi_errors[field] != en_errors[field]
    assert _rows(app) == before


def test_multi_line_notes_keep_line_breaks_and_tabs(client, patient):
    citizen, tokens = patient
    note = "Nổi mề đay sau 30 phút.\r\n\tĐã dùng thuốc kháng histamin."
    created = client.post(_allergies(citizen), json={**ALLERGY, "note": note},
                          headers=tokens.headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["data"]["note"] == note


def test_text_is_still_nfc_and_trimmed_and_may_hold_joiners(client, patient):
    citizen, tokens = patient
    decomposed = "Nguye\u0302\u0303n"  # "Nguyễn" in NFD
    created = client.post(_allergies(citizen), json={
        **ALLERGY, "substance": f"  {decomposed} \u200d ok  "}, headers=tokens.headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["data"]["substance"] == "Nguyễn \u200d ok"


def test_a_citizen_name_with_a_nul_is_refused_at_registration(app, client):
    station = station_token(client, app)
    before = _rows(app)
    body = {"health_id": "001090012345", "full_name": "Nguyễn\x00Văn An",
            "date_of_birth": "1990-05-17", "sex": "male",
            "address": {"province_code": "01", "line": "Số 5 \u202eHàng Bạc"}}
    response = client.post("/api/v1/citizens", json=body, headers=station.headers)
    errors = _problem(response, 422, "validation-error")["errors"]
    assert set(errors) == {"full_name", "address.line"}
    assert _rows(app) == before


def test_a_break_glass_reason_with_a_bidi_override_is_refused(app, client, patient):
    citizen, _ = patient
    doctor = token_for(client, app, role="practitioner")
    before = _rows(app)
    response = client.post(f"/api/v1/citizens/{citizen}/break-glass",
                           json={"reason": "Ngừng tim \u202e"}, headers=doctor.headers)
    assert set(_problem(response, 422, "validation-error")["errors"]) == {"reason"}
    blank = client.post(f"/api/v1/citizens/{citizen}/break-glass",
                        json={"reason": "\u200b \u200b"}, headers=doctor.headers)
    assert set(_problem(blank, 422, "validation-error")["errors"]) == {"reason"}
    assert _rows(app) == before


def test_an_entered_in_error_reason_with_a_bidi_override_is_refused(app, client, patient):
    citizen, tokens = patient
    created = client.post(_allergies(citizen), json=ALLERGY, headers=tokens.headers)
    assert created.status_code == 201, created.get_json()
    url = f"{_allergies(citizen)}/{created.get_json()['id']}/entered-in-error"
    before = _rows(app)
    for reason in ("Nhầm \u202ebệnh nhân", "Nhầm\x00", "\u2060\u200b"):
        response = client.post(url, json={"reason": reason}, headers=tokens.headers)
        assert set(_problem(response, 422, "validation-error")["errors"]) == {"reason"}
    assert _rows(app) == before
    kept = client.post(url, json={"reason": "  Nhập nhầm\nngười  "}, headers=tokens.headers)
    assert kept.status_code == 200, kept.get_json()


def test_a_lookup_refuses_digits_that_are_not_ascii(client, app):
    station = station_token(client, app)
    arabic = "\u0660" * 12  # twelve Arabic-Indic zeros: str.isdigit() says yes
    response = client.post("/api/v1/citizens/lookup", json={"health_id": arabic},
                           headers=station.headers)
    assert set(_problem(response, 422, "validation-error")["errors"]) == {"health_id"}


# --- 6. strict JSON -----------------------------------------------------------------------

MALFORMED = [
    ("duplicate-key", '{"substance": "Tôm", "substance": "Cua", "category": "food"}'),
    ("nan", '{"substance": "Tôm", "category": "food", "onset_age": NaN}'),
    ("infinity", '{"substance": "Tôm", "category": "food", "onset_age": -Infinity}'),
    ("overflowing-float", '{"substance": "Tôm", "category": "food", "onset_age": 1e999}'),
    ("5000-digit-integer", '{"substance": "Tôm", "category": "food", "onset_age": '
     + "9" * 5000 + "}"),
    ("bare-string", '"Tôm"'),
    ("bare-number", "42"),
    ("null", "null"),
    ("empty", ""),
]


@pytest.mark.parametrize(("case", "raw"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_json_that_is_not_one_strict_object_is_a_400(app, client, patient, case, raw):
    citizen, tokens = patient
    before = _rows(app)
    _both_languages(client, _allergies(citizen), raw, tokens, 400, "malformed-json")
    assert _rows(app) == before


def test_a_latin1_body_is_refused_and_a_charset_parameter_is_ignored(app, client, patient):
    citizen, tokens = patient
    latin1 = '{"substance": "Cà phê", "category": "food"}'.encode("latin-1", "replace")
    response = client.post(_allergies(citizen), data=latin1, headers={
        **tokens.headers, "Content-Type": "application/json; charset=latin-1"})
    _problem(response, 400, "malformed-json")
    utf8 = client.post(_allergies(citizen), data='{"substance": "Cà phê", "category": "food"}'
                       .encode(), headers={**tokens.headers,
                                           "Content-Type": "application/json; charset=latin-1"})
    assert utf8.status_code == 201  # JSON is UTF-8 (RFC 8259 §8.1); the parameter means nothing


@pytest.fixture
def echo(app: Any) -> Any:
    bp = Blueprint("hostile_echo", __name__)

    @bp.post("/_probe/hostile-echo")
    def hostile_echo() -> dict[str, Any]:
        return {"received": json_body()}

    app.register_blueprint(bp)
    return app.test_client()


def _nested(depth: int) -> str:
    # depth levels of arrays/objects in all, the outermost an object
    return '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_nesting_is_allowed_up_to_the_limit_exactly(echo):
    assert echo.post("/_probe/hostile-echo", data=_nested(MAX_JSON_DEPTH),
                     content_type="application/json").status_code == 200
    too_deep = echo.post("/_probe/hostile-echo", data=_nested(MAX_JSON_DEPTH + 1),
                         content_type="application/json")
    _problem(too_deep, 400, "malformed-json")


def test_a_lone_surrogate_deep_inside_or_in_a_name_is_named_by_its_path(echo):
    raw = '{"items": [{"ok": "\\ud83d\\ude00"}, {"note": "x\\udfff"}], "\\ud800": 1}'
    response = echo.post("/_probe/hostile-echo", data=raw, content_type="application/json")
    errors = _problem(response, 422, "validation-error")["errors"]
    assert set(errors) == {"items.1.note", "_schema"}


# --- 4. header size (app level; tests/core/test_hostile_headers_gunicorn.py: real gunicorn) --


def test_a_10_kb_header_is_a_431_problem(app, client, patient):
    citizen, tokens = patient
    big = {"X-Filler": "a" * 10_000}
    vi = client.get("/healthz", headers=big)
    body = _problem(vi, 431, "request-header-fields-too-large")
    assert str(MAX_HEADER_FIELD_BYTES) in body["detail"]
    en = client.get("/healthz", headers={**big, "Accept-Language": "en"})
    assert _problem(en, 431, "request-header-fields-too-large", "en")["title"] != body["title"]
    before = _rows(app)
    # (raw client: the contract does not list 431 on every route; /healthz documents it)
    from flask.testing import FlaskClient

    raw = FlaskClient(app, app.response_class)
    refused = raw.post(_allergies(citizen), json=ALLERGY, headers={**tokens.headers, **big})
    _problem(refused, 431, "request-header-fields-too-large")
    assert _rows(app) == before


def test_headers_together_over_the_total_are_a_431(client):
    field = MAX_HEADER_FIELD_BYTES - 100
    count = MAX_HEADER_BYTES // field + 1
    headers = {f"X-Filler-{i}": "a" * field for i in range(count)}
    _problem(client.get("/healthz", headers=headers), 431, "request-header-fields-too-large")


def test_headers_up_to_the_limit_pass(client):
    name = "X-Filler"
    value = "a" * (MAX_HEADER_FIELD_BYTES - len(name))
    assert client.get("/healthz", headers={name: value}).status_code == 200


# --- 6. headers and query parameters (already refused: kept that way) ----------------------


@pytest.mark.parametrize("key", ["abc\x01defghijk", "k" * 1000, "ok-key-\xe9-00001"])
def test_a_malformed_idempotency_key_is_a_400(app, client, patient, key):
    citizen, tokens = patient
    before = _rows(app)
    response = client.post(_allergies(citizen), json=ALLERGY,
                           headers={**tokens.headers, "Idempotency-Key": key})
    _problem(response, 400, "invalid-idempotency-key")
    assert _rows(app) == before


@pytest.mark.parametrize(("query", "code"), [
    ("cursor=eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA", "invalid-cursor"),
    ("cursor=%FF%FE", "invalid-cursor"),
    ("limit=-1", "invalid-limit"),
    ("limit=abc", "invalid-limit"),
    ("limit=%C2%B2", "invalid-limit"),  # "²": str.isdigit() says yes, int() raises
    ("limit=%D9%A3", "invalid-limit"),  # Arabic-Indic three: not an ASCII digit
    ("limit=" + "9" * 5000, "invalid-limit"),  # beyond Python's int() digit limit
    ("updated_since=not-a-date", "invalid-timestamp"),
])
def test_malformed_list_parameters_are_400_problems(client, patient, query, code):
    citizen, tokens = patient
    response = client.get(f"{_allergies(citizen)}?{query}", headers=tokens.headers)
    _problem(response, 400, code)
