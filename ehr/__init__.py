"""The record: registry, record sections, vaccination schedule; models, services, API."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the record's blueprints, messages and CLI."""
    import ehr.messages  # noqa: F401  (registers the record's texts)
    from ehr.api import bp as records_bp
    from ehr.api_citizens import bp as citizens_bp
    from ehr.cli import register_cli

    register_cli(app)
    app.register_blueprint(citizens_bp)
    app.register_blueprint(records_bp)
