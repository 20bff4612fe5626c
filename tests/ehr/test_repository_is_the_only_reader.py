"""Issue 14: the records repository is the only module that selects record content.

DESIGN.md §1: "Every selection of record content goes through the records repository, which
compiles the policy into its SQL and appends the audit event; no other module selects those
tables." The tables are the record's entries and their versions, and the stored answers of
creates (`idempotency_records`: an answer holds the view of the entry it created).

The rule checked, over every module of the application packages: only the modules below may
name the models (`RecordEntry`, `RecordEntryVersion`, `IdempotencyRecord`: imported, reached as
an attribute, or spelled in a string) or the tables (in any string but a docstring, which covers
raw SQL), and only the repository calls the functions that select stored answers
(`core.idempotency.lookup`/`lookup_many`). Type-only imports (`if TYPE_CHECKING:`) and
annotations are allowed: nothing can be selected through them at run time.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "registry", "auth", "consent", "ehr", "notifications")
MODELS = frozenset({"RecordEntry", "RecordEntryVersion", "IdempotencyRecord"})
TABLES = re.compile(r"\b(record_entries|record_entry_versions|idempotency_records)\b")
MODEL_MODULES = frozenset({"ehr.record_models", "core.idempotency"})
SELECTING = frozenset({"lookup", "lookup_many"})  # of core.idempotency

# Who may name the models or tables, and why. Keep it tiny.
ALLOWED = {
    "ehr/repository.py": "the records repository: every selection, and the rows it writes",
    "ehr/record_models.py": "defines RecordEntry and RecordEntryVersion",
    "core/idempotency.py": "defines IdempotencyRecord and its generic lookup (core knows no "
                           "record; only the repository calls the lookup for the record)",
    "core/partitioning.py": "names the tables to say how PostgreSQL partitions them (migration "
                            "0013); selects nothing",
    "ehr/seed_records.py": "the demo seed inserts entries through the model and counts a "
                           "citizen's entries to stay idempotent (no content is read)",
}
# Who may call the selecting functions of core.idempotency besides the repository.
ALLOWED_LOOKUPS = {
    "ehr/repository.py": "replays a record create only after a read decision on its entry",
    "core/idempotency.py": "where they are defined",
    "consent/api.py": "replays the answers of consent's own creates (grants, guardians, "
                      "requests): an answer's fingerprint binds it to its route, so this "
                      "lookup can never return a record's answer",
}


def _type_only(tree: ast.Module) -> set[int]:
    """Ids of the nodes inside `if TYPE_CHECKING:` blocks and annotations."""
    hidden: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            hidden.update(id(inner) for inner in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else (
                test.attr if isinstance(test, ast.Attribute) else None)
            if name == "TYPE_CHECKING":
                for inner in node.body:
                    mark(inner)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for argument in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                             node.args.vararg, node.args.kwarg):
                if argument is not None:
                    mark(argument.annotation)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
    return hidden


def _docstrings(tree: ast.Module) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def violations(source: str, path: str) -> Iterator[str]:
    """What in one module names the record's models or tables or selects stored answers."""
    tree = ast.parse(source, filename=path)
    type_only = _type_only(tree)
    docstrings = _docstrings(tree)
    allowed_models = path in ALLOWED
    allowed_lookups = path in ALLOWED_LOOKUPS
    idempotency_aliases = {"idempotency"}
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                if module == "core" and alias.name == "idempotency":
                    idempotency_aliases.add(alias.asname or alias.name)
                if id(node) in type_only:
                    continue
                if not allowed_models and (alias.name in MODELS or (
                        alias.name == "*" and module in MODEL_MODULES)):
                    yield f"{where} imports {alias.name} from {module}"
                if (not allowed_lookups and module == "core.idempotency"
                        and alias.name in SELECTING):
                    yield f"{where} imports {alias.name} from core.idempotency"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "core.idempotency" and alias.asname:
                    idempotency_aliases.add(alias.asname)
        elif isinstance(node, ast.Attribute) and id(node) not in type_only:
            if not allowed_models and node.attr in MODELS:
                yield f"{where} reaches {node.attr}"
            receiver = node.value
            receiver_name = receiver.id if isinstance(receiver, ast.Name) else (
                receiver.attr if isinstance(receiver, ast.Attribute) else None)
            if (not allowed_lookups and node.attr in SELECTING
                    and receiver_name in idempotency_aliases):
                yield f"{where} calls idempotency.{node.attr}"
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and not allowed_models):
            if TABLES.search(node.value) or node.value in MODELS:
                yield f"{where} spells {node.value[:60]!r}"


def _modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_only_the_repository_selects_record_content():
    found = []
    for module in _modules():
        relative = module.relative_to(ROOT).as_posix()
        found.extend(violations(module.read_text(encoding="utf-8"), relative))
    assert not found, "record content selected outside ehr/repository.py:\n" + "\n".join(found)


def test_the_allowances_name_modules_that_exist():
    for path in (*ALLOWED, *ALLOWED_LOOKUPS):
        assert (ROOT / path).is_file(), f"stale allowance: {path}"


def test_the_scanner_sees_the_ways_a_module_could_select():
    """The rule itself: each of these would select record content, none may pass."""
    bad = {
        "from ehr.record_models import RecordEntry\nselect(RecordEntry)\n": "imports",
        "import ehr.record_models as m\nq = select(m.RecordEntryVersion)\n": "reaches",
        "from ehr import record_models\nrecord_models.RecordEntry\n": "reaches",
        "from ehr.record_models import *\n": "imports *",
        "session.execute(text('SELECT * FROM record_entries'))\n": "spells",
        "getattr(models, 'IdempotencyRecord')\n": "spells",
        "from core import idempotency\nidempotency.lookup(s, scope=a, fingerprint=b)\n":
            "calls idempotency.lookup",
        "from core import idempotency as stored\nstored.lookup_many(s, [])\n":
            "calls idempotency.lookup_many",
        "from core.idempotency import lookup\n": "imports lookup",
        "from core.idempotency import IdempotencyRecord\n": "imports IdempotencyRecord",
    }
    for source, expected in bad.items():
        found = list(violations(source, "ehr/elsewhere.py"))
        assert any(expected in problem for problem in found), (source, found)
    allowed = (
        '"""Reads record_entries through the repository."""\n'
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ehr.record_models import RecordEntry\n"
        "def view(entry: RecordEntry) -> RecordEntry:\n    return entry\n"
        "from core import idempotency\nidempotency.remember(s, scope=a)\n"
    )
    assert list(violations(allowed, "ehr/elsewhere.py")) == []
