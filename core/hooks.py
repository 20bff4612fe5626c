"""Typed hooks: where a package asks a question that a package above it answers.

The layers point one way (DESIGN.md §1), so the record cannot import notifications to show the
unread count, nor auth import consent to list a citizen's dependants. The asking package
declares a `Hook` with the signature and a default; the answering package installs its
function with a plain call from its `init_app`. One typed object per question, found by
reading the declaration, instead of a string key in `app.extensions` that every caller spells
again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flask import Flask, current_app

F = TypeVar("F", bound=Callable[..., Any])


class Hook(Generic[F]):
    """One question, its answer's signature `F`, and what it answers when nobody installed one."""

    def __init__(self, name: str, default: F) -> None:
        self.name = name
        self.default = default
        self._key = "phr.hook." + name

    def install(self, app: Flask, implementation: F) -> None:
        """Answer this hook for `app` (the answering package's init_app; a test may too)."""
        app.extensions[self._key] = implementation

    def installed(self, app: Flask) -> F:
        """What `app` answers now (the default when nothing is installed), so that an
        installer can wrap an earlier answer instead of replacing it."""
        return app.extensions.get(self._key, self.default)

    def uninstall(self, app: Flask) -> None:
        app.extensions.pop(self._key, None)

    def __call__(self) -> F:
        """The installed answer of the current app, else the default."""
        return current_app.extensions.get(self._key, self.default)

    def __repr__(self) -> str:
        return f"Hook({self.name!r})"
