"""Reminders computed for everyone: vaccinations from the schedule, periodic examinations, and
consents about to expire.

A run walks the citizens in id order, in chunks: decrypts each date of birth (dates of birth are
encrypted, so a database filter on age is impossible), asks the dose provider for the recorded
doses of the children of the chunk, computes each child's schedule, and writes reminders through
the outbox in one transaction per chunk.

Per child and due date, doses due together become one notification, at most:
- "soon": once, when the doses enter the schedule's due-soon window (14 days by the data file);
- "due": once, on the due date (until they become overdue);
- "overdue": once when overdue, then every 30 days, three times in all.
Each is keyed by child, stage, due date (and overdue round), so running the computation twice, or
on two machines at once, notifies once.

Who hears of a child's vaccinations: the guardians in force, and the child when the child can
sign in. A child nobody can open an inbox for (no account, no guardian) is reminded by SMS at the
contact phone the station registered, each dose once; without a phone, nobody is told. The
reminder carries the child's station (`notifications.stations`), which the SMS names.

Periodic examinations are told to the person and those acting for them; consents about to
expire (`NOTIFICATIONS_CONSENT_EXPIRY_DAYS`, 7 by default) to the audience the consent layer
names for that consent (`notifications.consent_expiry`).

The recorded doses and the periodic examinations falling due come from the record (`ehr`,
through its repository); `DOSES` and `EXAMS` are typed hooks whose defaults are those, so a test
or the reminders benchmark can answer for a world without records.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.encryption import ERASED, keyring
from core.hooks import Hook
from core.vault.errors import VaultError
from ehr import immunization_doses_of, periodic_exams_due
from notifications import triggers
from notifications.consent_expiry import expiring_notices
from notifications.models import RECIPIENT_CITIZEN, Notification
from notifications.outbox import NotificationRequest, enqueue
from notifications.recipients import Recipient, citizens_with_accounts, recipients_for_many
from notifications.runtime import runtime
from notifications.stations import stations_of
from registry.models import Citizen
from registry.reference.durations import Duration
from registry.reference.schedule import (
    DoseStatus,
    GivenDose,
    Schedule,
    ScheduledDoseStatus,
    compute_schedule,
    load_schedule,
)

log = logging.getLogger("phr.notifications.reminders")

DosesProvider = Callable[[Session, Sequence[uuid.UUID]], Mapping[uuid.UUID, Sequence[GivenDose]]]
ExamProvider = Callable[[Session, Sequence[uuid.UUID], dt.date], Mapping[uuid.UUID, dt.date]]

OVERDUE_REPEAT_DAYS = 30
OVERDUE_ROUNDS = 3
STAGE_SOON = "soon"
STAGE_DUE = "due"
STAGE_OVERDUE = "overdue"


@dataclass
class ReminderRun:
    """What a run did."""

    citizens: int = 0
    children: int = 0
    notifications: int = 0
    skipped_unreadable: int = 0
    by_trigger: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, object]:
        return {
            "citizens": self.citizens, "children": self.children,
            "notifications": self.notifications, "skipped_unreadable": self.skipped_unreadable,
            "by_trigger": dict(self.by_trigger),
        }


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder about one child: the doses of one due date at one stage."""

    stage: str
    due_date: dt.date
    item_ids: tuple[str, ...]
    overdue_round: int = 0

    @property
    def trigger(self) -> str:
        return triggers.VACCINATION_OVERDUE if self.stage == STAGE_OVERDUE else (
            triggers.VACCINATION_DUE
        )

    def natural_key(self, schedule_id: str) -> str:
        base = f"{schedule_id}:{self.stage}:{self.due_date.isoformat()}"
        return f"{base}:{self.overdue_round}" if self.stage == STAGE_OVERDUE else base


def child_age_limit(schedule: Schedule) -> Duration:
    """After this age nothing of the schedule can still be reminded about."""
    months = max(
        (row.recommended_age.years * 12 + row.recommended_age.months
         for row in schedule.rows if row.recommended_age is not None),
        default=0,
    )
    # The last dose (Td at 7 years) has a year of grace, then monthly overdue rounds.
    return Duration(months=months + 24)


