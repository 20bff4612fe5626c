"""Who receives a notification about a citizen: the citizen and the guardians and proxies in
force (consent decides), or a practitioner's staff accounts (auth knows them).

Notifications sits above both and calls them directly. `RECIPIENTS` is a typed hook whose
default is consent's answer: a test or the reminders benchmark installs a smaller world's
answer without building guardianships (`RECIPIENTS.install(app, fn)`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.models import Account
from consent import guardians
from core.hooks import Hook
from notifications.models import RECIPIENT_ACCOUNT, RECIPIENT_CITIZEN

RecipientsOfMany = Callable[
    [Session, Sequence[uuid.UUID]], Mapping[uuid.UUID, Sequence[uuid.UUID]]]


@dataclass(frozen=True, slots=True, order=True)
class Recipient:
    """A citizen (by citizen id) or a staff account (by account id)."""

    kind: str
    id: uuid.UUID

    @classmethod
    def citizen(cls, citizen_id: uuid.UUID) -> Recipient:
        return cls(RECIPIENT_CITIZEN, citizen_id)

    @classmethod
    def account(cls, account_id: uuid.UUID) -> Recipient:
        return cls(RECIPIENT_ACCOUNT, account_id)


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _unique(recipients: Iterable[Recipient]) -> list[Recipient]:
    seen: dict[Recipient, None] = {}
    for recipient in recipients:
        seen.setdefault(recipient, None)
    return list(seen)


def _consent_recipients(
    session: Session, citizen_ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, Sequence[uuid.UUID]]:
    return guardians.recipients_for_many(session, list(citizen_ids))


# (session, citizen ids) -> {citizen id: the citizens to tell about them}
RECIPIENTS: Hook[RecipientsOfMany] = Hook("notification-recipients", _consent_recipients)


def recipients_for(session: Session, citizen_id: uuid.UUID) -> list[Recipient]:
    """The citizens to tell about ``citizen_id``."""
    return recipients_for_many(session, [citizen_id])[citizen_id]


def recipients_for_many(
    session: Session, citizen_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Recipient]]:
    """``recipients_for`` for many citizens, in one call (their facts load together)."""
    answer = RECIPIENTS()(session, list(citizen_ids))
    return {
        cid: _unique(Recipient.citizen(_as_uuid(c)) for c in answer.get(cid, [cid]))
        for cid in citizen_ids
    }


def accounts_for_practitioner(session: Session, practitioner_id: uuid.UUID) -> list[Recipient]:
    """The active staff accounts of a practitioner."""
    accounts = session.scalars(select(Account.id).where(
        Account.practitioner_id == practitioner_id, Account.active.is_(True)))
    return _unique(Recipient.account(_as_uuid(a)) for a in accounts)


def citizens_with_accounts(session: Session, citizen_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these citizens who can sign in and open their inbox (an active account)."""
    if not citizen_ids:
        return set()
    return {_as_uuid(c) for c in session.scalars(select(Account.citizen_id).where(
        Account.citizen_id.in_(list(citizen_ids)), Account.active.is_(True)))}
