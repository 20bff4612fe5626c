"""Threads that compile one new statement at once all get the same, whole SQL (core/sql_threads.py).

Without the fix about half the texts compiled here left the citizen's columns on the base table
(245 of 480, and the standing summary's own statement broke the same way on a cold worker): a
cross join of every citizen. Threads switch every microsecond here so that the window, a few
bytecodes wide, opens on every run.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from consent import pdp
from consent.pdp import Content
from core import sql_threads
from ehr.record_models import RecordEntry
from registry.models import Citizen

THREADS = 8
ROUNDS = 40


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _compiled_at_once(statement: Any, dialect: Any) -> list[str]:
    """The statement compiled by THREADS threads released together, its first compilation."""
    barrier = threading.Barrier(THREADS)
    texts: list[str] = []

    def compile_it() -> None:
        barrier.wait()
        texts.append(str(statement.compile(dialect=dialect)))

    threads = [threading.Thread(target=compile_it) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(texts) == THREADS
    return texts


def _outer_select(text: str) -> str:
    """What follows the CTEs: the statement's own SELECT list and FROM."""
    return text.rsplit(")\n SELECT", 1)[-1]


def _every_round(build: Callable[[int], Any], dialect: Any) -> list[str]:
    wrong = []
    for number in range(ROUNDS):
        for text in _compiled_at_once(build(number), dialect):
            outer = _outer_select(text)
            if "citizens." in outer or "vault_data_keys." in outer:
                wrong.append(text)
    return wrong


def test_the_fix_is_installed_when_the_database_module_is():
    from sqlalchemy.sql.base import WriteableColumnCollection

    import core.db  # noqa: F401  (installs it)

    assert WriteableColumnCollection._init_proxy_index is sql_threads._init_proxy_index_whole


@pytest.mark.parametrize("dialect", [postgresql.psycopg2.dialect(), sqlite.dialect()],
                         ids=["postgresql", "sqlite"])
def test_an_entity_aliased_to_a_new_cte_is_compiled_whole_by_every_thread(dialect):
    def build(number: int) -> Any:
        facts = select(Citizen).where(Citizen.id == bindparam("one_id")).cte(f"facts_{number}")
        return select(aliased(Citizen, facts))

    assert _every_round(build, dialect) == []


def test_the_standing_summary_statement_is_compiled_whole_by_every_thread():
    """The statement that broke: a person's facts with their citizen and data key as entities,
    carrying the standing append and the content (consent.pdp)."""

    def newest_first(entry: Any) -> tuple[Any, ...]:
        return (entry.clinical_date.desc().nulls_last(), entry.id.desc())

    def build(number: int) -> Any:
        content = Content(
            entity=RecordEntry,
            query=select(RecordEntry).where(RecordEntry.citizen_id == bindparam("one_id"),
                                            RecordEntry.section == f"section-{number}"),
            order=newest_first)
        facts = pdp._build_citizens_query(True, None, None, single=True, digest=True)
        return pdp._carrying_standing_content(facts, None, content, True, True)

    wrong = _every_round(build, postgresql.psycopg2.dialect())
    assert wrong == [], wrong[0][-400:]
