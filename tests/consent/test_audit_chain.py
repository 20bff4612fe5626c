"""The per-citizen hash chain and `flask audit verify` catching edits, deletions, reorders."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import text

from consent.audit import (
    GENESIS,
    append_event,
    append_events,
    chain_step,
    content_digest,
    verify_chains,
)
from consent.models import AuditChainHead, AuditEvent
from core.db import db
from tests.consent import world as w
from tests.support.append_only import audit_triggers_off

T0 = dt.datetime(2025, 6, 1, 9, 0, 0, 123456, tzinfo=dt.UTC)
ALICE = uuid.UUID(int=0xA11CE)
BOB = uuid.UUID(int=0xB0B)


def _append(citizen_id: uuid.UUID, n: int, *, section: str = "allergies") -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        ids.append(append_event(
            db.session, citizen_id=citizen_id, occurred_at=T0 + dt.timedelta(seconds=i),
            actor_role="practitioner", actor_practitioner_id=uuid.UUID(int=7),
            section=section, action="read", purpose="treatment", decision="permit",
            rule="family-doctor", request_id=f"req-{i}",
        ))
    db.session.commit()
    return ids


def _tamper(sql: str, **params: object) -> None:
    """Change audit rows behind the application's back (what an attacker with SQL would do)."""
    # The append-only triggers refuse even the owner; whoever owns the server (a superuser)
    # or the SQLite file can switch them off.
    with audit_triggers_off(db.session.connection()):
        db.session.execute(text(sql), params)
    db.session.commit()


def _verify(app) -> tuple[int, dict]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


@pytest.fixture
def chains(app_context):
    return {"alice": _append(ALICE, 5), "bob": _append(BOB, 3, section="conditions")}


def test_a_batch_of_events_extends_the_same_chains_in_three_statements(app, chains):
    """Existing chains (alice, bob), a new one (carol), a citizen twice in one batch, and a
    single append afterwards: every chain still verifies, with no gap in the sequence."""
    carol = uuid.UUID(int=0xCA201)
    contents = [
        {"citizen_id": cid, "occurred_at": T0 + dt.timedelta(minutes=i), "actor_role": "station",
         "section": "immunizations", "action": "create", "decision": "permit",
         "rule": "station-immunization", "request_id": f"batch-{i}"}
        for i, cid in enumerate([ALICE, carol, BOB, ALICE, carol])
    ]
    with w.statements() as seen:
        ids = append_events(db.session, contents)
    db.session.commit()
    assert len(seen) == 3
    assert len(set(ids)) == 5
    _append(ALICE, 1)
    seqs = {cid: [e.seq for e in db.session.query(AuditEvent).filter_by(citizen_id=cid)
                  .order_by(AuditEvent.seq)] for cid in (ALICE, BOB, carol)}
    assert seqs == {ALICE: [1, 2, 3, 4, 5, 6, 7, 8], BOB: [1, 2, 3, 4], carol: [1, 2]}
    code, report = _verify(app)
    assert (code, report["ok"], report["events"]) == (0, True, 14)


def test_the_database_computes_the_same_chain_as_python(chains):
    rows = db.session.query(AuditEvent).filter_by(citizen_id=ALICE).order_by(AuditEvent.seq)
    previous = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        assert row.seq == expected_seq
        previous = chain_step(previous, content_digest(row.content()))
        assert bytes(row.hash) == previous
    head = db.session.get(AuditChainHead, ALICE)
    assert (head.seq, bytes(head.last_hash)) == (5, previous)


def test_intact_chains_verify(app_context, chains):
    code, report = _verify(app_context)
    assert code == 0
    assert report == {"events": 8, "chains": 2, "ok": True, "broken_chains": 0, "broken": []}


def test_an_edited_event_is_detected(app_context, chains):
    _tamper("UPDATE audit_events SET rule = 'consent' WHERE citizen_id = :c AND seq = 3",
            c=_db_uuid(ALICE))
    code, report = _verify(app_context)
    assert code == 1
    assert report["ok"] is False
    assert report["broken"] == [{"citizen_id": str(ALICE), "seq": 3, "reason": "hash-mismatch"}]


