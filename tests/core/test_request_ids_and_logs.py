"""Request ids are echoed and logged; personal values never reach a log line."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import Blueprint

from core.logs import JsonFormatter, Personal, RedactionFilter, RequestContextFilter, personal


def test_sane_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123_def.456"})
    assert response.headers["X-Request-ID"] == "abc-123_def.456"


@pytest.mark.parametrize(
    "bad", ["short", "x" * 200, "has space in it", "inject;semicolon-0001", "<script>alert1"]
)
def test_insane_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    echoed = response.headers["X-Request-ID"]
    assert echoed != bad
    assert len(echoed) == 32
    assert all(c in "0123456789abcdef" for c in echoed)


def test_generated_when_absent_and_unique(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def _capture(app) -> io.StringIO:
    from core.logs import configure_logging

    stream = io.StringIO()
    configure_logging("INFO", stream)
    return stream


def test_access_log_line_is_json_with_request_fields(app, log_stream):
    stream = _capture(app)
    try:
        app.test_client().get("/healthz", headers={"X-Request-ID": "req-log-000001"})
    finally:
        from core.logs import configure_logging

        configure_logging("INFO", log_stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "phr.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "req-log-000001"
    assert entry["method"] == "GET"
    assert entry["route"] == "/healthz"
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert entry["level"] == "info"
    assert entry["time"].endswith("+00:00")


def test_every_line_of_a_request_carries_its_id(app, log_stream):
    bp = Blueprint("logprobe", __name__)

    @bp.get("/_logprobe")
    def probe():
        logging.getLogger("phr.test").info("inside the handler")
        return {"ok": True}

    app.register_blueprint(bp)
    stream = _capture(app)
    try:
        app.test_client().get("/_logprobe", headers={"X-Request-ID": "req-log-000002"})
    finally:
        from core.logs import configure_logging

        configure_logging("INFO", log_stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines
    assert all(line["request_id"] == "req-log-000002" for line in lines)


def _format(record_args: tuple, msg: str, **extra) -> str:
    logger = logging.getLogger("phr.redaction-test")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, record_args, None,
                               extra=extra)
    for f in (RequestContextFilter(), RedactionFilter()):
        f.filter(record)
    return JsonFormatter().format(record)


def test_values_marked_personal_never_reach_the_line():
    line = _format((personal("Nguyễn Văn An"),), "looked up %s", citizen=personal("Trần Thị B"),
                   nested={"name": Personal("Lê Văn C")})
    assert "Nguyễn Văn An" not in line
    assert "Trần Thị B" not in line
    assert "Lê Văn C" not in line
    assert line.count("[redacted]") == 3


def test_personal_survives_format_specs_and_repr():
    value = personal("079203004512")
    assert f"{value}" == "[redacted]"
    assert f"{value:>20}" == "[redacted]"
    assert repr(value) == "[redacted]"


@pytest.mark.parametrize(
    "leak",
    [
        "079203004512",  # a health ID nobody marked
        "+84 912 345 678",
        "0912345678",
        "an.nguyen@example.vn",
        "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        "access_token=abcdef123456",
        "code=SplxlOBeZQQYbYS6WxSbIA",
    ],
)
def test_unmarked_identifiers_and_secrets_are_scrubbed(leak):
    line = _format((leak,), "value %s")
    assert leak not in line
    line_extra = _format((), "plain", detail=leak)
    assert leak not in line_extra


def test_exception_messages_stay_out_of_logs():
    logger = logging.getLogger("phr.redaction-test")
    try:
        raise ValueError("Nguyễn Văn An 079203004512")
    except ValueError:
        import sys

        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    RedactionFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "Nguyễn Văn An" not in line
    assert "ValueError" in line
