"""The parsers every request goes through, fuzzed with hypothesis for a fixed time each (issue 19).

Health IDs, pagination cursors, ICD-10 codes, UCUM quantities, phone numbers, the `fields`
list and JSON bodies. Each property holds for any input: the parser answers or raises its one
documented error (never anything else), what it produces parses back to the same thing, and
where openapi.yaml describes the same value, the contract and the parser agree.

`make test` gives each property a short budget; `make test-long` (.ci/run) a longer one. Each
prints how many inputs it ran (`-s` shows them).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from core.errors import (
    BadRequest,
    MalformedJson,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
    ValidationFailed,
)
from core.http import json_body
from core.pagination import decode_cursor, encode_cursor
from core.vault.phone import normalize_phone_vn
from ehr.views import parse_fields
from registry.reference.admin_units import current_province
from registry.reference.health_id import (
    HealthIdError,
    make_health_id,
    parse_health_id,
    province_codes,
    validate_health_id,
)
from registry.reference.icd10 import icd10_codes, lookup_icd10, normalize_icd10_code
from registry.reference.observations import (
    ObservationError,
    observation_kinds,
    to_canonical,
    validate_observation,
)
from tests.support.contract import load_contract

# Seconds per property: short in `make test`, longer in the long run.
SHORT_SECONDS = float(os.environ.get("FUZZ_PARSER_SECONDS", "1.5"))
LONG_SECONDS = float(os.environ.get("FUZZ_PARSER_SECONDS_LONG", "8"))
_CHUNK = 100  # examples per hypothesis run; runs repeat with new seeds until the budget is spent

_app = Flask(__name__)
_app.config.update(SECRET_KEY=b"fuzz-secret-key", MAX_CONTENT_LENGTH=64 * 1024)

# Text a client could send: any code point but unpaired surrogates (JSON decoding refuses
# those before any parser sees them), with digits, separators and signs made likely.
_ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_DIGITISH = st.text(st.sampled_from("0123456789 +-.()/\t\n٣０x"), max_size=24)
_JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                  allow_infinity=False) | _ANY_TEXT
_JSON = st.recursive(_JSON_LEAF, lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(_ANY_TEXT, children, max_size=4), max_leaves=20)


# Health IDs ----------

_PROVINCES = sorted(province_codes())


@st.composite
def _valid_health_ids(draw: Any) -> tuple[str, dt.date, str]:
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)))
    sex = draw(st.sampled_from(["male", "female"]))
    number = make_health_id(province_code=draw(st.sampled_from(_PROVINCES)), date_of_birth=born,
                            sex=sex, serial=draw(st.integers(0, 999_999)))
    return number, born, sex


def health_id_any(value: str) -> None:
    parts = parse_health_id(value)
    errors = validate_health_id(value, date_of_birth=None, sex=None)
    assert all(isinstance(e, HealthIdError) for e in errors)
    if parts is None:
        assert errors  # not 12 ASCII digits: a shape error, never silence
    else:
        assert re.fullmatch(r"[0-9]{12}", value, re.ASCII)


def health_id_round_trip(case: tuple[str, dt.date, str]) -> None:
    number, born, sex = case
    assert validate_health_id(number, date_of_birth=born, sex=sex) == []
    parts = parse_health_id(number)
    assert parts is not None
    assert (parts.birth_year, parts.sex) == (born.year, sex)
    other = "female" if sex == "male" else "male"
    assert HealthIdError.SEX_MISMATCH in validate_health_id(number, date_of_birth=born,
                                                            sex=other)


# Cursors ----------

_POSITION = st.dictionaries(st.text(max_size=8), _JSON_LEAF, max_size=4)


def cursor_any(value: str) -> None:
    # Only a cursor the server signed decodes: a random string never does, and is refused
    # with the documented 400 and nothing else.
    with _app.app_context(), pytest.raises(BadRequest) as refused:
        decode_cursor(value)
    assert refused.value.code == "invalid-cursor"


def cursor_round_trip(position: dict[str, Any]) -> None:
    with _app.app_context():
        cursor = encode_cursor(position)
        assert decode_cursor(cursor) == json.loads(json.dumps(position, default=str))
        assert re.fullmatch(_spec_schema("/components/parameters/Cursor/schema")["pattern"],
                            cursor)
        raw = bytearray(cursor.encode())
        index = len(raw) // 2
        raw[index] = ord("A") if raw[index] != ord("A") else ord("B")
        with pytest.raises(BadRequest):
            decode_cursor(raw.decode())


# ICD-10 ----------

_KNOWN_ICD = sorted(icd10_codes())


def icd10_any(value: str) -> None:
    code = normalize_icd10_code(value)
    if code is None:
        assert lookup_icd10(value) is None
        return
    assert re.fullmatch(r"[A-Z][0-9]{2}(?:\.[0-9]{1,2})?", code, re.ASCII), code
    assert normalize_icd10_code(code) == code
    found = lookup_icd10(value)
    assert found is None or found.code == code


def icd10_round_trip(code: str) -> None:
    assert normalize_icd10_code(code) == code
    for spelling in (code.lower(), code.replace(".", ""), f"  {code} "):
        found = lookup_icd10(spelling)
        assert found is not None
        assert found.code == code


# UCUM quantities ----------

_KINDS = sorted(observation_kinds())
_UNITS = sorted({u for k in observation_kinds().values() for u in k.units} | {"", "mg", "%%"})


def quantity_any(case: tuple[str, Any, str]) -> None:
    kind, value, unit = case
    errors = validate_observation(kind, value, unit)
    assert all(isinstance(e, ObservationError) for e in errors)
    try:
        measured = to_canonical(kind, value, unit)
    except ValueError:
        assert errors
        return
    assert not errors
    definition = observation_kinds()[kind]
    assert measured.unit == definition.unit
    assert math.isfinite(measured.value)
    # The canonical value is itself a valid measurement in the canonical unit, kept as is.
    again = to_canonical(kind, measured.value, definition.unit)
    assert again.value == measured.value


@st.composite
def _quantities(draw: Any) -> tuple[str, Any, str]:
    kind = draw(st.sampled_from(_KINDS) | _ANY_TEXT)
    units = observation_kinds().get(kind)
    unit = draw(st.sampled_from(sorted(units.units)) if units and draw(st.booleans())
                else st.sampled_from(_UNITS) | _ANY_TEXT)
    value = draw(st.floats(-1e6, 1e6) | st.integers(-10**20, 10**20) | _JSON_LEAF
                 | st.floats(allow_nan=True, allow_infinity=True))
    return kind, value, unit


# Phone numbers (the spec's PhoneInput pattern and the parser) ----------

def phone_any(value: str) -> None:
    try:
        e164 = normalize_phone_vn(value)
    except ValueError:
        return
    assert re.fullmatch(r"\+[0-9]{8,15}", e164, re.ASCII), e164
    assert normalize_phone_vn(e164) == e164
    if value.isascii():
        # What the app accepts, the contract allows (the ContractClient holds 2xx requests to
        # it). Non-ASCII forms (full-width digits) are accepted beyond the contract.
        assert re.search(_spec_schema("/components/schemas/PhoneInput")["pattern"], value), value


# The `fields` list (the spec's pattern is exactly the parser's language) ----------

_FIELD_NAMES = st.sampled_from(["id", "version", "data", "display", "display_lang",
                                "data.value", "data.", "data. ", "x", "ids", "verification"])
_FIELDS = st.lists(st.tuples(st.sampled_from(["", " ", "\t"]), _FIELD_NAMES | _ANY_TEXT,
                             st.sampled_from(["", " "])), max_size=4).map(
    lambda parts: ",".join(a + b + c for a, b, c in parts))


def fields_any(value: str) -> None:
    try:
        parse_fields(value)
        refusal = None
    except BadRequest as problem:
        refusal = problem.code
    assert refusal in (None, "invalid-fields")
    accepted = refusal is None
    allowed = re.search(_spec_schema("/components/parameters/Fields/schema")["pattern"], value)
    if value.isascii():
        assert accepted == bool(allowed), (value, accepted)


# JSON bodies ----------

_BODY_ERRORS = (MalformedJson, ValidationFailed, UnsupportedMediaType, PayloadTooLarge)


def json_bytes_any(case: tuple[bytes, str]) -> None:
    raw, mimetype = case
    with _app.test_request_context("/", method="POST", data=raw, content_type=mimetype):
        try:
            body = json_body()
        except _BODY_ERRORS:
            return
        except Problem as problem:  # pragma: no cover - the assertion names it
            raise AssertionError(f"undocumented problem {type(problem).__name__}") from None
    assert isinstance(body, dict)


def json_round_trip(document: dict[str, Any]) -> None:
    raw = json.dumps(document, ensure_ascii=False).encode()
    with _app.test_request_context("/", method="POST", data=raw,
                                   content_type="application/json"):
        try:
            assert json_body() == document
        except PayloadTooLarge:
            assert len(raw) > _app.config["MAX_CONTENT_LENGTH"]


_BODIES = st.tuples(
    st.binary(max_size=200) | _JSON.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"", b"[]", b"{}", b'{"a":1,"a":2}', b"NaN", b'{"a":1e999}',
                       b'{"a":"\\ud800"}', b"[" * 5000, b"\xff\xfe"]),
    st.sampled_from(["application/json", "application/fhir+json", "text/plain",
                     "application/json; charset=latin-1"]),
)


# The properties and their budgets ----------

PROPERTIES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "health-id": (_ANY_TEXT | _DIGITISH, health_id_any),
    "health-id-round-trip": (_valid_health_ids(), health_id_round_trip),
    "cursor": (_ANY_TEXT | st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_", min_size=16, max_size=80), cursor_any),
    "cursor-round-trip": (_POSITION, cursor_round_trip),
    "icd10": (_ANY_TEXT | st.from_regex(r"[A-Za-z][0-9٣]{2}\.?[0-9]{0,3}", fullmatch=True),
              icd10_any),
    "icd10-round-trip": (st.sampled_from(_KNOWN_ICD), icd10_round_trip),
    "ucum-quantity": (_quantities(), quantity_any),
    "phone": (_DIGITISH | _ANY_TEXT, phone_any),
    "fields": (_FIELDS, fields_any),
    "json-body": (_BODIES, json_bytes_any),
    "json-round-trip": (st.dictionaries(_ANY_TEXT, _JSON, max_size=5), json_round_trip),
}


def _spec_schema(pointer: str) -> dict[str, Any]:
    node: Any = load_contract().spec
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return node


def fuzz(name: str, seconds: float) -> int:
    """Run one property with fresh seeds until `seconds` are spent; how many inputs ran."""
    strategy, check = PROPERTIES[name]
    ran = 0

    def counted(value: Any) -> None:
        nonlocal ran
        ran += 1
        check(value)

    deadline = time.monotonic() + seconds
    round_ = 0
    while round_ == 0 or time.monotonic() < deadline:
        test = settings(max_examples=_CHUNK, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))(given(strategy)(counted))
        seed(int(time.time_ns() % 2**32) + round_)(test)()
        round_ += 1
    return ran


def _report(name: str, ran: int, seconds: float) -> None:
    print(f"\nfuzz {json.dumps({'parser': name, 'executions': ran, 'seconds': seconds})}")
    assert ran >= _CHUNK


@pytest.mark.parametrize("name", list(PROPERTIES))
def test_parser_holds_for_any_input(name):
    started = time.monotonic()
    ran = fuzz(name, SHORT_SECONDS)
    _report(name, ran, round(time.monotonic() - started, 1))


@pytest.mark.long
@pytest.mark.parametrize("name", list(PROPERTIES))
def test_parser_holds_for_any_input_long(name):
    started = time.monotonic()
    ran = fuzz(name, LONG_SECONDS)
    _report(name, ran, round(time.monotonic() - started, 1))


def test_the_contracts_province_codes_are_the_parsers():
    # Exhaustive: every two-digit code the contract allows is one the app maps, and no other.
    allowed = set(_spec_schema("/components/schemas/ProvinceCode")["enum"])
    mapped = {f"{n:02d}" for n in range(100) if current_province(f"{n:02d}") is not None}
    assert allowed == mapped
