"""Configuration from the environment (DESIGN.md §8) and development key material."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

PRODUCTION = "production"
DEVELOPMENT = "development"

# Every variable the service reads, with its default; README's configuration table mirrors this.
DEFAULTS: dict[str, str] = {
    "APP_ENV": DEVELOPMENT,
    "DATABASE_URL": "",  # empty: SQLite file instance/phr.sqlite3
    # Bounds on waiting for PostgreSQL, in seconds (core/db.py): connecting; one statement of a
    # request (past it the request answers 503; longer than any legitimate statement, lock
    # waits and a station batch's included); a free connection in the process's pool (a
    # backstop: a gunicorn worker's threads, WEB_THREADS, are fewer than its 20 connections).
    "DATABASE_CONNECT_TIMEOUT": "1",
    # PostgreSQL: the server keeps the plans of the hot reads' statements (core/kept_plans).
    "DB_KEEP_PLANS": "1",
    # PostgreSQL: how long a worker keeps a reader's decided single read of one person's
    # section, for the next read's statement to append its audit event (consent/standing.py);
    # 0 turns it off.
    "STANDING_DECISION_SECONDS": "300",
    "DATABASE_STATEMENT_TIMEOUT": "5",
    "DATABASE_POOL_TIMEOUT": "10",
    "VAULT_KEK_FILE": "",  # empty: instance/keys/kek.json (development only)
    "VAULT_KEK_JSON": "",  # the same JSON given inline (containers); wins over the file
    "BLIND_INDEX_KEY_FILE": "",  # empty: instance/keys/blind-index.key (development only)
    "SECRET_KEY_FILE": "",  # empty: instance/keys/secret.key (development only)
    "OAUTH_SIGNING_KEY_FILE": "",  # empty: instance/keys/oauth-signing.pem (development only)
    "OAUTH_ISSUER": "http://127.0.0.1:8000",
    "SHARE_BASE_URL": "",  # empty: OAUTH_ISSUER (where share-link recipients reach us)
    "NOTIFICATIONS_WORKER": "thread",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "QUIET_HOURS": "21:00-07:00",
    "PUSH_FCM_URL": "",
    "SMS_GATEWAY_URL": "",
    "SMTP_HOST": "",
    "SMTP_PORT": "25",
    "CORS_ORIGINS": "",
    "MAX_BODY_BYTES": str(2 * 1024 * 1024),
    "LOG_LEVEL": "INFO",
    "PROMETHEUS_MULTIPROC_DIR": "",
    "TRUSTED_PROXIES": "0",  # reverse proxies in front (X-Forwarded-For/-Proto hops to trust)
    "GUARDIAN_AGE_LIMIT": "16",
    "TEEN_PRIVACY_AGE": "12",
    "BREAK_GLASS_HOURS": "4",
    # One-time account codes (auth/account_codes.py): how long an activation code a station
    # printed, and a password-reset code sent by SMS, stay valid.
    "ACCOUNT_ACTIVATION_HOURS": "72",
    "PASSWORD_RESET_MINUTES": "15",
    # Optional login through an external OpenID Connect provider (the national identity app,
    # VNeID): off while the issuer is empty (auth/external_login.py).
    "EXTERNAL_OIDC_ISSUER": "",
    "EXTERNAL_OIDC_CLIENT_ID": "",
    "EXTERNAL_OIDC_CLIENT_SECRET": "",  # empty: a public client (PKCE only)
    "EXTERNAL_OIDC_NAME": "VNeID",  # the button's label: "Đăng nhập bằng VNeID"
    "EXTERNAL_OIDC_SCOPE": "openid",
    "EXTERNAL_OIDC_PIN_CLAIM": "pin",  # the claim holding the 12-digit personal ID number
    "EXTERNAL_OIDC_VERIFIED_CLAIM": "pin_verified",  # must be true; empty: trust every PIN
    # The citizen portal (portal/): its first-party OAuth client and how long a browser stays in.
    "PORTAL_CLIENT_ID": "phr-portal",
    "PORTAL_IDLE_MINUTES": "30",
    "PORTAL_SESSION_HOURS": "12",
    # Rate limits on the API (core/rate_limits.py): where the counts live (redis://host/db in
    # production, shared by every worker; memory:// counts per process) and the budgets, each
    # "N/period" or several separated by ";" (README "Rate limits" gives the reasoning).
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "phr",  # several deployments sharing one Redis: one prefix each
    "RATELIMIT_PER_TOKEN": "300/minute",
    "RATELIMIT_PER_ADDRESS": "3000/minute",
    "RATELIMIT_ANONYMOUS": "120/minute",
    "RATELIMIT_BATCH": "10/minute",
    "RATELIMIT_EXPORT": "5/minute",
    "RATELIMIT_WORKLIST": "30/minute",
    "RATELIMIT_FHIR_TRANSACTION": "60/minute",
    "RATELIMIT_OAUTH": "600/minute",
}


class ConfigError(click.ClickException, RuntimeError):
    """The service cannot start with this configuration; the message names what is missing.

    A ClickException too: `flask …` commands (a restore drill without the key file) then print
    "Error: <message>" and exit 1 instead of a stack trace."""


def instance_path(root: Path) -> Path:
    path = root / "instance"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, DEFAULTS[name]).strip()


def _key_file(
    *,
    environ: Mapping[str, str],
    variable: str,
    default: Path,
    production: bool,
    generate: Any,
) -> Path:
    """Return the key file a variable names; in development generate a missing default once."""
    configured = _env(environ, variable)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"{variable} points to {path}, which does not exist")
        return path
    if production:
        raise ConfigError(f"{variable} must be set when APP_ENV=production")
    if not default.exists():
        default.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        generate(default)
    return default


def write_secret_file(path: Path, data: bytes) -> None:
    """Create a key file readable by its owner only; never overwrite an existing key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _generate_random_key(path: Path) -> None:
    write_secret_file(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")


def _generate_kek_file(path: Path) -> None:
    kek_id = "kek-" + secrets.token_hex(6)
    body = {"active": kek_id, "keys": {kek_id: base64.b64encode(secrets.token_bytes(32)).decode()}}
    write_secret_file(path, json.dumps(body, indent=2).encode())


def _generate_signing_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret_file(path, pem)


def read_key_file(path: Path) -> bytes:
    """Read a base64 key file (32 bytes)."""
    raw = base64.b64decode(path.read_bytes().strip(), validate=True)
    if len(raw) != 32:
        raise ConfigError(f"{path} must hold 32 bytes of base64")
    return raw


def load_config(*, root: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from the environment; generate dev keys, refuse in production."""
    env = os.environ if environ is None else environ
    app_env = _env(env, "APP_ENV") or DEVELOPMENT
    if app_env not in (DEVELOPMENT, PRODUCTION, "test"):
        raise ConfigError(f"APP_ENV must be development or production, not {app_env!r}")
    production = app_env == PRODUCTION
    keys_dir = instance_path(root) / "keys"

    database_url = _env(env, "DATABASE_URL")
    if not database_url:
        if production:
            raise ConfigError("DATABASE_URL must be set when APP_ENV=production")
        database_url = f"sqlite:///{instance_path(root) / 'phr.sqlite3'}"

    kek_json = _env(env, "VAULT_KEK_JSON")
    kek_file: Path | None = None
    if not kek_json:
        kek_file = _key_file(
            environ=env,
            variable="VAULT_KEK_FILE",
            default=keys_dir / "kek.json",
            production=production,
            generate=_generate_kek_file,
        )
    blind_file = _key_file(
        environ=env,
        variable="BLIND_INDEX_KEY_FILE",
        default=keys_dir / "blind-index.key",
        production=production,
        generate=_generate_random_key,
    )
    secret_file = _key_file(
        environ=env,
        variable="SECRET_KEY_FILE",
        default=keys_dir / "secret.key",
        production=production,
        generate=_generate_random_key,
    )
    signing_file = _key_file(
        environ=env,
        variable="OAUTH_SIGNING_KEY_FILE",
        default=keys_dir / "oauth-signing.pem",
        production=production,
        generate=_generate_signing_key,
    )

    worker = _env(env, "NOTIFICATIONS_WORKER")
    if worker not in ("thread", "celery", "none"):
        raise ConfigError("NOTIFICATIONS_WORKER must be thread, celery or none")

    return {
        "APP_ENV": app_env,
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(
            database_url, pool_timeout=_seconds(env, "DATABASE_POOL_TIMEOUT")),
        "DATABASE_CONNECT_TIMEOUT": _seconds(env, "DATABASE_CONNECT_TIMEOUT"),
        "DB_KEEP_PLANS": _switch(env, "DB_KEEP_PLANS"),
        "STANDING_DECISION_SECONDS": _non_negative(env, "STANDING_DECISION_SECONDS"),
        "DATABASE_STATEMENT_TIMEOUT": _seconds(env, "DATABASE_STATEMENT_TIMEOUT"),
        "VAULT_KEK_FILE": str(kek_file) if kek_file else None,
        "VAULT_KEK_JSON": kek_json or None,
        "BLIND_INDEX_KEY": read_key_file(blind_file),
        "SECRET_KEY": read_key_file(secret_file),
        "OAUTH_SIGNING_KEY_FILE": str(signing_file),
        "OAUTH_ISSUER": _env(env, "OAUTH_ISSUER"),
        "SHARE_BASE_URL": _env(env, "SHARE_BASE_URL"),
        **{name: _env(env, name) for name in DEFAULTS if name.startswith("EXTERNAL_OIDC_")},
        "PORTAL_CLIENT_ID": _env(env, "PORTAL_CLIENT_ID"),
        "PORTAL_IDLE_MINUTES": _non_negative(env, "PORTAL_IDLE_MINUTES"),
        "PORTAL_SESSION_HOURS": _non_negative(env, "PORTAL_SESSION_HOURS"),
        "ACCOUNT_ACTIVATION_HOURS": _non_negative(env, "ACCOUNT_ACTIVATION_HOURS"),
        "PASSWORD_RESET_MINUTES": _non_negative(env, "PASSWORD_RESET_MINUTES"),
        "NOTIFICATIONS_WORKER": worker,
        "CELERY_BROKER_URL": _env(env, "CELERY_BROKER_URL"),
        "QUIET_HOURS": env.get("QUIET_HOURS", DEFAULTS["QUIET_HOURS"]).strip(),
        "PUSH_FCM_URL": _env(env, "PUSH_FCM_URL"),
        "SMS_GATEWAY_URL": _env(env, "SMS_GATEWAY_URL"),
        "SMTP_HOST": _env(env, "SMTP_HOST"),
        "SMTP_PORT": int(_env(env, "SMTP_PORT")),
        "CORS_ORIGINS": [o for o in _env(env, "CORS_ORIGINS").split(",") if o],
        "MAX_CONTENT_LENGTH": int(_env(env, "MAX_BODY_BYTES")),
        "LOG_LEVEL": _env(env, "LOG_LEVEL").upper(),
        "JSON_SORT_KEYS": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "BENCH_ROUTES": not production and env.get("BENCH_ROUTES", "").strip() == "1",
        "TRUSTED_PROXIES": _non_negative(env, "TRUSTED_PROXIES"),
        **{name: _rate_limit(env, name) for name in DEFAULTS if name.startswith("RATELIMIT_")},
    }


def _switch(environ: Mapping[str, str], name: str) -> bool:
    text = _env(environ, name)
    if text not in ("0", "1"):
        raise ConfigError(f"{name} must be 0 or 1, not {text!r}")
    return text == "1"


def _non_negative(environ: Mapping[str, str], name: str) -> int:
    text = _env(environ, name)
    if not text.isdigit():
        raise ConfigError(f"{name} must be a whole number ≥ 0, not {text!r}")
    return int(text)


def _seconds(environ: Mapping[str, str], name: str) -> float:
    text = _env(environ, name)
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 3600:
        raise ConfigError(f"{name} must be a number of seconds > 0, not {text!r}")
    return value


def _rate_limit(environ: Mapping[str, str], name: str) -> str:
    text = _env(environ, name)
    if name in ("RATELIMIT_STORAGE_URI", "RATELIMIT_KEY_PREFIX"):
        return text or DEFAULTS[name]
    from limits import parse_many

    try:
        parse_many(text)
    except ValueError as exc:
        raise ConfigError(f"{name} must be like 300/minute (or several joined by ;), "
                          f"not {text!r}") from exc
    return text


def normalize_database_url(url: str) -> str:
    """psycopg2 is the PostgreSQL driver (SQLAlchemy 2.1 would pick psycopg 3 for postgresql://)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def engine_options(url: str, *, pool_timeout: float | None = None) -> dict[str, Any]:
    """Pool settings: SQLite needs a wait on locks; PostgreSQL a bounded pool and wait.

    No pre-ping: it cost a round trip on every checkout, and behind PgBouncer the app's
    connections outlive a PostgreSQL restart. A connection that died meanwhile fails its first
    statement at once (or within DATABASE_STATEMENT_TIMEOUT, core/db.py): that request answers
    503 and SQLAlchemy replaces every pooled connection older than the failure. TCP keepalives
    and tcp_user_timeout (libpq, milliseconds) close a connection whose peer vanished (unacked
    data or silent keepalives) outside requests too, where statements have no bound."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    if pool_timeout is None:
        pool_timeout = float(DEFAULTS["DATABASE_POOL_TIMEOUT"])
    return {"pool_size": 10, "max_overflow": 10, "pool_timeout": pool_timeout,
            "connect_args": {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                             "keepalives_count": 3,
                             # Data unacknowledged for 2 s: the peer's host or the network is
                             # gone (a busy or slow server still acknowledges at once, so a long
                             # statement never trips it); a partition ends in a 503 within 2 s.
                             "tcp_user_timeout": 2_000}}
