"""How provider answers map to outcomes (the error references of FCM v1 and RFC 8030)."""

from __future__ import annotations

import json

import pytest
import requests

from notifications.channels.base import Outcome, retry_after_seconds
from notifications.channels.fcm import classify_fcm_response
from notifications.channels.webpush import classify_webpush_response
from notifications.delivery import backoff_seconds
from tests.notifications.conftest import make_person
from tests.notifications.helpers import deliveries, notify, process


def _response(status: int, body: object = None, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    response.headers.update(headers)
    return response


def _fcm_error(status: int, code: str) -> requests.Response:
    return _response(status, {"error": {"code": status, "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}})


@pytest.mark.parametrize(("response", "outcome", "code"), [
    (_response(200, {"name": "projects/p/messages/1"}), Outcome.SENT, ""),
    (_fcm_error(404, "UNREGISTERED"), Outcome.GONE, "unregistered"),
    (_fcm_error(403, "SENDER_ID_MISMATCH"), Outcome.GONE, "sender-id-mismatch"),
    (_fcm_error(400, "INVALID_ARGUMENT"), Outcome.FAILED, "invalid-argument"),
    (_fcm_error(429, "QUOTA_EXCEEDED"), Outcome.RETRY, "http-429"),
    (_fcm_error(503, "UNAVAILABLE"), Outcome.RETRY, "http-503"),
    (_fcm_error(500, "INTERNAL"), Outcome.RETRY, "http-500"),
    (_response(401, {"error": {"code": 401}}), Outcome.RETRY, "http-401"),
    (_response(502, None), Outcome.RETRY, "http-502"),
])
def test_fcm_answers(response, outcome, code):
    result = classify_fcm_response(response)
    assert (result.outcome, result.code) == (outcome, code)


def test_fcm_retry_after_is_read():
    result = classify_fcm_response(_response(429, {}, **{"Retry-After": "30"}))
    assert result.retry_after == 30


@pytest.mark.parametrize(("status", "outcome"), [
    (201, Outcome.SENT), (404, Outcome.GONE), (410, Outcome.GONE), (403, Outcome.GONE),
    (413, Outcome.FAILED), (400, Outcome.FAILED), (429, Outcome.RETRY), (503, Outcome.RETRY),
])
def test_web_push_answers(status, outcome):
    assert classify_webpush_response(_response(status)).outcome is outcome


def test_retry_after_parsing():
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds("-3") is None
    assert retry_after_seconds(None) is None


def test_backoff_grows_is_capped_and_jittered():
    for attempts, low, high in ((1, 5, 10), (2, 10, 20), (3, 20, 40), (10, 50, 100)):
        values = [backoff_seconds(attempts, base=10, cap=100) for _ in range(200)]
        assert low <= min(values)
        assert max(values) <= high
        assert len(set(values)) > 150  # jittered: retries of many rows spread out
    assert backoff_seconds(1, base=10, cap=100, retry_after=60) >= 60
    assert backoff_seconds(1, base=10, cap=100, retry_after=10_000) <= 100


def test_smtp_refusals(app, providers):
    permanent = make_person(app, phone=None, email="gone@example.vn")
    notify(app, subject=permanent.id, trigger="break-glass")
    providers.smtp.reject_with = 550
    assert process(app).dead == 1
    providers.smtp.reject_with = 451
    temporary = make_person(app, phone=None, email="full@example.vn")
    notify(app, subject=temporary.id, trigger="break-glass")
    assert process(app).retried == 1
    assert sorted((r.status, r.last_error) for r in deliveries(app)) == [
        ("dead", "smtp-550"), ("pending", "smtp-451")]
