"""What a citizen's administrative record holds on the way in (shape only: no queries).

The health ID (personal identification number) is checked as DESIGN.md §2 says: length, digits,
province of birth registration, and the century/sex digit and birth year against the date of
birth and sex given beside it. Every rejection is a field-level message in Vietnamese and English.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, pre_load, validate, validates_schema

from core.errors import Message
from core.i18n import register_messages
from core.schemas import ApiSchema, PhoneNumber, Text, invalid
from registry.models import SEXES
from registry.reference.admin_units import AdminUnitError, current_codes, current_province
from registry.reference.health_id import (
    HEALTH_ID_MESSAGES,
    SOCIAL_INSURANCE_MESSAGES,
    normalize_health_id,
    validate_health_id,
    validate_social_insurance_code,
)

LANGUAGES = ("vi", "en")
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)
_VIETNAM = dt.timezone(dt.timedelta(hours=7))  # no daylight saving time


def vietnam_today() -> dt.date:
    """Today's calendar date in Vietnam (a birth at 06:00 in Hanoi is not "tomorrow" in UTC)."""
    return dt.datetime.now(_VIETNAM).date()


def health_id_problems(
    health_id: str, *, date_of_birth: dt.date | None, sex: str | None
) -> list[Message]:
    """What is wrong with a health ID given the date of birth and sex, as messages (may be [])."""
    # With a date of birth the century and year checks already cover a future year.
    today = vietnam_today() if date_of_birth is None else None
    codes = validate_health_id(health_id, date_of_birth=date_of_birth, sex=sex, today=today)
    return [Message(f"citizen.health_id.{code}") for code in codes]


def _plausible_birth_date(value: dt.date) -> None:
    if value > vietnam_today():
        raise invalid("citizen.date_of_birth.future")
    if value < EARLIEST_BIRTH_DATE:
        raise invalid("citizen.date_of_birth.too-early")


def _social_insurance_code(value: str) -> None:
    codes = validate_social_insurance_code(value)
    if codes:
        raise ValidationError([Message(f"citizen.social_insurance_code.{c}") for c in codes])




def _known_province(value: str) -> None:
    # A current 2-digit code, or an old one (mapped on load). The health ID's 3-digit code of
    # the birth-registration province is another list (registry/reference/health_id.py).
    if len(value) != 2 or not value.isdigit() or current_province(value) is None:
        raise invalid("citizen.address.province")


