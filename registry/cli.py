"""`flask seed demo`: the registry's demo world, then the parts the packages above add."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

seed_cli = AppGroup("seed", help="Demo data.")

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


def register_cli(app: Flask, *, seeders: Sequence[Seeder]) -> None:
    """The seed command with the packages' seeders (the registry cannot import them)."""
    app.cli.add_command(seed_cli)
    app.extensions[_SEEDERS] = tuple(seeders)
