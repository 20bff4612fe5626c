"""Who receives a notification about a citizen: hooks other packages plug in through app.extensions.

- ``app.extensions["phr.recipients_for"]``: ``(session, citizen_id) -> list[citizen_id]``, the
  citizens to tell about this citizen (the citizen and, for a minor, the guardians). Default: the
  citizen alone. The consent package sets it when guardianships exist.
- ``app.extensions["phr.recipients_for_many"]`` (optional, for reminder runs):
  ``(session, citizen_ids) -> dict[citizen_id, list[citizen_id]]``; without it the single hook is
  called once per citizen.
- ``app.extensions["phr.accounts_for_practitioner"]``: ``(session, practitioner_id) ->
  list[account_id]``, the accounts to tell about an answered access request. Default: the
  ``accounts`` table of the auth package when it is installed, else nobody.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from notifications.models import RECIPIENT_ACCOUNT, RECIPIENT_CITIZEN

RecipientsHook = Callable[[Session, uuid.UUID], Sequence[uuid.UUID]]


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


def recipients_for(session: Session, citizen_id: uuid.UUID) -> list[Recipient]:
    """The citizens to tell about ``citizen_id`` (the hook's answer, or the citizen alone)."""
    hook: RecipientsHook | None = current_app.extensions.get("phr.recipients_for")
    if hook is None:
        return [Recipient.citizen(citizen_id)]
    return _unique(Recipient.citizen(_as_uuid(c)) for c in hook(session, citizen_id))


def recipients_for_many(
    session: Session, citizen_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Recipient]]:
    """``recipients_for`` for many citizens, in one call when a batch hook is installed."""
    batch = current_app.extensions.get("phr.recipients_for_many")
    if batch is not None:
        answer = batch(session, list(citizen_ids))
        return {
            cid: _unique(Recipient.citizen(_as_uuid(c)) for c in answer.get(cid, [cid]))
            for cid in citizen_ids
        }
    return {cid: recipients_for(session, cid) for cid in citizen_ids}


def accounts_for_practitioner(session: Session, practitioner_id: uuid.UUID) -> list[Recipient]:
    """The accounts of a practitioner (hook, else the auth package's accounts table)."""
    hook = current_app.extensions.get("phr.accounts_for_practitioner")
    if hook is None:
        hook = _accounts_from_auth
    return _unique(Recipient.account(_as_uuid(a)) for a in hook(session, practitioner_id))


def _accounts_from_auth(session: Session, practitioner_id: uuid.UUID) -> list[uuid.UUID]:
    try:
        from auth.models import Account
    except ImportError:  # a deployment without the auth package has no staff accounts
        return []
    from sqlalchemy import select

    return list(session.scalars(
        select(Account.id).where(
            Account.practitioner_id == practitioner_id, Account.active.is_(True)
        )
    ))
