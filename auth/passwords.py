"""Password hashing with argon2id (memory-hard), and the rules a new password must meet."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 256

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): memory-hard yet cheap enough for
# national login peaks. Stored hashes carry their parameters; raising these upgrades each
# hash at its owner's next successful login.
_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def _normalize(password: str) -> str:
    # Vietnamese letters arrive composed or decomposed depending on the keyboard: hash one form.
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string with its salt and parameters)."""
    return _HASHER.hash(_normalize(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash (constant-time inside argon2)."""
    try:
        return _HASHER.verify(stored_hash, _normalize(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("not a password of anyone")


def burn_verification(password: str) -> None:
    """Spend the time of one verification, for unknown usernames (no timing oracle)."""
    verify_password(_dummy_hash(), password)


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def password_problems(password: str, *, username: str | None = None) -> list[str]:
    """Message keys of what is wrong with a new password; empty when it is acceptable."""
    problems = []
    normalized = _normalize(password)
    if len(normalized) < MIN_LENGTH:
        problems.append("account.password.too-short")
    if len(normalized) > MAX_LENGTH:
        problems.append("account.password.too-long")
    if username and normalized.strip().lower() == username.strip().lower():
        problems.append("account.password.same-as-username")
    return problems
