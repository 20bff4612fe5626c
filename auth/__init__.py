"""Accounts, OAuth 2.0 / OpenID Connect (Authlib) and API protection (DESIGN.md §4).

`init_app(app)` wires it all: the authorization server, the login pages, the bearer-token
check in front of every /api route, `GET /api/v1/me`, the CLI and the demo seed.
Handlers elsewhere use `auth.resource`: `current_caller()`, `require_scope(...)`.
"""

from __future__ import annotations

import logging

from flask import Flask

from core.config import ConfigError


def init_app(app: Flask) -> None:
    """Register the auth package on the app."""
    import auth.account_messages  # noqa: F401  (registers the texts)
    import auth.external_messages  # noqa: F401  (registers the texts)
    import auth.messages  # noqa: F401  (registers the texts)
    from auth import account_pages, api, external_pages, views
    from auth.cli import register_cli
    from auth.keys import install_signing_key
    from auth.resource import install_resource_protection
    from auth.server import create_server

    issuer = str(app.config["OAUTH_ISSUER"])
    if app.config.get("APP_ENV") == "production" and not issuer.startswith("https://"):
        raise ConfigError("OAUTH_ISSUER must be an https URL when APP_ENV=production")
    # Authlib logs token responses at DEBUG: never let them reach our log, whatever LOG_LEVEL.
    logging.getLogger("authlib").setLevel(logging.WARNING)
    install_signing_key(app)
    app.extensions[views.SERVER_EXTENSION] = create_server(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.well_known)
    app.register_blueprint(external_pages.bp)  # 404 while EXTERNAL_OIDC_ISSUER is empty
    app.register_blueprint(api.bp)
    app.register_blueprint(account_pages.bp)
    install_resource_protection(app)
    register_cli(app)
