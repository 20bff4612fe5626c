"""ApiSchema and load_or_problem: unknown fields rejected, every error a vi/en field message."""

from __future__ import annotations

import inspect

import marshmallow
import pytest
from flask import Blueprint
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from core.errors import Message, ValidationFailed
from core.http import json_body
from core.i18n import translate
from core.schemas import (
    MESSAGES,
    ApiSchema,
    PhoneNumber,
    Text,
    field_errors,
    invalid,
    load_or_problem,
    to_message,
)


class DoseSchema(ApiSchema):
    dose_number = fields.Integer(required=True, validate=validate.Range(min=1))
    lot = fields.String(validate=validate.Length(max=5))


class AddressSchema(ApiSchema):
    province_code = fields.String(required=True, validate=validate.Length(equal=2))
    line = Text()


def _no_sevens(value: int) -> None:
    if value == 7:
        raise ValidationError(Message("probe.no-sevens"))


class ProbeSchema(ApiSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=10))
    count = fields.Integer(validate=[validate.Range(min=0, max=9), _no_sevens])
    day = fields.Date()
    at = fields.AwareDateTime()
    ref = fields.UUID()
    flag = fields.Boolean()
    email = fields.Email()
    phone = PhoneNumber()
    kind = fields.String(validate=validate.OneOf(["a", "b"]))
    ratio = fields.Float(allow_nan=False)
    address = fields.Nested(AddressSchema)
    items = fields.List(fields.Nested(DoseSchema))
    tags = fields.List(fields.String(validate=validate.Length(max=3)))
    nickname = fields.String(allow_none=False)
    note = fields.String(validate=validate.Regexp(r"\A[a-z]+\Z"))
    code = fields.String(validate=[validate.Length(equal=3), validate.Regexp(r"\A[0-9]+\Z")])

    @validates("nickname")
    def _not_admin(self, value: str, **kwargs) -> None:
        if value == "admin":
            raise ValidationError(Message("probe.reserved"))

    @validates_schema
    def _kind_needs_count(self, data, **kwargs) -> None:
        if data.get("kind") == "b" and "count" not in data:
            raise invalid("probe.count-for-b", field_name="count")


PROBE_MESSAGES = {
    "probe.no-sevens": {"vi": "Không nhận số bảy.", "en": "Sevens are not accepted."},
    "probe.reserved": {"vi": "Tên này đã được dành riêng.", "en": "This name is reserved."},
    "probe.count-for-b": {"vi": "Loại b cần số lượng.", "en": "Kind b needs a count."},
}


@pytest.fixture(scope="module")
def probe(database_url, log_stream):
    """One app for the module: these requests never touch the database."""
    from core.i18n import register_messages
    from tests.conftest import make_app

    app = make_app(database_url, log_stream)
    register_messages(PROBE_MESSAGES)
    bp = Blueprint("schema_probe", __name__)

    @bp.post("/_probe/schema")
    def load():
        loaded = load_or_problem(ProbeSchema(), json_body())
        return {key: str(value) for key, value in loaded.items()}

    app.register_blueprint(bp)
    return app.test_client()


def errors_of(client, body: dict, lang: str) -> dict[str, list[str]]:
    response = client.post("/_probe/schema", json=body, headers={"Accept-Language": lang})
    assert response.status_code == 422, response.get_data(as_text=True)
    problem = response.get_json(force=True)
    assert problem["type"] == "urn:phr-vn:problem:validation-error"
    assert response.headers["Content-Language"] == lang
    return problem["errors"]