def reminders_for(statuses: Sequence[ScheduledDoseStatus], today: dt.date) -> list[Reminder]:
    """The reminders one child's schedule calls for today (pure: no database)."""
    groups: dict[tuple[str, dt.date, int], list[str]] = defaultdict(list)
    for item in statuses:
        if item.status is DoseStatus.UPCOMING and item.due_soon:
            groups[(STAGE_SOON, item.due_date, 0)].append(item.item_id)
        elif item.status is DoseStatus.DUE:
            groups[(STAGE_DUE, item.due_date, 0)].append(item.item_id)
        elif item.status is DoseStatus.OVERDUE:
            overdue_round = (today - item.overdue_date).days // OVERDUE_REPEAT_DAYS
            if overdue_round < OVERDUE_ROUNDS:
                groups[(STAGE_OVERDUE, item.due_date, overdue_round)].append(item.item_id)
    return [
        Reminder(stage=stage, due_date=due, item_ids=tuple(ids), overdue_round=round_)
        for (stage, due, round_), ids in sorted(groups.items())
    ]


# (session, citizen ids) -> {citizen id: recorded doses}; the record's answer unless a test or
# the benchmark installs another.
DOSES: Hook[DosesProvider] = Hook("reminder-doses", immunization_doses_of)
# (session, citizen ids, today) -> {citizen id: the periodic examination's due date}
EXAMS: Hook[ExamProvider] = Hook("reminder-exams", periodic_exams_due)


def _date_of_birth(citizen: Citizen) -> dt.date | None:
    try:
        value = citizen.date_of_birth
    except VaultError:
        return None
    if value is None or value is ERASED:
        return None
    return value


def run_reminders(
    session: Session,
    *,
    today: dt.date,
    chunk_size: int = 1000,
    start_after: uuid.UUID | None = None,
    up_to: uuid.UUID | None = None,
    limit: int | None = None,
    commit: bool = True,
) -> ReminderRun:
    """Compute and write every reminder due ``today`` for the citizens with ids in
    (start_after, up_to] (everyone by default); one transaction per chunk."""
    doses_provider = DOSES()
    exams_provider = EXAMS()
    schedule = load_schedule()
    age_limit = child_age_limit(schedule)
    run = ReminderRun()
    cursor = start_after
    while limit is None or run.citizens < limit:
        size = chunk_size if limit is None else min(chunk_size, limit - run.citizens)
        query = select(Citizen).order_by(Citizen.id).limit(size)
        if cursor is not None:
            query = query.where(Citizen.id > cursor)
        if up_to is not None:
            query = query.where(Citizen.id <= up_to)
        citizens = list(session.scalars(query))
        if not citizens:
            break
        cursor = citizens[-1].id
        run.citizens += len(citizens)
        _run_chunk(session, citizens, today=today, schedule=schedule, age_limit=age_limit,
                   doses_provider=doses_provider, exams_provider=exams_provider, run=run)
        if commit:
            session.commit()
        session.expunge_all()  # keep memory flat over millions of citizens
    return run


_ID_SPACE = 2**128