class HealthId(fields.String):
    """A personal identification number, without the spaces people type between groups."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return normalize_health_id(super()._deserialize(value, attr, data, **kwargs))


class AddressSchema(ApiSchema):
    """An address in the current two-level units (since 1 July 2025: province, commune).

    Stored as {province_code, commune_code, village, line} in current codes. An old code is
    mapped on the way in (registry/reference/admin_units.py); one that cannot be mapped without
    a guess is refused, asking for the current code. `district_code` is accepted from clients
    of the three-level units and not stored (districts no longer exist); it marks the commune
    code as one of those units, so it is read through the conversion table.
    """

    province_code = fields.String(required=True, validate=_known_province)
    district_code = fields.String(allow_none=True, load_only=True,
                                  validate=validate.Regexp(r"\A[0-9]{3}\Z"))
    commune_code = fields.String(allow_none=True, validate=validate.Regexp(r"\A[0-9]{5}\Z"))
    # Thôn, ấp, tổ dân phố, bản: the station's worklist groups the children of its commune by it.
    village = Text(allow_none=True, validate=validate.Length(min=1, max=100))
    line = Text(allow_none=True, validate=validate.Length(min=1, max=255))

    @validates_schema(skip_on_field_errors=True)
    def _current_units(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if "province_code" not in data and "commune_code" not in data:
            return  # a partial update that leaves the units alone
        try:
            current_codes(province_code=data.get("province_code"),
                          commune_code=data.get("commune_code"),
                          legacy=bool(data.get("district_code")))
        except AdminUnitError as exc:
            raise ValidationError({exc.field: [address_unit_message(exc)]}) from None

    @post_load
    def _to_current_codes(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        legacy = bool(data.pop("district_code", None))
        if "province_code" in data or "commune_code" in data:
            province, commune = current_codes(province_code=data.get("province_code"),
                                              commune_code=data.get("commune_code"),
                                              legacy=legacy)
            data["province_code"] = province
            if commune is not None:
                data["commune_code"] = commune
        return data


def address_unit_message(error: AdminUnitError) -> Message:
    """The field message of an address code that names no current unit."""
    if error.reason == "split":
        return Message("citizen.address.commune.split", candidates=", ".join(
            f"{c.code} ({c.name})" for c in error.candidates))
    if error.field == "commune_code":
        return Message("citizen.address.commune.unknown")
    if error.reason == "province-mismatch":
        return Message("citizen.address.province.mismatch")
    return Message("citizen.address.province")


class CitizenCreateSchema(ApiSchema):
    """Registration of a citizen by a station or clinic."""

    health_id = HealthId(required=True)
    full_name = Text(required=True, validate=validate.Length(min=1, max=200))
    date_of_birth = fields.Date(required=True, validate=_plausible_birth_date)
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    phone = PhoneNumber(allow_none=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    address = fields.Nested(AddressSchema, allow_none=True)
    ethnicity = Text(allow_none=True, validate=validate.Length(min=1, max=64))
    social_insurance_code = Text(allow_none=True, validate=_social_insurance_code)
    preferred_language = fields.String(load_default="vi", validate=validate.OneOf(LANGUAGES))
    # A newborn's parents, as on the birth papers the registering station saw: each becomes a
    # guardian in force (the consent layer decides who may name them and checks the rest).
    # Registration only: schemas built on this one (the update) do not take it.
    guardians = fields.List(
        fields.Nested(ApiSchema.from_dict({
            "health_id": HealthId(required=True),
            "date_of_birth": fields.Date(required=True),
            "relationship": fields.String(required=True,
                                          validate=validate.Length(min=1, max=32)),
        }, name="NewbornParentSchema")),
        validate=validate.Length(max=4),
    )

    @validates_schema(skip_on_field_errors=False)
    def _health_id_matches_birth_and_sex(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        health_id = data.get("health_id")
        if health_id is None:
            return  # absent or not a string: its field error says so
        problems = health_id_problems(
            health_id, date_of_birth=data.get("date_of_birth"), sex=data.get("sex")
        )
        if problems:
            raise ValidationError({"health_id": problems})


class CitizenUpdateSchema(CitizenCreateSchema):
    """A partial update; the health ID never changes (the service re-checks it against changes
    of date of birth or sex with :func:`health_id_problems`)."""

    class Meta(ApiSchema.Meta):
        # Guardians are named at registration only; later they change through their routes.
        exclude = ("health_id", "guardians")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(**kwargs)

    @pre_load
    def _health_id_is_immutable(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and "health_id" in data:
            raise invalid("citizen.health_id.immutable", field_name="health_id")
        return data


MESSAGES: dict[str, Mapping[str, str]] = {
    **{f"citizen.health_id.{code}": texts for code, texts in HEALTH_ID_MESSAGES.items()},
    **{
        f"citizen.social_insurance_code.{code}": texts
        for code, texts in SOCIAL_INSURANCE_MESSAGES.items()
    },
    "citizen.health_id.immutable": {
        "vi": "Không thể thay đổi số định danh cá nhân.",
        "en": "The personal identification number cannot be changed.",
    },
    "citizen.date_of_birth.future": {
        "vi": "Ngày sinh không được ở tương lai.",
        "en": "The date of birth must not be in the future.",
    },
    "citizen.date_of_birth.too-early": {
        "vi": "Ngày sinh không được trước ngày 01/01/1900.",
        "en": "The date of birth must not be before 1 January 1900.",
    },
    "citizen.address.province": {
        "vi": "Mã tỉnh, thành phố không có trong danh mục (hai chữ số, ví dụ 01 là Hà Nội).",
        "en": "Unknown province code (two digits, e.g. 01 for Hà Nội).",
    },
    "citizen.address.province.mismatch": {
        "vi": "Xã, phường không thuộc tỉnh, thành phố đã ghi.",
        "en": "The commune is not in the province given.",
    },
    "citizen.address.commune.unknown": {
        "vi": "Mã xã, phường không có trong danh mục đơn vị hành chính hiện hành (từ 01/7/2025)"
              " và không chuyển đổi được từ mã cũ; xin ghi mã xã, phường hiện hành"
              " (không kèm mã huyện).",
        "en": "Unknown commune code: it is not a current unit (since 1 July 2025) and cannot be"
              " converted from an old code; please give the current commune code (without a"
              " district code).",
    },
    "citizen.address.commune.split": {
        "vi": "Xã, phường cũ này đã được chia cho nhiều xã, phường mới; xin ghi mã xã, phường"
              " hiện hành nơi ở: {candidates}.",
        "en": "This old commune was divided between several current ones; please give the"
              " current commune code of the address: {candidates}.",
    },
}

register_messages(MESSAGES)
