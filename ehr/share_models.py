"""SMART Health Links: a citizen's time-limited link to their International Patient Summary,
and each opening of one by a recipient.

The link is a capability: whoever holds its `shlink:/` can ask for the summary. So the table
keeps only a hash of the manifest id (as tokens are kept), the passcode as an argon2 hash, and
the file key encrypted under the citizen's data key (crypto-shredding the citizen kills every
link). The key and the passcode hash are wiped the moment the link ends (expiry, revocation,
single use spent, passcode limit reached): an ended link cannot be brought back even with the
database. The label and a recipient's stated name can say something about the person's health
("for my HIV clinic"), so they are encrypted too.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow
from core.encryption import EncryptedField, EncryptedModelMixin, encrypted_column


class ShareLink(EncryptedModelMixin, db.Model):
    __tablename__ = "share_links"
    __table_args__ = (
        Index("ix_share_links_citizen_created", "citizen_id", "created_at"),
        # Links whose key still has to be wiped once they expire (the purge's scan).
        Index("ix_share_links_live_expiry", "expires_at",
              sqlite_where=text("key_ct IS NOT NULL"),
              postgresql_where=text("key_ct IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    # SHA-256 of the manifest id in the link's URL: the database alone opens nothing.
    manifest_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_by_citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_by_client_id: Mapped[str | None] = mapped_column(String(128))
    single_use: Mapped[bool] = mapped_column(Boolean, default=False)
    has_passcode: Mapped[bool] = mapped_column(Boolean, default=False)
    passcode_hash: Mapped[str | None] = mapped_column(String(255))
    passcode_failures: Mapped[int] = mapped_column(Integer, default=0)
    key_ct: Mapped[bytes | None] = encrypted_column()
    label_ct: Mapped[bytes | None] = encrypted_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    spent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opened_count: Mapped[int] = mapped_column(Integer, default=0)
    last_opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    key = EncryptedField("key_ct")
    label = EncryptedField("label_ct")


class ShareLinkOpening(EncryptedModelMixin, db.Model):
    """One fetch of a shared summary: its id is the audit event's, so the access log can name
    the recipient the link's holder stated."""

    __tablename__ = "share_link_openings"
    __table_args__ = (Index("ix_share_link_openings_link", "link_id", "opened_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("share_links.id"))
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"), index=True)
    recipient_ct: Mapped[bytes] = encrypted_column(nullable=False)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    recipient = EncryptedField("recipient_ct")
