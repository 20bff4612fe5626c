"""The portal's server-side sessions (backend-for-frontend): the browser holds a random cookie,
the server holds the tokens.

A row is found by the SHA-256 of the cookie's value and its tokens are sealed (AES-GCM) under a
key derived from that same value: a copy of the database alone opens no session and reveals no
token; the browser's cookie alone is worth one session, until it idles out or logs out.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow


class PortalSession(db.Model):
    __tablename__ = "portal_sessions"
    __table_args__ = (Index("ix_portal_sessions_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # SHA-256 of the cookie value (unique): the lookup key, which opens nothing by itself.
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # "pending" between /login and /callback (PKCE verifier, state), then "active" (tokens).
    phase: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
