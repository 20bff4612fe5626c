"""Issue 14 observation 5: every lookup by health ID is an audit event, found or not.

A number that belongs to nobody has no citizen whose chain could hold the event: it goes to
the caller's lookup chain (one per facility; `ehr.access.unknown_lookup_chain`), a hash chain
like every other, so `flask audit verify` checks it. Before, such a lookup asked the pure
policy and left nothing behind.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select

from consent.models import AuditEvent
from core.db import db
from registry.caller import Caller
from tests.support.auth import health_id_of

NOBODY = "001190000000"  # well formed; no one in the world holds it
LOOKUP = "/api/v1/citizens/lookup"


def _events_since(app, count: int) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.occurred_at)).all()
        return list(rows)[count:]


def _count(app) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(AuditEvent)))


def _lookup(app, client, world, who: str, number: str) -> tuple[int, AuditEvent]:
    before = _count(app)
    response = client.post(LOOKUP, json={"health_id": number}, headers=world.headers(who))
    new = _events_since(app, before)
    assert len(new) == 1, (who, number, [(e.section, e.action, e.decision) for e in new])
    (event,) = new
    assert (event.section, event.action) == ("identity-lookup", "lookup")
    return response.status_code, event


def test_a_station_looking_up_an_unknown_number_leaves_an_event(app, client, world,
                                                                vaccinator):
    from ehr.access import unknown_lookup_chain

    for who in ("station", "vaccinator"):
        status, event = _lookup(app, client, world, who, NOBODY)
        assert status == 404
        assert (event.decision, event.actor_role) == ("permit", "station")
        assert event.actor_facility_id == world.station
        expected = unknown_lookup_chain(Caller(role="station",
                                               facility_ids=frozenset({world.station})))
        assert event.citizen_id == expected
    # Both lookups went to the station's own chain, one after the other.
    with app.app_context():
        seqs = db.session.scalars(select(AuditEvent.seq).where(
            AuditEvent.citizen_id == expected).order_by(AuditEvent.seq)).all()
    assert seqs == [1, 2]


def test_a_practitioner_looking_up_an_unknown_number_leaves_an_event(app, client, world):
    status, event = _lookup(app, client, world, "other_doctor", NOBODY)
    assert status == 404
    assert (event.decision, event.actor_practitioner_id) == ("permit", world.other_doctor_id)
    assert event.actor_facility_id == world.hospital


def test_a_lookup_the_policy_refuses_leaves_an_event_found_or_not(app, client, world):
    """A citizen may not look people up: refused alike for a number that exists and one that
    does not (the answer does not tell them apart), and each refusal is audited."""
    known = health_id_of(app, world.patient)
    answers = []
    for number in (known, NOBODY):
        status, event = _lookup(app, client, world, "stranger", number)
        assert status in (403, 404)
        assert (event.decision, event.actor_role) == ("deny", "citizen")
        answers.append(status)
        if number == known:
            assert event.citizen_id == world.patient  # the person's own chain
        else:
            assert event.citizen_id not in (world.patient, world.stranger, world.child)
    assert answers[0] == answers[1]


def test_audit_verify_checks_the_lookup_chains(app, client, world):
    for who in ("station", "other_doctor", "stranger", "station"):
        client.post(LOOKUP, json={"health_id": NOBODY}, headers=world.headers(who))
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    report = json.loads(result.output.strip().splitlines()[-1])
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    assert report["events"] >= 4
    with app.app_context():
        chains = set(db.session.scalars(select(AuditEvent.citizen_id).where(
            AuditEvent.section == "identity-lookup")).all())
    assert len(chains) == 3  # the station's, the doctor's facility's, the citizen's
    assert all(isinstance(chain, uuid.UUID) for chain in chains)
