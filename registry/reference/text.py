"""Accent-insensitive text folding for Vietnamese search."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Return ``text`` lower-cased without diacritics ("Đái tháo đường" -> "dai thao duong")."""
    # đ/Đ is a separate letter, not d plus a combining mark, so NFD alone keeps it.
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())
