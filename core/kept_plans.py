"""Plans PostgreSQL keeps for the statements every read repeats, behind PgBouncer too.

psycopg2 sends each statement as text, so PostgreSQL parses and plans it on every execution:
for the consent-facts statement of a read that is most of its server CPU (0.47-0.77 ms as text
against 0.08 ms with a kept plan, measured on the bench database; README, Benchmarks, issue 18).
Prepared statements live in one server session, which PgBouncer's transaction pooling does not
give a client (the removed `core/prepared.py`: behind the pooler, its names answered from other
statements). A function does not: it is an object of the database, and each server session
keeps the plans of a PL/pgSQL function's statements for as long as it lives.

So a statement executed with the option KEEP_PLAN runs, on PostgreSQL and in autocommit (a read
outside a transaction, `core.transactions`, or a read's content statement carrying its audit
append, which commits as it returns), as `SELECT * FROM phr_plan_<hash>(arguments)`: a
function whose body is the statement's own text, `$n` for its parameters (a statement that
returns no rows, such as an audit append alone, is a procedure: `CALL phr_plan_<hash>(…)`),
named by a hash of that routine's whole definition (a name always means that text: no
mix-up, whichever session or worker created it). The first execution in a worker runs the text
and then creates the routine (in autocommit: a failure leaves nothing behind). Plans are forced
generic: over hash partitions PostgreSQL otherwise plans every call anew, its generic estimate
counting all sixteen partitions (the partition is chosen when the plan starts instead).

Whatever goes wrong keeps the statement plain, never fails the request: a function the role may
not create (no CREATE on the schema; logged once), a statement that cannot be such a function
(it stays plain in this worker), a function dropped since (run as text, made again next time)
or no longer matching its tables after a migration (run as text, not called again by this
worker). Only a failure of the connection itself is raised, as it would be anyway. Inside a
transaction statements stay plain: there an error would end the transaction (a write's reads
before its first write run outside it, core.transactions, and so are kept). SQLite, and
statements without the option, are untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import psycopg2
from psycopg2 import errorcodes
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Execution option of a plain SELECT whose plan the server should keep.
KEEP_PLAN = "phr_keep_plan"

_log = logging.getLogger(__name__)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
_PLAIN: Any = object()  # this worker runs the statement as text
_MAX_KEPT = 2048  # statement shapes per worker; beyond it, plain (a runaway of shapes)
_MAX_ARGUMENTS = 100  # PostgreSQL's FUNC_MAX_ARGS: a routine of more is refused (54023)
_lock = threading.Lock()
# (database, statement text) -> (the function's call, its parameters' order), or _PLAIN
_kept: dict[tuple[str, str], Any] = {}
_refused: set[str] = set()  # databases (DSN) where the role may not create functions

# The SQL type of a parameter's function argument, by its value's Python type (the types
# psycopg2 sends for them: the call casts each argument to it).
_SQL_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "bigint"), (float, "double precision"), (Decimal, "numeric"),
    (uuid.UUID, "uuid"), (dt.datetime, "timestamptz"), (dt.date, "date"),
    (bytes, "bytea"), (memoryview, "bytea"), (psycopg2.extensions.Binary, "bytea"),
    (str, "text"),
)


def install(engine: Engine, *, enabled: bool) -> None:
    """Keep plans for KEEP_PLAN statements on `engine` (PostgreSQL only)."""
    if not enabled or engine.dialect.name != "postgresql":
        return
    if not event.contains(engine, "do_execute", _execute_kept):
        event.listen(engine, "do_execute", _execute_kept)


def _execute_kept(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    if (context is None or not context.execution_options.get(KEEP_PLAN)
            or not isinstance(parameters, Mapping) or cursor.name is not None
            or not cursor.connection.autocommit):
        return False
    key = (cursor.connection.dsn, statement)
    kept = _kept.get(key)
    if kept is _PLAIN:
        return False
    if kept is None:
        # The first time in this worker: the text answers, then the function is made.
        cursor.execute(statement, parameters)
        _make(cursor, key, parameters, context)
        return True
    call, order = kept
    try:
        cursor.execute(call, [_argument(parameters[name]) for name in order])
    except psycopg2.ProgrammingError as error:
        # In autocommit the failed call has left nothing to undo: the text answers. A function
        # dropped since (a cleanup, a restored database) is made again next time; one that
        # does not fit (a migration changed its tables; a parameter whose type the text left
        # to its context) is not tried again by this worker.
        _remember(key, None if error.pgcode == errorcodes.UNDEFINED_FUNCTION else _PLAIN)
        cursor.execute(statement, parameters)
    return True


def _argument(value: Any) -> Any:
    # A UUID goes as its text, which the call casts (`%s::uuid`): psycopg2 quotes a string in
    # C, where a UUID takes its adapter's Python (2.0 µs a value against 1.55 with `str`).
    return str(value) if type(value) is uuid.UUID else value


def _make(cursor: Any, key: tuple[str, str], parameters: Mapping[str, Any],
          context: Any) -> None:
    dsn, statement = key
    if dsn in _refused or len(_kept) >= _MAX_KEPT:
        return
    maker = cursor.connection.cursor()
    try:
        definition = _definition(statement, parameters, cursor.description, context, maker)
        if definition is None:
            _remember(key, _PLAIN)
            return
        function, order, casts, ddl, returns_rows = definition
        maker.execute(ddl)
    except psycopg2.Error as error:
        if error.pgcode is None:
            raise  # the connection itself failed (lost, or its wait bound passed)
        if error.pgcode in (errorcodes.DUPLICATE_FUNCTION, errorcodes.UNIQUE_VIOLATION):
            pass  # another worker made the same function (the same name is the same text)
        elif error.pgcode == errorcodes.INSUFFICIENT_PRIVILEGE:
            _refused.add(dsn)
            _log.warning("kept plans off: the database role may not create functions "
                         "(grant CREATE on its schema, or set DB_KEEP_PLANS=0)")
            return
        else:
            _log.warning("kept plans: a statement stays plain (%s)", error.pgcode)
            _remember(key, _PLAIN)
            return
    finally:
        maker.close()
    _remember(key, (_call(function, casts, returns_rows=returns_rows), order))


def _remember(key: tuple[str, str], kept: Any) -> None:
    """Remember what this worker does with a statement (None: forget it, to decide anew)."""
    with _lock:
        if kept is None:
            _kept.pop(key, None)
        elif len(_kept) < _MAX_KEPT:
            _kept[key] = kept


def _definition(
    statement: str, parameters: Mapping[str, Any], description: Any, context: Any,
    maker: Any,
) -> tuple[str, tuple[str, ...], tuple[str, ...], str, bool] | None:
    """The routine's name, its parameters' order and SQL types, its CREATE statement and
    whether it returns rows; None when this statement cannot be one (more parameters than a
    routine may have, a parameter of no known type, two columns of one name)."""
    order: list[str] = []

    def positional(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    body = _PLACEHOLDER.sub(positional, statement)
    if len(order) > _MAX_ARGUMENTS:
        return None  # the server would refuse it (a long IN list: a batch's people)
    casts = []
    for name in order:
        sql_type = _sql_type(parameters.get(name), name, context)
        if sql_type is None:
            return None
        casts.append(sql_type)
    arguments = f"({', '.join(casts)})"
    if description:
        if len({column.name for column in description}) != len(description):
            return None
        columns = ", ".join(
            f"{_quoted(column.name)} {_column_type(column.type_code, maker)}"
            for column in description)
        # VOLATILE: a read's content statement may carry its audit append (data-modifying
        # WITH); called once in a FROM clause, volatility changes nothing else here.
        kind, head, run = "FUNCTION", f" RETURNS TABLE ({columns}) VOLATILE", "RETURN QUERY "
    else:
        # No rows (a read's audit append on its own): a procedure, whose CALL answers none
        # either, so the driver's cursor looks as it did after the text.
        kind, head, run = "PROCEDURE", "", ""
    text = (f"{arguments}{head} LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan "
            f"AS $phr_plan$\n#variable_conflict use_column\nBEGIN\n{run}{body};\n"
            f"END\n$phr_plan$")
    # The kind is hashed too: a function and a procedure never share a name.
    routine = "phr_plan_" + hashlib.sha256((kind + text).encode()).hexdigest()[:32]
    return routine, tuple(order), tuple(casts), f"CREATE {kind} {routine}{text}", bool(description)


def _sql_type(value: Any, name: str, context: Any) -> str | None:
    python_type: Any = type(value)
    if value is None:
        # No value to tell the type: the bound parameter's own type, when it names one.
        bind = next((b for b, n in context.compiled.bind_names.items() if n == name), None)
        try:
            python_type = bind.type.python_type if bind is not None else None
        except NotImplementedError:
            python_type = None
        if not isinstance(python_type, type):
            return None
    for known, sql_type in _SQL_TYPES:
        if issubclass(python_type, known):
            return sql_type
    return None


_TYPE_NAMES: dict[int, str] = {}


def _column_type(type_code: int, maker: Any) -> str:
    name = _TYPE_NAMES.get(type_code)
    if name is None:
        maker.execute("SELECT format_type(%s, NULL)", (type_code,))
        name = _TYPE_NAMES[type_code] = maker.fetchone()[0]
    return name


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _call(routine: str, casts: tuple[str, ...], *, returns_rows: bool) -> str:
    arguments = ", ".join(f"%s::{sql_type}" for sql_type in casts)
    # The name is a hex digest and the types come from _SQL_TYPES: no text of a caller's.
    if not returns_rows:
        return f"CALL {routine}({arguments})"
    return f"SELECT * FROM {routine}({arguments})"  # noqa: S608
