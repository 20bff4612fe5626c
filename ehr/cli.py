"""Command line of the record: demo seed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

seed_cli = AppGroup("seed", help="Demo data.")


@seed_cli.command("demo")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the demo identities (JSON).")
def seed_demo_command(out: Path) -> None:
    """Create the demo world (idempotent) and write its identities as JSON."""
    from ehr.seed import seed_demo

    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("seed demo is refused when APP_ENV=production")
    identities, created = seed_demo()
    # Packages that build on the registry (accounts, records, consents...) extend the demo world
    # through seeders registered in app.extensions; ehr does not import them.
    for seeder in current_app.extensions.get("phr.seeders", []):
        created += seeder(identities)
    out.write_text(json.dumps(identities, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.chmod(0o600)
    click.echo(json.dumps({"created": created, "out": str(out)}))


def register_cli(app: Flask) -> None:
    app.cli.add_command(seed_cli)
    app.extensions.setdefault("phr.seeders", [])


def register_seeder(app: Flask, seeder: Callable[[dict[str, Any]], int]) -> None:
    """Add a step to `seed demo`: it receives the identities so far, extends them in place, and
    returns how many rows it created (0 on a re-run)."""
    app.extensions.setdefault("phr.seeders", []).append(seeder)
