"""Past doses a person reports from their own vaccination book, and their verification.

A person knows what the book shows: the vaccine, the date, the dose number, perhaps the lot and
where it was given (a facility of the registry by its code, or just the name written in the
book: a 2021 mass-vaccination site is in no registry). Such a dose is `citizen-reported` and
unverified: the schedule does not count it until station staff have seen the paper record and
verified it (`verify_dose`), which makes a new version like any other change.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from marshmallow import validate

import ehr.card_messages  # noqa: F401  (registers the texts used here)
from consent.policy_types import CITIZEN_REPORTED
from core.errors import Conflict, Message
from core.schemas import ApiSchema, Text
from ehr.access import RecordAccess
from ehr.record_models import STATUS_ENTERED_IN_ERROR
from ehr.repository import RecordRepository
from ehr.section_schemas import ImmunizationSchema, short

if TYPE_CHECKING:
    from collections.abc import Callable

    from ehr.record_models import RecordEntry


class ReportedImmunizationSchema(ImmunizationSchema):
    """A dose as a person's vaccination book shows it: the lot may be missing, the place may be
    only a name, and no performer (a person cannot name a practitioner's registry id). The
    other optional details are the same fields as a recorded dose's."""

    class Meta(ImmunizationSchema.Meta):
        exclude = ("performer_id",)

    lot_number = Text(validate=validate.Length(min=1, max=40))
    facility_name = Text(validate=short)


# Sections whose citizen-reported entries have a shape of their own.
REPORTED_SCHEMAS: dict[str, type[ApiSchema]] = {"immunizations": ReportedImmunizationSchema}


def is_unverified_report(entry: RecordEntry) -> bool:
    """A dose the person reported that no station has verified yet."""
    return entry.source == CITIZEN_REPORTED and entry.verified_at is None


def verify_dose(
    access: RecordAccess, *, citizen_id: uuid.UUID, entry_id: uuid.UUID,
    check_version: Callable[[RecordEntry], None],
) -> RecordEntry:
    """Verify a citizen-reported dose against the paper record (policy action `verify`, decided
    and audited on the entry: 404 for a dose the caller may not verify). The unverified entry
    is kept as a version; the content stays the person's, only who verified it is added."""
    repository = RecordRepository(access)
    entry = repository.entry_to_change(citizen_id=citizen_id, section="immunizations",
                                       entry_id=entry_id, action="verify")
    check_version(entry)
    if entry.status == STATUS_ENTERED_IN_ERROR:
        raise Conflict(Message("record.entered-in-error"), code="entered-in-error")
    if entry.verified_at is not None:
        raise Conflict(Message("record.already-verified"), code="already-verified")
    repository.keep_version(entry)
    facilities = sorted(access.caller.facility_ids)
    entry.verified_at = access.now
    entry.verified_by_practitioner_id = access.caller.practitioner_id
    entry.verified_facility_id = facilities[0] if facilities else None
    entry.version += 1
    entry.updated_at = access.now
    return entry
