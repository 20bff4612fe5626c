"""`flask seed demo`: the registry's demo world, then the parts the packages above add;
`flask registry reindex-cohorts`: the cohort index of citizens written before it existed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

seed_cli = AppGroup("seed", help="Demo data.")
registry_cli = AppGroup("registry", help="The registry's maintenance commands.")

Seeder = Callable[[dict[str, Any]], int]
"""A step of `seed demo`: receives the identities so far, extends them in place, returns how
many rows it created (0 on a re-run)."""

_SEEDERS = "phr.seeders"


def seed_demo() -> tuple[dict[str, Any], int]:
    """Create what is missing of the whole demo world; its identities and how many rows were
    new. The registry's part first, then each seeder in the order `app.py` gave."""
    from registry.seed import seed_demo as seed_registry

    identities, created = seed_registry()
    for seeder in current_app.extensions.get(_SEEDERS, ()):
        created += seeder(identities)
    return identities, created


@seed_cli.command("demo")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the demo identities (JSON).")
def seed_demo_command(out: Path) -> None:
    """Create the demo world (idempotent) and write its identities as JSON."""
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("seed demo is refused when APP_ENV=production")
    identities, created = seed_demo()
    out.write_text(json.dumps(identities, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.chmod(0o600)
    click.echo(json.dumps({"created": created, "out": str(out)}))


@registry_cli.command("reindex-cohorts")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
              help="Citizens per transaction.")
@click.option("--after", "after", type=click.UUID, default=None,
              help="Resume after this citizen id (the last_id a previous run printed).")
@click.option("--all", "everyone", is_flag=True,
              help="Recompute every citizen, not only those without an index (after the "
                   "blind-index key changed).")
def reindex_cohorts_command(batch_size: int, after: uuid.UUID | None, everyone: bool) -> None:
    """Fill `citizens.cohort_bidx` (commune and birth year) for rows written before it was
    kept; prints one JSON line of counts (no personal data) and exits 1 when a row failed."""
    from core.db import db
    from registry.cohorts import reindex_cohorts

    counts = reindex_cohorts(db.session(), batch_size=batch_size, after=after,
                             only_missing=not everyone)
    click.echo(json.dumps(counts.as_dict()))
    if counts.failed:
        raise click.exceptions.Exit(1)


def register_cli(app: Flask, *, seeders: Sequence[Seeder]) -> None:
    """The seed command with the packages' seeders (the registry cannot import them), and the
    registry's maintenance commands."""
    app.cli.add_command(seed_cli)
    app.cli.add_command(registry_cli)
    app.extensions[_SEEDERS] = tuple(seeders)
