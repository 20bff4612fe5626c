"""Every error status leaves as problem+json with a stable type, in Vietnamese or English."""

from __future__ import annotations

import pytest
from flask import Blueprint

from core import errors
from core.http import json_body

STATUS_RAISERS = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    422: errors.ValidationFailed,
    428: errors.PreconditionRequired,
    500: errors.InternalError,
    503: errors.ServiceUnavailable,
}

EXPECTED_TYPES = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 409: "conflict", 412: "precondition-failed",
    413: "payload-too-large", 415: "unsupported-media-type", 422: "validation-error",
    428: "precondition-required", 429: "too-many-requests", 500: "internal-error",
    503: "service-unavailable",
}


@pytest.fixture
def probe_app(app):
    bp = Blueprint("probe", __name__)

    @bp.get("/_probe/<int:status>")
    def raise_status(status: int):
        if status == 429:
            raise errors.TooManyRequests(retry_after=30)
        raise STATUS_RAISERS[status]()

    @bp.post("/_probe/echo")
    def echo():
        return {"received": json_body()}

    @bp.get("/_probe/crash")
    def crash():
        raise RuntimeError("secret value 079203004512 in SELECT * FROM citizens")

    @bp.get("/_probe/only-get")
    def only_get():
        return {"ok": True}

    @bp.post("/_probe/validation")
    def validation():
        raise errors.ValidationFailed(errors={"health_id": [errors.Message(
            "problem.json-object-required.detail")]})

    app.register_blueprint(bp)
    return app


def _assert_problem(response, status: int, lang: str, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"] == "urn:phr-vn:problem:" + (code or EXPECTED_TYPES[status])
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["Content-Language"] == lang
    return body


ALL_STATUSES = sorted(EXPECTED_TYPES)


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s != 405])
def test_every_status_is_problem_json_in_vietnamese_by_default(probe_app, status):
    response = probe_app.test_client().get(f"/_probe/{status}")
    body = _assert_problem(response, status, "vi")
    vi_title = body["title"]
    english = probe_app.test_client().get(f"/_probe/{status}", headers={"Accept-Language": "en"})
    en_body = _assert_problem(english, status, "en")
    assert en_body["title"] != vi_title, "English and Vietnamese titles must differ"
    assert en_body["type"] == body["type"]


def test_405_lists_allowed_methods_in_both_languages(probe_app):
    client = probe_app.test_client()
    vi = _assert_problem(client.delete("/_probe/only-get"), 405, "vi")
    assert "DELETE" in vi["detail"]
    response = client.delete("/_probe/only-get", headers={"Accept-Language": "en-US,en;q=0.9"})
    en = _assert_problem(response, 405, "en")
    assert "GET" in response.headers["Allow"]
    assert en["title"] == "Method not allowed"


def test_429_carries_retry_after(probe_app):
    response = probe_app.test_client().get("/_probe/429", headers={"Accept-Language": "en"})
    body = _assert_problem(response, 429, "en")
    assert response.headers["Retry-After"] == "30"
    assert "30" in body["detail"]


def test_unknown_route_is_a_404_problem(client):
    _assert_problem(client.get("/no/such/route"), 404, "vi")


def test_malformed_json_has_its_own_problem(probe_app):
    response = probe_app.test_client().post(
        "/_probe/echo", data=b'{"a": ', content_type="application/json"
    )
    body = _assert_problem(response, 400, "vi", "malformed-json")
    assert body["detail"] == "Nội dung yêu cầu không phải là JSON hợp lệ."


def test_json_array_is_refused_as_malformed(probe_app):
    response = probe_app.test_client().post("/_probe/echo", json=[1, 2])
    _assert_problem(response, 400, "vi", "malformed-json")


def test_wrong_content_type_has_its_own_problem(probe_app):
    response = probe_app.test_client().post(
        "/_probe/echo", data="a=b", content_type="application/x-www-form-urlencoded",
        headers={"Accept-Language": "en"},
    )
    body = _assert_problem(response, 415, "en")
    assert "application/json" in body["detail"]


def test_oversized_body_is_refused_before_reading(probe_app):
    limit = probe_app.config["MAX_CONTENT_LENGTH"]
    payload = b'{"a": "' + b"x" * (limit + 10) + b'"}'
    response = probe_app.test_client().post(
        "/_probe/echo", data=payload, content_type="application/json",
        headers={"Accept-Language": "en"},
    )
    body = _assert_problem(response, 413, "en")
    assert str(limit) in body["detail"]


def test_valid_json_passes(probe_app):
    response = probe_app.test_client().post("/_probe/echo", json={"tên": "Nguyễn"})
    assert response.status_code == 200
    assert response.get_json() == {"received": {"tên": "Nguyễn"}}


def test_500_says_only_internal_error_and_request_id(probe_app):
    response = probe_app.test_client().get(
        "/_probe/crash", headers={"X-Request-ID": "req-crash-0001"}
    )
    body = _assert_problem(response, 500, "vi")
    assert body["request_id"] == "req-crash-0001"
    text = response.get_data(as_text=True)
    for leak in ("079203004512", "SELECT", "RuntimeError", "Traceback", "secret"):
        assert leak not in text
    assert set(body) == {"type", "title", "status", "detail", "instance", "request_id"}


def test_field_errors_are_rendered_per_language(probe_app):
    client = probe_app.test_client()
    vi = client.post("/_probe/validation", json={}).get_json()
    en = client.post("/_probe/validation", json={}, headers={"Accept-Language": "en"}).get_json()
    assert vi["errors"]["health_id"] == ["Nội dung yêu cầu phải là một đối tượng JSON."]
    assert en["errors"]["health_id"] == ["The request body must be a JSON object."]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "vi"), ("", "vi"), ("en", "en"), ("en-GB", "en"), ("fr, en;q=0.5", "en"),
        ("vi, en;q=0.8", "vi"), ("en;q=0.2, vi;q=0.9", "vi"), ("de", "vi"), ("en;q=0", "vi"),
        ("*", "vi"), ("en;q=abc", "vi"),
    ],
)
def test_language_negotiation(header, expected):
    from core.i18n import negotiate_language

    assert negotiate_language(header) == expected
