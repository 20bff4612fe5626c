"""Application factory: assembles configuration, extensions, blueprints, CLI and error handling.

gunicorn serves `app:create_app()`; nothing imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_cors import CORS
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

from core.bench_routes import register_bench_routes
from core.config import load_config, normalize_database_url
from core.db import db
from core.encryption import VaultSettings
from core.errors import register_error_handlers
from core.http import install_request_hooks
from core.kept_plans import install as install_kept_plans
from core.logs import configure_logging
from core.ops import MIGRATIONS_DIR
from core.ops import bp as ops_bp
from core.rate_limits import HEADERS as RATE_LIMIT_HEADERS
from core.rate_limits import check_route_budgets, install_rate_limits
from core.transactions import install_reads_outside_transaction
from core.vault.kek import InMemoryKekProvider, KekProvider, LocalKeyFileKekProvider
from core.vault_cli import register_vault_cli

ROOT = Path(__file__).resolve().parent
migrate = Migrate(directory=str(MIGRATIONS_DIR), compare_type=True, render_as_batch=True)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, with `config` overriding individual settings."""
    app = Flask(__name__, instance_path=str(ROOT / "instance"))
    app.config.update(load_config(root=ROOT))
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False

    configure_logging(app.config["LOG_LEVEL"], app.config.get("LOG_STREAM"))
    app.extensions["phr.vault"] = _vault_settings(app.config)
    db.init_app(app)
    migrate.init_app(app, db)
    _import_models()

    install_request_hooks(app)
    _install_rate_limits(app)  # before any hook that reads the database
    install_reads_outside_transaction(app, paths=READS_OUTSIDE_TRANSACTION_PATHS)
    with app.app_context():
        install_kept_plans(db.engine, enabled=bool(app.config.get("DB_KEEP_PLANS", True)))
    _install_cors(app)
    if app.config.get("TRUSTED_PROXIES"):
        # Behind a TLS proxy: client addresses (login throttling, rate limits) and https URLs
        # come from it.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    register_error_handlers(app)
    register_vault_cli(app)
    app.register_blueprint(ops_bp)
    if app.config.get("BENCH_ROUTES"):  # bench/api.py only; never in production
        register_bench_routes(app)
    _register_domain(app)
    check_route_budgets(app)
    return app


# What clients of the service call (the portal's pages, the login pages with their own
# throttle, health and metrics are never counted); where a request without a token counts in
# the anonymous budget; the routes with a budget of their own (RATELIMIT_<NAME>).
# The machine-facing reads, whose statements run outside a transaction until one writes
# (core.transactions); the portal's pages keep theirs.
READS_OUTSIDE_TRANSACTION_PATHS = ("/api/", "/fhir/")
RATE_LIMITED_PATHS = ("/api/", "/fhir/", "/oauth/token", "/oauth/revoke", "/oauth/introspect",
                      "/oauth/userinfo", "/share/m/", "/share/u/", "/share/f/")
ANONYMOUS_LIMITED_PATHS = ("/api/", "/fhir/", "/share/")
ROUTE_BUDGETS = {
    "citizens.immunization_batch": "batch",
    "fhir_transaction.transaction": "fhir-transaction",
    "citizens.export": "export",
    "fhir_operations.patient_everything": "export",
    "worklist.immunization_worklist": "worklist",
    "oauth.token": "oauth",
    "oauth.revoke": "oauth",
    "oauth.introspect": "oauth",
}


def _install_rate_limits(app: Flask) -> None:
    install_rate_limits(app, paths=RATE_LIMITED_PATHS, anonymous_paths=ANONYMOUS_LIMITED_PATHS,
                        route_budgets=ROUTE_BUDGETS)


def _install_cors(app: Flask) -> None:
    # Only the listed origins (the citizen portal) may call the API from a browser; bearer
    # tokens, never cookies, so no credentials mode.
    origins = app.config.get("CORS_ORIGINS") or []
    if origins:
        CORS(
            app, resources={r"/api/*": {"origins": origins}, r"/oauth/*": {"origins": origins}},
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match",
                           "If-None-Match", "Accept-Language", "X-Request-ID"],
            expose_headers=["ETag", "Location", "X-Request-ID", "Retry-After",
                            "Idempotent-Replayed", *RATE_LIMIT_HEADERS],
            supports_credentials=False, max_age=600,
        )


def _vault_settings(config: Mapping[str, Any]) -> VaultSettings:
    provider: KekProvider
    if config.get("VAULT_KEK_JSON"):
        provider = InMemoryKekProvider.from_json(config["VAULT_KEK_JSON"])
    else:
        provider = LocalKeyFileKekProvider(config["VAULT_KEK_FILE"])
    return VaultSettings(provider=provider, blind_index_key=config["BLIND_INDEX_KEY"])


def _import_models() -> None:
    # Every model module must be imported so metadata (and Alembic) sees all tables.
    import auth.external_models  # noqa: F401
    import auth.models  # noqa: F401
    import consent.models  # noqa: F401
    import core.idempotency  # noqa: F401
    import ehr.record_models  # noqa: F401
    import ehr.share_models  # noqa: F401
    import notifications.models  # noqa: F401
    import portal.models  # noqa: F401
    import registry.models  # noqa: F401


def _register_domain(app: Flask) -> None:
    from auth import init_app as init_auth
    from consent import init_app as init_consent
    from ehr import init_app as init_ehr
    from notifications import init_app as init_notifications
    from portal import init_app as init_portal

    init_ehr(app)
    init_consent(app)
    init_auth(app)
    init_notifications(app)
    init_portal(app)  # last: its error pages wrap the faces registered before it
    _register_demo_seed(app)


def _register_demo_seed(app: Flask) -> None:
    # The registry owns `seed demo`; each package above it adds its part, in this order.
    from auth.seed import seed_demo_accounts
    from consent.seed import seed_consent_demo
    from ehr.seed_records import seed_demo_records
    from notifications import demo_reminders
    from registry.cli import register_cli

    register_cli(app, seeders=(seed_demo_records, seed_consent_demo, seed_demo_accounts,
                               demo_reminders(app)))
