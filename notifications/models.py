"""Notification tables: inbox items, the per-channel outbox, devices and preferences (DESIGN §6).

Nothing personal is stored in clear: a notification keeps its trigger code and its parameters
encrypted under the subject citizen's data key (rendered into words on read); a device keeps its
token encrypted (plus an HMAC for lookups); the outbox keeps only ids, states and opaque keys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow
from core.encryption import EncryptedField, EncryptedModelMixin, encrypted_column

RECIPIENT_CITIZEN = "citizen"
RECIPIENT_ACCOUNT = "account"
RECIPIENT_KINDS = (RECIPIENT_CITIZEN, RECIPIENT_ACCOUNT)

# Outbox row states: waiting (maybe until quiet hours end or a retry is due), done, given up.
PENDING = "pending"
SENT = "sent"
DEAD = "dead"  # dead-lettered: retries exhausted or the provider refused for good
CANCELLED = "cancelled"  # nothing to send to any more (device unregistered, contact removed)
DELIVERY_STATES = (PENDING, SENT, DEAD, CANCELLED)


class Notification(EncryptedModelMixin, db.Model):
    """One inbox item for one recipient, about one subject citizen."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_inbox", "recipient_kind", "recipient_id", "created_at", "id"),
        Index(
            "ix_notifications_unread",
            "recipient_kind",
            "recipient_id",
            sqlite_where=text("read_at IS NULL"),
            postgresql_where=text("read_at IS NULL"),
        ),
    )
    vault_citizen_attr = "subject_citizen_id"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Whose record it is about: the vault key of the parameters, so erasing that person erases
    # every notification about them, in their own inbox and in a guardian's.
    subject_citizen_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("citizens.id"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    params_ct: Mapped[bytes] = encrypted_column(nullable=False)
    # sha256 of the trigger's natural key and the recipient: the same fact notifies once.
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    params = EncryptedField("params_ct", kind="json")


class Delivery(db.Model):
    """The outbox: one row per notification and external channel (and device, for push)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # Only waiting rows are ever scanned by the worker: keep sent ones out of that index.
        Index(
            "ix_notification_deliveries_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    # The notification's subject: the partition column on PostgreSQL (core/partitioning), so
    # a delivery lives with its notification; the composite foreign key there keeps them equal.
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(8))
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("notification_devices.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    # Sent to the provider (idempotency key, collapse key, Message-ID): stable across retries.
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    last_error: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Device(EncryptedModelMixin, db.Model):
    """A push endpoint of a person: an FCM registration token or a Web Push subscription."""

    __tablename__ = "notification_devices"
    __table_args__ = (Index("ix_notification_devices_owner", "owner_kind", "owner_id"),)
    # Tokens are secrets of their owner: encrypted under the owner's vault key (an account
    # without a citizen gets a data key of its own, keyed by the account id).
    vault_citizen_attr = "owner_id"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    platform: Mapped[str] = mapped_column(String(8))
    token_ct: Mapped[bytes] = encrypted_column(nullable=False)
    # HMAC of the token (blind-index key): a token re-registered by anyone is found again.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    token = EncryptedField("token_ct")


class Preference(db.Model):
    """A person's notification settings; absent means every default applies."""

    __tablename__ = "notification_preferences"

    owner_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # {trigger: {channel: bool}}: only what differs from the defaults is meaningful.
    channels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # None: the service default (QUIET_HOURS); "": none; "HH:MM-HH:MM": this window.
    quiet_hours: Mapped[str | None] = mapped_column(String(11))
    language: Mapped[str | None] = mapped_column(String(2))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
