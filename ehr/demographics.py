"""Demographics services: read and correct a person's identity and contact details.

The decision point says whether the caller may read or correct at all; the policy says which
fields (`correctable_demographics`) and which view (`sees_contact_details`); the registry
says whether a birth date and sex agree with the health ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from consent.policy import correctable_demographics, sees_contact_details
from core.conditional import version_etag
from core.errors import Message, ValidationFailed
from ehr import records
from ehr.access import RecordAccess
from ehr.views import citizen_view
from registry.schemas import health_id_problems


def read_demographics(access: RecordAccess, citizen_id: uuid.UUID) -> tuple[dict[str, Any], str]:
    """The person as this caller may see them, and its version ETag (audited read)."""
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="demographics", action="read")
    view = citizen_view(citizen, full=sees_contact_details(access.caller))
    return view, version_etag(citizen.id, citizen.version)


def correct_demographics(
    access: RecordAccess, citizen_id: uuid.UUID, changes: Mapping[str, Any], *,
    check_version: Callable[[str], None],
) -> tuple[dict[str, Any], str]:
    """Apply validated `changes` as a new version of the person; `check_version` gets the
    current ETag (the caller's If-Match). Returns the caller's view and the new ETag."""
    citizen = records.get_citizen(access, citizen_id)
    access.require(citizen_id=citizen_id, section="demographics", action="update")
    check_version(version_etag(citizen.id, citizen.version))
    allowed, refusal = correctable_demographics(access.caller)
    refused = sorted(set(changes) - allowed)
    if refused:
        raise ValidationFailed(errors={name: [Message("record." + refusal)] for name in refused})
    if "date_of_birth" in changes or "sex" in changes:
        problems = health_id_problems(
            str(citizen.health_id),
            date_of_birth=changes.get("date_of_birth", citizen.date_of_birth),
            sex=changes.get("sex", citizen.sex),
        )
        if problems:
            field = "date_of_birth" if "date_of_birth" in changes else "sex"
            raise ValidationFailed(errors={field: problems})
    for name, value in changes.items():
        setattr(citizen, name, value)
    citizen.version += 1
    citizen.updated_at = access.now
    access.session.flush()
    view = citizen_view(citizen, full=sees_contact_details(access.caller))
    return view, version_etag(citizen.id, citizen.version)
