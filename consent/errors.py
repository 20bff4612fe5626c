"""Problems the consent services raise, with catalogue messages (consent/messages.py)."""

from __future__ import annotations

import consent.messages  # noqa: F401  (registers the texts these problems use)
from core.errors import Conflict, Message, ValidationFailed


def field_problem(field: str, key: str, **params: object) -> ValidationFailed:
    """A 422 naming one field and why it was refused."""
    return ValidationFailed(errors={field: [Message(key, **params)]})


def conflict(code: str) -> Conflict:
    """A 409 with its own stable code and texts (problem.<code>.title / .detail)."""
    return Conflict(code=code)