def test_an_edit_that_also_rewrites_the_stored_hash_is_detected_by_the_next_event(
    app_context, chains
):
    row = db.session.query(AuditEvent).filter_by(citizen_id=ALICE, seq=2).one()
    content = row.content() | {"decision": "deny"}
    forged = chain_step(bytes(db.session.query(AuditEvent).filter_by(
        citizen_id=ALICE, seq=1).one().hash), content_digest(content))
    db.session.rollback()
    _tamper("UPDATE audit_events SET decision = 'deny', hash = :h WHERE citizen_id = :c "
            "AND seq = 2", h=forged, c=_db_uuid(ALICE))
    code, report = _verify(app_context)
    assert code == 1
    assert report["broken"] == [{"citizen_id": str(ALICE), "seq": 3, "reason": "hash-mismatch"}]


def test_a_deleted_event_is_detected(app_context, chains):
    _tamper("DELETE FROM audit_events WHERE citizen_id = :c AND seq = 2", c=_db_uuid(ALICE))
    code, report = _verify(app_context)
    assert code == 1
    assert report["broken"] == [{"citizen_id": str(ALICE), "seq": 2, "reason": "missing-event"}]


def test_a_deleted_last_event_is_detected_against_the_chain_head(app_context, chains):
    _tamper("DELETE FROM audit_events WHERE citizen_id = :c AND seq = 3", c=_db_uuid(BOB))
    code, report = _verify(app_context)
    assert code == 1
    assert report["broken"] == [{"citizen_id": str(BOB), "seq": 3, "reason": "missing-event"}]


def test_a_whole_deleted_chain_is_detected(app_context, chains):
    _tamper("DELETE FROM audit_events WHERE citizen_id = :c", c=_db_uuid(ALICE))
    code, report = _verify(app_context)
    assert code == 1
    assert report["events"] == 3
    assert report["broken"] == [{"citizen_id": str(ALICE), "seq": 1, "reason": "missing-event"}]


def test_reordered_events_are_detected(app_context, chains):
    # Swap positions 2 and 4 (through a free seq: (citizen, seq) is unique).
    _tamper("UPDATE audit_events SET seq = 99 WHERE citizen_id = :c AND seq = 2",
            c=_db_uuid(ALICE))
    _tamper("UPDATE audit_events SET seq = 2 WHERE citizen_id = :c AND seq = 4",
            c=_db_uuid(ALICE))
    _tamper("UPDATE audit_events SET seq = 4 WHERE citizen_id = :c AND seq = 99",
            c=_db_uuid(ALICE))
    code, report = _verify(app_context)
    assert code == 1
    assert report["broken"] == [{"citizen_id": str(ALICE), "seq": 2, "reason": "hash-mismatch"}]


def test_events_moved_to_another_citizen_are_detected(app_context, chains):
    _tamper("UPDATE audit_events SET citizen_id = :other, seq = 4 WHERE citizen_id = :c "
            "AND seq = 5", c=_db_uuid(ALICE), other=_db_uuid(BOB))
    code, report = _verify(app_context)
    assert code == 1
    reasons = {(b["citizen_id"], b["reason"]) for b in report["broken"]}
    assert reasons == {(str(ALICE), "missing-event"), (str(BOB), "hash-mismatch")}


def test_verify_one_citizen(app_context, chains):
    _tamper("DELETE FROM audit_events WHERE citizen_id = :c AND seq = 1", c=_db_uuid(BOB))
    assert verify_chains(db.session, citizen_id=ALICE).ok
    result = app_context.test_cli_runner().invoke(args=["audit", "verify", "--citizen", str(BOB)])
    assert result.exit_code == 1
    assert json.loads(result.output)["broken"][0]["citizen_id"] == str(BOB)


def test_an_empty_log_verifies(app_context):
    code, report = _verify(app_context)
    assert (code, report["events"], report["ok"]) == (0, 0, True)


def test_unknown_fields_and_naive_times_are_refused(app_context):
    with pytest.raises(TypeError):
        append_event(db.session, citizen_id=ALICE, occurred_at=T0, note="clinical text")
    with pytest.raises(ValueError, match="timezone-aware"):
        content_digest({"occurred_at": dt.datetime(2025, 1, 1)})  # noqa: DTZ001
    db.session.rollback()


def _db_uuid(value: uuid.UUID) -> object:
    # SQLAlchemy's Uuid type stores 32 hex digits on SQLite and a native uuid on PostgreSQL.
    return value.hex if db.engine.dialect.name == "sqlite" else value
