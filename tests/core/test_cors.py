"""Browsers may call the API only from the configured origins."""

from __future__ import annotations

from tests.conftest import make_app


def test_no_cors_headers_by_default(client):
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_configured_origin_gets_preflight_and_headers(database_url, log_stream):
    app = make_app(database_url, log_stream, CORS_ORIGINS=["https://portal.example.vn"])
    client = app.test_client()
    preflight = client.options(
        "/api/v1/me",
        headers={"Origin": "https://portal.example.vn", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "Authorization"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://portal.example.vn"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    other = client.options(
        "/api/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    with app.app_context():
        from core.db import db

        db.engine.dispose()
