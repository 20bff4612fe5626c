"""The record: registry, record sections, vaccination schedule; models, services, API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the record's blueprints, messages and CLI."""
    import ehr.messages  # noqa: F401  (registers the record's texts)
    from ehr.api import bp as records_bp
    from ehr.api_citizens import bp as citizens_bp
    from ehr.cli import register_cli

    register_cli(app)
    app.extensions["phr.immunization_doses"] = immunization_doses_of
    app.register_blueprint(citizens_bp)
    app.register_blueprint(records_bp)


def immunization_doses_of(session: Any, citizen_ids: Iterable[Any]) -> dict[Any, list[Any]]:
    """The recorded doses of many citizens at once (vaccination reminders ask through this)."""
    from sqlalchemy import select

    from core.encryption import keyring
    from ehr.record_models import STATUS_CURRENT, RecordEntry
    from ehr.schedule_service import given_doses

    ids = list(citizen_ids)
    if not ids:
        return {}
    keyring(session).preload(ids)
    entries = session.scalars(select(RecordEntry).where(
        RecordEntry.citizen_id.in_(ids), RecordEntry.section == "immunizations",
        RecordEntry.status == STATUS_CURRENT,
    ))
    grouped: dict[Any, list[Any]] = {citizen_id: [] for citizen_id in ids}
    for entry in entries:
        grouped.setdefault(entry.citizen_id, []).append(entry)
    return {citizen_id: given_doses(found) for citizen_id, found in grouped.items()}
