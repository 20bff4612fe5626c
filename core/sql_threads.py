"""SQLAlchemy's column "proxy index", filled whole or not at all, for threads that share statements.

A selectable's column collection finds "the column of mine that stands for that one"
(`corresponding_column`) through a proxy index it fills lazily, the first time it is asked
(`WriteableColumnCollection._init_proxy_index`, SQLAlchemy 2.1.9). It fills the index in place,
one column after another, and a reader that finds the index not empty takes it as complete. Two
threads compiling the same statement for the first time can therefore see a half-filled index:
the ORM then adapts the first columns of `aliased(Citizen, cte)` to the CTE and leaves the rest
on the base table, which lands in FROM beside it, a cross join of every citizen and every data key.

It happened (2026-12-07, README "Benchmarks", issue 18): on a cold worker four threads compiled
the standing summary's statement at once; the compiled text went into the engine's compiled
cache, so every summary of that worker ran it, each for minutes, holding the chain head of the
person read. Measured on this code with `sys.setswitchinterval(1e-6)` and eight threads
compiling a new `select(aliased(Citizen, cte))` each: about half the compiled texts were wrong
(245 of 480); with this module none (tests/core/test_sql_threads.py).

The fix builds the whole index aside and publishes it with one `dict.update`, which under the
GIL no other thread sees half done (a dict merged from a dict reuses the stored hashes: no
Python code runs between its keys). A reader sees it empty, and fills it itself (the same
content), or whole. `core.db` installs it as it is imported, before any thread starts.
"""

from __future__ import annotations

import collections
from typing import Any

from sqlalchemy.sql import base as _sql_base
from sqlalchemy.util import OrderedSet

_PATCHED = "_phr_whole_proxy_index"


def _init_proxy_index_whole(self: Any) -> None:
    """SQLAlchemy's `_init_proxy_index`, published at once instead of filled in place."""
    index = self._proxy_index
    if index:
        return
    whole: dict[Any, Any] = collections.defaultdict(OrderedSet)
    for _, _, metrics in self._collection:
        for column in metrics.column._expanded_proxy_set:
            whole[column].add(metrics)
    index.update(whole)


def install() -> None:
    """Replace the in-place fill (once; idempotent)."""
    collection = _sql_base.WriteableColumnCollection
    if getattr(collection._init_proxy_index, _PATCHED, False):
        return
    setattr(_init_proxy_index_whole, _PATCHED, True)
    collection._init_proxy_index = _init_proxy_index_whole  # type: ignore[method-assign]
