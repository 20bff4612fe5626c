"""The marshmallow base of every API schema, and the one place validation errors become problems.

Schemas subclass :class:`ApiSchema` (unknown fields are rejected) and handlers call
:func:`load_or_problem`, which turns a ``marshmallow.ValidationError`` into a 422
``ValidationFailed`` problem whose ``errors`` map dotted field paths ("address.province_code",
"items.3.dose_number") to translatable messages. marshmallow's built-in English messages are
mapped to catalogue keys here; a validator that needs its own text raises
``ValidationError([Message("my.key")])`` (or ``raise invalid("my.key")``) with a key registered in
both languages. A message nobody mapped becomes the generic "invalid value" rather than leaking
English (or, for some marshmallow messages, the rejected input) into a Vietnamese response.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow.exceptions import SCHEMA

from core.errors import Message, ValidationFailed
from core.i18n import register_messages
from core.vault.phone import normalize_phone_vn

__all__ = [
    "ApiSchema",
    "PhoneNumber",
    "Text",
    "clean_text",
    "field_errors",
    "invalid",
    "load_or_problem",
    "text_problems",
    "to_message",
]


class ApiSchema(Schema):
    """Base of every API schema: unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        """Let ``validate=`` callables raise ``ValidationError(Message(...))`` too."""
        _accept_bare_messages(field_obj)


def _accept_bare_messages(field_obj: fields.Field) -> None:
    # marshmallow chains a field's validators with And, which does `list.extend(err.messages)`:
    # a bare Message would be a TypeError there, so wrap it in a list first.
    field_obj.validators = [_listify(v) for v in field_obj.validators]
    inner = [getattr(field_obj, name, None) for name in ("inner", "key_field", "value_field")]
    inner.extend(getattr(field_obj, "tuple_fields", None) or ())
    for child in inner:
        if isinstance(child, fields.Field):
            _accept_bare_messages(child)


def _listify(validator: Any) -> Any:
    if getattr(validator, "_accepts_bare_messages", False):
        return validator

    def validate(value: Any) -> Any:
        try:
            return validator(value)
        except ValidationError as exc:
            if isinstance(exc.messages, Message):
                raise ValidationError([exc.messages], **exc.kwargs) from None
            raise

    validate._accepts_bare_messages = True  # type: ignore[attr-defined]
    return validate


def load_or_problem(
    schema: Schema, data: Mapping[str, Any], *, partial: bool | None = None
) -> dict[str, Any]:
    """Load ``data`` with ``schema``; a 422 problem with per-field vi/en messages when invalid.

    ``partial`` None keeps the schema's own setting (an update schema built partial stays so).
    """
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        # `from None`: the marshmallow error carries the raw input, which may be personal.
        raise ValidationFailed(errors=field_errors(exc.messages)) from None


def invalid(key: str, *, field_name: str = SCHEMA, **params: object) -> ValidationError:
    """A ValidationError carrying one catalogue message (works in every kind of validator)."""
    # A list, not a bare Message: marshmallow's validator chaining extends a list with it.
    return ValidationError([Message(key, **params)], field_name=field_name)


def field_errors(messages: Any) -> dict[str, list[Message]]:
    """Flatten marshmallow's nested error structure into {dotted path: [Message, ...]}."""
    collected: dict[str, list[Message]] = {}
    _collect(messages, (), collected)
    return collected


def _collect(node: Any, path: tuple[str, ...], out: dict[str, list[Message]]) -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            # "_schema" under a nested field is an error of that field itself.
            segment = () if key == SCHEMA else (str(key),)
            _collect(child, path + segment, out)
        return
    if isinstance(node, list | tuple):
        for item in node:
            _collect(item, path, out)
        return
    bucket = out.setdefault(".".join(path) or SCHEMA, [])
    message = to_message(node)
    if message not in bucket:
        bucket.append(message)


def to_message(raw: object) -> Message:
    """The catalogue message for one marshmallow error (a Message passes through)."""
    if isinstance(raw, Message):
        return raw
    if not isinstance(raw, str):
        return Message("validation.invalid")
    key = _EXACT.get(raw)
    if key is not None:
        return Message(key)
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(raw)
        if match is not None:
            return build(match)
    return Message("validation.invalid")