def shard_bounds(shard: int, shards: int) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of shard ``shard`` (1-based) of ``shards`` as (start_after, up_to): citizen ids
    are random UUIDs, so equal slices of the id space hold about equal numbers of citizens."""
    if not 1 <= shard <= shards:
        raise ValueError("shard must be between 1 and the number of shards")
    start_after = None if shard == 1 else uuid.UUID(int=(shard - 1) * _ID_SPACE // shards - 1)
    up_to = None if shard == shards else uuid.UUID(int=shard * _ID_SPACE // shards - 1)
    return start_after, up_to


def _run_chunk(
    session: Session,
    citizens: Sequence[Citizen],
    *,
    today: dt.date,
    schedule: Schedule,
    age_limit: Duration,
    doses_provider: DosesProvider,
    exams_provider: ExamProvider,
    run: ReminderRun,
) -> None:
    keyring(session).preload(c.id for c in citizens)
    children: dict[uuid.UUID, tuple[Citizen, dt.date]] = {}
    for citizen in citizens:
        born = _date_of_birth(citizen)
        if born is None:
            run.skipped_unreadable += 1
            continue
        if born <= today < age_limit.after(born):
            children[citizen.id] = (citizen, born)
    run.children += len(children)
    requests: list[NotificationRequest] = []
    if children:
        doses = doses_provider(session, list(children))
        due: dict[uuid.UUID, list[Reminder]] = {}
        for child_id, (_, born) in children.items():
            statuses = compute_schedule(
                date_of_birth=born, doses=doses.get(child_id, ()), today=today,
                schedule=schedule,
            )
            if found := reminders_for(statuses, today):
                due[child_id] = found
        if due:
            requests += _vaccination_requests(
                session, {cid: children[cid][0] for cid in due}, due, schedule)
    exams = exams_provider(session, [c.id for c in citizens], today)
    if exams:
        people = recipients_for_many(session, list(exams))
        requests += [
            NotificationRequest(
                trigger=triggers.PERIODIC_EXAM_DUE, subject_citizen_id=citizen_id,
                recipient=recipient, natural_key=f"periodic-exam:{day.isoformat()}",
                params={"due_date": day.isoformat()},
            )
            for citizen_id, day in exams.items()
            for recipient in people.get(citizen_id, [])
        ]
    requests += expiring_notices(session, [c.id for c in citizens], today=today,
                                 days=runtime().settings.consent_expiry_days)
    if not requests:
        return
    created = enqueue(session, requests)
    run.notifications += len(created)
    if created:
        for trigger in session.scalars(
            select(Notification.trigger).where(Notification.id.in_(created))
        ):
            run.by_trigger[trigger] += 1


def _vaccination_requests(
    session: Session,
    kids: Mapping[uuid.UUID, Citizen],
    due: Mapping[uuid.UUID, Sequence[Reminder]],
    schedule: Schedule,
) -> list[NotificationRequest]:
    """Who hears of each child's reminders, and how often.

    Those who can act on them hear every stage: the guardians in force, and the child when
    the child can sign in. A child nobody can open an inbox for (no account, no guardian) is
    reminded only at the contact phone the station registered, by SMS, once per dose
    (whichever stage comes first): without it, each due date would pile up to five notices
    into an inbox no one reads. Without a phone either, there is nobody to tell.
    """
    ids = list(kids)
    people = recipients_for_many(session, ids)
    signed_in = citizens_with_accounts(session, ids)
    stations = stations_of(session, kids.values())
    requests: list[NotificationRequest] = []
    contact: list[tuple[uuid.UUID, Reminder, dict[str, object]]] = []
    for child_id, reminders in due.items():
        child = Recipient.citizen(child_id)
        everyone = people.get(child_id, [child])
        audience = everyone if child_id in signed_in else [p for p in everyone if p != child]
        for reminder in reminders:
            params: dict[str, object] = {
                "schedule": schedule.id, "stage": reminder.stage,
                "due_date": reminder.due_date.isoformat(), "doses": list(reminder.item_ids),
            }
            if child_id in stations:
                params["facility_id"] = str(stations[child_id])
            if audience:
                requests += [
                    NotificationRequest(
                        trigger=reminder.trigger, subject_citizen_id=child_id,
                        recipient=person, natural_key=reminder.natural_key(schedule.id),
                        params=params,
                    )
                    for person in audience
                ]
            elif kids[child_id].phone_ct is not None:
                contact.append((child_id, reminder, params))
    return requests + _once_per_dose(session, contact, schedule)


def _once_per_dose(
    session: Session,
    contact: Sequence[tuple[uuid.UUID, Reminder, dict[str, object]]],
    schedule: Schedule,
) -> list[NotificationRequest]:
    """For a child reached only by SMS, each dose is told once, in the first reminder that
    names it (whichever stage). Neither the stage nor the date can key it: doses due together
    part ways as some become overdue, and a dose whose earlier dose was never given has a due
    date that moves with the calendar, so either would text the family again and again. The
    doses already told are read back from the child's own reminders (a handful, decrypted);
    the key names the doses told now, so two runs at once still write one."""
    children = {child_id for child_id, _, _ in contact}
    if not children:
        return []
    told: dict[uuid.UUID, set[str]] = defaultdict(set)
    for notification in session.scalars(select(Notification).where(
        Notification.recipient_kind == RECIPIENT_CITIZEN,
        Notification.recipient_id.in_(children),
        Notification.subject_citizen_id == Notification.recipient_id,
        Notification.trigger.in_([triggers.VACCINATION_DUE, triggers.VACCINATION_OVERDUE]),
    )):
        try:
            params = notification.params
        except VaultError:
            continue
        if isinstance(params, dict):
            told[notification.subject_citizen_id].update(map(str, params.get("doses") or ()))
    requests: list[NotificationRequest] = []
    for child_id, reminder, params in contact:
        fresh = sorted(set(reminder.item_ids) - told[child_id])
        if not fresh:
            continue
        told[child_id].update(fresh)
        requests.append(NotificationRequest(
            trigger=reminder.trigger, subject_citizen_id=child_id,
            recipient=Recipient.citizen(child_id),
            natural_key=f"{schedule.id}:contact:{','.join(fresh)}",
            params={**params, "doses": fresh},
        ))
    return requests