def test_a_valid_body_loads(probe):
    response = probe.post("/_probe/schema", json={
        "name": "  Hà  ", "count": 3, "phone": "0912 345 678", "items": [{"dose_number": 1}]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Hà"
    assert body["phone"] == "+84912345678"


@pytest.mark.parametrize(("body", "field", "vi", "en"), [
    ({}, "name", "Trường này là bắt buộc.", "This field is required."),
    ({"name": "a", "colour": "red"}, "colour", "Trường này không được hỗ trợ.", "Unknown field."),
    ({"name": 5}, "name", "Phải là một chuỗi ký tự.", "Must be a string."),
    ({"name": "a", "count": "x"}, "count", "Phải là một số nguyên.", "Must be an integer."),
    ({"name": "a", "day": "31/01/2020"}, "day", "Phải là một ngày theo định dạng YYYY-MM-DD.",
     "Must be a date in YYYY-MM-DD format."),
    ({"name": "a", "ref": "not-a-uuid"}, "ref", "Phải là một UUID hợp lệ.",
     "Must be a valid UUID."),
    ({"name": "a", "flag": "maybe"}, "flag", "Phải là true hoặc false.",
     "Must be true or false."),
    ({"name": "a", "email": "nobody"}, "email", "Địa chỉ thư điện tử không hợp lệ.",
     "Not a valid email address."),
    ({"name": "a", "phone": "12345"}, "phone", "Số điện thoại không hợp lệ.",
     "Not a valid phone number."),
    ({"name": "a", "at": "2026-01-31T08:00:00"}, "at",
     "Thời điểm phải có múi giờ, ví dụ 2026-01-31T08:00:00+07:00.",
     "The date-time must include a UTC offset, e.g. 2026-01-31T08:00:00+07:00."),
    ({"name": "a", "nickname": None}, "nickname", "Trường này không được để trống (null).",
     "This field may not be null."),
    ({"name": "a", "kind": "c"}, "kind", "Phải là một trong các giá trị: a, b.",
     "Must be one of: a, b."),
    ({"name": "abcdefghijk"}, "name", "Độ dài phải từ 1 đến 10.",
     "Length must be between 1 and 10."),
    ({"name": "a", "count": 12}, "count", "Phải nằm trong khoảng từ 0 đến 9.",
     "Must be between 0 and 9."),
    ({"name": "a", "note": "ABC"}, "note", "Giá trị không đúng định dạng.",
     "The value does not have the expected format."),
    ({"name": "a", "address": "Hà Nội"}, "address", "Phải là một đối tượng JSON.",
     "Must be a JSON object."),
    ({"name": "a", "items": {"dose_number": 1}}, "items", "Phải là một danh sách (mảng JSON).",
     "Must be a list (JSON array)."),
])
def test_builtin_errors_are_field_level_in_both_languages(probe, body, field, vi, en):
    assert errors_of(probe, body, "vi")[field] == [vi]
    assert errors_of(probe, body, "en")[field] == [en]


def test_nested_errors_have_dotted_paths(probe):
    errors = errors_of(probe, {
        "name": "a",
        "address": {"province_code": "001", "ward": "x"},
        "items": [{"dose_number": 1}, {"dose_number": 1}, {"dose_number": 2},
                  {"dose_number": 0, "lot": "toolong"}],
        "tags": ["ok", "toolong"],
    }, "en")
    assert errors == {
        "address.province_code": ["Length must be exactly 2."],
        "address.ward": ["Unknown field."],
        "items.3.dose_number": ["Must be greater than or equal to 1."],
        "items.3.lot": ["Length must be at most 5."],
        "tags.1": ["Length must be at most 3."],
    }


def test_validators_raise_catalogue_messages_however_they_are_written(probe):
    # A bare Message from a `validate=` callable, from @validates, and invalid() at schema level.
    assert errors_of(probe, {"name": "a", "count": 7}, "vi") == {"count": ["Không nhận số bảy."]}
    assert errors_of(probe, {"name": "a", "nickname": "admin"}, "en") == {
        "nickname": ["This name is reserved."]}
    assert errors_of(probe, {"name": "a", "kind": "b"}, "en") == {
        "count": ["Kind b needs a count."]}


def test_several_errors_on_one_field_are_all_reported(probe):
    errors = errors_of(probe, {"name": "a", "code": "ab"}, "vi")
    assert errors == {"code": ["Độ dài phải đúng bằng 3.", "Giá trị không đúng định dạng."]}


def test_a_body_that_is_not_an_object_is_rejected_before_the_schema(probe):
    response = probe.post("/_probe/schema", json=["name"])
    assert response.status_code == 400


def test_unmapped_english_never_reaches_a_vietnamese_client():
    assert to_message("Something only a developer wrote.") == Message("validation.invalid")
    assert to_message(42) == Message("validation.invalid")


def test_load_or_problem_does_not_chain_the_raw_input():
    with pytest.raises(ValidationFailed) as caught:
        load_or_problem(ProbeSchema(), {"name": "a", "phone": "0912 345 67X"})
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert set(caught.value.errors) == {"phone"}


def test_field_errors_flattens_schema_level_errors():
    assert field_errors({"_schema": ["Invalid input type."]}) == {
        "_schema": [Message("validation.not-object")]}
    nested = {"a": {"_schema": ["Invalid input type."], "b": ["Unknown field."]}}
    assert field_errors(nested) == {
        "a": [Message("validation.not-object")], "a.b": [Message("validation.unknown-field")]}


def test_every_catalogue_message_renders_in_both_languages():
    for key in MESSAGES:
        params = {name: "X" for name in ("choices", "min", "max", "equal", "other", "values")}
        vi, en = translate(key, "vi", **params), translate(key, "en", **params)
        assert vi != en, key
        assert "{" not in vi + en, key


def _marshmallow_field_messages() -> set[str]:
    found: set[str] = set()
    for _, cls in inspect.getmembers(marshmallow.fields, inspect.isclass):
        if not issubclass(cls, marshmallow.fields.Field):
            continue
        obj_type = getattr(cls, "OBJ_TYPE", None)
        for key, text in getattr(cls, "default_error_messages", {}).items():
            if key == "format":
                continue  # serialisation only: load never raises it
            if "{obj_type}" in text:
                if obj_type is None:
                    continue
                for awareness in ("naive", "aware"):
                    found.add(text.format(obj_type=obj_type, awareness=awareness))
            elif "{" not in text:
                found.add(text)
    found.update(marshmallow.Schema._default_error_messages.values())
    return found


def test_every_builtin_marshmallow_message_has_its_own_translation():
    generic = {"Invalid value.", "Invalid input."}
    for text in sorted(_marshmallow_field_messages() - generic):
        assert to_message(text).key != "validation.invalid", text


@pytest.mark.parametrize(("validator", "value", "key"), [
    (validate.Range(min=1), 0, "validation.range.gte"),
    (validate.Range(min=1, min_inclusive=False), 1, "validation.range.gt"),
    (validate.Range(max=1), 2, "validation.range.lte"),
    (validate.Range(max=1, max_inclusive=False), 1, "validation.range.lt"),
    (validate.Range(min=1, max=2), 3, "validation.range.gte-lte"),
    (validate.Range(min=1, max=2, max_inclusive=False), 2, "validation.range.gte-lt"),
    (validate.Range(min=1, max=2, min_inclusive=False), 1, "validation.range.gt-lte"),
    (validate.Range(min=1, max=3, min_inclusive=False, max_inclusive=False), 3,
     "validation.range.gt-lt"),
    (validate.Length(min=2), "a", "validation.length-min"),
    (validate.Length(max=1), "ab", "validation.length-max"),
    (validate.Length(equal=1), "ab", "validation.length-equal"),
    (validate.Length(min=1, max=2), "abc", "validation.length-between"),
    (validate.OneOf(["x"]), "y", "validation.one-of"),
    (validate.Equal("x"), "y", "validation.equal"),
    (validate.ContainsOnly(["x"]), ["y"], "validation.contains-only"),
    (validate.ContainsNoneOf(["x"]), ["x"], "validation.contains-none-of"),
    (validate.Email(), "nobody", "validation.not-email"),
    (validate.URL(), "nowhere", "validation.not-url"),
    (validate.Regexp("a"), "b", "validation.pattern"),
])
def test_every_builtin_validator_message_is_mapped(validator, value, key):
    with pytest.raises(ValidationError) as caught:
        validator(value)
    [message] = caught.value.messages
    assert to_message(message).key == key
