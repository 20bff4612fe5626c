"""Liveness, readiness and metrics."""

from __future__ import annotations

from tests.conftest import make_app


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_database_at_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["migrations"] == "head"


def test_readyz_fails_when_database_unreachable(log_stream):
    # Port 9 (discard) has no PostgreSQL: the connection is refused at once.
    app = make_app("postgresql://postgres@127.0.0.1:9/none", log_stream,
                   SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})
    response = app.test_client().get("/readyz", headers={"Accept-Language": "en"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"].endswith("service-unavailable")
    assert "unreachable" in body["detail"]
    assert "127.0.0.1" not in body["detail"]
    assert "postgres" not in body["detail"]
    assert response.headers["Retry-After"] == "5"


def test_readyz_fails_when_migrations_not_applied(tmp_path, log_stream):
    app = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}", log_stream)
    response = app.test_client().get("/readyz", headers={"Accept-Language": "en"})
    assert response.status_code == 503
    assert "latest migration" in response.get_json(force=True)["detail"]
    with app.app_context():
        from core.db import db

        db.engine.dispose()


def test_metrics_count_requests_by_route_and_status(client):
    client.get("/healthz")
    client.get("/no/such/thing")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text
