"""`flask portal register-client` and `flask portal purge-sessions`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core.db import db


def register_cli(app: Flask) -> None:
    group = AppGroup("portal", help="The citizen portal.")

    @group.command("register-client")
    def register_client_command() -> None:
        """Register (or update) the portal's own OAuth client for this server's issuer: public,
        PKCE, first party, redirect URI {OAUTH_ISSUER}/callback. Run after a port change."""
        from auth.clients import ensure_first_party_public_client
        from portal.backend import PORTAL_SCOPE, redirect_uri

        created = ensure_first_party_public_client(
            session=db.session, client_id=current_app.config["PORTAL_CLIENT_ID"],
            name="Cổng sức khỏe người dân", redirect_uri=redirect_uri(),
            scopes=PORTAL_SCOPE.split() + ["profile"],
        )
        db.session.commit()
        click.echo(("registered " if created else "updated ") + redirect_uri())

    @group.command("purge-sessions")
    def purge_sessions_command() -> None:
        """Delete ended portal sessions (idle, expired, abandoned logins)."""
        from portal import sessions
        from portal.web import now, session_settings

        removed = sessions.purge_expired(session=db.session, now=now(),
                                         settings=session_settings())
        db.session.commit()
        click.echo(f"{removed} sessions removed")

    app.cli.add_command(group)
