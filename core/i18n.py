"""Vietnamese-first messages with English on request; every user-facing string goes through here."""

from __future__ import annotations

from collections.abc import Mapping

from flask import g, has_request_context, request

SUPPORTED_LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

_CATALOGUE: dict[str, dict[str, str]] = {}


def register_messages(messages: Mapping[str, Mapping[str, str]]) -> None:
    """Add messages {key: {"vi": ..., "en": ...}}; each key must have both languages."""
    for key, texts in messages.items():
        missing = [lang for lang in SUPPORTED_LANGUAGES if lang not in texts]
        if missing:
            raise ValueError(f"message {key!r} lacks {missing}")
        existing = _CATALOGUE.get(key)
        if existing is not None and existing != dict(texts):
            raise ValueError(f"message {key!r} registered twice with different texts")
        _CATALOGUE[key] = dict(texts)


def has_message(key: str) -> bool:
    return key in _CATALOGUE


def negotiate_language(header: str | None) -> str:
    """Pick vi or en from an Accept-Language header (q-values honoured); vi when unsure."""
    if not header:
        return DEFAULT_LANGUAGE
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        q = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.split("-")[0]
        if primary in SUPPORTED_LANGUAGES and q > 0 and (q > best_q):
            best, best_q = primary, q - position * 1e-6
    return best


def current_language() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE
    lang = g.get("language")
    if lang is None:
        lang = negotiate_language(request.headers.get("Accept-Language"))
        g.language = lang
    return lang


def translate(key: str, lang: str | None = None, **params: object) -> str:
    """The message for key in lang (default: the request's), with {params} filled in."""
    texts = _CATALOGUE.get(key)
    if texts is None:
        raise KeyError(f"no message {key!r}")
    text = texts[lang or current_language()]
    return text.format(**params) if params else text
