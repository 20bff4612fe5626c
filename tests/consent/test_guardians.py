"""Guardians: created by the child's station, a guardian in force, or an approved claim (a
claim by health ID and birth date alone opens nothing); acting for the child; ending at the
age limit or with a reason; adults naming a proxy; the hooks."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from auth.api import DEPENDANTS
from consent import services
from consent.models import AuditEvent, GuardianClaim, GuardianClaimFailure, Guardianship
from consent.pdp import authorize
from consent.policy import birthday
from consent.policy_types import Target
from core.db import db, utcnow
from core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from notifications.recipients import Recipient, recipients_for
from tests.consent import world as w


@pytest.fixture
def world(app_context):
    built = w.build_world(db.session)
    # The station registered the infant, and the adult lives in the commune it serves.
    built.infant.registered_by_facility_id = built.station.id
    built.adult.address = {"province_code": "27", "commune_code": "09334", "line": "Thôn Đông"}
    db.session.commit()
    return built


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


def test_a_claim_with_health_id_and_birth_date_waits_for_the_station(world):
    row = _claim(world)
    assert (row.claimant_citizen_id, row.dependant_citizen_id, row.status) == (
        world.parent.id, world.infant.id, "pending")
    assert not _guardian_reads(world).permit  # a pending claim opens nothing
    claim = db.session.scalars(select(AuditEvent).where(AuditEvent.rule == "guardian-claim")).one()
    assert claim.citizen_id == world.infant.id
    assert claim.actor_citizen_id == world.parent.id
    with pytest.raises(Conflict):
        _claim(world)  # one pending claim at a time
    db.session.rollback()
    # The child has no guardian in force: the station of the child's catchment answers.
    answered = services.answer_claim(
        db.session, actor=w.station_actor(world.station), citizen_id=world.infant.id,
        claim_id=row.id, approve=True, context=w.context())
    db.session.commit()
    assert answered.row.status == "approved"
    guardianship = db.session.get(Guardianship, answered.row.guardianship_id)
    assert (guardianship.guardian_citizen_id, guardianship.created_via) == (
        world.parent.id, "station")
    assert _guardian_reads(world).permit
    with pytest.raises(Conflict):
        services.answer_claim(
            db.session, actor=w.station_actor(world.station), citizen_id=world.infant.id,
            claim_id=row.id, approve=False, context=w.context())
    db.session.rollback()


def test_a_guardian_in_force_answers_a_claim_and_a_station_of_elsewhere_cannot(world):
    _station_adds(world)
    row = _claim(world, claimant=world.stranger)
    elsewhere = w.facility(db.session, name="Trạm Y tế xã khác")
    elsewhere.commune_code = "09340"
    db.session.commit()
    with pytest.raises(NotFound):
        services.answer_claim(
            db.session, actor=w.station_actor(elsewhere), citizen_id=world.infant.id,
            claim_id=row.id, approve=True, context=w.context())
    db.session.rollback()
    with pytest.raises(NotFound):  # the claimant is no one to the child yet
        services.list_claims(db.session, actor=w.citizen_actor(world.stranger, world.infant),
                             citizen_id=world.infant.id, context=w.context())
    db.session.rollback()
    mother = w.citizen_actor(world.parent, acting_for=world.infant)
    pending = services.list_claims(db.session, actor=mother, citizen_id=world.infant.id,
                                   context=w.context(), status="pending")
    assert [(v.row.id, v.claimant_name) for v in pending] == [(row.id, "Hoàng Thị Thu Trang")]
    denied = services.answer_claim(db.session, actor=mother, citizen_id=world.infant.id,
                                   claim_id=row.id, approve=False, context=w.context())
    db.session.commit()
    assert (denied.row.status, denied.row.answered_by_citizen_id) == ("denied", world.parent.id)
    assert db.session.scalars(select(Guardianship).where(
        Guardianship.guardian_citizen_id == world.stranger.id)).all() == []
    own = services.read_claim(db.session, actor=w.citizen_actor(world.stranger, world.infant),
                              citizen_id=world.infant.id, claim_id=row.id, context=w.context())
    assert own.row.status == "denied"
    assert db.session.scalars(select(GuardianClaim.status)).all() == ["denied"]


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
    dependants = DEPENDANTS()(db.session, world.parent.id)
    assert dependants == [{"citizen_id": str(world.infant.id), "full_name": "Nguyễn Minh Khôi",
                           "relationship": "mother", "kind": "minor"}]
    recipients = recipients_for(db.session, world.infant.id)
    assert recipients == [Recipient.citizen(world.infant.id), Recipient.citizen(world.parent.id)]
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
    # Neither is anyone to the infant: the answer is the one a missing person gets.
    for actor in (w.practitioner_actor(world.family_doctor), w.citizen_actor(world.stranger)):
        with pytest.raises(NotFound):
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
    with pytest.raises(ValidationFailed) as no_reason:
        services.revoke_guardian(db.session, actor=w.station_actor(world.station),
                                 citizen_id=world.infant.id, guardianship_id=again.id,
                                 context=w.context(), now=utcnow())
    assert set(no_reason.value.errors) == {"reason"}
    db.session.rollback()
    services.revoke_guardian(db.session, actor=w.station_actor(world.station),
                             citizen_id=world.infant.id, guardianship_id=again.id,
                             context=w.context(), now=utcnow(),
                             reason="Quyết định của tòa án về quyền nuôi con")
    db.session.commit()
    ended = db.session.get(Guardianship, again.id)
    assert ended.end_reason == "Quyết định của tòa án về quyền nuôi con"
    assert ended.end_reason_ct is not None
    assert "tòa án".encode() not in ended.end_reason_ct
    assert ended.revoked_by_facility_id == world.station.id
    views = services.list_guardians(db.session, actor=w.station_actor(world.station),
                                    citizen_id=world.infant.id, context=w.context(),
                                    include_ended=True)
    assert {v.status for v in views} == {"guardian-revoked"}
    with pytest.raises(NotFound):
        services.revoke_guardian(db.session, actor=w.station_actor(world.station),
                                 citizen_id=world.infant.id, guardianship_id=uuid.uuid4(),
                                 context=w.context())
    db.session.rollback()
