"""Fixtures: an app whose channels point at local fake providers, a controllable clock, people."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.notifications.fakes import (
    FakeFcm,
    FakePushService,
    FakeSmsGateway,
    FakeSmtp,
    Providers,
)

# 10:00 in Vietnam on a Monday: outside the default quiet hours.
DAYTIME = dt.datetime(2025, 3, 10, 3, 0, tzinfo=dt.UTC)


class FakeClock:
    """The service clock under the test's control."""

    def __init__(self, start: dt.datetime = DAYTIME) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now

    def set_vietnam(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        from notifications.quiet_hours import VIETNAM

        self.now = dt.datetime(day.year, day.month, day.day, hour, minute,
                               tzinfo=VIETNAM).astimezone(dt.UTC)
        return self.now


@pytest.fixture(scope="session")
def providers() -> Iterator[Providers]:
    started = Providers(
        fcm=FakeFcm().start(), sms=FakeSmsGateway().start(), push=FakePushService().start(),
        smtp=FakeSmtp().start(),
    )
    yield started
    started.stop()


@pytest.fixture(scope="session")
def vapid_key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("vapid") / "vapid-private.pem")


def channel_config(providers: Providers, vapid_key_file: str) -> dict[str, Any]:
    return {
        "PUSH_FCM_URL": providers.fcm.send_url,
        "SMS_GATEWAY_URL": providers.sms.url + "/messages",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": providers.smtp.port,
        "SMTP_FROM": "Sổ sức khỏe <no-reply@phr.test>",
        "WEBPUSH_VAPID_PRIVATE_KEY_FILE": vapid_key_file,
        "WEBPUSH_VAPID_SUBJECT": "mailto:ops@phr.test",
        "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1",
        "NOTIFICATIONS_APP_URL": "https://phr.test/app",
        "QUIET_HOURS": "",
        "NOTIFICATIONS_BACKOFF_SECONDS": "10",
        "NOTIFICATIONS_BACKOFF_MAX_SECONDS": "600",
        "NOTIFICATIONS_MAX_ATTEMPTS": "5",
        "NOTIFICATIONS_HTTP_TIMEOUT_SECONDS": "3",
        "NOTIFICATIONS_WORKER": "none",
    }


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Per-test additions to the app config (override in a test module)."""
    return {}


@pytest.fixture
def app(
    database_url: str, log_stream: Any, providers: Providers, vapid_key_file: str,
    config_overrides: dict[str, Any],
) -> Iterator[Any]:
    """The test app (as in tests/conftest.py), channels on the local fakes, clock controlled."""
    from core.db import db
    from notifications import shutdown
    from tests.conftest import make_app
    from tests.support.database import empty_all_tables, rows_left

    providers.reset()
    application = make_app(database_url, log_stream,
                           **{**channel_config(providers, vapid_key_file), **config_overrides})
    application.extensions["phr.notifications"].settings.clock = FakeClock()
    with application.app_context():
        leftovers = rows_left(db.engine)
        assert not leftovers, f"database not empty before the test: {leftovers}"
    yield application
    shutdown(application)
    with application.app_context():
        db.session.remove()
        empty_all_tables(db.engine)
        leftovers = rows_left(db.engine)
        db.engine.dispose()
    assert not leftovers, f"test left rows behind: {leftovers}"


@pytest.fixture
def clock(app: Any) -> FakeClock:
    return app.extensions["phr.notifications"].settings.clock


# People -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    health_id: str
    full_name: str
    phone: str | None
    email: str | None


def use_recipients(app: Any, hook: Any) -> None:
    """Who hears about a citizen, for one test: `hook(session, citizen_id)` answers for each
    citizen of a fan-out of any size, instead of consent's guardianships."""
    from notifications.recipients import RECIPIENTS

    RECIPIENTS.install(app, lambda session, ids: {cid: hook(session, cid) for cid in ids})


def make_person(
    app: Any,
    *,
    full_name: str = "Trần Thị Bình",
    date_of_birth: dt.date = dt.date(1990, 5, 17),
    sex: str = "female",
    phone: str | None = "0912 345 678",
    email: str | None = "binh@example.vn",
    language: str = "vi",
) -> Person:
    """A registered citizen with contact details (committed)."""
    from core.db import db
    from registry.reference.health_id import make_health_id
    from registry.services import find_citizen_by_health_id, register_citizen

    with app.app_context():
        while True:
            health_id = make_health_id(province_code="001", date_of_birth=date_of_birth,
                                       sex=sex, serial=secrets.randbelow(1_000_000))
            if find_citizen_by_health_id(session=db.session, health_id=health_id) is None:
                break
        citizen = register_citizen(
            session=db.session, health_id=health_id, full_name=full_name,
            date_of_birth=date_of_birth, sex=sex, phone=phone, email=email,
            preferred_language=language,
        )
        db.session.commit()
        return Person(citizen.id, health_id, full_name, citizen.phone, email)


@dataclass(frozen=True)
class BrowserSubscription:
    """A browser's push subscription: what it registers, and the keys it decrypts with."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    def token(self) -> str:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return json.dumps({
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": _b64url(public), "auth": _b64url(self.auth_secret)},
        })

    def decrypt(self, body: bytes) -> dict[str, Any]:
        import http_ece

        plain = http_ece.decrypt(body, private_key=self.private_key,
                                 auth_secret=self.auth_secret, version="aes128gcm")
        return json.loads(plain)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_subscription(providers: Providers) -> BrowserSubscription:
    name = secrets.token_hex(8)
    return BrowserSubscription(
        name=name, endpoint=f"{providers.push.url}/push/{name}",
        private_key=ec.generate_private_key(ec.SECP256R1()), auth_secret=os.urandom(16),
    )


def fcm_token() -> str:
    """A plausible FCM registration token."""
    return secrets.token_urlsafe(110) + ":APA91b" + secrets.token_urlsafe(20)
