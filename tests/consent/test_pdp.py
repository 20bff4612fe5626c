"""The decision point: facts loading, audit in the caller's transaction, the access digest."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from consent.models import AccessDigest, AuditEvent, Consent
from consent.models import Guardianship as GuardianshipRow
from consent.pdp import (
    authorize,
    authorize_section,
    citizen_exists,
    load_facts,
    preload_facts,
    raise_if_denied,
)
from consent.policy_types import Target
from core.db import db
from core.errors import Forbidden, NotFound
from core.events import RECORD_ACCESSED, bus
from tests.consent import world as w


@pytest.fixture
def world(app_context):
    return w.build_world(db.session)


@pytest.fixture
def accessed(app_context):
    seen = []
    bus().subscribe(RECORD_ACCESSED, lambda session, event: seen.append(event))
    return seen


def _events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_family_doctor_read_is_permitted_and_audited_with_who_what_why(world):
    actor = w.practitioner_actor(world.family_doctor)
    ctx = w.context("portal")
    entry = uuid.uuid4()
    decision = authorize(
        db.session, actor=actor,
        target=Target(citizen_id=world.adult.id, section="conditions", entry_id=entry),
        action="read", purpose=None, context=ctx,
    )
    db.session.commit()
    assert decision.permit
    assert decision.rule == "family-doctor"
    [event] = _events()
    assert (event.citizen_id, event.seq, event.section, event.entry_id) == (
        world.adult.id, 1, "conditions", entry)
    assert (event.action, event.decision, event.rule, event.purpose) == (
        "read", "permit", "family-doctor", "treatment")
    assert event.actor_role == "practitioner"
    assert event.actor_practitioner_id == world.family_doctor.id
    assert event.actor_facility_id == world.station.id
    assert event.actor_account_id == ctx.account_id
    assert (event.client_id, event.request_id, event.actor_label) == (
        "test-client", ctx.request_id, "portal")
    assert event.on_behalf_of is None


def test_a_denial_is_audited_too(world):
    actor = w.practitioner_actor(world.other_doctor)
    decision = authorize(
        db.session, actor=actor, target=Target(citizen_id=world.adult.id, section="conditions"),
        action="read", purpose="treatment", context=w.context(),
    )
    db.session.commit()
    assert not decision.permit
    assert decision.rule == "default-deny"
    [event] = _events()
    assert (event.decision, event.rule, event.actor_facility_id) == (
        "deny", "default-deny", world.hospital.id)


def test_authorize_does_not_commit_the_audit_event_commits_with_the_action(world):
    authorize(
        db.session, actor=w.practitioner_actor(world.family_doctor),
        target=Target(citizen_id=world.adult.id, section="allergies"), action="read",
        purpose=None, context=w.context(),
    )
    db.session.rollback()
    assert _events() == []


def test_raise_if_denied_keeps_the_denial_and_answers_404_for_an_entry_403_for_a_section(world):
    actor = w.practitioner_actor(world.family_doctor)
    target = Target(citizen_id=world.adult.id, section="conditions", entry_id=uuid.uuid4(),
                    sensitivity="mental-health")
    decision = authorize(db.session, actor=actor, target=target, action="read", purpose=None,
                         context=w.context())
    with pytest.raises(NotFound):
        raise_if_denied(db.session, decision, entry=True)
    db.session.rollback()
    denied = authorize(db.session, actor=actor, target=Target(
        citizen_id=world.adult.id, section="consents"), action="read", purpose=None,
        context=w.context())
    assert denied.related
    with pytest.raises(Forbidden):
        raise_if_denied(db.session, denied, entry=False)
    db.session.rollback()
    assert [e.decision for e in _events()] == ["deny", "deny"]


def test_a_denial_without_any_relationship_answers_404_as_for_nobody(world):
    actor = w.practitioner_actor(world.other_doctor)
    scope = authorize_section(db.session, actor=actor, citizen_id=world.adult.id,
                              section="conditions", purpose=None, context=w.context())
    assert not scope.related
    with pytest.raises(NotFound):
        raise_if_denied(db.session, scope, entry=False)
    db.session.rollback()
    [event] = _events()  # the denial is audited all the same
    assert (event.decision, event.rule, event.citizen_id) == (
        "deny", "default-deny", world.adult.id)


def test_a_stations_denial_reads_its_catchment_and_a_permit_reads_nothing(world):
    from consent.pdp import forget_facts

    station = w.station_actor(world.station)
    with w.statements() as seen:
        permitted = authorize(db.session, actor=station, target=Target(
            citizen_id=world.infant.id, section="immunizations"), action="read",
            purpose=None, context=w.context())
    assert permitted.permit
    assert not any("address_ct" in statement for statement in seen)
    db.session.rollback()
    forget_facts(db.session)
    with w.statements() as seen:
        denied = authorize(db.session, actor=station, target=Target(
            citizen_id=world.infant.id, section="allergies"), action="read", purpose=None,
            context=w.context())
    assert (denied.permit, denied.related) == (False, False)
    assert any("address_ct" in statement for statement in seen)
    db.session.rollback()
    world.infant.registered_by_facility_id = world.station.id
    db.session.commit()
    served = authorize(db.session, actor=station, target=Target(
        citizen_id=world.infant.id, section="allergies"), action="read", purpose=None,
        context=w.context())
    assert (served.permit, served.related) == (False, True)
    db.session.rollback()


def test_a_guardian_is_recorded_as_acting_on_behalf_of_the_child(world):
    from consent.models import Guardianship

    db.session.add(Guardianship(
        guardian_citizen_id=world.parent.id, dependant_citizen_id=world.infant.id,
        kind="minor", relationship="mother", categories=[], valid_from=w.NOW,
        created_via="station",
    ))
    db.session.commit()
    decision = authorize(
        db.session, actor=w.citizen_actor(world.parent, acting_for=world.infant),
        target=Target(citizen_id=world.infant.id, section="immunizations"), action="read",
        purpose=None, context=w.context(),
    )
    db.session.commit()
    assert decision.permit
    assert decision.rule == "guardian"
    [event] = _events()
    assert (event.actor_citizen_id, event.on_behalf_of) == (world.parent.id, world.infant.id)


def test_section_scope_is_audited_once_per_list(world):
    scope = authorize_section(
        db.session, actor=w.practitioner_actor(world.family_doctor), citizen_id=world.adult.id,
        section="observations", purpose=None, context=w.context(),
    )
    db.session.commit()
    assert scope.permit
    assert scope.labels == {"normal"}
    [event] = _events()
    assert (event.section, event.entry_id, event.rule) == ("observations", None, "family-doctor")


# --- facts ----------------------------------------------------------------------------------


def test_facts_hold_birth_date_family_doctor_consents_and_guardianships(world):
    db.session.add(Consent(
        citizen_id=world.adult.id, grantee_type="practitioner", grantee_id=world.other_doctor.id,
        sections=["allergies"], categories=[], access="read", purpose="treatment",
        created_at=w.NOW,
    ))
    db.session.commit()
    facts = load_facts(db.session, citizen_id=world.adult.id, now=w.NOW)
    assert facts.citizen_birth_date == dt.date(1961, 3, 14)
    assert facts.family_doctor.practitioner_id == world.family_doctor.id
    assert facts.family_doctor.facility_id == world.station.id
    [grant] = facts.consents
    assert grant.sections == {"allergies"}
    assert grant.grantee_id == world.other_doctor.id
    assert facts.guardianships == ()
    assert facts.break_glass == ()
    assert facts.settings.guardian_age_limit == 16


def _count_queries(actor, citizen_id) -> list[str]:
    db.session.expunge_all()
    db.session.rollback()
    with w.statements() as seen:
        load_facts(db.session, citizen_id=citizen_id, now=w.NOW, actor=actor)
        load_facts(db.session, citizen_id=citizen_id, now=w.NOW, actor=actor)
    return seen


def test_facts_take_at_most_three_queries_and_are_loaded_once_per_transaction(world):
    adult, infant = world.adult.id, world.infant.id
    citizen = w.citizen_actor(world.adult)
    guardian = w.citizen_actor(world.parent, acting_for=world.infant)
    doctor = w.practitioner_actor(world.other_doctor)
    station = w.station_actor(world.station)
    assert len(_count_queries(citizen, adult)) == 1
    # No guardianship of the infant in view (nobody has registered one yet): the citizen
    # query says so, the guardianships need no query of their own.
    assert len(_count_queries(guardian, infant)) == 1
    # No consent or break-glass in view: the citizen query says so, grants need no query.
    assert len(_count_queries(doctor, adult)) == 1
    assert _count_queries(station, adult) == []
    db.session.add(Consent(
        citizen_id=adult, grantee_type="practitioner", grantee_id=world.other_doctor.id,
        sections=["allergies"], categories=[], access="read", purpose="treatment",
        created_at=w.NOW,
    ))
    db.session.add(GuardianshipRow(
        id=uuid.uuid4(), guardian_citizen_id=world.parent.id, dependant_citizen_id=infant,
        kind="minor", relationship="mother", categories=[], valid_from=w.NOW,
        created_via="test", created_at=w.NOW,
    ))
    db.session.commit()
    assert len(_count_queries(doctor, adult)) == 3
    assert len(_count_queries(guardian, infant)) == 2


def test_facts_of_many_citizens_load_in_one_query_per_part(world):
    ids = [world.adult.id, world.infant.id, world.parent.id]
    db.session.add(GuardianshipRow(
        id=uuid.uuid4(), guardian_citizen_id=world.parent.id,
        dependant_citizen_id=world.infant.id, kind="minor", relationship="mother",
        categories=[], valid_from=w.NOW, created_via="test", created_at=w.NOW,
    ))
    db.session.commit()
    db.session.expunge_all()
    db.session.rollback()
    with w.statements() as seen:
        preload_facts(db.session, ids, now=w.NOW,
                      parts=frozenset({"citizen", "guardianships", "grants"}))
        together = [load_facts(db.session, citizen_id=cid, now=w.NOW) for cid in ids]
    # citizens (grants probed: none in view), guardianships (one in view: the infant's)
    assert len(seen) == 2
    one_by_one = []
    for citizen_id in ids:
        db.session.rollback()
        one_by_one.append(load_facts(db.session, citizen_id=citizen_id, now=w.NOW))
    assert together == one_by_one


def test_facts_are_forgotten_at_commit_so_a_new_consent_counts_at_once(world):
    doctor = w.practitioner_actor(world.other_doctor)
    target = Target(citizen_id=world.adult.id, section="allergies")
    first = authorize(db.session, actor=doctor, target=target, action="read", purpose=None,
                      context=w.context())
    db.session.add(Consent(
        citizen_id=world.adult.id, grantee_type="facility", grantee_id=world.hospital.id,
        sections=["allergies"], categories=[], access="read", purpose="treatment",
        created_at=w.NOW,
    ))
    db.session.commit()
    second = authorize(db.session, actor=doctor, target=target, action="read", purpose=None,
                       context=w.context())
    db.session.commit()
    assert (first.permit, second.permit) == (False, True)
    assert second.via == f"facility:{world.hospital.id}"
    assert _events()[-1].actor_facility_id == world.hospital.id


def test_citizen_exists(world):
    assert citizen_exists(db.session, world.adult.id)
    assert not citizen_exists(db.session, uuid.uuid4())


def test_config_changes_the_guardian_age_limit(app_context, world):
    app_context.config["GUARDIAN_AGE_LIMIT"] = 18
    facts = load_facts(db.session, citizen_id=world.adult.id, now=w.NOW)
    assert facts.settings.guardian_age_limit == 18


# --- the read path --------------------------------------------------------------------------


def test_the_read_path_adds_one_chain_upsert_and_one_insert_and_never_reads_the_audit(world):
    """PostgreSQL: one statement (the upsert feeds the insert in a CTE); SQLite: two."""
    actor = w.citizen_actor(world.adult)
    authorize(db.session, actor=actor, target=Target(citizen_id=world.adult.id,
              section="allergies"), action="read", purpose=None, context=w.context())
    db.session.commit()  # the chain head exists now: the next append is the steady state
    with w.statements() as seen:
        authorize(db.session, actor=actor, target=Target(citizen_id=world.adult.id,
                  section="conditions"), action="read", purpose=None, context=w.context())
        db.session.commit()
    audit = [s for s in seen if "audit_" in s]
    assert not any(s.startswith("SELECT") and "audit_events" in s for s in seen)
    if db.engine.dialect.name == "postgresql":
        [statement] = audit
        assert statement.startswith("WITH head AS (INSERT INTO audit_chain_heads")
        assert "RETURNING audit_chain_heads.seq, audit_chain_heads.last_hash" in statement
        assert ") INSERT INTO audit_events" in statement
        return
    assert len(audit) == 2
    assert audit[0].startswith("INSERT INTO audit_chain_heads")
    assert "RETURNING" in audit[0]
    assert audit[1].startswith("INSERT INTO audit_events")


# --- access digest --------------------------------------------------------------------------


def _read(actor, citizen_id, now, section="allergies"):
    decision = authorize(db.session, actor=actor,
                         target=Target(citizen_id=citizen_id, section=section),
                         action="read", purpose=None, context=w.context(), now=now)
    db.session.commit()
    return decision


def test_a_third_party_read_is_reported_once_a_day_per_reader(world, accessed):
    doctor = w.practitioner_actor(world.family_doctor)
    _read(doctor, world.adult.id, w.NOW)
    _read(doctor, world.adult.id, w.NOW + dt.timedelta(minutes=5), section="conditions")
    _read(doctor, world.adult.id, w.NOW + dt.timedelta(hours=3))
    assert len(accessed) == 1
    [event] = accessed
    assert event.citizen_id == world.adult.id
    assert event.data["actor_kind"] == "practitioner"
    assert event.data["practitioner_id"] == str(world.family_doctor.id)
    assert event.data["facility_id"] == str(world.station.id)
    assert event.data["section"] == "allergies"
    # 9:00 UTC is 16:00 in Vietnam; 17:30 UTC is already the next local day.
    _read(doctor, world.adult.id, w.NOW + dt.timedelta(hours=8, minutes=30))
    assert len(accessed) == 2
    station = w.station_actor(world.station)
    _read(station, world.adult.id, w.NOW, section="immunizations")
    assert len(accessed) == 3
    assert accessed[-1].data["actor_kind"] == "station"
    assert db.session.scalar(select(func.count()).select_from(AccessDigest)) == 2


def test_the_citizen_a_guardian_and_denied_readers_are_not_reported(world, accessed):
    _read(w.citizen_actor(world.adult), world.adult.id, w.NOW)
    denied = _read(w.practitioner_actor(world.other_doctor), world.adult.id, w.NOW)
    assert not denied.permit
    assert accessed == []
