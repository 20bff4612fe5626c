"""Domain events: how ehr and consent tell notifications what happened without importing it.

A service emits an event with the session it is writing in; subscribed handlers run at once in
the same transaction (the notifications outbox row commits with the change or not at all).
Events carry ids and codes only, never personal values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from core.db import utcnow

# The events the record and consent layers emit; handlers may subscribe to any of them.
ENTRY_CREATED = "record.entry-created"  # data: section, entry_id, sensitivity, source,
# clinical_date, author_practitioner_id
RECORD_ACCESSED = "record.accessed"  # data: actor_kind, practitioner_id, facility_id, section
BREAK_GLASS_OPENED = "consent.break-glass-opened"  # data: break_glass_id, practitioner_id
ACCESS_REQUESTED = "consent.access-requested"  # data: request_id, practitioner_id
ACCESS_REQUEST_ANSWERED = "consent.access-request-answered"  # data: request_id, decision
CONSENT_EXPIRING = "consent.expiring"  # data: consent_id, expires_at

Handler = Callable[[Session, "DomainEvent"], None]
# A handler that takes every event of one `emit_many` call at once (set-based fan-out).
BatchHandler = Callable[[Session, Sequence["DomainEvent"]], None]


@dataclass(frozen=True)
class DomainEvent:
    name: str
    citizen_id: uuid.UUID
    data: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: dt.datetime = field(default_factory=utcnow)


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._batch_handlers: dict[str, list[BatchHandler]] = defaultdict(list)

    def subscribe(self, name: str, handler: Handler) -> None:
        if handler not in self._handlers[name]:
            self._handlers[name].append(handler)

    def subscribe_many(self, name: str, handler: BatchHandler) -> None:
        """A handler given all events of one emit_many call together (one emit: a list of
        one), so a batch of 500 entries fans out in a few statements, not 500 times as many."""
        if handler not in self._batch_handlers[name]:
            self._batch_handlers[name].append(handler)

    def emit(self, session: Session, event: DomainEvent) -> None:
        """Run every handler now, inside the caller's transaction; a failure aborts the change."""
        self.emit_many(session, [event])

    def emit_many(self, session: Session, events: Sequence[DomainEvent]) -> None:
        """`emit` for many events: batch handlers once per event name, others once per event."""
        by_name: dict[str, list[DomainEvent]] = defaultdict(list)
        for event in events:
            by_name[event.name].append(event)
        for name, named in by_name.items():
            for handler in list(self._handlers.get(name, ())):
                for event in named:
                    handler(session, event)
            for batch_handler in list(self._batch_handlers.get(name, ())):
                batch_handler(session, named)

    def clear(self) -> None:
        self._handlers.clear()
        self._batch_handlers.clear()


def bus() -> EventBus:
    """The app's bus (app.extensions['phr.events']); handlers are per app, not global."""
    from flask import current_app

    events: EventBus | None = current_app.extensions.get("phr.events")
    if events is None:
        events = EventBus()
        current_app.extensions["phr.events"] = events
    return events


def emit(session: Session, event: DomainEvent) -> None:
    bus().emit(session, event)


def emit_many(session: Session, events: Sequence[DomainEvent]) -> None:
    bus().emit_many(session, events)
