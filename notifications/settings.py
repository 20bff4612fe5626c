"""Settings of the notification service, read from the app config with the environment behind it.

core/config.py loads the shared variables (NOTIFICATIONS_WORKER, QUIET_HOURS, PUSH_FCM_URL...);
the ones only this package uses are read here, an app-config value winning over the environment.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.db import utcnow
from notifications.quiet_hours import QuietHours, parse_quiet_hours

# Push services browsers subscribe with; an endpoint elsewhere is refused (no request forgery).
KNOWN_PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "web.push.apple.com",
)

# name -> default; README's configuration table lists each.
DEFAULTS: dict[str, str] = {
    "NOTIFICATIONS_MAX_ATTEMPTS": "8",
    "NOTIFICATIONS_BACKOFF_SECONDS": "30",
    "NOTIFICATIONS_BACKOFF_MAX_SECONDS": "21600",
    "NOTIFICATIONS_LEASE_SECONDS": "120",
    "NOTIFICATIONS_BATCH_SIZE": "50",
    "NOTIFICATIONS_POLL_SECONDS": "5",
    "NOTIFICATIONS_HTTP_TIMEOUT_SECONDS": "10",
    "NOTIFICATIONS_SEND_CONCURRENCY": "8",
    "NOTIFICATIONS_APP_URL": "",
    "NOTIFICATIONS_CELERY_QUEUE": "notifications",
    # A consent is told about once, this many days before it expires (run-reminders).
    "NOTIFICATIONS_CONSENT_EXPIRY_DAYS": "7",
    "FCM_CREDENTIALS_FILE": "",
    "SMS_GATEWAY_TOKEN": "",
    "SMTP_FROM": "no-reply@localhost",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": "false",
    "WEBPUSH_VAPID_PRIVATE_KEY_FILE": "",
    "WEBPUSH_VAPID_SUBJECT": "mailto:no-reply@localhost",
    "WEBPUSH_ENDPOINT_HOSTS": ",".join(KNOWN_PUSH_SERVICE_HOSTS),
}

Clock = Callable[[], dt.datetime]


class NotificationConfigError(RuntimeError):
    """The notification settings are unusable; the message names the variable."""


@dataclass
class NotificationSettings:
    worker: str
    production: bool
    quiet_hours: QuietHours | None
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    lease_seconds: float
    batch_size: int
    poll_seconds: float
    http_timeout: float
    send_concurrency: int
    app_url: str
    celery_broker_url: str
    celery_queue: str
    fcm_url: str
    fcm_credentials_file: str
    sms_url: str
    sms_token: str
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_username: str
    smtp_password: str = field(repr=False)
    smtp_starttls: bool
    vapid_private_key_file: str
    vapid_subject: str
    webpush_endpoint_hosts: tuple[str, ...]
    consent_expiry_days: int = 7
    # Tests move time; everything that asks "what time is it" asks this.
    clock: Clock = utcnow


def _raw(config: Mapping[str, Any], name: str) -> str:
    if name in config and config[name] is not None:
        return str(config[name]).strip()
    return os.environ.get(name, DEFAULTS.get(name, "")).strip()


def _number(config: Mapping[str, Any], name: str, *, minimum: float) -> float:
    raw = _raw(config, name)
    try:
        value = float(raw)
    except ValueError:
        raise NotificationConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise NotificationConfigError(f"{name} must be at least {minimum}")
    return value


def _flag(config: Mapping[str, Any], name: str) -> bool:
    return _raw(config, name).lower() in ("1", "true", "yes", "on")


def default_vapid_key_path(config: Mapping[str, Any], instance_path: str) -> Path:
    """Development VAPID key: beside the other generated keys (the KEK file's directory)."""
    kek_file = config.get("VAULT_KEK_FILE")
    keys_dir = Path(kek_file).parent if kek_file else Path(instance_path) / "keys"
    return keys_dir / "vapid-private.pem"


def load_settings(config: Mapping[str, Any], *, instance_path: str) -> NotificationSettings:
    """Build the settings from a Flask config mapping."""
    production = config.get("APP_ENV") == "production"
    try:
        quiet = parse_quiet_hours(config.get("QUIET_HOURS", "21:00-07:00"))
    except ValueError as exc:
        raise NotificationConfigError(f"QUIET_HOURS: {exc}") from None
    vapid_file = _raw(config, "WEBPUSH_VAPID_PRIVATE_KEY_FILE")
    if not vapid_file and not production:
        vapid_file = str(default_vapid_key_path(config, instance_path))
    hosts = tuple(
        h.strip().lower() for h in _raw(config, "WEBPUSH_ENDPOINT_HOSTS").split(",") if h.strip()
    )
    return NotificationSettings(
        worker=str(config.get("NOTIFICATIONS_WORKER", "thread")),
        production=production,
        quiet_hours=quiet,
        max_attempts=int(_number(config, "NOTIFICATIONS_MAX_ATTEMPTS", minimum=1)),
        backoff_seconds=_number(config, "NOTIFICATIONS_BACKOFF_SECONDS", minimum=0),
        backoff_max_seconds=_number(config, "NOTIFICATIONS_BACKOFF_MAX_SECONDS", minimum=0),
        lease_seconds=_number(config, "NOTIFICATIONS_LEASE_SECONDS", minimum=1),
        batch_size=int(_number(config, "NOTIFICATIONS_BATCH_SIZE", minimum=1)),
        poll_seconds=_number(config, "NOTIFICATIONS_POLL_SECONDS", minimum=0.01),
        http_timeout=_number(config, "NOTIFICATIONS_HTTP_TIMEOUT_SECONDS", minimum=0.1),
        send_concurrency=int(_number(config, "NOTIFICATIONS_SEND_CONCURRENCY", minimum=1)),
        app_url=_raw(config, "NOTIFICATIONS_APP_URL") or str(config.get("OAUTH_ISSUER") or ""),
        celery_broker_url=str(config.get("CELERY_BROKER_URL") or ""),
        celery_queue=_raw(config, "NOTIFICATIONS_CELERY_QUEUE") or "notifications",
        fcm_url=str(config.get("PUSH_FCM_URL") or ""),
        fcm_credentials_file=_raw(config, "FCM_CREDENTIALS_FILE"),
        sms_url=str(config.get("SMS_GATEWAY_URL") or ""),
        sms_token=_raw(config, "SMS_GATEWAY_TOKEN"),
        smtp_host=str(config.get("SMTP_HOST") or ""),
        smtp_port=int(config.get("SMTP_PORT") or 25),
        smtp_from=_raw(config, "SMTP_FROM"),
        smtp_username=_raw(config, "SMTP_USERNAME"),
        smtp_password=_raw(config, "SMTP_PASSWORD"),
        smtp_starttls=_flag(config, "SMTP_STARTTLS"),
        vapid_private_key_file=vapid_file,
        vapid_subject=_raw(config, "WEBPUSH_VAPID_SUBJECT"),
        webpush_endpoint_hosts=hosts,
        consent_expiry_days=int(_number(config, "NOTIFICATIONS_CONSENT_EXPIRY_DAYS", minimum=0)),
    )


def settings() -> NotificationSettings:
    """The current app's notification settings."""
    from flask import current_app

    return current_app.extensions["phr.notifications"].settings
