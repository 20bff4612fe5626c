"""HTTP surface of the record: parse → authorize (in the services) → call a service → serialize.

Handlers stay thin; every route needs a bearer token (auth), a scope covering the FHIR
resource and interaction, and the consent decision the services ask for.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from auth.resource import current_caller, remembers_principal, require_scope
from auth.scopes import SECTION_RESOURCES
from core import idempotency
from core.conditional import body_etag, json_with_etag, require_if_match, version_etag
from core.db import db
from core.errors import Message, NotFound, ValidationFailed
from core.http import json_body
from core.pagination import decode_cursor, encode_cursor, parse_limit, parse_timestamp
from core.schemas import clean_text, text_problems
from ehr import records
from ehr.access import RecordAccess
from ehr.repository import RecordRepository
from ehr.views import entry_view, page_view, parse_fields, version_view

if TYPE_CHECKING:
    from ehr.record_models import RecordEntry

bp = Blueprint("records", __name__, url_prefix="/api/v1")

# Werkzeug's `any` converter: an unknown section is a 404 and never shadows other routes.
SECTION = "<any(" + ", ".join(f'"{name}"' for name in records.SECTIONS) + "):section>"


def new_access() -> RecordAccess:
    return RecordAccess(db.session, current_caller())


def new_repository() -> RecordRepository:
    return RecordRepository(new_access())


def _section(section: str) -> str:
    if section not in records.SECTIONS:
        raise NotFound()
    return section


def entry_response(access: RecordAccess, entry: RecordEntry, *, status: int = 200) -> Response:
    view = entry_view(entry, records.names_of(access, [entry]))
    response = json_with_etag(view, etag=version_etag(entry.id, entry.version), status=status)
    return response


def idempotent_create(
    *, route: str, citizen_id: uuid.UUID, body: dict[str, Any],
    create: Callable[[], tuple[dict[str, Any], str, str]], section: str | None,
) -> Response:
    """Run `create` once per Idempotency-Key: replays return the first answer, byte for byte,
    to a caller who may read now what it created (`section`; None: a registration)."""
    key = idempotency.header_key()
    principal = current_caller()
    scope = fingerprint = None
    if key is not None:
        scope = idempotency.scope_of(client_id=principal.client_id,
                                     account_id=principal.account_id, key=key)
        fingerprint = idempotency.fingerprint_of(method="POST", route=route, body=body)
        replay = new_repository().replay(scope=scope, fingerprint=fingerprint, section=section,
                                         citizen_id=citizen_id if section else None)
        if replay is not None:
            _end_replay(section)
            return _replayed(replay, location=_location(replay))
    view, etag, resource_id = create()
    if scope is not None and fingerprint is not None:
        idempotency.remember(db.session, scope=scope, fingerprint=fingerprint,
                             citizen_id=citizen_id, status=201,
                             body={"body": view, "etag": etag}, resource_id=resource_id)
    try:
        db.session.commit()
    except IntegrityError:
        # A concurrent request with the same key committed first: answer with its result.
        db.session.rollback()
        if scope is None or fingerprint is None:
            raise
        replay = new_repository().replay(scope=scope, fingerprint=fingerprint, section=section)
        if replay is None:
            raise
        _end_replay(section)
        return _replayed(replay, location=_location(replay))
    response = jsonify(view)
    response.status_code = 201
    response.headers["ETag"] = etag
    response.headers["Location"] = f"{request.path.rstrip('/')}/{resource_id}"
    return response


def _end_replay(section: str | None) -> None:
    """Keep the audit event of a replayed entry's read decision; a registration's replay made
    no decision of its own (the route's, about a person it did not create, is dropped)."""
    if section is None:
        db.session.rollback()
    else:
        db.session.commit()


def _location(replay: idempotency.Replay) -> str | None:
    body = dict(replay.body).get("body") or {}
    resource_id = body.get("id") if isinstance(body, dict) else None
    return f"{request.path.rstrip('/')}/{resource_id}" if resource_id else None


def _replayed(replay: idempotency.Replay, *, location: str | None = None) -> Response:
    stored = dict(replay.body)
    response = jsonify(stored["body"])
    response.status_code = replay.status
    response.headers["ETag"] = stored.get("etag", body_etag(stored["body"]))
    response.headers["Idempotent-Replayed"] = "true"
    if location:
        response.headers["Location"] = location
    return response


# Sections ----------

@bp.get("/citizens/<uuid:citizen_id>/" + SECTION)
@remembers_principal
def list_section(citizen_id: uuid.UUID, section: str) -> Response:
    section = _section(section)
    require_scope(resource=SECTION_RESOURCES[section], interaction="s")
    fields = parse_fields(request.args.get("fields"))
    limit = parse_limit(request.args.get("limit"))
    cursor = request.args.get("cursor")
    position = decode_cursor(cursor) if cursor else None
    updated_since = parse_timestamp(request.args.get("updated_since"), name="updated_since")
    include_eie = request.args.get("include_entered_in_error", "false") == "true"
    access = new_access()
    page = RecordRepository(access).page(
        citizen_id=citizen_id, section=section, limit=limit, position=position,
        updated_since=updated_since, include_entered_in_error=include_eie,
    )
    names = records.names_of(access, page.entries)
    items = [entry_view(e, names, fields) for e in page.entries]
    next_cursor = encode_cursor(page.next_position) if page.next_position else None
    payload = page_view(items, next_cursor)
    db.session.commit()  # the audit event of this read
    return json_with_etag(payload)


@bp.post("/citizens/<uuid:citizen_id>/" + SECTION)
@remembers_principal
def create_in_section(citizen_id: uuid.UUID, section: str) -> Response:
    section = _section(section)
    require_scope(resource=SECTION_RESOURCES[section], interaction="c")
    body = json_body()

    def create() -> tuple[dict[str, Any], str, str]:
        access = new_access()
        entry = records.create_entry(access, citizen_id=citizen_id, section=section, body=body)
        db.session.flush()
        return (entry_view(entry, records.names_of(access, [entry])),
                version_etag(entry.id, entry.version), str(entry.id))

    return idempotent_create(route=f"/citizens/{citizen_id}/{section}", citizen_id=citizen_id,
                             body=body, create=create, section=section)


@bp.get("/citizens/<uuid:citizen_id>/" + SECTION + "/<uuid:entry_id>")
@remembers_principal
def read_in_section(citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID) -> Response:
    section = _section(section)
    require_scope(resource=SECTION_RESOURCES[section], interaction="r")
    access = new_access()
    entry = RecordRepository(access).entry(citizen_id=citizen_id, section=section,
                                           entry_id=entry_id)
    response = entry_response(access, entry)
    db.session.commit()
    return response


@bp.patch("/citizens/<uuid:citizen_id>/" + SECTION + "/<uuid:entry_id>")
def update_in_section(citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID) -> Response:
    section = _section(section)
    require_scope(resource=SECTION_RESOURCES[section], interaction="u")
    body = json_body()
    access = new_access()
    entry = records.update_entry(
        access, citizen_id=citizen_id, section=section, entry_id=entry_id, patch=body,
        check_version=lambda current: require_if_match(version_etag(current.id, current.version)),
    )
    db.session.flush()
    response = entry_response(access, entry)
    db.session.commit()
    return response


@bp.post("/citizens/<uuid:citizen_id>/" + SECTION + "/<uuid:entry_id>/entered-in-error")
def entered_in_error(citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID) -> Response:
    section = _section(section)
    require_scope(resource=SECTION_RESOURCES[section], interaction="u")
    body = json_body()
    reason = body.get("reason")
    unknown = sorted(set(body) - {"reason"})
    errors: dict[str, list[Message | str]] = {}
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        errors["reason"] = [Message("record.reason-required")]
    elif problems := text_problems(reason, multiline=True):
        errors["reason"] = problems
    for name in unknown:
        errors[name] = [Message("record.unknown-field")]
    if errors:
        raise ValidationFailed(errors=errors)
    access = new_access()
    entry = records.mark_entered_in_error(
        access, citizen_id=citizen_id, section=section, entry_id=entry_id,
        reason=clean_text(reason),
    )
    db.session.flush()
    response = entry_response(access, entry)
    db.session.commit()
    return response


@bp.get("/citizens/<uuid:citizen_id>/" + SECTION + "/<uuid:entry_id>/versions")
@remembers_principal
def versions(citizen_id: uuid.UUID, section: str, entry_id: uuid.UUID) -> Response:
    section = _section(section)
    require_scope(resource=SECTION_RESOURCES[section], interaction="r")
    access = new_access()
    entry, earlier = RecordRepository(access).versions(
        citizen_id=citizen_id, section=section, entry_id=entry_id
    )
    names = records.names_of(access, [entry, *earlier])
    payload = {
        "current": entry_view(entry, names),
        "versions": [version_view(v, names) for v in earlier],
    }
    db.session.commit()
    return json_with_etag(payload)


def today_in_vietnam() -> dt.date:
    clock = current_app.config.get("CLOCK")
    now = clock() if callable(clock) else dt.datetime.now(dt.UTC)
    return (now + dt.timedelta(hours=7)).date()
