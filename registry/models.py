"""Registry models (DESIGN.md §2): citizens, facilities, practitioners, family-doctor assignment.

Every personal field of a citizen is encrypted by the vault; only ids, timestamps, blind indexes
and non-personal codes stay in clear. Practitioner and facility data is the public professional
register (licences are published by law), so it stays in clear.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, db, utcnow
from core.encryption import (
    EncryptedField,
    EncryptedModelMixin,
    blind_index_column,
    encrypted_column,
    install_cache_invalidation,
)
from core.vault.phone import normalize_phone_vn

install_cache_invalidation(db.Model)

FACILITY_KINDS = (
    "commune-health-station",
    "district-health-centre",
    "hospital",
    "private-clinic",
)
PROFESSIONS = ("doctor", "physician-assistant", "nurse", "midwife", "vaccinator")
SEXES = ("male", "female", "other")


class Citizen(EncryptedModelMixin, db.Model):
    __tablename__ = "citizens"
    vault_citizen_attr = "id"
    vault_derived_blind_indexes = ("cohort_bidx",)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    health_id_ct: Mapped[bytes] = encrypted_column(nullable=False)
    health_id_bidx: Mapped[bytes | None] = blind_index_column(unique=True)
    social_insurance_code_ct: Mapped[bytes | None] = encrypted_column()
    social_insurance_code_bidx: Mapped[bytes | None] = blind_index_column(unique=True)
    full_name_ct: Mapped[bytes] = encrypted_column(nullable=False)
    date_of_birth_ct: Mapped[bytes] = encrypted_column(nullable=False)
    sex_ct: Mapped[bytes] = encrypted_column(nullable=False)
    phone_ct: Mapped[bytes | None] = encrypted_column()
    phone_bidx: Mapped[bytes | None] = blind_index_column()
    email_ct: Mapped[bytes | None] = encrypted_column()
    address_ct: Mapped[bytes | None] = encrypted_column()
    ethnicity_ct: Mapped[bytes | None] = encrypted_column()
    preferred_language: Mapped[str] = mapped_column(String(2), default="vi")
    status: Mapped[str] = mapped_column(String(16), default="active")
    registered_by_facility_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("facilities.id"), index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Blind index of (current commune, birth year): a station finds the children of its commune
    # without decrypting everyone (registry/cohorts.py keeps it; exact lookup only).
    cohort_bidx: Mapped[bytes | None] = blind_index_column()

    health_id = EncryptedField(
        "health_id_ct", blind_index_attr="health_id_bidx", normalize=str.strip
    )
    social_insurance_code = EncryptedField(
        "social_insurance_code_ct", blind_index_attr="social_insurance_code_bidx",
        normalize=str.strip,
    )
    full_name = EncryptedField("full_name_ct")
    date_of_birth = EncryptedField("date_of_birth_ct", kind="date")
    sex = EncryptedField("sex_ct")
    phone = EncryptedField("phone_ct", blind_index_attr="phone_bidx", normalize=normalize_phone_vn)
    email = EncryptedField("email_ct")
    address = EncryptedField("address_ct", kind="json")
    ethnicity = EncryptedField("ethnicity_ct")


class Facility(db.Model):
    __tablename__ = "facilities"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    province_code: Mapped[str] = mapped_column(String(3), index=True)
    district_code: Mapped[str] = mapped_column(String(5))
    commune_code: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The name folded for accent-insensitive search ("huong" finds "Hương"); public data.
    search_name: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Practitioner(db.Model):
    __tablename__ = "practitioners"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    full_name: Mapped[str] = mapped_column(String(255))
    practising_certificate: Mapped[str] = mapped_column(String(32), unique=True)
    profession: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    search_name: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[PractitionerMembership]] = relationship(
        back_populates="practitioner", lazy="selectin"
    )


class PractitionerMembership(db.Model):
    __tablename__ = "practitioner_memberships"
    __table_args__ = (
        Index(
            "uq_practitioner_memberships_active",
            "practitioner_id",
            "facility_id",
            unique=True,
            sqlite_where=text("ended_on IS NULL"),
            postgresql_where=text("ended_on IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("practitioners.id"), index=True
    )
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facilities.id"), index=True)
    title: Mapped[str | None] = mapped_column(String(64))
    started_on: Mapped[dt.date] = mapped_column(db.Date)
    ended_on: Mapped[dt.date | None] = mapped_column(db.Date)

    practitioner: Mapped[Practitioner] = relationship(back_populates="memberships")
    facility: Mapped[Facility] = relationship(lazy="joined")


class FamilyDoctorAssignment(db.Model):
    """A citizen's registration with a family doctor; history kept, at most one active."""

    __tablename__ = "family_doctor_assignments"
    __table_args__ = (
        Index(
            "uq_family_doctor_assignments_active",
            "citizen_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        # The family doctor's panel pages through her current registrations by citizen id.
        Index(
            "ix_family_doctor_assignments_panel",
            "practitioner_id",
            "citizen_id",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"), index=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("practitioners.id"), index=True
    )
    facility_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("facilities.id"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    changed_by: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(32))

    practitioner: Mapped[Practitioner] = relationship(lazy="joined")
    facility: Mapped[Facility] = relationship(lazy="joined")


# The listeners that keep a citizen's commune/birth-year cohort index, installed with the model
# they keep (no write of a citizen can miss them; `registry.caller`, which the pure policy
# imports, stays free of the ORM). Last: they need `Citizen`.
import registry.cohorts  # noqa: E402, F401
