"""Accounts linked to a person's identity at an external OpenID Connect provider (VNeID).

The provider's subject identifier is stored only as a keyed digest (HMAC-SHA256 under the blind
index key, with the issuer in the message): a copy of the table does not say who anyone is at
the provider, and a login finds its link with one indexed equality. The issuer is configuration,
not personal data, and stays in clear so links of a replaced provider can be told apart.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow

DIGEST_BYTES = 32


class ExternalIdentity(db.Model):
    """One (issuer, subject) pair known to be the citizen whose account this is."""

    __tablename__ = "external_identities"
    __table_args__ = (
        UniqueConstraint("issuer", "subject_digest", name="uq_external_identities_subject"),
        # One subject per provider and account: a second subject claiming the same person is
        # refused rather than silently added (a provider that re-issues subjects is an
        # operator's matter, not something a login decides).
        UniqueConstraint("issuer", "account_id", name="uq_external_identities_account"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    issuer: Mapped[str] = mapped_column(String(255))
    subject_digest: Mapped[bytes] = mapped_column(LargeBinary(DIGEST_BYTES))
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
