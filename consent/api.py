"""HTTP surface of consent: consents, access requests, break-glass, guardians and claims of
children, the access log and the review of its flags.

Each handler: token scope → parse → service (which asks the decision point and audits) →
commit once → serialize. Reads commit too: their audit event is part of the answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import IntegrityError

from auth.resource import current_caller, require_scope
from consent import services
from consent.access_log import flag_view
from consent.pdp import RequestContext, request_context, require
from consent.policy_types import Actor
from consent.schemas import (
    AccessRequestCreateSchema,
    ApproveSchema,
    BreakGlassCreateSchema,
    ConsentCreateSchema,
    DependantClaimSchema,
    EmptySchema,
    FlagReviewSchema,
    FlagSchema,
    GuardianCreateSchema,
    GuardianEndSchema,
)
from consent.views import (
    Register,
    access_request_view,
    break_glass_view,
    claim_view,
    consent_view,
    flag_for_review_view,
    guardian_view,
)
from core import idempotency
from core.conditional import body_etag, json_with_etag
from core.db import db, utcnow
from core.errors import BadRequest, Forbidden, Message
from core.http import json_body
from core.i18n import current_language
from core.pagination import decode_cursor, encode_cursor, parse_limit, parse_timestamp
from core.schemas import load_or_problem
from registry.caller import Caller

bp = Blueprint("consent", __name__, url_prefix="/api/v1")

CITIZEN = "/citizens/<uuid:citizen_id>"


# --- plumbing -------------------------------------------------------------------------------


def _caller(citizen_id: uuid.UUID | None = None) -> tuple[Caller, Actor, RequestContext]:
    caller = current_caller()
    return caller, caller.acting_for_citizen(citizen_id), request_context(caller)


def _optional_body() -> dict[str, Any]:
    """The JSON body, or {} when none was sent (approve, deny, flag)."""
    if not request.get_data(cache=True):
        return {}
    return json_body()


def _flag(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise BadRequest(Message("problem.invalid-flag.detail", name=name), code="invalid-flag")
    return raw == "true"


def _created(view: dict[str, Any], *, location: str, citizen_id: uuid.UUID,
             replayable: tuple[bytes, bytes] | None, status: int = 201) -> Response:
    """Commit (with the idempotency record) and answer 201 (or 202: accepted, pending)."""
    etag = body_etag(view)
    if replayable is not None:
        scope, fingerprint = replayable
        idempotency.remember(db.session, scope=scope, fingerprint=fingerprint,
                             citizen_id=citizen_id, status=status,
                             body={"body": view, "etag": etag}, resource_id=view.get("id"))
    db.session.commit()
    response = jsonify(view)
    response.status_code = status
    response.headers["ETag"] = etag
    response.headers["Location"] = location
    return response


def _idempotent(body: dict[str, Any], create: Callable[[tuple[bytes, bytes] | None], Response],
                *, reread: Callable[[], None] | None = None) -> Response:
    """Replay the first answer for a repeated Idempotency-Key; else create once.

    A stored answer shows what was created (a consent's grantee, a guardian's name), so it is
    served only after `reread`, the audited decision a read of it gets now: a caller who lost
    their standing since gets the denial, not the old answer."""
    key = idempotency.header_key()
    if key is None:
        return create(None)
    principal = current_caller()
    scope = idempotency.scope_of(client_id=principal.client_id, account_id=principal.account_id,
                                 key=key)
    fingerprint = idempotency.fingerprint_of(method="POST", route=request.path, body=body)
    replay = idempotency.lookup(db.session, scope=scope, fingerprint=fingerprint)
    if replay is None:
        try:
            return create((scope, fingerprint))
        except IntegrityError:
            # A concurrent request with the same key committed first: answer with its result.
            db.session.rollback()
            replay = idempotency.lookup(db.session, scope=scope, fingerprint=fingerprint)
            if replay is None:
                raise
    db.session.rollback()
    if reread is not None:
        reread()  # raises the (committed, audited) denial
        db.session.commit()  # the read's audit event goes with the answer
    stored = dict(replay.body)
    response = jsonify(stored["body"])
    response.status_code = replay.status
    response.headers["ETag"] = stored.get("etag", body_etag(stored["body"]))
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _reread(actor: Actor, citizen_id: uuid.UUID, target: str, context: RequestContext
            ) -> Callable[[], None]:
    def decide() -> None:
        require(db.session, actor=actor, citizen_id=citizen_id, target=target, action="read",
                context=context)
    return decide


def _before(cursor: str | None, *, keys: tuple[str, ...]) -> dict[str, Any] | None:
    if not cursor:
        return None
    position = decode_cursor(cursor)
    if set(position) != set(keys):
        raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor")
    return position


# --- consents -------------------------------------------------------------------------------


@bp.get(CITIZEN + "/consents")
def list_consents(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="consents", interaction="s")
    _, actor, context = _caller(citizen_id)
    now = utcnow()
    rows = services.list_consents(db.session, actor=actor, citizen_id=citizen_id,
                                  context=context, include_ended=_flag("include_ended"), now=now)
    names = services.grantee_names(db.session, rows)
    payload = {"items": [consent_view(row, names, now) for row in rows]}
    db.session.commit()
    return json_with_etag(payload)


@bp.post(CITIZEN + "/consents")
def grant_consent(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="consents", interaction="c")
    body = json_body()
    data = load_or_problem(ConsentCreateSchema(), body)
    _, actor, context = _caller(citizen_id)

    def create(replayable: tuple[bytes, bytes] | None) -> Response:
        now = utcnow()
        terms = services.ConsentTerms(
            grantee_type=data["grantee"]["type"], grantee_id=data["grantee"]["id"],
            sections=frozenset(data["sections"]), categories=frozenset(data["categories"]),
            access=data["access"], purpose=data["purpose"], data_from=data["data_from"],
            data_until=data["data_until"], expires_at=data["expires_at"],
        )
        row = services.grant_consent(db.session, actor=actor, citizen_id=citizen_id,
                                     terms=terms, context=context, now=now)
        db.session.flush()
        view = consent_view(row, services.grantee_names(db.session, [row]), now)
        return _created(view, location=f"{request.path.rstrip('/')}/{row.id}",
                        citizen_id=citizen_id, replayable=replayable)

    return _idempotent(body, create, reread=_reread(actor, citizen_id, "consents", context))


@bp.delete(CITIZEN + "/consents/<uuid:consent_id>")
def revoke_consent(citizen_id: uuid.UUID, consent_id: uuid.UUID) -> Response:
    require_scope(resource="consents", interaction="d")
    _, actor, context = _caller(citizen_id)
    now = utcnow()
    row = services.revoke_consent(db.session, actor=actor, citizen_id=citizen_id,
                                  consent_id=consent_id, context=context, now=now)
    view = consent_view(row, services.grantee_names(db.session, [row]), now)
    db.session.commit()
    return jsonify(view)


# --- access requests ------------------------------------------------------------------------


def _request_views(rows: list[Any]) -> list[dict[str, Any]]:
    register = Register(db.session, practitioners=(r.practitioner_id for r in rows),
                        facilities=(r.facility_id for r in rows))
    return [access_request_view(row, register) for row in rows]


def _status_filter(allowed: tuple[str, ...] = ("pending", "approved", "denied"),
                   message: str = "problem.invalid-status.detail") -> str | None:
    status = request.args.get("status") or None
    if status is not None and status not in allowed:
        raise BadRequest(Message(message), code="invalid-status")
    return status


def _keyset(name: str) -> tuple[Any, uuid.UUID] | None:
    """The (time, id) position a cursor of `name`/`id` encodes, or None for the first page."""
    position = _before(request.args.get("cursor"), keys=(name, "id"))
    if position is None:
        return None
    moment = parse_timestamp(str(position[name]), name="cursor")
    return (moment, uuid.UUID(str(position["id"]))) if moment else None


def _next_cursor(rows: list[Any], name: str, more: bool) -> str | None:
    if not more or not rows:
        return None
    return encode_cursor({name: getattr(rows[-1], name).isoformat(), "id": str(rows[-1].id)})


@bp.get(CITIZEN + "/access-requests")
def list_access_requests(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="access-requests", interaction="s")
    _, actor, context = _caller(citizen_id)
    rows = services.list_citizen_requests(db.session, actor=actor, citizen_id=citizen_id,
                                          context=context, status=_status_filter())
    payload = {"items": _request_views(rows)}
    db.session.commit()
    return json_with_etag(payload)


@bp.post(CITIZEN + "/access-requests")
def create_access_request(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="access-requests", interaction="c")
    body = json_body()
    data = load_or_problem(AccessRequestCreateSchema(), body)
    _, actor, context = _caller(citizen_id)

    def create(replayable: tuple[bytes, bytes] | None) -> Response:
        row = services.request_access(
            db.session, actor=actor, citizen_id=citizen_id, sections=frozenset(data["sections"]),
            categories=frozenset(data["categories"]), access=data["access"],
            reason=data["reason"], facility_id=data["facility_id"], context=context,
        )
        db.session.flush()
        [view] = _request_views([row])
        return _created(view, location=f"{request.path.rstrip('/')}/{row.id}",
                        citizen_id=citizen_id, replayable=replayable)

    return _idempotent(body, create)


def _answer(citizen_id: uuid.UUID, request_id: uuid.UUID, *, approve: bool) -> Response:
    require_scope(resource="access-requests", interaction="u")
    data = load_or_problem(ApproveSchema() if approve else EmptySchema(), _optional_body())
    _, actor, context = _caller(citizen_id)
    row = services.answer_access_request(
        db.session, actor=actor, citizen_id=citizen_id, request_id=request_id, approve=approve,
        expires_at=data.get("expires_at"), context=context,
    )
    [view] = _request_views([row])
    db.session.commit()
    return jsonify(view)


@bp.post(CITIZEN + "/access-requests/<uuid:request_id>/approve")
def approve_access_request(citizen_id: uuid.UUID, request_id: uuid.UUID) -> Response:
    return _answer(citizen_id, request_id, approve=True)


@bp.post(CITIZEN + "/access-requests/<uuid:request_id>/deny")
def deny_access_request(citizen_id: uuid.UUID, request_id: uuid.UUID) -> Response:
    return _answer(citizen_id, request_id, approve=False)


@bp.get("/me/access-requests")
def my_access_requests() -> Response:
    require_scope(resource="access-requests", interaction="s")
    principal = current_caller()
    if principal.role != "practitioner" or principal.practitioner_id is None:
        raise Forbidden()
    limit = parse_limit(request.args.get("limit"))
    position = _before(request.args.get("cursor"), keys=("created_at", "id"))
    before = None
    if position is not None:
        created = parse_timestamp(str(position["created_at"]), name="cursor")
        before = (created, uuid.UUID(str(position["id"]))) if created else None
    rows = services.list_practitioner_requests(
        db.session, practitioner_id=principal.practitioner_id, status=_status_filter(),
        limit=limit + 1, before=before,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor({"created_at": last.created_at.isoformat(),
                                     "id": str(last.id)})
    payload = {"items": _request_views(rows), "next_cursor": next_cursor}
    db.session.commit()
    return json_with_etag(payload)


# --- break-glass ----------------------------------------------------------------------------


@bp.post(CITIZEN + "/break-glass")
def open_break_glass(citizen_id: uuid.UUID) -> Response:
    # Break-glass opens every non-restricted section for reading: the token must read all.
    require_scope(resource="summary", interaction="r")
    body = json_body()
    data = load_or_problem(BreakGlassCreateSchema(), body)
    _, actor, context = _caller(citizen_id)

    def create(replayable: tuple[bytes, bytes] | None) -> Response:
        row = services.open_break_glass(db.session, actor=actor, citizen_id=citizen_id,
                                        reason=data["reason"], facility_id=data["facility_id"],
                                        context=context)
        db.session.flush()
        register = Register(db.session, practitioners=[row.practitioner_id],
                            facilities=[row.facility_id])
        return _created(break_glass_view(row, register),
                        location=f"{request.path.rstrip('/')}/{row.id}",
                        citizen_id=citizen_id, replayable=replayable)

    return _idempotent(body, create)


@bp.get("/facilities/<uuid:facility_id>/break-glass")
def facility_break_glass(facility_id: uuid.UUID) -> Response:
    require_scope(resource="access-log", interaction="s")
    _, actor, context = _caller()
    limit = parse_limit(request.args.get("limit"))
    position = _before(request.args.get("cursor"), keys=("opened_at", "id"))
    before = None
    if position is not None:
        opened = parse_timestamp(str(position["opened_at"]), name="cursor")
        before = (opened, uuid.UUID(str(position["id"]))) if opened else None
    rows = services.list_for_review(db.session, actor=actor, facility_id=facility_id,
                                    context=context, unreviewed_only=_flag("unreviewed"),
                                    limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    register = Register(db.session, practitioners=(r.practitioner_id for r in rows),
                        facilities=[facility_id])
    next_cursor = None
    if more:
        next_cursor = encode_cursor({"opened_at": rows[-1].opened_at.isoformat(),
                                     "id": str(rows[-1].id)})
    payload = {"items": [break_glass_view(r, register) for r in rows], "next_cursor": next_cursor}
    db.session.commit()
    return json_with_etag(payload)


@bp.post("/facilities/<uuid:facility_id>/break-glass/<uuid:break_glass_id>/review")
def review_break_glass(facility_id: uuid.UUID, break_glass_id: uuid.UUID) -> Response:
    require_scope(resource="access-log", interaction="u")
    load_or_problem(EmptySchema(), _optional_body())
    principal, actor, context = _caller()
    row = services.mark_reviewed(db.session, actor=actor, facility_id=facility_id,
                                 break_glass_id=break_glass_id, account_id=principal.account_id,
                                 context=context)
    register = Register(db.session, practitioners=[row.practitioner_id],
                        facilities=[row.facility_id])
    view = break_glass_view(row, register)
    db.session.commit()
    return jsonify(view)


# --- guardians ------------------------------------------------------------------------------


@bp.get(CITIZEN + "/guardians")
def list_guardians(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="s")
    _, actor, context = _caller(citizen_id)
    views = services.list_guardians(db.session, actor=actor, citizen_id=citizen_id,
                                    context=context, include_ended=_flag("include_ended"))
    payload = {"items": [guardian_view(view) for view in views]}
    db.session.commit()
    return json_with_etag(payload)


@bp.post(CITIZEN + "/guardians")
def add_guardian(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="c")
    body = json_body()
    data = load_or_problem(GuardianCreateSchema(), body)
    principal, actor, context = _caller(citizen_id)

    def create(replayable: tuple[bytes, bytes] | None) -> Response:
        ref = data["guardian"]
        row = services.add_guardian(
            db.session, actor=actor, dependant_id=citizen_id,
            guardian=services.PersonRef(citizen_id=ref["citizen_id"],
                                        health_id=ref["health_id"],
                                        date_of_birth=ref["date_of_birth"]),
            kind=data["kind"], relationship=data["relationship"],
            categories=frozenset(data["categories"]), context=context,
            account_id=principal.account_id,
        )
        db.session.flush()
        view = guardian_view(services.describe_guardianship(db.session, row))
        return _created(view, location=f"{request.path.rstrip('/')}/{row.id}",
                        citizen_id=citizen_id, replayable=replayable)

    return _idempotent(body, create, reread=_reread(actor, citizen_id, "guardians", context))


@bp.delete(CITIZEN + "/guardians/<uuid:guardianship_id>")
def revoke_guardian(citizen_id: uuid.UUID, guardianship_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="d")
    principal, actor, context = _caller(citizen_id)
    row = services.revoke_guardian(db.session, actor=actor, citizen_id=citizen_id,
                                   guardianship_id=guardianship_id, context=context,
                                   account_id=principal.account_id)
    view = guardian_view(services.describe_guardianship(db.session, row))
    db.session.commit()
    return jsonify(view)


@bp.get(CITIZEN + "/guardians/<uuid:guardianship_id>")
def read_guardian(citizen_id: uuid.UUID, guardianship_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="r")
    _, actor, context = _caller(citizen_id)
    view = guardian_view(services.read_guardianship(
        db.session, actor=actor, citizen_id=citizen_id, guardianship_id=guardianship_id,
        context=context))
    db.session.commit()
    return json_with_etag(view)


@bp.post(CITIZEN + "/guardians/<uuid:guardianship_id>/end")
def end_guardian(citizen_id: uuid.UUID, guardianship_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="d")
    data = load_or_problem(GuardianEndSchema(), json_body())
    principal, actor, context = _caller(citizen_id)
    row = services.revoke_guardian(db.session, actor=actor, citizen_id=citizen_id,
                                   guardianship_id=guardianship_id, context=context,
                                   account_id=principal.account_id, reason=data["reason"])
    view = guardian_view(services.describe_guardianship(db.session, row))
    db.session.commit()
    return jsonify(view)


# --- claims of a child ("this is my child") -------------------------------------------------


@bp.post("/me/dependants")
def claim_dependant() -> Response:
    require_scope(resource="guardians", interaction="c")
    body = json_body()
    data = load_or_problem(DependantClaimSchema(), body)
    principal, actor, context = _caller()

    def create(replayable: tuple[bytes, bytes] | None) -> Response:
        row = services.claim_dependant(
            db.session, actor=actor, health_id=data["health_id"],
            date_of_birth=data["date_of_birth"], relationship=data["relationship"],
            context=context, account_id=principal.account_id,
        )
        db.session.flush()
        [view] = [claim_view(v) for v in services.claim_views(db.session, [row])]
        location = f"/api/v1/citizens/{row.dependant_citizen_id}/guardian-claims/{row.id}"
        # 202: the claim is recorded; the guardianship waits for a guardian or the station.
        return _created(view, location=location, citizen_id=row.dependant_citizen_id,
                        replayable=replayable, status=202)

    return _idempotent(body, create)


@bp.get("/me/guardian-claims")
def my_guardian_claims() -> Response:
    require_scope(resource="guardians", interaction="s")
    principal = current_caller()
    if principal.role != "citizen" or principal.citizen_id is None:
        raise Forbidden()
    limit = parse_limit(request.args.get("limit"))
    views = services.list_my_claims(db.session, claimant_id=principal.citizen_id,
                                    status=_status_filter(), limit=limit + 1,
                                    before=_keyset("created_at"))
    more = len(views) > limit
    views = views[:limit]
    payload = {"items": [claim_view(v) for v in views],
               "next_cursor": _next_cursor([v.row for v in views], "created_at", more)}
    db.session.commit()
    return json_with_etag(payload)


@bp.get(CITIZEN + "/guardian-claims")
def list_guardian_claims(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="s")
    _, actor, context = _caller(citizen_id)
    views = services.list_claims(db.session, actor=actor, citizen_id=citizen_id,
                                 context=context, status=_status_filter())
    payload = {"items": [claim_view(v) for v in views]}
    db.session.commit()
    return json_with_etag(payload)


@bp.get(CITIZEN + "/guardian-claims/<uuid:claim_id>")
def read_guardian_claim(citizen_id: uuid.UUID, claim_id: uuid.UUID) -> Response:
    require_scope(resource="guardians", interaction="r")
    _, actor, context = _caller(citizen_id)
    view = claim_view(services.read_claim(db.session, actor=actor, citizen_id=citizen_id,
                                          claim_id=claim_id, context=context))
    db.session.commit()
    return json_with_etag(view)


def _answer_claim(citizen_id: uuid.UUID, claim_id: uuid.UUID, *, approve: bool) -> Response:
    require_scope(resource="guardians", interaction="u")
    load_or_problem(EmptySchema(), _optional_body())
    principal, actor, context = _caller(citizen_id)
    view = claim_view(services.answer_claim(
        db.session, actor=actor, citizen_id=citizen_id, claim_id=claim_id, approve=approve,
        context=context, account_id=principal.account_id))
    db.session.commit()
    return jsonify(view)


@bp.post(CITIZEN + "/guardian-claims/<uuid:claim_id>/approve")
def approve_guardian_claim(citizen_id: uuid.UUID, claim_id: uuid.UUID) -> Response:
    return _answer_claim(citizen_id, claim_id, approve=True)


@bp.post(CITIZEN + "/guardian-claims/<uuid:claim_id>/deny")
def deny_guardian_claim(citizen_id: uuid.UUID, claim_id: uuid.UUID) -> Response:
    return _answer_claim(citizen_id, claim_id, approve=False)


# --- access log -----------------------------------------------------------------------------


@bp.get(CITIZEN + "/access-log")
def access_log(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="access-log", interaction="s")
    _, actor, context = _caller(citizen_id)
    limit = parse_limit(request.args.get("limit"))
    position = _before(request.args.get("cursor"), keys=("seq",))
    before = None
    if position is not None:
        if not isinstance(position["seq"], int):
            raise BadRequest(Message("problem.invalid-cursor.detail"), code="invalid-cursor")
        before = position["seq"]
    page = services.read_access_log(
        db.session, actor=actor, citizen_id=citizen_id, context=context,
        lang=current_language(), limit=limit, before=before,
        include_own=_flag("include_own"),
    )
    next_cursor = encode_cursor({"seq": page.next_before}) if page.next_before else None
    payload = {"items": page.items, "next_cursor": next_cursor}
    db.session.commit()
    return json_with_etag(payload)


@bp.post(CITIZEN + "/access-log/<uuid:event_id>/flag")
def flag_access(citizen_id: uuid.UUID, event_id: uuid.UUID) -> Response:
    require_scope(resource="access-log", interaction="u")
    data = load_or_problem(FlagSchema(), _optional_body())
    _, actor, context = _caller(citizen_id)
    flag, created = services.flag_event(db.session, actor=actor, citizen_id=citizen_id,
                                        event_id=event_id, note=data.get("note"),
                                        context=context)
    db.session.flush()
    view = flag_view(flag)
    db.session.commit()
    response = jsonify(view)
    response.status_code = 201 if created else 200
    return response


@bp.get("/facilities/<uuid:facility_id>/access-flags")
def facility_access_flags(facility_id: uuid.UUID) -> Response:
    require_scope(resource="access-log", interaction="s")
    _, actor, context = _caller()
    limit = parse_limit(request.args.get("limit"))
    status = _status_filter(("open", "reviewed"), "problem.invalid-flag-status.detail")
    items = services.list_flags_for_review(db.session, actor=actor, facility_id=facility_id,
                                           context=context, status=status, limit=limit + 1,
                                           before=_keyset("created_at"))
    more = len(items) > limit
    items = items[:limit]
    register = Register(db.session, practitioners=(i.event.actor_practitioner_id for i in items),
                        facilities=[facility_id])
    payload = {"items": [flag_for_review_view(i, register) for i in items],
               "next_cursor": _next_cursor([i.flag for i in items], "created_at", more)}
    db.session.commit()
    return json_with_etag(payload)


@bp.post("/facilities/<uuid:facility_id>/access-flags/<uuid:flag_id>/review")
def review_access_flag(facility_id: uuid.UUID, flag_id: uuid.UUID) -> Response:
    require_scope(resource="access-log", interaction="u")
    data = load_or_problem(FlagReviewSchema(), json_body())
    principal, actor, context = _caller()
    item = services.review_flag(db.session, actor=actor, facility_id=facility_id,
                                flag_id=flag_id, outcome=data["outcome"], note=data["note"],
                                context=context, account_id=principal.account_id)
    register = Register(db.session, practitioners=[item.event.actor_practitioner_id],
                        facilities=[facility_id])
    view = flag_for_review_view(item, register)
    db.session.commit()
    return jsonify(view)
