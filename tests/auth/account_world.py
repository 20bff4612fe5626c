"""Helpers of the account-code tests: an app whose SMS goes to a local fake gateway (the real
HTTP protocol), stations, people with phones, and the pages' forms.

A test module wraps `running_gateway` and `sms_app` in its own `sms_gateway` and `app`
fixtures (its `app` replaces the suite's; tests/auth/conftest.py's `client` then uses it).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.notifications.fakes import FakeSmsGateway
from tests.support.auth import csrf_from, facility_code

PHONE = "0912 345 678"
STRONG_PASSWORD = "mật khẩu mới rất dài"
_CODE_IN_SMS = re.compile(r"\b(\d{4}) (\d{4})\b")


@contextmanager
def running_gateway() -> Iterator[FakeSmsGateway]:
    """A fake SMS gateway on a random local port (the real HTTP protocol)."""
    gateway = FakeSmsGateway().start()
    try:
        yield gateway
    finally:
        gateway.stop()


@contextmanager
def sms_app(database_url: str, log_stream: Any, gateway: FakeSmsGateway) -> Iterator[Any]:
    """The suite's test app, with SMS on the fake gateway and no quiet hours; the database is
    emptied after it as by tests/conftest.py's `app`."""
    from core.db import db
    from notifications import shutdown
    from tests.conftest import make_app
    from tests.support.database import empty_all_tables, rows_left

    gateway.reset()
    application = make_app(database_url, log_stream,
                           SMS_GATEWAY_URL=gateway.url + "/messages", QUIET_HOURS="",
                           NOTIFICATIONS_WORKER="none", NOTIFICATIONS_HTTP_TIMEOUT_SECONDS="3")
    with application.app_context():
        leftovers = rows_left(db.engine)
        assert not leftovers, f"database not empty before the test: {leftovers}"
    try:
        yield application
    finally:
        shutdown(application)
        with application.app_context():
            db.session.remove()
            empty_all_tables(db.engine)
            leftovers = rows_left(db.engine)
            db.engine.dispose()
    assert not leftovers, f"test left rows behind: {leftovers}"


# --- the world ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    health_id: str
    phone: str | None


def station(app: Any, *, commune: str = "09334") -> uuid.UUID:
    """A commune health station serving `commune`."""
    from core.db import db
    from registry.services import create_facility

    with app.app_context():
        facility = create_facility(
            session=db.session, code=facility_code(),
            kind="commune-health-station", name="Trạm Y tế xã Thử Nghiệm",
            province_code="27", district_code="260", commune_code=commune,
        )
        db.session.commit()
        return facility.id


def person(app: Any, *, registered_by: uuid.UUID | None, phone: str | None = PHONE,
           born: dt.date = dt.date(1990, 5, 17), sex: str = "female",
           full_name: str = "Lê Thị Hồng Nhung", language: str = "vi") -> Person:
    """A citizen the station `registered_by` registered (its catchment), with a phone."""
    from core.db import db
    from registry.reference.health_id import make_health_id
    from registry.services import find_citizen_by_health_id, register_citizen

    with app.app_context():
        while True:
            health_id = make_health_id(province_code="027", date_of_birth=born, sex=sex,
                                       serial=secrets.randbelow(1_000_000))
            if find_citizen_by_health_id(session=db.session, health_id=health_id) is None:
                break
        citizen = register_citizen(session=db.session, health_id=health_id,
                                   full_name=full_name, date_of_birth=born, sex=sex,
                                   phone=phone, registered_by_facility_id=registered_by,
                                   preferred_language=language)
        db.session.commit()
        return Person(citizen.id, health_id, phone)


def issue(client: Any, token: Any, citizen_id: uuid.UUID, **headers: str) -> Any:
    from tests.support.auth import bearer

    return client.post(f"/api/v1/citizens/{citizen_id}/activation-code",
                       headers={**bearer(token), **headers})


def deliver(app: Any) -> Any:
    from tests.notifications.helpers import process

    return process(app)


def sms_texts(gateway: FakeSmsGateway) -> list[str]:
    return [request.json()["text"] for request in gateway.received]


def code_in(text: str) -> str:
    match = _CODE_IN_SMS.search(text)
    assert match is not None, text
    return match.group(1) + match.group(2)


def submit(client: Any, path: str, *, headers: dict[str, str] | None = None,
           **fields: str) -> Any:
    """GET the page (for this browser's CSRF token) and POST the form."""
    page = client.get(path, headers=headers or {})
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_from(page.data), **fields},
                       headers=headers or {})


def activate(client: Any, health_id: str, code: str, password: str = STRONG_PASSWORD,
             **kwargs: Any) -> Any:
    return submit(client, "/account/activate", health_id=health_id, code=code,
                  password=password, password_confirm=password, **kwargs)


def reset(client: Any, health_id: str, code: str, password: str = STRONG_PASSWORD,
          **kwargs: Any) -> Any:
    return submit(client, "/account/reset-password", health_id=health_id, code=code,
                  password=password, password_confirm=password, **kwargs)


def forgot(client: Any, health_id: str, **kwargs: Any) -> Any:
    return submit(client, "/account/forgot-password", health_id=health_id, **kwargs)
