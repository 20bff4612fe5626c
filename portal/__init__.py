"""The citizen portal: server-rendered pages at /, a first-party client of this server's
OAuth authorization server kept as a backend-for-frontend (tokens stay on the server)."""

from __future__ import annotations

from flask import Flask, Response, request

from core.errors import PROBLEM_RENDERER, Problem
from core.i18n import current_language


def init_app(app: Flask) -> None:
    import portal.messages  # noqa: F401 - registers the catalogue
    import portal.views_people  # noqa: F401 - routes
    import portal.views_record  # noqa: F401 - routes
    import portal.views_session  # noqa: F401 - routes
    from portal.blueprint import bp
    from portal.cli import register_cli

    app.register_blueprint(bp)
    register_cli(app)
    earlier = PROBLEM_RENDERER.installed(app)

    def render_problem(path: str, problem: Problem) -> Response | None:
        return _browser_problem(path, problem) or earlier(path, problem)

    PROBLEM_RENDERER.install(app, render_problem)


# Paths whose clients are programs: their problems stay problem+json (or FHIR's own form).
MACHINE_PREFIXES = ("/api/", "/fhir/", "/oauth/", "/.well-known/", "/share/m/", "/share/u/",
                     "/share/f/", "/healthz", "/readyz", "/metrics")


def _browser_problem(path: str, problem: Problem) -> Response | None:
    """A browser that lands on a missing or refused page outside the API gets a page in its
    language, never JSON."""
    if path.startswith(MACHINE_PREFIXES) or path in ("/api", "/fhir"):
        return None
    best = request.accept_mimetypes.best_match(
        ["application/problem+json", "application/json", "text/html"])
    if best != "text/html":
        return None
    from portal.pages import error_page
    from portal.web import choose_portal_language

    choose_portal_language()
    lang = current_language()
    return error_page(status=problem.status, title=problem.title_message().render(lang),
                      detail=problem.detail_message().render(lang), headers=problem.headers)
