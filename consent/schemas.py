"""Request schemas of the consent API (shape only: no queries, no permissions)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf

from consent.access_log import MAX_NOTE
from consent.access_requests import MAX_REASON as MAX_REQUEST_REASON
from consent.break_glass import MAX_REASON as MAX_BREAK_GLASS_REASON
from consent.consents import GRANT_PURPOSES
from consent.guardians import MAX_END_REASON, RELATIONSHIPS
from consent.models import ACCESS_LEVELS, FLAG_OUTCOMES, GRANTEE_TYPES, GUARDIAN_KINDS
from consent.policy_types import GRANTABLE_TARGETS, RESTRICTED_LABELS
from core.errors import Message
from core.schemas import ApiSchema, Text

_SECTIONS = OneOf(sorted(GRANTABLE_TARGETS))
_CATEGORIES = OneOf(sorted(RESTRICTED_LABELS))


def _sections(**kwargs: Any) -> fields.List:
    return fields.List(fields.String(validate=_SECTIONS), validate=Length(min=1), **kwargs)


def _categories() -> fields.List:
    return fields.List(fields.String(validate=_CATEGORIES), load_default=list)


class GranteeSchema(ApiSchema):
    type = fields.String(required=True, validate=OneOf(GRANTEE_TYPES))
    id = fields.UUID(required=True)


class ConsentCreateSchema(ApiSchema):
    grantee = fields.Nested(GranteeSchema, required=True)
    sections = _sections(required=True)
    categories = _categories()
    access = fields.String(load_default="read", validate=OneOf(ACCESS_LEVELS))
    purpose = fields.String(load_default="treatment", validate=OneOf(GRANT_PURPOSES))
    data_from = fields.Date(load_default=None, allow_none=True)
    data_until = fields.Date(load_default=None, allow_none=True)
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)


class AccessRequestCreateSchema(ApiSchema):
    sections = _sections(required=True)
    categories = _categories()
    access = fields.String(load_default="read", validate=OneOf(ACCESS_LEVELS))
    reason = Text(required=True, multiline=True, validate=Length(min=1, max=MAX_REQUEST_REASON))
    facility_id = fields.UUID(load_default=None, allow_none=True)


class ApproveSchema(ApiSchema):
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)


class EmptySchema(ApiSchema):
    """A body that may be absent or `{}`."""


class BreakGlassCreateSchema(ApiSchema):
    reason = Text(required=True, multiline=True,
                  validate=Length(min=1, max=MAX_BREAK_GLASS_REASON))
    facility_id = fields.UUID(load_default=None, allow_none=True)


class PersonRefSchema(ApiSchema):
    citizen_id = fields.UUID(load_default=None)
    health_id = Text(load_default=None, validate=Length(min=9, max=12))
    date_of_birth = fields.Date(load_default=None)

    @validates_schema
    def _one_way(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("citizen_id") is None) == (data.get("health_id") is None):
            raise ValidationError([Message("guardian.ref-one-way")])


class GuardianCreateSchema(ApiSchema):
    guardian = fields.Nested(PersonRefSchema, required=True)
    kind = fields.String(load_default="minor", validate=OneOf(GUARDIAN_KINDS))
    relationship = fields.String(required=True, validate=OneOf(RELATIONSHIPS))
    categories = _categories()


class DependantClaimSchema(ApiSchema):
    health_id = Text(required=True, validate=Length(min=9, max=12))
    date_of_birth = fields.Date(required=True)
    relationship = fields.String(required=True, validate=OneOf(RELATIONSHIPS))


class FlagSchema(ApiSchema):
    note = Text(load_default=None, allow_none=True, multiline=True,
                validate=Length(max=MAX_NOTE))


class GuardianEndSchema(ApiSchema):
    """Why a guardianship ends: the guardians are told."""

    reason = Text(required=True, multiline=True, validate=Length(min=1, max=MAX_END_REASON))


class FlagReviewSchema(ApiSchema):
    outcome = fields.String(required=True, validate=OneOf(FLAG_OUTCOMES))
    note = Text(load_default=None, allow_none=True, multiline=True,
                validate=Length(max=MAX_NOTE))

