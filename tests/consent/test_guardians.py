"""Guardians: created by a station or by a parent who proves the child's health ID and birth
date; acting for the child; ending at the age limit; adults naming a proxy; the hooks."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import current_app
from sqlalchemy import select

from consent import services
from consent.models import AuditEvent, GuardianClaimFailure, Guardianship
from consent.pdp import authorize
from consent.policy import birthday
from consent.policy_types import Target
from core.db import db, utcnow
from core.errors import Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed
from tests.consent import world as w


@pytest.fixture
def world(app_context):
    return w.build_world(db.session)


def _station_adds(world, *, dependant=None, guardian=None, kind="minor", **kwargs):
    dependant = dependant or world.infant
    guardian = guardian or world.parent
    row = services.add_guardian(
        db.session, actor=w.station_actor(world.station), dependant_id=dependant.id,
        guardian=services.PersonRef(citizen_id=guardian.id), kind=kind, relationship="mother",
        context=w.context(), **kwargs,
    )
    db.session.commit()
    return row


def _claim(world, *, health_id=None, born=None, claimant=None):
    row = services.claim_dependant(
        db.session, actor=w.citizen_actor(claimant or world.parent),
        health_id=health_id or world.infant.health_id,
        date_of_birth=born or world.infant.date_of_birth, relationship="mother",
        context=w.context(),
    )
    db.session.commit()
    return row


def _guardian_reads(world, *, now=None, sensitivity="normal", section="immunizations"):
    decision = authorize(
        db.session, actor=w.citizen_actor(world.parent, acting_for=world.infant),
        target=Target(citizen_id=world.infant.id, section=section, sensitivity=sensitivity),
        action="read", purpose=None, context=w.context(), now=now,
    )
    db.session.commit()
    return decision


def test_a_station_registers_the_mother_of_a_newborn(world):
    assert not _guardian_reads(world).permit
    row = _station_adds(world)
    assert (row.kind, row.created_via, row.created_by_facility_id) == (
        "minor", "station", world.station.id)
    assert _guardian_reads(world).permit
    views = services.list_guardians(db.session, actor=w.citizen_actor(world.parent,
                                                                      acting_for=world.infant),
                                    citizen_id=world.infant.id, context=w.context())
    assert [(v.row.id, v.status, v.guardian_name) for v in views] == [
        (row.id, "active", "Đỗ Thị Lan Anh")]


def test_a_parent_claims_their_child_with_health_id_and_birth_date(world):
    row = _claim(world)
    assert (row.guardian_citizen_id, row.dependant_citizen_id, row.created_via) == (
        world.parent.id, world.infant.id, "citizen")
    assert _guardian_reads(world).permit
    claim = db.session.scalars(select(AuditEvent).where(AuditEvent.rule == "guardian-claim")).one()
    assert claim.citizen_id == world.infant.id
    assert claim.actor_citizen_id == world.parent.id
    with pytest.raises(Conflict):
        _claim(world)
    db.session.rollback()


def test_a_wrong_birth_date_is_refused_audited_on_the_child_and_throttled(world):
    wrong = world.infant.date_of_birth - dt.timedelta(days=1)
    for _ in range(5):
        with pytest.raises(ValidationFailed):
            _claim(world, claimant=world.stranger, born=wrong)
    with pytest.raises(TooManyRequests):
        _claim(world, claimant=world.stranger)  # even the right answer, once throttled
    db.session.rollback()
    attempts = db.session.scalars(
        select(AuditEvent).where(AuditEvent.citizen_id == world.infant.id)).all()
    assert {(a.rule, a.decision) for a in attempts} == {("guardian-claim-mismatch", "deny")}
    assert len(attempts) == 5
    failures = db.session.scalars(select(GuardianClaimFailure.failures)).one()
    assert failures == 5
    assert db.session.scalars(select(Guardianship)).all() == []


def test_an_unknown_health_id_gives_the_same_answer_as_a_wrong_birth_date(world):
    with pytest.raises(ValidationFailed) as unknown:
        _claim(world, health_id="001099000001")
    db.session.rollback()
    with pytest.raises(ValidationFailed) as mismatch:
        _claim(world, born=dt.date(2000, 1, 1))
    db.session.rollback()
    assert unknown.value.errors == mismatch.value.errors


def test_adults_cannot_be_claimed_as_children(world):
    with pytest.raises(ValidationFailed) as refused:
        _claim(world, health_id=world.stranger.health_id, born=world.stranger.date_of_birth)
    assert "health_id" in refused.value.errors
    db.session.rollback()


def test_guardianship_ends_at_the_configured_age_and_teen_privacy_starts_at_twelve(world):
    born = world.infant.date_of_birth
    _station_adds(world)

    def at(years, days=0):
        day = birthday(born, years) + dt.timedelta(days=days)
        return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)

    assert _guardian_reads(world, now=at(11, -1), sensitivity="mental-health").permit
    assert not _guardian_reads(world, now=at(12), sensitivity="mental-health").permit
    assert _guardian_reads(world, now=at(12)).permit
    assert _guardian_reads(world, now=at(16, -1)).permit
    ended = _guardian_reads(world, now=at(16))
    assert (ended.permit, ended.rule) == (False, "guardian-age-limit")
    assert services.dependants_of(db.session, world.parent.id, now=at(16)) == []
    assert services.recipients_for(db.session, world.infant.id, now=at(16)) == [world.infant.id]


def test_the_hooks_name_dependants_and_notification_recipients(world):
    _station_adds(world)
    dependants = current_app.extensions["phr.dependants"](db.session, world.parent.id)
    assert dependants == [{"citizen_id": str(world.infant.id), "full_name": "Nguyễn Minh Khôi",
                           "relationship": "mother", "kind": "minor"}]
    recipients = current_app.extensions["phr.recipients_for"](db.session, world.infant.id)
    assert recipients == [world.infant.id, world.parent.id]
    assert services.dependants_of(db.session, world.stranger.id) == []


def test_an_adult_names_a_proxy_by_health_id_and_birth_date_and_can_revoke_it(world):
    adult = w.citizen_actor(world.adult)
    row = services.add_guardian(
        db.session, actor=adult, dependant_id=world.adult.id,
        guardian=services.PersonRef(health_id=world.stranger.health_id,
                                    date_of_birth=world.stranger.date_of_birth),
        kind="proxy", relationship="other", categories=frozenset({"mental-health"}),
        context=w.context(),
    )
    db.session.commit()
    proxy = w.citizen_actor(world.stranger, acting_for=world.adult)

    def proxy_reads(sensitivity):
        decision = authorize(db.session, actor=proxy, target=Target(
            citizen_id=world.adult.id, section="conditions", sensitivity=sensitivity),
            action="read", purpose=None, context=w.context())
        db.session.commit()
        return decision.permit

    assert proxy_reads("normal")
    assert proxy_reads("mental-health")
    assert not proxy_reads("hiv-sti")
    assert services.recipients_for(db.session, world.adult.id) == [world.adult.id,
                                                                   world.stranger.id]
    services.revoke_guardian(db.session, actor=adult, citizen_id=world.adult.id,
                             guardianship_id=row.id, context=w.context())
    db.session.commit()
    assert not proxy_reads("normal")


def test_a_proxy_cannot_name_more_proxies_and_a_citizen_must_prove_who_they_name(world):
    adult = w.citizen_actor(world.adult)
    with pytest.raises(ValidationFailed):
        services.add_guardian(
            db.session, actor=adult, dependant_id=world.adult.id,
            guardian=services.PersonRef(health_id=world.stranger.health_id,
                                        date_of_birth=dt.date(1990, 1, 1)),
            kind="proxy", relationship="other", context=w.context())
    db.session.rollback()
    with pytest.raises(ValidationFailed):
        services.add_guardian(
            db.session, actor=adult, dependant_id=world.adult.id,
            guardian=services.PersonRef(citizen_id=world.stranger.id),
            kind="proxy", relationship="other", context=w.context())
    db.session.rollback()


def test_stations_register_guardians_of_minors_only(world):
    with pytest.raises(ValidationFailed) as refused:
        _station_adds(world, dependant=world.adult, guardian=world.parent)
    assert "kind" in refused.value.errors
    db.session.rollback()
    with pytest.raises(ValidationFailed):
        _station_adds(world, kind="proxy")
    db.session.rollback()


def test_a_practitioner_or_stranger_cannot_manage_guardians(world):
    for actor in (w.practitioner_actor(world.family_doctor), w.citizen_actor(world.stranger)):
        with pytest.raises(Forbidden):
            services.add_guardian(
                db.session, actor=actor, dependant_id=world.infant.id,
                guardian=services.PersonRef(citizen_id=world.stranger.id), kind="minor",
                relationship="other", context=w.context())
        db.session.rollback()


def test_a_guardian_steps_down_and_a_station_corrects_the_registry(world):
    row = _station_adds(world)
    services.revoke_guardian(db.session, actor=w.citizen_actor(world.parent),
                             citizen_id=world.infant.id, guardianship_id=row.id,
                             context=w.context())
    db.session.commit()
    assert not _guardian_reads(world).permit
    again = _station_adds(world)
    services.revoke_guardian(db.session, actor=w.station_actor(world.station),
                             citizen_id=world.infant.id, guardianship_id=again.id,
                             context=w.context(), now=utcnow())
    db.session.commit()
    views = services.list_guardians(db.session, actor=w.station_actor(world.station),
                                    citizen_id=world.infant.id, context=w.context(),
                                    include_ended=True)
    assert {v.status for v in views} == {"guardian-revoked"}
    with pytest.raises(NotFound):
        services.revoke_guardian(db.session, actor=w.station_actor(world.station),
                                 citizen_id=world.infant.id, guardianship_id=uuid.uuid4(),
                                 context=w.context())
    db.session.rollback()
