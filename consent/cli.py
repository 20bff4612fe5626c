"""Command line of the audit log: `flask --app app audit verify`."""

from __future__ import annotations

import json
import uuid

import click
from flask.cli import AppGroup

from consent.audit import verify_chains
from core.db import db

audit_cli = AppGroup("audit", help="The tamper-evident audit log.")


@audit_cli.command("verify")
@click.option("--citizen", "citizen", type=click.UUID, default=None,
              help="Verify one citizen's chain only.")
def verify_command(citizen: uuid.UUID | None) -> None:
    """Recompute every hash chain; print one JSON line; exit 1 when a chain is broken."""
    report = verify_chains(db.session, citizen_id=citizen)
    db.session.rollback()
    click.echo(json.dumps(report.as_dict()))
    if not report.ok:
        raise SystemExit(1)