# Free text (README "Design", input rules). Refused anywhere in a value: C0 and C1 control
# characters and DEL (NUL ends strings in C and PostgreSQL; the others garble logs, CSV exports
# and terminals), except tab and line breaks in multi-line fields (notes, summaries, reasons);
# U+2028/U+2029 in single-line ones; the bidirectional embeddings, overrides and isolates
# U+202A-U+202E and U+2066-U+2069 (they make text read other than it is stored: "Trojan
# Source"); unpaired surrogates. Refused as a whole value: nothing, or only whitespace and
# invisible characters (zero-width space/joiners, word joiner, BOM, direction marks).
_CONTROL_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE_ONLY = re.compile("[\\s\u200b-\u200f\u2060\ufeff]*")


def clean_text(value: str) -> str:
    """A text value as stored: Unicode NFC without surrounding whitespace."""
    return unicodedata.normalize("NFC", value).strip()


def text_problems(value: str, *, multiline: bool = False) -> list[Message]:
    """What is wrong with a free-text value (as the client sent it), as messages; [] when fine.

    The one rule for every free-text field: the `Text` field applies it, and code that reads a
    field by hand (a `reason` outside a schema) calls it, then stores ``clean_text(value)``.
    """
    if _SURROGATE.search(value):
        return [Message("validation.unpaired-surrogate")]
    text = clean_text(value)
    problems: list[Message] = []
    control = _CONTROL_MULTI_LINE if multiline else _CONTROL_SINGLE_LINE
    if control.search(text):
        line_break = not multiline and _CONTROL_MULTI_LINE.search(text) is None
        problems.append(Message("validation.text.line-break" if line_break
                                else "validation.text.control-character"))
    if _BIDI_CONTROL.search(text):
        problems.append(Message("validation.text.bidi-control"))
    if not problems and _INVISIBLE_ONLY.fullmatch(text):
        problems.append(Message("validation.text.blank"))
    return problems


