"""A station issues a person's activation code: shown once for printing, sent by SMS.

Who may is decided as a station's correction of the person's identity is (DESIGN.md §5,
registry acts): station staff or a station's system, for people of its catchment (the commune
it serves, or whom it registered). Anyone else of the catchment's outside gets the 404 an
unknown person gets. The decision is audited in the person's chain as the issue of a code, and
the person reads it in their access log ("Trạm Y tế X đã cấp mã kích hoạt cho tài khoản của
bạn").
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify

from auth.account_codes import ACTIVATION, has_account, issue_code
from auth.errors import RoleNotAllowed
from auth.resource import current_caller, require_scope
from consent.pdp import load_facts, policy_settings, record_decision, request_context
from consent.policy import birthday, decide
from consent.policy_types import Decision, Target
from core.db import db
from core.encryption import ERASED
from core.errors import Conflict, Message, Problem, ValidationFailed
from ehr import records
from ehr.access import RecordAccess
from ehr.api import new_access, today_in_vietnam
from registry.models import Citizen

bp = Blueprint("account_codes", __name__, url_prefix="/api/v1")

# How the issue reads in the audit chain and the access log (auth/account_messages.py).
AUDIT_SECTION = "account"
AUDIT_ACTION = "activation-code"
# The decision it rests on: a station's registry act on the person's identity.
_POLICY_TARGET, _POLICY_ACTION = "demographics", "update"


def _decide(access: RecordAccess, citizen_id: uuid.UUID) -> Decision:
    """Ask the policy as for a station's identity correction; audit it as the issue of a code."""
    actor = access.caller.acting_for_citizen(citizen_id)
    facts = load_facts(access.session, citizen_id=citizen_id, now=access.now, actor=actor,
                       section=_POLICY_TARGET, action=_POLICY_ACTION)
    decision = decide(actor=actor, target=Target(citizen_id=citizen_id, section=_POLICY_TARGET),
                      action=_POLICY_ACTION, purpose=None, facts=facts)
    record_decision(access.session, actor=actor, citizen_id=citizen_id, section=AUDIT_SECTION,
                    entry_id=None, action=AUDIT_ACTION, decision=decision,
                    context=request_context(access.caller), now=access.now, facts=facts)
    return decision


def _refusal(access: RecordAccess, citizen: Citizen) -> Problem | None:
    """Why this person gets no code: an account already (409), or too young (422)."""
    if has_account(access.session, citizen.id):
        return Conflict(code="account-exists")
    age = policy_settings().teen_privacy_age
    born = citizen.date_of_birth
    if born is ERASED or today_in_vietnam() < birthday(born, age):
        # From the teen-privacy age a child has rights of their own to exercise; before it,
        # the parents act for the child with their own accounts.
        return ValidationFailed(Message("problem.too-young-for-account.detail", age=age),
                                code="too-young-for-account")
    return None


@bp.post("/citizens/<uuid:citizen_id>/activation-code")
def issue_activation_code(citizen_id: uuid.UUID) -> Response:
    """A new activation code for a person without an account (older unused ones end)."""
    require_scope(resource="Patient", interaction="c")
    caller = current_caller()
    if caller.role != "station":
        raise RoleNotAllowed()
    access = new_access()
    citizen = records.get_citizen(access, citizen_id)
    decision = _decide(access, citizen_id)
    if not decision.permit:
        access.deny(entry=False, decision=decision)
    refusal = _refusal(access, citizen)
    if refusal is not None:
        db.session.commit()  # the decision stays audited: it was asked and permitted
        raise refusal
    issued = issue_code(
        session=db.session, citizen_id=citizen_id, purpose=ACTIVATION,
        issued_by_account_id=caller.account_id,
        issued_by_facility_id=min(caller.facility_ids) if caller.facility_ids else None,
        issued_by_client_id=caller.client_id,
    )
    phone = citizen.phone
    sent = phone is not None and phone is not ERASED
    db.session.commit()
    response = jsonify({"code": issued.code, "expires_at": issued.expires_at.isoformat(),
                        "sent_to_phone": sent})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response
