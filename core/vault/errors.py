"""Vault errors: they name coordinates (table, column, row, key ids), never plaintext."""

from __future__ import annotations

import uuid


class VaultError(Exception):
    """Base class of every vault failure."""


class DecryptionError(VaultError):
    """A field could not be decrypted: tampered, moved to other coordinates, or wrong key."""

    def __init__(
        self,
        *,
        table: str | None = None,
        column: str | None = None,
        row_id: str | None = None,
        key_id: uuid.UUID | None = None,
        reason: str = "authentication failed",
    ) -> None:
        self.table = table
        self.column = column
        self.row_id = row_id
        self.key_id = key_id
        self.reason = reason
        super().__init__(
            f"cannot decrypt {table or '?'}.{column or '?'} row={row_id or '?'} "
            f"key={key_id or '?'}: {reason}"
        )


class KeyNotFoundError(VaultError):
    """No data key exists with this id."""

    def __init__(self, key_id: uuid.UUID) -> None:
        self.key_id = key_id
        super().__init__(f"data key {key_id} not found")


class KeyDestroyedError(VaultError):
    """The data key was destroyed (crypto-shredded): its ciphertexts are unreadable for good."""

    def __init__(self, key_id: uuid.UUID | None = None) -> None:
        self.key_id = key_id
        super().__init__(f"data key {key_id or '?'} was destroyed")


class KekUnavailableError(VaultError):
    """A key-encryption key is unknown, retired, or its source cannot be read."""

    def __init__(self, message: str, *, kek_id: str | None = None) -> None:
        self.kek_id = kek_id
        super().__init__(message)


class KeyUnwrapError(VaultError):
    """A wrapped data key failed authentication under its KEK (corrupt or tampered)."""

    def __init__(self, *, kek_id: str, key_id: uuid.UUID | None = None) -> None:
        self.kek_id = kek_id
        self.key_id = key_id
        super().__init__(f"cannot unwrap data key {key_id or '?'} with KEK {kek_id}")
