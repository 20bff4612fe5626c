"""``flask vault ...``: verify, rotate KEKs and data keys, crypto-shred (DESIGN.md §8).

Every command prints one JSON line on stdout (nothing personal: counts and ids) and exits 1 when
something failed, so it can run from cron or a runbook and be checked by a script.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core import restore_drill, vault_admin
from core.db import db
from core.encryption import vault_settings
from core.vault.errors import VaultError

log = logging.getLogger("phr.vault.admin")

vault_cli = AppGroup("vault", help="Field-level encryption: verify, rotate keys, crypto-shred.")

_batch_size = click.option(
    "--batch-size", type=click.IntRange(min=1), default=vault_admin.DEFAULT_BATCH_SIZE,
    show_default=True, help="Rows (or keys) per transaction.",
)


def _emit(document: dict[str, Any], *, ok: bool) -> None:
    click.echo(json.dumps(document))
    if not ok:
        raise click.exceptions.Exit(1)


@vault_cli.command("verify")
@_batch_size
def verify_command(batch_size: int) -> None:
    """Decrypt every encrypted field; exit 1 when any fails or the key file does not fit."""
    try:
        report = vault_admin.verify(
            session=db.session(), settings=vault_settings(), batch_size=batch_size
        )
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    _emit({"checked": report.checked, "failed": report.failed, "erased": report.erased},
          ok=report.failed == 0)


@vault_cli.command("rotate-kek")
@click.option("--retire-old", is_flag=True,
              help="Remove the other KEKs from the key file once no data key needs them.")
@click.option("--grace-seconds", type=click.FloatRange(min=0),
              default=vault_admin.DEFAULT_KEK_GRACE_SECONDS, show_default=True,
              help="With --retire-old: wait this long, then rewrap stragglers, then retire.")
@_batch_size
def rotate_kek_command(retire_old: bool, grace_seconds: float, batch_size: int) -> None:
    """Make a new KEK active and rewrap every data key under it (rows untouched; resumable)."""
    try:
        report = vault_admin.rotate_kek(
            session=db.session(), settings=vault_settings(), retire_old=retire_old,
            batch_size=batch_size, grace_seconds=grace_seconds,
        )
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    document = {
        "active_kek": report.active_kek, "added": report.added, "rewrapped": report.rewrapped,
        "failed": report.failed, "remaining": report.remaining,
        "retired": list(report.retired), "done": report.done,
    }
    _emit(document, ok=report.done and report.failed == 0)


@vault_cli.command("rotate-data-keys")
@click.option("--citizen", "citizen_id", type=click.UUID, default=None,
              help="Only this citizen (default: every citizen).")
@_batch_size
def rotate_data_keys_command(citizen_id: uuid.UUID | None, batch_size: int) -> None:
    """Re-encrypt rows under new data keys (resumable: a re-run finishes an interrupted run)."""
    session = db.session()
    if citizen_id is not None and not vault_admin.citizen_has_keys(
        session=session, citizen_id=citizen_id
    ):
        raise click.ClickException(f"no data keys for citizen {citizen_id}")
    report = vault_admin.rotate_data_keys(
        session=session, settings=vault_settings(), citizen_id=citizen_id,
        batch_size=batch_size,
    )
    document = {
        "resumed": report.resumed, "started": report.started,
        "reencrypted": report.reencrypted, "deferred": report.deferred,
        "failed": report.failed, "retired": report.retired, "done": report.done,
    }
    _emit(document, ok=report.done)


@vault_cli.command("shred")
@click.option("--citizen", "citizen_id", type=click.UUID, required=True,
              help="The citizen whose data keys are destroyed.")
@click.confirmation_option(
    "--yes", prompt="Destroy this citizen's data keys? Their personal data becomes unreadable "
                    "for good.",
    help="Confirm without prompting.",
)
def shred_command(citizen_id: uuid.UUID) -> None:
    """Crypto-shred one citizen: destroy their data keys and clear their blind indexes."""
    session = db.session()
    if not vault_admin.citizen_has_keys(session=session, citizen_id=citizen_id):
        raise click.ClickException(f"no data keys for citizen {citizen_id}")
    report = vault_admin.shred(session=session, citizen_id=citizen_id)
    session.commit()
    # The consent issue adds the audit event; until then the log keeps the id (never data).
    log.info("citizen crypto-shredded", extra={
        "citizen_id": str(citizen_id), "keys_destroyed": report.keys_destroyed})
    _emit({"citizen": str(citizen_id), "keys_destroyed": report.keys_destroyed,
           "blind_indexes_cleared": report.blind_indexes_cleared}, ok=True)


@vault_cli.command("restore-drill")
@click.option("--dump", "dump", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Restore this backup (pg_dump -Fc) instead of dumping now.")
@click.option("--kek-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The key file to verify with (default: the configured one).")
@click.option("--keep", is_flag=True, help="Keep the scratch database (to inspect it).")
def restore_drill_command(dump: Path | None, kek_file: Path | None, keep: bool) -> None:
    """Back up (pg_dump), restore into a scratch database, vault and audit verify it, drop it."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        report = restore_drill.run_drill(url, dump=dump, kek_file=kek_file, keep=keep)
    except restore_drill.DrillError as exc:
        raise click.ClickException(str(exc)) from None
    _emit(report.as_dict(), ok=report.ok)


def register_vault_cli(app: Flask) -> None:
    """Add the ``vault`` command group to the app's CLI."""
    app.cli.add_command(vault_cli)
