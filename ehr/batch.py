"""The station batch upload: up to 500 immunizations after an outreach day, each on its own.

Every item is validated, authorized and stored independently and answered with its own status:
201 created, 200 replay of an earlier upload of the same `client_item_id`, or a problem. A bad
item never blocks the good ones. The work is set-based (see `upload`): a 500-item batch costs
about fifteen statements, not fifteen per item.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from consent.pdp import citizen_birth_date, preload_facts
from core import idempotency
from core.conditional import version_etag
from core.db import insert_unstaged
from core.errors import Forbidden, Message, NotFound, Problem, ValidationFailed
from core.events import emit_many
from ehr import records
from ehr.access import RecordAccess
from ehr.repository import RecordRepository
from ehr.views import entry_view

MAX_ITEMS = 500
ROUTE = "/immunizations/batch"


@dataclass
class ItemResult:
    client_item_id: str | None
    status: int
    entry: dict[str, Any] | None = None
    problem: Problem | None = None


def _item_scope(access: RecordAccess, client_item_id: str) -> bytes:
    return idempotency.scope_of(
        client_id=access.caller.client_id, account_id=access.caller.account_id,
        key="batch-item:" + client_item_id,
    )


def _shape_errors(item: Any, seen: set[str]) -> tuple[str | None, uuid.UUID | None, Problem | None]:
    if not isinstance(item, dict):
        return None, None, ValidationFailed(errors={"item": [Message("record.batch-item-object")]})
    client_item_id = item.get("client_item_id")
    errors: dict[str, list[Message | str]] = {}
    if not isinstance(client_item_id, str) or not 1 <= len(client_item_id) <= 64:
        errors["client_item_id"] = [Message("record.batch-client-item-id")]
        client_item_id = None
    elif client_item_id in seen:
        errors["client_item_id"] = [Message("record.duplicate-client-item-id")]
    citizen_id = None
    try:
        citizen_id = uuid.UUID(str(item.get("citizen_id")))
    except ValueError:
        errors["citizen_id"] = [Message("record.invalid-uuid")]
    if errors:
        return client_item_id, citizen_id, ValidationFailed(errors=errors)
    return client_item_id, citizen_id, None


def upload(
    access: RecordAccess,
    *,
    items: Sequence[Any],
) -> list[ItemResult]:
    """Process one batch; the caller commits once at the end.

    Set-based whatever the batch size: one query for earlier uploads, one for the citizens
    with their data keys, one each for the performers and facilities named, the decisions
    audited in three statements, one fan-out of notifications, one flush of the new entries.
    Items uploaded before are answered again only to a caller who may read their entries now
    (one query for those entries, one audited read decision each: a retry's cost).
    """
    session = access.session
    results: list[ItemResult] = []
    pending: list[tuple[int, str, uuid.UUID, dict[str, Any], bytes, bytes]] = []
    seen: set[str] = set()
    for item in items:
        client_item_id, citizen_id, problem = _shape_errors(item, seen)
        if client_item_id:
            seen.add(client_item_id)
        if problem is not None or client_item_id is None or citizen_id is None:
            results.append(ItemResult(client_item_id, problem.status if problem else 422,
                                      problem=problem))
            continue
        body = {k: v for k, v in item.items() if k not in ("client_item_id", "citizen_id")}
        scope = _item_scope(access, client_item_id)
        fingerprint = idempotency.fingerprint_of(
            method="POST", route=ROUTE, body={"citizen_id": str(citizen_id), **body}
        )
        results.append(ItemResult(client_item_id, 0))
        pending.append((len(results) - 1, client_item_id, citizen_id, body, scope, fingerprint))
    if not pending:
        return results

    preload_facts(session, {p[2] for p in pending}, now=access.now,
                  parts=frozenset({"citizen"}))
    earlier = RecordRepository(access).batch_replays(
        section="immunizations", keys=[(p[4], p[5]) for p in pending])
    references = records.References(session)
    references.preload(p[3] for p in pending if p[4] not in earlier)

    # Validate each new item against the shapes, code lists and references.
    valid: list[tuple[int, uuid.UUID, dt.date | None, records.PreparedEntry, bytes, bytes]] = []
    for index, _client_item_id, citizen_id, body, scope, fingerprint in pending:
        previous = earlier.get(scope)
        if previous is not None:
            _answer_replay(results[index], previous)
            continue
        try:
            # Shape first: it says nothing about the person, whether they exist or not.
            prepared = records.prepare_entry(access, section="immunizations", body=body,
                                             references=references)
            try:
                birth = citizen_birth_date(session, citizen_id)
            except NotFound:
                raise _unknown_citizen() from None
        except Problem as problem:
            results[index].status, results[index].problem = problem.status, problem
            continue
        valid.append((index, citizen_id, birth, prepared, scope, fingerprint))

    # Decide (and audit) every valid item together, then add what was permitted.
    decisions = access.decide_creates([
        (citizen_id, "immunizations", prepared.sensitivity, prepared.clinical_date,
         prepared.source)
        for _, citizen_id, _, prepared, _, _ in valid
    ]) if valid else []
    created: list[tuple[int, Any, bytes, bytes]] = []
    events = []
    for (index, citizen_id, birth, prepared, scope, fingerprint), decision in zip(
        valid, decisions, strict=True
    ):
        try:
            if not decision.permit:
                # To an uploader nothing relates to the person, the answer of a person who
                # does not exist (the batch must not tell who exists, like the person's routes).
                if not decision.related:
                    raise _unknown_citizen()
                raise Forbidden(Message("problem.section-forbidden.detail"),
                                code="section-forbidden")
            records.check_against_person(birth, "immunizations", prepared)
        except Problem as problem:
            results[index].status, results[index].problem = problem.status, problem
            continue
        entry, event = records.add_entry(access, citizen_id=citizen_id, section="immunizations",
                                         prepared=prepared, references=references, stage=False)
        created.append((index, entry, scope, fingerprint))
        events.append(event)
    emit_many(session, events)

    if created:
        names = records.names_of(access, [c[1] for c in created])
        remembered = []
        for index, entry, scope, fingerprint in created:
            view = entry_view(entry, names)
            results[index].status, results[index].entry = 201, view
            remembered.append(idempotency.remember(
                session, scope=scope, fingerprint=fingerprint, citizen_id=entry.citizen_id,
                status=201, body={"body": view, "etag": version_etag(entry.id, 1)},
                resource_id=str(entry.id), stage=False,
            ))
        # The new entries and their stored answers: one multi-row INSERT each.
        insert_unstaged(session, [entry for _, entry, _, _ in created] + remembered)
    return results


def _answer_replay(result: ItemResult, previous: idempotency.Replay | Problem) -> None:
    """An item uploaded before: the first answer again, or the item's problem (422 when its
    content changed, 403/404 when the caller may not read its entry now)."""
    if isinstance(previous, Problem):
        result.status, result.problem = previous.status, previous
        return
    result.status = 200
    result.entry = dict(previous.body)["body"]


def result_view(result: ItemResult, render: Callable[[Problem], Mapping[str, Any]]) -> dict:
    view: dict[str, Any] = {"client_item_id": result.client_item_id, "status": result.status}
    if result.entry is not None:
        view["entry"] = result.entry
    if result.problem is not None:
        view["problem"] = dict(render(result.problem))
    return view


def _unknown_citizen() -> NotFound:
    return NotFound(Message("record.citizen-unknown"))
