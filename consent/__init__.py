"""Consent: the decision point, consents, access requests, break-glass, guardians and audit."""

from __future__ import annotations

import os

from flask import Flask

from consent.pdp import (
    DEFAULT_BREAK_GLASS_HOURS,
    DEFAULT_GUARDIAN_AGE_LIMIT,
    DEFAULT_TEEN_PRIVACY_AGE,
    policy_settings,
)

# Settings of the default policy, from the environment unless the app config names them.
_SETTINGS = {
    "GUARDIAN_AGE_LIMIT": (int, DEFAULT_GUARDIAN_AGE_LIMIT),
    "TEEN_PRIVACY_AGE": (int, DEFAULT_TEEN_PRIVACY_AGE),
    "BREAK_GLASS_HOURS": (float, DEFAULT_BREAK_GLASS_HOURS),
}


def _configure(app: Flask) -> None:
    for name, (kind, default) in _SETTINGS.items():
        raw = os.environ.get(name, "").strip()
        app.config.setdefault(name, kind(raw) if raw else default)
    policy_settings(app.config)  # a bad combination (teen age above the limit) fails at start


def init_app(app: Flask) -> None:
    """Settings, CLI, hooks for auth and notifications."""
    from auth.api import DEPENDANTS
    from consent.api import bp
    from consent.cli import audit_cli
    from consent.guardians import dependants_of

    _configure(app)
    app.cli.add_command(audit_cli)
    app.register_blueprint(bp)
    DEPENDANTS.install(app, dependants_of)  # auth's /me lists them; auth cannot import consent
