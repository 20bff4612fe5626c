"""How entries, citizens and pages look on the wire (snake_case, RFC 3339 with offset)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from consent.policy_types import CITIZEN_REPORTED
from core.encryption import ERASED
from core.errors import BadRequest, Message
from core.i18n import current_language
from ehr.record_models import STATUS_ENTERED_IN_ERROR
from registry.models import Citizen
from registry.reference.display import display_names

if TYPE_CHECKING:  # views get rows from the records repository, never select them
    from ehr.record_models import RecordEntry, RecordEntryVersion

ENTRY_FIELDS = (
    "id", "citizen_id", "section", "version", "status", "sensitivity", "source", "clinical_date",
    "author", "facility", "created_at", "updated_at", "entered_in_error", "data",
    "display", "display_lang", "verification",
)


def iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value.isoformat()


def _plain(value: Any) -> Any:
    return None if value is ERASED else value


class Names:
    """Display names of practitioners and facilities, fetched once per response."""

    def __init__(self, practitioners: Mapping[uuid.UUID, str],
                 facilities: Mapping[uuid.UUID, tuple[str, str]]) -> None:
        self.practitioners = practitioners
        self.facilities = facilities

    def author(self, practitioner_id: uuid.UUID | None) -> dict[str, Any] | None:
        if practitioner_id is None:
            return None
        return {"practitioner_id": str(practitioner_id),
                "name": self.practitioners.get(practitioner_id)}

    def facility(self, facility_id: uuid.UUID | None) -> dict[str, Any] | None:
        if facility_id is None:
            return None
        code, name = self.facilities.get(facility_id, (None, None))
        return {"id": str(facility_id), "code": code, "name": name}


def entry_view(entry: RecordEntry, names: Names, fields: frozenset[str] | None = None,
               lang: str | None = None) -> dict:
    """An entry; with `fields`, only those (and the id), so a list decrypts only what it shows.

    Names of its codes come in `lang` (default: the request's language); with `fields`, only
    when `display` is asked for, naming the `data.<field>`s chosen (all codes without data).
    """

    def wanted(name: str) -> bool:
        return fields is None or name in fields or name == "id"

    view: dict[str, Any] = {}
    if wanted("id"):
        view["id"] = str(entry.id)
    if wanted("citizen_id"):
        view["citizen_id"] = str(entry.citizen_id)
    if wanted("section"):
        view["section"] = entry.section
    if wanted("version"):
        view["version"] = entry.version
    if wanted("status"):
        view["status"] = entry.status
    if wanted("sensitivity"):
        view["sensitivity"] = entry.sensitivity
    if wanted("source"):
        view["source"] = entry.source
    if wanted("clinical_date"):
        view["clinical_date"] = iso(entry.clinical_date)
    if wanted("author"):
        view["author"] = names.author(entry.author_practitioner_id)
    if wanted("facility"):
        view["facility"] = names.facility(entry.facility_id)
    if wanted("created_at"):
        view["created_at"] = iso(entry.created_at)
    if wanted("updated_at"):
        view["updated_at"] = iso(entry.updated_at)
    if wanted("entered_in_error"):
        view["entered_in_error"] = (
            {"reason": _plain(entry.error_reason), "at": iso(entry.entered_in_error_at)}
            if entry.status == STATUS_ENTERED_IN_ERROR else None
        )
    data_fields = {f[5:] for f in fields or () if f.startswith("data.")}
    if fields is None or "data" in fields:
        view["data"] = _plain(entry.content)
    elif data_fields:
        content = _plain(entry.content) or {}
        view["data"] = {k: v for k, v in content.items() if k in data_fields}
    if wanted("display") or wanted("display_lang"):
        # The names of what is shown: the chosen `data.<field>`s, or all codes when no data is.
        named = view["data"] if "data" in view else _plain(entry.content)
        for key, value in _display(entry.section, named, lang).items():
            if wanted(key):
                view[key] = value
    if wanted("verification"):
        view["verification"] = _verification(entry)
    return view


def _display(section: str | None, content: Mapping[str, Any] | None,
             lang: str | None) -> dict[str, Any]:
    names = display_names(section, content, lang or current_language())
    return {"display": names.names, "display_lang": names.languages}


def _verification(row: RecordEntry | RecordEntryVersion) -> dict[str, Any] | None:
    # Only what a citizen reported waits for a clinician to confirm it; a clinician's or a
    # station's entry is the clinical source itself, so it has no verification (null).
    if row.source != CITIZEN_REPORTED:
        return None
    return {
        "status": "verified" if row.verified_at is not None else "unverified",
        "verified_at": iso(row.verified_at),
        "verified_facility_id": (str(row.verified_facility_id)
                                 if row.verified_facility_id is not None else None),
    }


def version_view(version: RecordEntryVersion, names: Names, lang: str | None = None,
                 section: str | None = None) -> dict[str, Any]:
    """An earlier version, with the names of its own codes and its own verification.

    Versions do not store their section; without `section` its coded fields are recognised by
    name (unambiguous across sections), which names them the same.
    """
    content = _plain(version.content)
    return {
        "version": version.version,
        "status": version.status,
        "sensitivity": version.sensitivity,
        "source": version.source,
        "clinical_date": iso(version.clinical_date),
        "author": names.author(version.author_practitioner_id),
        "facility": names.facility(version.facility_id),
        "recorded_at": iso(version.recorded_at),
        "superseded_at": iso(version.superseded_at),
        "data": content,
        **_display(section, content, lang),
        "verification": _verification(version),
    }


def parse_fields(raw: str | None) -> frozenset[str] | None:
    """`fields=id,version,data.vaccine_code` → the set; unknown names are a 400."""
    if not raw:
        return None
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(n for n in names if n not in ENTRY_FIELDS and not (
        n.startswith("data.") and len(n) > 5))
    if unknown:
        raise BadRequest(Message("problem.invalid-fields.detail", names=", ".join(unknown)),
                         code="invalid-fields")
    return names


def citizen_view(citizen: Citizen, *, full: bool) -> dict[str, Any]:
    """Demographics; `full` adds contact details and identifiers (self, guardian, clinician)."""
    erased = citizen.full_name is ERASED
    view: dict[str, Any] = {
        "id": str(citizen.id),
        "full_name": _plain(citizen.full_name),
        "date_of_birth": iso(_plain(citizen.date_of_birth)),
        "sex": _plain(citizen.sex),
        "erased": erased,
    }
    if full:
        view.update({
            "health_id": _plain(citizen.health_id),
            "social_insurance_code": _plain(citizen.social_insurance_code),
            "phone": _plain(citizen.phone),
            "email": _plain(citizen.email),
            "address": _plain(citizen.address),
            "ethnicity": _plain(citizen.ethnicity),
            "preferred_language": citizen.preferred_language,
            "version": citizen.version,
            "updated_at": iso(citizen.updated_at),
        })
    return view


def lookup_view(citizen: Citizen) -> dict[str, Any]:
    """Minimal identity for a station confirming who is in front of them."""
    return citizen_view(citizen, full=False)


def page_view(items: Iterable[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": list(items), "next_cursor": next_cursor}