class Text(fields.String):
    """Free text: Unicode NFC without surrounding whitespace, refused when blank or when it
    holds control or bidirectional-override characters (see `text_problems`).

    ``multiline=True`` lets tab and line breaks through (notes, summaries, reasons). An empty
    value is left to a ``Length(min=1)`` validator when the field has one (its message names
    the limits); otherwise it is refused as blank like a whitespace-only one.
    """

    def __init__(self, *args: Any, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.multiline = multiline
        self._length_refuses_empty = any(
            isinstance(v, validate.Length) and ((v.min or 0) >= 1 or (v.equal or 0) >= 1)
            for v in self.validators
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        cleaned = clean_text(text)
        if not cleaned and self._length_refuses_empty:
            return cleaned  # the Length validator refuses it, naming the limits
        problems = text_problems(text, multiline=self.multiline)
        if problems:
            raise ValidationError(problems)
        return cleaned


class PhoneNumber(fields.String):
    """A phone number, loaded as E.164 (Vietnamese national forms and legacy numbers accepted)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_phone_vn(text)
        except ValueError:
            raise invalid("validation.phone") from None


# marshmallow's fixed messages (fields, schema and validators) -> catalogue keys.
_EXACT: dict[str, str] = {
    "Missing data for required field.": "validation.required",
    "Field may not be null.": "validation.null",
    "Unknown field.": "validation.unknown-field",
    "Invalid input type.": "validation.not-object",
    "Not a valid mapping type.": "validation.not-object",
    "Invalid type.": "validation.invalid-type",
    "Not a valid string.": "validation.not-string",
    "Not a valid utf-8 string.": "validation.not-string",
    "Not a valid integer.": "validation.not-integer",
    "Not a valid number.": "validation.not-number",
    "Special numeric values (nan or infinity) are not permitted.": "validation.not-number",
    "Number too large.": "validation.number-too-large",
    "Not a valid boolean.": "validation.not-boolean",
    "Not a valid date.": "validation.not-date",
    "Not a valid datetime.": "validation.not-datetime",
    "Not a valid naive datetime.": "validation.not-datetime",
    "Not a valid aware datetime.": "validation.datetime-needs-offset",
    "Not a valid time.": "validation.not-time",
    "Not a valid naive time.": "validation.not-time",
    "Not a valid aware time.": "validation.not-time",
    "Not a valid period of time.": "validation.not-duration",
    "Not a valid UUID.": "validation.not-uuid",
    "Not a valid email address.": "validation.not-email",
    "Not a valid URL.": "validation.not-url",
    "Not a valid list.": "validation.not-list",
    "Not a valid tuple.": "validation.not-list",
    "Not a valid IP address.": "validation.not-ip",
    "Not a valid IPv4 address.": "validation.not-ip",
    "Not a valid IPv6 address.": "validation.not-ip",
    "Not a valid IP interface.": "validation.not-ip",
    "Not a valid IPv4 interface.": "validation.not-ip",
    "Not a valid IPv6 interface.": "validation.not-ip",
    "String does not match expected pattern.": "validation.pattern",
    "Invalid value.": "validation.invalid",
    "Invalid input.": "validation.invalid",
}

_RANGE_OPS = {
    "greater than or equal to": "gte",
    "greater than": "gt",
    "less than or equal to": "lte",
    "less than": "lt",
}
_MIN_OP = "(?P<min_op>greater than or equal to|greater than)"
_MAX_OP = "(?P<max_op>less than or equal to|less than)"


def _keyed(key: str) -> Any:
    return lambda match: Message(key, **match.groupdict())


def _range(match: re.Match[str]) -> Message:
    groups = match.groupdict()
    ops = [_RANGE_OPS[groups[name]] for name in ("min_op", "max_op") if groups.get(name)]
    params = {name: groups[name] for name in ("min", "max") if groups.get(name) is not None}
    return Message("validation.range." + "-".join(ops), **params)


_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"Must be one of: (?P<choices>.*)\."), _keyed("validation.one-of")),
    (re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\."),
     _keyed("validation.length-between")),
    (re.compile(r"Shorter than minimum length (?P<min>\d+)\."), _keyed("validation.length-min")),
    (re.compile(r"Longer than maximum length (?P<max>\d+)\."), _keyed("validation.length-max")),
    (re.compile(r"Length must be (?P<equal>\d+)\."), _keyed("validation.length-equal")),
    (re.compile(r"Must be equal to (?P<other>.*)\."), _keyed("validation.equal")),
    (re.compile(r"One or more of the choices you made was not in: (?P<choices>.*)\."),
     _keyed("validation.contains-only")),
    (re.compile(r"One or more of the choices you made was in: (?P<values>.*)\."),
     _keyed("validation.contains-none-of")),
    (re.compile(rf"Must be {_MIN_OP} (?P<min>.+) and {_MAX_OP} (?P<max>.+)\."), _range),
    (re.compile(rf"Must be {_MIN_OP} (?P<min>.+)\."), _range),
    (re.compile(rf"Must be {_MAX_OP} (?P<max>.+)\."), _range),
]

MESSAGES: dict[str, dict[str, str]] = {
    "validation.required": {"vi": "Trường này là bắt buộc.", "en": "This field is required."},
    "validation.null": {
        "vi": "Trường này không được để trống (null).",
        "en": "This field may not be null.",
    },
    "validation.unknown-field": {
        "vi": "Trường này không được hỗ trợ.",
        "en": "Unknown field.",
    },
    "validation.not-object": {"vi": "Phải là một đối tượng JSON.", "en": "Must be a JSON object."},
    "validation.invalid-type": {"vi": "Kiểu dữ liệu không đúng.", "en": "Wrong type of value."},
    "validation.not-string": {"vi": "Phải là một chuỗi ký tự.", "en": "Must be a string."},
    "validation.not-integer": {"vi": "Phải là một số nguyên.", "en": "Must be an integer."},
    "validation.not-number": {"vi": "Phải là một số.", "en": "Must be a number."},
    "validation.number-too-large": {"vi": "Số quá lớn.", "en": "The number is too large."},
    "validation.not-boolean": {"vi": "Phải là true hoặc false.", "en": "Must be true or false."},
    "validation.not-date": {
        "vi": "Phải là một ngày theo định dạng YYYY-MM-DD.",
        "en": "Must be a date in YYYY-MM-DD format.",
    },
    "validation.not-datetime": {
        "vi": "Phải là một thời điểm theo định dạng RFC 3339.",
        "en": "Must be an RFC 3339 date-time.",
    },
    "validation.datetime-needs-offset": {
        "vi": "Thời điểm phải có múi giờ, ví dụ 2026-01-31T08:00:00+07:00.",
        "en": "The date-time must include a UTC offset, e.g. 2026-01-31T08:00:00+07:00.",
    },
    "validation.not-time": {
        "vi": "Phải là giờ theo định dạng HH:MM hoặc HH:MM:SS.",
        "en": "Must be a time in HH:MM or HH:MM:SS format.",
    },
    "validation.not-duration": {
        "vi": "Phải là một khoảng thời gian hợp lệ.",
        "en": "Must be a valid duration.",
    },
    "validation.not-uuid": {"vi": "Phải là một UUID hợp lệ.", "en": "Must be a valid UUID."},
    "validation.not-email": {
        "vi": "Địa chỉ thư điện tử không hợp lệ.",
        "en": "Not a valid email address.",
    },
    "validation.not-url": {"vi": "Địa chỉ URL không hợp lệ.", "en": "Not a valid URL."},
    "validation.not-list": {
        "vi": "Phải là một danh sách (mảng JSON).",
        "en": "Must be a list (JSON array).",
    },
    "validation.not-ip": {"vi": "Địa chỉ IP không hợp lệ.", "en": "Not a valid IP address."},
    "validation.pattern": {
        "vi": "Giá trị không đúng định dạng.",
        "en": "The value does not have the expected format.",
    },
    "validation.invalid": {"vi": "Giá trị không hợp lệ.", "en": "Invalid value."},
    "validation.text.blank": {
        "vi": "Không được để trống hoặc chỉ có khoảng trắng, ký tự vô hình.",
        "en": "Must not be empty or consist only of spaces or invisible characters.",
    },
    "validation.text.control-character": {
        "vi": "Không được chứa ký tự điều khiển (như NUL).",
        "en": "Must not contain control characters (such as NUL).",
    },
    "validation.text.line-break": {
        "vi": "Phải nằm trên một dòng (không có ký tự xuống dòng hay tab).",
        "en": "Must be a single line (no line breaks or tabs).",
    },
    "validation.text.bidi-control": {
        "vi": "Không được chứa ký tự điều khiển hướng văn bản (U+202A–U+202E, U+2066–U+2069).",
        "en": "Must not contain bidirectional control characters (U+202A–U+202E, "
              "U+2066–U+2069).",
    },
    "validation.phone": {
        "vi": "Số điện thoại không hợp lệ.",
        "en": "Not a valid phone number.",
    },
    "validation.one-of": {
        "vi": "Phải là một trong các giá trị: {choices}.",
        "en": "Must be one of: {choices}.",
    },
    "validation.length-between": {
        "vi": "Độ dài phải từ {min} đến {max}.",
        "en": "Length must be between {min} and {max}.",
    },
    "validation.length-min": {
        "vi": "Độ dài phải ít nhất là {min}.",
        "en": "Length must be at least {min}.",
    },
    "validation.length-max": {
        "vi": "Độ dài không được vượt quá {max}.",
        "en": "Length must be at most {max}.",
    },
    "validation.length-equal": {
        "vi": "Độ dài phải đúng bằng {equal}.",
        "en": "Length must be exactly {equal}.",
    },
    "validation.equal": {"vi": "Phải bằng {other}.", "en": "Must be equal to {other}."},
    "validation.contains-only": {
        "vi": "Có giá trị không thuộc danh sách cho phép: {choices}.",
        "en": "Some values are not among the allowed ones: {choices}.",
    },
    "validation.contains-none-of": {
        "vi": "Có giá trị không được phép: {values}.",
        "en": "Some values are not allowed: {values}.",
    },
    "validation.range.gte": {
        "vi": "Phải lớn hơn hoặc bằng {min}.",
        "en": "Must be greater than or equal to {min}.",
    },
    "validation.range.gt": {"vi": "Phải lớn hơn {min}.", "en": "Must be greater than {min}."},
    "validation.range.lte": {
        "vi": "Phải nhỏ hơn hoặc bằng {max}.",
        "en": "Must be less than or equal to {max}.",
    },
    "validation.range.lt": {"vi": "Phải nhỏ hơn {max}.", "en": "Must be less than {max}."},
    "validation.range.gte-lte": {
        "vi": "Phải nằm trong khoảng từ {min} đến {max}.",
        "en": "Must be between {min} and {max}.",
    },
    "validation.range.gte-lt": {
        "vi": "Phải lớn hơn hoặc bằng {min} và nhỏ hơn {max}.",
        "en": "Must be greater than or equal to {min} and less than {max}.",
    },
    "validation.range.gt-lte": {
        "vi": "Phải lớn hơn {min} và nhỏ hơn hoặc bằng {max}.",
        "en": "Must be greater than {min} and less than or equal to {max}.",
    },
    "validation.range.gt-lt": {
        "vi": "Phải lớn hơn {min} và nhỏ hơn {max}.",
        "en": "Must be greater than {min} and less than {max}.",
    },
}

register_messages(MESSAGES)
