"""The personal health record: one table of entries for all sections, and their versions.

Only what queries need stays in clear: ids, citizen, section, clinical date, status,
sensitivity label, source, version, author and facility ids, timestamps. The clinical content
(every section-specific field) and the entered-in-error reason are encrypted by the vault.
Every clinical row carries citizen_id, the future partitioning / distribution column (§9).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow
from core.encryption import EncryptedField, EncryptedModelMixin, encrypted_column

STATUS_CURRENT = "current"
STATUS_ENTERED_IN_ERROR = "entered-in-error"
SOURCES = ("clinician", "station", "citizen-reported", "imported")


class RecordEntry(EncryptedModelMixin, db.Model):
    __tablename__ = "record_entries"
    __table_args__ = (
        Index("ix_record_entries_citizen_section_date", "citizen_id", "section", "clinical_date"),
        Index("ix_record_entries_citizen_updated", "citizen_id", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    section: Mapped[str] = mapped_column(String(32))
    clinical_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=STATUS_CURRENT)
    sensitivity: Mapped[str] = mapped_column(String(20), default="normal")
    source: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    author_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("practitioners.id")
    )
    author_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facilities.id"))
    # A citizen-reported dose checked by station staff against the paper record.
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    verified_by_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    verified_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    content_ct: Mapped[bytes] = encrypted_column(nullable=False)
    error_reason_ct: Mapped[bytes | None] = encrypted_column()
    entered_in_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    content = EncryptedField("content_ct", kind="json")
    error_reason = EncryptedField("error_reason_ct")


class RecordEntryVersion(EncryptedModelMixin, db.Model):
    """An earlier version of an entry, kept whole when a correction supersedes it."""

    __tablename__ = "record_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("record_entries.id"), index=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    clinical_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    sensitivity: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    author_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    author_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    verified_by_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    verified_facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    content_ct: Mapped[bytes] = encrypted_column(nullable=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    content = EncryptedField("content_ct", kind="json")
