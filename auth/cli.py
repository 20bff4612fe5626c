"""Command line: `auth create-client`, `auth rotate-secret`, `auth purge`, `auth demo-token`,
`users create`."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import delete, or_

from auth import clock, throttle, tokens
from auth.accounts import AccountError, create_account, find_login_account
from auth.clients import GRANT_TYPES, ClientError, create_client, rotate_secret
from auth.models import ROLES, Account, AccountCode, AuthorizationCode, OAuthClient, OAuthToken
from auth.scopes import all_covered, join_scope, split_scope, trim_for_role
from auth.seed import CITIZEN_LOGINS, STAFF_LOGINS
from auth.server import generate_token
from core.db import db
from core.i18n import translate
from registry.services import (
    find_citizen_by_health_id,
    get_facility_by_code,
    get_practitioner_by_certificate,
)

auth_cli = AppGroup("auth", help="OAuth clients and tokens.")
users_cli = AppGroup("users", help="Login accounts.")


def _facility_id(code: str | None) -> object:
    if code is None:
        return None
    facility = get_facility_by_code(session=db.session, code=code)
    if facility is None:
        raise click.BadParameter(f"no facility with code {code}", param_hint="--facility-code")
    return facility.id


@auth_cli.command("create-client")
@click.option("--client-id", help="Identifier (generated when omitted).")
@click.option("--name", required=True, help="Name shown on the login and approval pages.")
@click.option("--type", "client_type", type=click.Choice(["public", "confidential"]),
              required=True, help="public (phone app, browser app) or confidential (a server).")
@click.option("--grant", "grants", multiple=True, type=click.Choice(GRANT_TYPES),
              help="Allowed grant type (repeat; at least one unless --resource-server).")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Exact redirect URI (repeat).")
@click.option("--scope", "scope", default="", help="The most the client may get (space-separated).")
@click.option("--first-party", is_flag=True, help="Ours: skips the approval screen.")
@click.option("--facility-code", help="Facility a client-credentials system acts for.")
@click.option("--resource-server", is_flag=True,
              help="A server that introspects its callers' access tokens, whoever they were "
                   "issued to (RFC 7662); confidential only, needs no grant.")
def create_client_command(
    client_id: str | None, name: str, client_type: str, grants: tuple[str, ...],
    redirect_uris: tuple[str, ...], scope: str, first_party: bool, facility_code: str | None,
    resource_server: bool,
) -> None:
    """Register a client and print its id and secret as JSON (the secret is shown only once)."""
    try:
        client, secret = create_client(
            session=db.session, name=name, client_type=client_type, grant_types=grants,
            redirect_uris=redirect_uris, scopes=scope.split(), first_party=first_party,
            facility_id=_facility_id(facility_code), client_id=client_id,  # type: ignore[arg-type]
            resource_server=resource_server,
        )
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(json.dumps({"client_id": client.client_id, "client_secret": secret,
                           "resource_server": client.resource_server}))


@auth_cli.command("rotate-secret")
@click.argument("client_id")
def rotate_secret_command(client_id: str) -> None:
    """Give a confidential client a new secret (printed once as JSON); the old one stops."""
    client = db.session.get(OAuthClient, client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    try:
        secret = rotate_secret(session=db.session, client=client)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))


@auth_cli.command("purge")
@click.option("--older-than-days", default=7, show_default=True,
              help="Keep expired rows this long (for investigations).")
def purge_command(older_than_days: int) -> None:
    """Delete expired authorization codes, tokens, account codes (activation, reset) and
    login throttles (prints counts)."""
    cutoff = clock.now() - timedelta(days=older_than_days)
    session = db.session
    codes = session.execute(
        delete(AuthorizationCode).where(AuthorizationCode.expires_at < cutoff)
    ).rowcount  # type: ignore[attr-defined]
    tokens = session.execute(
        delete(OAuthToken).where(
            OAuthToken.access_expires_at < cutoff,
            or_(OAuthToken.refresh_expires_at.is_(None), OAuthToken.refresh_expires_at < cutoff),
        )
    ).rowcount  # type: ignore[attr-defined]
    account_codes = session.execute(
        delete(AccountCode).where(AccountCode.expires_at < cutoff)
    ).rowcount  # type: ignore[attr-defined]
    throttles = throttle.purge(session=session, before=cutoff)
    session.commit()
    click.echo(json.dumps({"codes": codes, "tokens": tokens, "account_codes": account_codes,
                           "throttles": throttles}))


DEMO_ROLES = (*CITIZEN_LOGINS, *STAFF_LOGINS, "station")
# Citizens get the phone app's token; staff the clinic client's, the demo client registered
# for `user/` scopes (the phone app holds only `patient/` ones, which a staff token drops).
DEMO_TOKEN_CLIENTS = {"citizen": "phr-mobile", "staff": "phr-clinic"}


@auth_cli.command("demo-token")
@click.argument("role", type=click.Choice(DEMO_ROLES))
@click.option("--identities", "identities_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The file `seed demo --out` wrote (default: instance/demo-identities.json).")
@click.option("--station", "station_code", help="role station: the facility code "
              "(default: the demo station).")
@click.option("--client-id", help="Issue for this client instead (its scopes, trimmed to the "
              "role).")
@click.option("--scope", "scope", help="Fewer scopes than the client allows (space-separated).")
def demo_token_command(role: str, identities_file: Path | None, station_code: str | None,
                       client_id: str | None, scope: str | None) -> None:
    """Development only: print an access token (nothing else) for a demo identity.

    A normal token row: short-lived (OAUTH_ACCESS_TOKEN_SECONDS), no refresh token, revocable
    with /oauth/revoke. `station` is the station's system (client credentials, `system/`
    scopes); every other role logs in as the demo person of that role.
    """
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("demo-token is refused when APP_ENV=production")
    if station_code is not None and role != "station":
        raise click.BadParameter("only with the role station", param_hint="--station")
    identities = _demo_identities(identities_file)
    account = None
    if role == "station":
        client = _demo_client(client_id or _station_client_id(identities, station_code))
        if client.facility_id is None or "client_credentials" not in client.grant_type_list:
            raise click.ClickException(f"{client.client_id} is not a station system client")
        allowed = trim_for_role(client.scope_list, role="station", client_credentials=True)
    else:
        account = _demo_account(identities, role)
        kind = "citizen" if account.role == "citizen" else "staff"
        client = _demo_client(client_id or DEMO_TOKEN_CLIENTS[kind])
        allowed = [s for s in trim_for_role(client.scope_list, role=account.role)
                   if s != "offline_access"]
    scopes = allowed
    if scope is not None:
        scopes = split_scope(scope)
        if not scopes or not all_covered(scopes, allowed):
            raise click.BadParameter(f"not within what {client.client_id} allows for this role: "
                                     f"{join_scope(allowed)}", param_hint="--scope")
    # The generator of /oauth/token: the same shape, lifetime and prefix as any access token.
    token = generate_token("demo-token", client, user=account, scope=join_scope(scopes),
                           include_refresh_token=False)
    tokens.add_token(session=db.session, token=token, client=client, grant_type="demo-token",
                     account=account)
    db.session.commit()
    click.echo(token["access_token"])


def _demo_identities(path: Path | None) -> dict[str, Any]:
    path = path or Path(current_app.instance_path) / "demo-identities.json"
    try:
        identities = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise click.ClickException(
            f"cannot read {path}: run `flask --app app seed demo --out {path}` first "
            "(`make run` does)") from None
    if not isinstance(identities, dict):
        raise click.ClickException(f"{path} is not a demo identities file")
    return identities


def _demo_account(identities: dict[str, Any], role: str) -> Account:
    people = identities.get("citizens", []) + identities.get("practitioners", [])
    person = next((p for p in people if p.get("demo_role") == role and p.get("username")), None)
    account = None
    if person is not None:
        account = find_login_account(session=db.session, username=str(person["username"]))
    if account is None or not account.active:
        raise click.ClickException(f"no active demo login for {role}: run `seed demo` again")
    return account


def _station_client_id(identities: dict[str, Any], code: str | None) -> str:
    for station in identities.get("stations", []):
        if code is None or station.get("facility_code") == code:
            return str(station.get("client_id") or "station-" + station["facility_code"].lower())
    if code is not None:
        return "station-" + code.lower()
    raise click.ClickException("no demo station in the identities file")


def _demo_client(client_id: str) -> OAuthClient:
    client = db.session.get(OAuthClient, client_id)
    if client is None or not client.active:
        raise click.ClickException(f"no active client {client_id}: run `seed demo` again")
    return client


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_cli.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--health-id", help="Citizen: their personal identification number.")
@click.option("--username", help="Staff: login name (a-z, 0-9 . _ -, starting with a letter).")
@click.option("--certificate", help="Practitioner or station staff: practising certificate.")
@click.option("--facility-code", help="Station staff: their facility.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin instead of prompting.")
def create_user_command(
    role: str, health_id: str | None, username: str | None, certificate: str | None,
    facility_code: str | None, password_stdin: bool,
) -> None:
    """Create a login account (the password is never an argument: it would show in `ps`)."""
    citizen_id = practitioner_id = None
    if health_id:
        citizen = find_citizen_by_health_id(session=db.session, health_id=health_id)
        if citizen is None:
            raise click.BadParameter("no citizen with this health ID", param_hint="--health-id")
        citizen_id = citizen.id
    if certificate:
        practitioner = get_practitioner_by_certificate(session=db.session,
                                                       certificate=certificate)
        if practitioner is None:
            raise click.BadParameter("no practitioner with this certificate",
                                     param_hint="--certificate")
        practitioner_id = practitioner.id
    password = _read_password(password_stdin)
    try:
        account = create_account(
            session=db.session, role=role, password=password, citizen_id=citizen_id,
            username=username, practitioner_id=practitioner_id,
            facility_id=_facility_id(facility_code),  # type: ignore[arg-type]
        )
    except AccountError as exc:
        reason = translate(exc.key, "en") if exc.key.startswith("account.") else exc.key
        raise click.ClickException(f"{exc.field}: {reason}") from None
    db.session.commit()
    click.echo(json.dumps({"account_id": str(account.id), "role": account.role,
                           "username": account.username}))


def register_cli(app: Flask) -> None:
    app.cli.add_command(auth_cli)
    app.cli.add_command(users_cli)
