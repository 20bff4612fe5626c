"""The record: sections, versions, the records repository, summary, export, schedule status,
station batch; services and API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the record's blueprints, messages and CLI."""
    import ehr.messages  # noqa: F401  (registers the record's texts)
    from ehr.api import bp as records_bp
    from ehr.api_accounts import bp as accounts_bp
    from ehr.api_card import bp as card_bp
    from ehr.api_care import bp as care_bp
    from ehr.api_citizens import bp as citizens_bp
    from ehr.api_directory import bp as directory_bp
    from ehr.api_share import bp as share_bp
    from ehr.api_share import public_bp as share_public_bp
    from ehr.api_worklist import bp as worklist_bp
    from ehr.fhir.api import bp as fhir_bp
    from ehr.fhir.api_operations import bp as fhir_operations_bp
    from ehr.fhir.api_transaction import bp as fhir_transaction_bp

    app.register_blueprint(citizens_bp)
    app.register_blueprint(records_bp)
    for blueprint in (accounts_bp, care_bp, card_bp, directory_bp, worklist_bp, share_bp,
                      share_public_bp, fhir_operations_bp, fhir_transaction_bp, fhir_bp):
        app.register_blueprint(blueprint)


def immunization_doses_of(session: Any, citizen_ids: Iterable[Any]) -> dict[Any, list[Any]]:
    """The recorded doses of many citizens at once (the vaccination reminders; the records
    repository selects them)."""
    from ehr.repository import immunization_doses_of as doses_of
    from ehr.schedule_service import given_doses

    return {citizen_id: given_doses(found)
            for citizen_id, found in doses_of(session, citizen_ids).items()}


def periodic_exams_due(session: Any, citizen_ids: Iterable[Any], today: Any) -> dict[Any, Any]:
    """Citizens whose next periodic examination (set at their latest one) falls due within
    `PERIODIC_EXAM_NOTICE` of `today`, with its date (the periodic-exam reminders)."""
    from ehr.repository import periodic_exams_due_of

    return periodic_exams_due_of(session, citizen_ids, until=today + PERIODIC_EXAM_NOTICE)


# Told two weeks ahead, like the schedule's due-soon window for vaccinations.
PERIODIC_EXAM_NOTICE = dt.timedelta(days=14)
