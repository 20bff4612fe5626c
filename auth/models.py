"""Accounts, OAuth clients, authorization codes, tokens and login throttles (DESIGN.md §4).

Secrets never rest in clear: passwords are argon2id hashes, client secrets, authorization codes
and tokens are SHA-256 digests of high-entropy random strings (a digest is enough when the
preimage has 256 bits; it also makes lookup one indexed equality). A citizen's account stores
the citizen id, never the health ID: login finds the citizen through the vault's blind index.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from auth.credentials import digest_matches
from auth.scopes import all_covered, join_scope, split_scope
from core.db import UTCDateTime, db, utcnow

ROLES = ("citizen", "practitioner", "station", "admin")
CLIENT_TYPES = ("public", "confidential")
DIGEST_BYTES = 32
ACCOUNT_CODE_PURPOSES = ("activation", "password-reset")


def _split(value: str | None) -> list[str]:
    return value.split() if value else []


class Account(db.Model):
    """Someone who logs in: a citizen (by health ID) or staff (by username)."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(
            "role IN ('citizen', 'practitioner', 'station', 'admin')", name="role"
        ),
        # A citizen logs in with their health ID, so a citizen account has no username;
        # staff accounts always have one.
        CheckConstraint(
            "(role = 'citizen' AND citizen_id IS NOT NULL AND username IS NULL)"
            " OR (role <> 'citizen' AND citizen_id IS NULL AND username IS NOT NULL)",
            name="identity",
        ),
        CheckConstraint("role <> 'practitioner' OR practitioner_id IS NOT NULL",
                        name="practitioner"),
        CheckConstraint("role <> 'station' OR facility_id IS NOT NULL", name="station"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    role: Mapped[str] = mapped_column(String(16))
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    citizen_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("citizens.id"), unique=True
    )
    practitioner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("practitioners.id"), unique=True
    )
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facilities.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def get_user_id(self) -> str:
        """Authlib's user protocol: the OIDC subject."""
        return str(self.id)


class OAuthClient(db.Model):
    """A registered application. Authlib's ClientMixin is implemented in auth.server."""

    __tablename__ = "oauth_clients"
    __table_args__ = (
        CheckConstraint("client_type IN ('public', 'confidential')", name="client_type"),
        CheckConstraint(
            "(client_type = 'public' AND client_secret_hash IS NULL)"
            " OR (client_type = 'confidential' AND client_secret_hash IS NOT NULL)",
            name="secret",
        ),
        # Only a server that can keep a secret may ask about other clients' tokens.
        CheckConstraint("client_type = 'confidential' OR NOT resource_server",
                        name="resource_server"),
    )

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    client_type: Mapped[str] = mapped_column(String(16))
    client_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(DIGEST_BYTES))
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    grant_types: Mapped[str] = mapped_column(Text)  # space-separated
    redirect_uris: Mapped[str] = mapped_column(Text, default="")  # space-separated, exact
    scope: Mapped[str] = mapped_column(Text, default="")  # the most it may ever get
    # Station and clinic systems act for a facility when they use client credentials.
    facility_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("facilities.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A resource server (a FHIR gateway, a partner API) introspects the access tokens its
    # callers present, whoever they were issued to (RFC 7662 §2.1); other clients only their
    # own. A registration flag rather than a scope: it is not something a token may carry.
    resource_server: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"

    @property
    def grant_type_list(self) -> list[str]:
        return _split(self.grant_types)

    @property
    def redirect_uri_list(self) -> list[str]:
        return _split(self.redirect_uris)

    @property
    def scope_list(self) -> list[str]:
        return _split(self.scope)

    # Authlib's ClientMixin ---------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous registration may omit redirect_uri from the request.
        uris = self.redirect_uri_list
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope when the registration covers all of it (None refuses: no silent
        escalation); everything registered when nothing was requested."""
        requested = split_scope(scope)
        if not requested:
            return self.scope
        if not all_covered(requested, self.scope_list):
            return None
        return join_scope(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uri_list  # exact string match, no prefixes

    def check_client_secret(self, client_secret: str) -> bool:
        return not self.is_public and digest_matches(client_secret, self.client_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            # A public client may use the token endpoint and log out (revoke); it may not
            # introspect.
            return method == "none" and endpoint in ("token", "revocation")
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_type_list

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_type_list


class AuthorizationCode(db.Model):
    """A single-use authorization code (≤ 60 s), stored as a digest."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(DIGEST_BYTES), unique=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oauth_clients.client_id"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("accounts.id"), index=True)
    redirect_uri: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


class OAuthToken(db.Model):
    """An access token and its optional refresh token, both stored as digests.

    Rotation keeps a family: every refresh creates a new row with the same `family_id` and links
    the old row to it (`successor_id`). A family started by an authorization code has the code's
    id as family id, so a replayed code can revoke everything issued from it.
    """

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        Index("ix_oauth_tokens_family_id", "family_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oauth_clients.client_id"), index=True
    )
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("accounts.id"), index=True
    )
    grant_type: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_hash: Mapped[bytes] = mapped_column(LargeBinary(DIGEST_BYTES), unique=True)
    refresh_token_hash: Mapped[bytes | None] = mapped_column(
        LargeBinary(DIGEST_BYTES), unique=True
    )
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    access_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    refresh_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    auth_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refresh_rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    successor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The successor's token response, encrypted under a key derived from this row's refresh
    # token (which only the client holds), so a replay inside the grace window can be answered
    # with the very same tokens. Cleared once the successor is used.
    successor_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def scope_list(self) -> list[str]:
        return _split(self.scope)

    def check_client(self, client: OAuthClient) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope


class LoginThrottle(db.Model):
    """Failed-login counters per username and per address (keys are HMACs, never the values)."""

    __tablename__ = "login_throttles"

    key: Mapped[bytes] = mapped_column(LargeBinary(DIGEST_BYTES), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "address"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AccountCode(db.Model):
    """A one-time code a person types to open their account (activation) or to set a new
    password (password-reset); see auth/account_codes.py.

    Eight digits have only 10^8 values, so a plain digest would be reversed in a second: the
    code is kept as an HMAC under a key derived from SECRET_KEY, bound to the row, the person
    and the purpose. A code ends used, revoked (superseded by a newer one, or burned by too
    many wrong tries) or expired; an ended code never works again.
    """

    __tablename__ = "account_codes"
    __table_args__ = (
        CheckConstraint("purpose IN ('activation', 'password-reset')", name="purpose"),
        # The live code of a person for a purpose is the newest: one index range.
        Index("ix_account_codes_citizen_purpose", "citizen_id", "purpose", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    purpose: Mapped[str] = mapped_column(String(16))
    citizen_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("citizens.id"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(DIGEST_BYTES))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(16))  # superseded | burned
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong tries so far
    # Who issued it: station staff (account and facility), a station's system (client and
    # facility); nobody for a reset the person asked for themselves.
    issued_by_account_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("accounts.id")
    )
    issued_by_facility_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("facilities.id")
    )
    issued_by_client_id: Mapped[str | None] = mapped_column(String(64))
