"""openapi.yaml fuzzed against the app served on a local port (issue 19), with the token of each
kind of caller: a citizen, a practitioner, station staff and a station's system client.

Checks: no server error, every status and content type documented, every body and header as
its schema says. The demo world (`flask seed demo`) gives the identities something to find; the
run has the test database to itself and leaves it empty. The long run (`make test-long`, `.ci/run`)
spends a fixed wall-clock budget per identity; the smoke run in `make test` sends the spec's own
examples and a few generated cases per operation. Each prints its counts (cases, failures).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_app
from tests.fuzz.contract_run import (
    IDENTITIES,
    RunResult,
    demo_token,
    fuzz_config,
    run_schemathesis,
    served,
)

# The long run's budget: seconds per identity (four of them: about 5 minutes on a 2-core
# machine with setup), overridable for a longer campaign.
LONG_SECONDS = int(os.environ.get("FUZZ_SECONDS_PER_IDENTITY", "75"))
LONG_MAX_EXAMPLES = 100


@pytest.fixture
def fuzz_world(database_url: str, log_stream: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    from core.db import db
    from tests.support.database import empty_all_tables, rows_left

    app = make_app(database_url, log_stream, **fuzz_config())
    identities = tmp_path / "demo-identities.json"
    seeded = app.test_cli_runner().invoke(args=["seed", "demo", "--out", str(identities)])
    assert seeded.exit_code == 0, seeded.output
    with served(app) as base_url:
        yield {"app": app, "base_url": base_url, "identities": identities, "dir": tmp_path}
    with app.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, f"the fuzz run left rows behind: {leftovers}"


def _run_all(world: dict[str, Any], **options: Any) -> list[RunResult]:
    results = []
    for identity, role in IDENTITIES.items():
        # Minted just before its run: a token lives 15 minutes.
        token = demo_token(world["app"], role, world["identities"])
        results.append(run_schemathesis(world["base_url"], token, identity=identity,
                                        work_dir=world["dir"], **options))
    return results


def _report(results: list[RunResult], name: str) -> None:
    totals = {
        "run": name,
        "cases": sum(r.cases for r in results),
        "failing_cases": sum(r.failing_cases for r in results),
        "errors": sum(len(r.errors) for r in results),
        "seconds": round(sum(r.seconds for r in results), 1),
        "identities": {r.identity: {"cases": r.cases, "operations": r.operations,
                                    "failing_cases": r.failing_cases,
                                    "seconds": round(r.seconds, 1), "stop": r.stop_reason,
                                    "phases": r.phases} for r in results},
    }
    # The figures README's "Reliability" table quotes (pytest -s, or the captured output).
    print(f"\nschemathesis {json.dumps(totals)}")
    assert all(r.cases > 0 and r.operations > 100 for r in results), \
        "\n".join(r.explain() for r in results)
    failed = [r for r in results if r.failing_cases or r.failures or r.errors]
    assert not failed, "\n\n".join(r.explain() for r in failed)


def test_the_contract_holds_for_its_examples_and_a_few_cases_each(fuzz_world):
    # `make test`: the spec's examples and the schema's edge values, one generated case each.
    results = _run_all(fuzz_world, max_examples=1, phases="examples,fuzzing")
    _report(results, "smoke")


@pytest.mark.long
def test_the_contract_holds_under_fuzzing_for_every_kind_of_caller(fuzz_world):
    # `make test-long` / .ci/run: a fixed wall-clock budget per identity (the coverage phase's
    # boundary and negative values first, then generated cases until the budget is spent).
    results = _run_all(fuzz_world, max_examples=LONG_MAX_EXAMPLES, max_time=LONG_SECONDS,
                       phases="examples,coverage,fuzzing")
    _report(results, "long")
