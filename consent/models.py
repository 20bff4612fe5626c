"""Consent tables: consents, access requests, break-glass, guardianships, audit (DESIGN.md §5).

Free text written about a citizen (an access request's or a break-glass reason, a flag's note,
why a guardianship ended, a facility's answer to a flag) can carry health details, so it is
encrypted under the citizen's data key like the record.
Audit rows hold ids and codes only; they reference no other table so that they outlive
anything they mention.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow
from core.encryption import EncryptedField, EncryptedModelMixin, encrypted_column

GRANTEE_TYPES = ("practitioner", "facility")
ACCESS_LEVELS = ("read", "read-write")
GUARDIAN_KINDS = ("minor", "proxy")
REQUEST_PENDING, REQUEST_APPROVED, REQUEST_DENIED = "pending", "approved", "denied"
CLAIM_STATUSES = (REQUEST_PENDING, REQUEST_APPROVED, REQUEST_DENIED)
FLAG_OPEN, FLAG_REVIEWED = "open", "reviewed"
# What a facility found when it reviewed a flagged access: the access had a care reason
# (`justified`), it had none and the facility acted (`unjustified`), or it cannot tell.
FLAG_OUTCOMES = ("justified", "unjustified", "inconclusive")


class Consent(db.Model):
    """The citizen's grant to a practitioner or a facility; revoked, never deleted."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_grantee", "grantee_type", "grantee_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"), index=True)
    grantee_type: Mapped[str] = mapped_column(String(16))
    grantee_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sections: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    access: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(24))
    data_from: Mapped[dt.date | None] = mapped_column(Date)
    data_until: Mapped[dt.date | None] = mapped_column(Date)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    access_request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    granted_by_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    revoked_by_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessRequest(EncryptedModelMixin, db.Model):
    """A practitioner asks a citizen for access; the answer creates a consent or not."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_practitioner_created", "practitioner_id", "created_at"),
        Index("ix_access_requests_citizen_created", "citizen_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioners.id"))
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facilities.id"))
    sections: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    access: Mapped[str] = mapped_column(String(16))
    reason_ct: Mapped[bytes] = encrypted_column(nullable=False)
    status: Mapped[str] = mapped_column(String(16), default=REQUEST_PENDING)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_by_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("consents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    reason = EncryptedField("reason_ct")


class BreakGlassSession(EncryptedModelMixin, db.Model):
    """An emergency opening of one citizen's record by one practitioner, for review."""

    __tablename__ = "break_glass_sessions"
    __table_args__ = (
        Index("ix_break_glass_sessions_facility_opened", "facility_id", "opened_at"),
        Index("ix_break_glass_sessions_citizen_expires", "citizen_id", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("practitioners.id"))
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facilities.id"))
    reason_ct: Mapped[bytes] = encrypted_column(nullable=False)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    reason = EncryptedField("reason_ct")


class Guardianship(EncryptedModelMixin, db.Model):
    """A guardian of a minor, or an adult's named proxy; revoked, never deleted.

    Ending one records who ended it and, for a station, why (told to the guardians; encrypted
    under the dependant's data key)."""

    __tablename__ = "guardianships"
    __table_args__ = (
        Index(
            "uq_guardianships_active_pair",
            "guardian_citizen_id",
            "dependant_citizen_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    guardian_citizen_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("citizens.id"), index=True
    )
    dependant_citizen_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("citizens.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    relationship: Mapped[str] = mapped_column(String(32))
    categories: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_via: Mapped[str] = mapped_column(String(16))  # station | citizen | guardian | seed
    created_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_by_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    revoked_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_by_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    revoked_by_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    end_reason_ct: Mapped[bytes | None] = encrypted_column()

    vault_citizen_attr = "dependant_citizen_id"
    end_reason = EncryptedField("end_reason_ct")


class GuardianClaim(db.Model):
    """"This is my child": a citizen who knows a minor's health ID and birth date asks to be
    their guardian. It opens nothing; a guardian in force or the child's own commune station
    (papers seen) approves it, which creates the guardianship, or denies it."""

    __tablename__ = "guardian_claims"
    __table_args__ = (
        Index("ix_guardian_claims_dependant_created", "dependant_citizen_id", "created_at"),
        Index("ix_guardian_claims_claimant_created", "claimant_citizen_id", "created_at"),
        Index(
            "uq_guardian_claims_pending_pair",
            "claimant_citizen_id",
            "dependant_citizen_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    dependant_citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    claimant_citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    relationship: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=REQUEST_PENDING)
    claimant_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    answered_by_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    answered_by_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    guardianship_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("guardianships.id"))


class AccessDigest(db.Model):
    """The last local day each reader was reported to the citizen: one notification a day."""

    __tablename__ = "access_digests"

    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reader: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_day: Mapped[dt.date] = mapped_column(Date)


class GuardianClaimFailure(db.Model):
    """Failed "this is my child" claims per citizen and local day (guessing a birth date)."""

    __tablename__ = "guardian_claim_failures"

    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)


class AuditChainHead(db.Model):
    """The end of one citizen's audit chain; its row lock serialises that citizen only."""

    __tablename__ = "audit_chain_heads"

    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditEvent(db.Model):
    """One access decision (permit or deny). Append-only; no clinical content."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("citizen_id", "seq", name="uq_audit_events_citizen_seq"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    on_behalf_of: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    section: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The entry's label (not its content): lets the access log keep a teen's restricted
    # entries from a guardian's eyes, as the record itself does.
    sensitivity: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(24))
    purpose: Mapped[str | None] = mapped_column(String(24))
    decision: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    break_glass_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    client_id: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(128))
    actor_label: Mapped[str | None] = mapped_column(String(128))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    def content(self) -> dict[str, Any]:
        """The hashed fields, as stored."""
        return {name: getattr(self, name) for name in AUDIT_CONTENT_FIELDS}


# The fields an event's hash covers (everything but its position and the hash itself).
AUDIT_CONTENT_FIELDS = (
    "id", "citizen_id", "occurred_at", "actor_role", "actor_account_id", "actor_citizen_id",
    "actor_practitioner_id", "actor_facility_id", "on_behalf_of", "section", "entry_id",
    "sensitivity", "action", "purpose", "decision", "rule", "consent_id", "break_glass_id",
    "client_id", "request_id", "actor_label",
)


class AccessLogFlag(EncryptedModelMixin, db.Model):
    """The citizen's "I don't recognise this" on one access-log entry, for review by the
    facility whose member (or system) made the access; the outcome is shown to the citizen."""

    __tablename__ = "access_log_flags"
    __table_args__ = (
        Index("ix_access_log_flags_facility_created", "facility_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"), index=True)
    audit_event_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("audit_events.id"), unique=True
    )
    flagged_by_citizen_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    note_ct: Mapped[bytes | None] = encrypted_column()
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The facility that reviews it: the one the access was made at (None: nobody's to review).
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facilities.id"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_note_ct: Mapped[bytes | None] = encrypted_column()
    reviewed_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    note = EncryptedField("note_ct")
    outcome_note = EncryptedField("outcome_note_ct")
