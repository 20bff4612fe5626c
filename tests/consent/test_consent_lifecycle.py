"""Consents and access requests: granted, effective on the next request, expiring by
themselves, revoked; asked for by a practitioner and answered by the citizen."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from consent import services
from consent.models import AccessRequest, AuditEvent, Consent
from consent.pdp import authorize
from consent.policy_types import Target
from core.db import db, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.events import ACCESS_REQUEST_ANSWERED, ACCESS_REQUESTED, bus
from tests.consent import world as w


@pytest.fixture
def world(app_context):
    return w.build_world(db.session)


@pytest.fixture
def events(app_context):
    seen = []
    for name in (ACCESS_REQUESTED, ACCESS_REQUEST_ANSWERED):
        bus().subscribe(name, lambda session, event: seen.append(event))
    return seen


def _can_read(world, section="allergies", *, now=None, sensitivity="normal", doctor=None):
    decision = authorize(
        db.session, actor=w.practitioner_actor(doctor or world.other_doctor),
        target=Target(citizen_id=world.adult.id, section=section, sensitivity=sensitivity,
                      entry_id=uuid.uuid4()),
        action="read", purpose=None, context=w.context(), now=now,
    )
    db.session.commit()
    return decision.permit


def _grant(world, **terms):
    values = {"grantee_type": "practitioner", "grantee_id": world.other_doctor.id,
              "sections": frozenset({"allergies", "medications"})}
    values.update(terms)
    row = services.grant_consent(
        db.session, actor=w.citizen_actor(world.adult), citizen_id=world.adult.id,
        terms=services.ConsentTerms(**values), context=w.context(),
    )
    db.session.commit()
    return row


def test_a_grant_opens_the_named_sections_on_the_next_request(world):
    assert not _can_read(world)
    _grant(world)
    assert _can_read(world)
    assert _can_read(world, "medications")
    assert not _can_read(world, "conditions")


def test_a_revoked_consent_is_refused_on_the_next_request(world):
    row = _grant(world)
    assert _can_read(world)
    services.revoke_consent(db.session, actor=w.citizen_actor(world.adult),
                            citizen_id=world.adult.id, consent_id=row.id, context=w.context())
    db.session.commit()
    assert not _can_read(world)
    last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last.rule == "consent-revoked"
    stored = db.session.get(Consent, row.id)
    assert stored.revoked_at is not None
    assert stored.revoked_by_citizen_id == world.adult.id


def test_an_expired_consent_is_refused_without_any_job_running(world):
    expires = utcnow() + dt.timedelta(hours=1)
    _grant(world, expires_at=expires)
    assert _can_read(world, now=expires - dt.timedelta(seconds=1))
    assert not _can_read(world, now=expires)
    last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last.rule == "consent-expired"


def test_a_facility_grant_reaches_its_practitioners_and_restricted_needs_the_category(world):
    _grant(world, grantee_type="facility", grantee_id=world.hospital.id,
           sections=frozenset({"conditions"}))
    assert _can_read(world, "conditions")
    assert not _can_read(world, "conditions", sensitivity="mental-health")
    _grant(world, sections=frozenset({"conditions"}), categories=frozenset({"mental-health"}))
    assert _can_read(world, "conditions", sensitivity="mental-health")
    assert not _can_read(world, "conditions", sensitivity="hiv-sti")


def test_listing_shows_active_consents_and_ended_ones_on_request(world):
    first = _grant(world)
    second = _grant(world, grantee_type="facility", grantee_id=world.hospital.id)
    services.revoke_consent(db.session, actor=w.citizen_actor(world.adult),
                            citizen_id=world.adult.id, consent_id=first.id, context=w.context())
    db.session.commit()
    listed = services.list_consents(db.session, actor=w.citizen_actor(world.adult),
                                    citizen_id=world.adult.id, context=w.context())
    assert [c.id for c in listed] == [second.id]
    everything = services.list_consents(db.session, actor=w.citizen_actor(world.adult),
                                        citizen_id=world.adult.id, context=w.context(),
                                        include_ended=True)
    assert {c.id for c in everything} == {first.id, second.id}
    assert services.consent_status(db.session.get(Consent, first.id), utcnow()) == "revoked"
    names = services.grantee_names(db.session, everything)
    assert names == {world.other_doctor.id: "Trần Văn Đức",
                     world.hospital.id: "Bệnh viện đa khoa huyện Tiên Du"}


def test_only_the_citizen_manages_their_consents_and_the_refusal_is_audited(world):
    with pytest.raises(Forbidden):
        services.grant_consent(
            db.session, actor=w.practitioner_actor(world.family_doctor),
            citizen_id=world.adult.id, context=w.context(),
            terms=services.ConsentTerms(grantee_type="practitioner",
                                        grantee_id=world.family_doctor.id,
                                        sections=frozenset({"conditions"})),
        )
    db.session.rollback()
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert (event.section, event.action, event.decision) == ("consents", "manage", "deny")
    assert db.session.scalars(select(Consent)).all() == []


INVALID_TERMS = [
    ({"grantee_id": uuid.UUID(int=1)}, "grantee.id"),
    ({"sections": frozenset()}, "sections"),
    ({"sections": frozenset({"secrets"})}, "sections"),
    ({"categories": frozenset({"normal"})}, "categories"),
    ({"access": "write"}, "access"),
    ({"purpose": "marketing"}, "purpose"),
    ({"data_from": dt.date(2024, 1, 2), "data_until": dt.date(2024, 1, 1)}, "data_until"),
    ({"expires_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "expires_at"),
]


def test_invalid_terms_are_refused_per_field(world):
    for terms, field in INVALID_TERMS:
        with pytest.raises(ValidationFailed) as refused:
            _grant(world, **terms)
        assert list(refused.value.errors) == [field], terms
        db.session.rollback()
    assert db.session.scalars(select(Consent)).all() == []


def test_unknown_consent_is_not_found(world):
    with pytest.raises(NotFound):
        services.revoke_consent(db.session, actor=w.citizen_actor(world.adult),
                                citizen_id=world.adult.id, consent_id=uuid.uuid4(),
                                context=w.context())
    db.session.rollback()


# --- access requests ------------------------------------------------------------------------


def _ask(world, **kwargs):
    values = {"sections": frozenset({"conditions", "medications"}),
              "reason": "Theo dõi tăng huyết áp sau khi chuyển viện"}
    values.update(kwargs)
    row = services.request_access(
        db.session, actor=w.practitioner_actor(world.other_doctor), citizen_id=world.adult.id,
        context=w.context(), **values,
    )
    db.session.commit()
    return row


def _answer(world, request_id, approve, **kwargs):
    row = services.answer_access_request(
        db.session, actor=w.citizen_actor(world.adult), citizen_id=world.adult.id,
        request_id=request_id, approve=approve, context=w.context(), **kwargs,
    )
    db.session.commit()
    return row


def test_an_approved_request_becomes_a_consent_and_the_practitioner_sees_the_answer(
    world, events
):
    asked = _ask(world)
    assert asked.reason == "Theo dõi tăng huyết áp sau khi chuyển viện"
    assert asked.facility_id == world.hospital.id
    assert asked.status == "pending"
    assert [e.name for e in events] == [ACCESS_REQUESTED]
    assert events[0].data["practitioner_id"] == str(world.other_doctor.id)
    assert not _can_read(world, "conditions")
    mine = services.list_citizen_requests(db.session, actor=w.citizen_actor(world.adult),
                                          citizen_id=world.adult.id, context=w.context())
    assert [r.id for r in mine] == [asked.id]

    answered = _answer(world, asked.id, True)
    assert answered.status == "approved"
    assert answered.consent_id is not None
    consent = db.session.get(Consent, answered.consent_id)
    assert set(consent.sections) == {"conditions", "medications"}
    assert consent.access_request_id == asked.id
    assert consent.expires_at is not None  # an episode of care, not forever
    assert _can_read(world, "conditions")
    assert events[-1].name == ACCESS_REQUEST_ANSWERED
    assert events[-1].data["decision"] == "approved"
    seen = services.list_practitioner_requests(db.session,
                                               practitioner_id=world.other_doctor.id)
    assert [(r.id, r.status) for r in seen] == [(asked.id, "approved")]


def test_a_denied_request_grants_nothing_and_cannot_be_answered_twice(world, events):
    asked = _ask(world)
    _answer(world, asked.id, False)
    assert db.session.get(AccessRequest, asked.id).status == "denied"
    assert not _can_read(world, "conditions")
    assert events[-1].data["decision"] == "denied"
    with pytest.raises(Conflict):
        _answer(world, asked.id, True)
    db.session.rollback()


def test_one_pending_request_per_practitioner_and_citizen(world):
    _ask(world)
    with pytest.raises(Conflict):
        _ask(world)
    db.session.rollback()


def test_a_request_needs_a_reason_and_known_sections(world):
    with pytest.raises(ValidationFailed):
        _ask(world, reason="   ")
    db.session.rollback()
    with pytest.raises(ValidationFailed):
        _ask(world, sections=frozenset({"nothing"}))
    db.session.rollback()


def test_a_practitioner_cannot_answer_and_a_station_cannot_ask(world):
    asked = _ask(world)
    # Asking relates no one to the citizen: the answer is the one a missing person gets.
    with pytest.raises(NotFound):
        services.answer_access_request(
            db.session, actor=w.practitioner_actor(world.other_doctor),
            citizen_id=world.adult.id, request_id=asked.id, approve=True, context=w.context())
    db.session.rollback()
    with pytest.raises(NotFound):
        services.request_access(
            db.session, actor=w.station_actor(world.station), citizen_id=world.adult.id,
            sections=frozenset({"conditions"}), reason="x", context=w.context())
    db.session.rollback()
